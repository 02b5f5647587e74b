//! `iam-warden validate DIR`: every error of every file, one line each, then every dangerous
//! grant (`warning: …`, the exit code unchanged), then a summary.

use anyhow::Context;

use super::accounts::Targets;
use super::findings::{Columns, Finding};
use super::report::{all_warnings, plural};
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::{ManifestArgs, ValidateFormat};
use crate::manifest::accounts::Accounts;
use crate::manifest::{self, Variables, limits};

/// What validate found, whatever it is printed as.
pub struct Report {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// `valid: …` or `invalid: …`, the last line of the text.
    pub summary: String,
}

impl Report {
    fn exit_code(&self) -> u8 {
        if self.errors.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        }
    }

    fn print(&self, format: ValidateFormat) -> anyhow::Result<()> {
        match format {
            ValidateFormat::Text => {
                for f in self.errors.iter().chain(&self.warnings) {
                    println!("{f}");
                }
                println!("{}", self.summary);
            }
            ValidateFormat::Json => {
                let out = serde_json::json!({
                    "valid": self.errors.is_empty(),
                    "errors": self.errors,
                    "warnings": self.warnings,
                    "summary": self.summary,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            ValidateFormat::Sarif => {
                let all: Vec<Finding> = self.errors.iter().chain(&self.warnings).cloned().collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&super::sarif::log(&all))?
                );
            }
        }
        Ok(())
    }
}

pub fn run(args: &ManifestArgs, format: ValidateFormat) -> anyhow::Result<u8> {
    // As text, an invalid accounts file is said on stderr, as every command says it.
    if format == ValidateFormat::Text
        && let Targets::Invalid(diags) = super::accounts::targets(args)
    {
        Targets::say_invalid(&diags);
        return Ok(EXIT_FAILED);
    }
    let report = match check(args) {
        Ok(report) => report,
        Err(e) => {
            // A machine reading stdout gets a document saying so, not nothing.
            let why = format!("{e:#}");
            match format {
                ValidateFormat::Text => {}
                ValidateFormat::Json => println!(
                    "{}",
                    serde_json::json!({"valid": false, "errors": [], "warnings": [], "error": why})
                ),
                ValidateFormat::Sarif => println!(
                    "{}",
                    serde_json::to_string_pretty(&super::sarif::failed(&why))?
                ),
            }
            return Err(e);
        }
    };
    report.print(format)?;
    Ok(report.exit_code())
}

/// Every error and dangerous grant of DIR (of every account's expansion of it, with an
/// accounts file), without any AWS call.
pub fn check(args: &ManifestArgs) -> anyhow::Result<Report> {
    check_owner(&args.owner)?;
    match super::accounts::targets(args) {
        Targets::Caller => {}
        Targets::Invalid(diags) => {
            let mut columns = Columns::default();
            let errors: Vec<Finding> = diags
                .iter()
                .map(|d| Finding::error(d, &mut columns))
                .collect();
            let summary = format!(
                "invalid: {} in the accounts file",
                plural(errors.len(), "error", "errors")
            );
            return Ok(Report {
                errors,
                warnings: Vec::new(),
                summary,
            });
        }
        Targets::Many(accounts) => return check_accounts(args, &accounts),
    }
    let vars = Variables::load(&args.values, &args.vars)?;
    let guardrails = args.guardrails()?;
    let loaded = manifest::load_guarded(&args.dir, &vars, &guardrails)
        .with_context(|| format!("cannot load manifests from {}", args.dir.display()))?;
    let mut columns = Columns::default();
    let errors: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .map(|d| Finding::error(d, &mut columns))
        .collect();
    let warnings = all_warnings(&loaded, &args.dir, &vars)
        .iter()
        .map(|w| Finding::warning(w, &mut columns))
        .collect();
    // Kinds added later are named only when declared: the first line stays as it was.
    let mut profiles = String::new();
    for (n, one, many) in [
        (
            loaded.state.instance_profiles.len(),
            "instance profile",
            "instance profiles",
        ),
        (
            loaded.state.oidc_providers.len(),
            "OIDC provider",
            "OIDC providers",
        ),
    ] {
        if n > 0 {
            profiles.push_str(&format!(", {}", plural(n, one, many)));
        }
    }
    let resources = format!(
        "{}, {}{profiles} in {}",
        plural(loaded.state.roles.len(), "role", "roles"),
        plural(loaded.state.policies.len(), "policy", "policies"),
        plural(loaded.files, "file", "files"),
    );
    let summary = if loaded.diagnostics.is_empty() {
        format!("valid: {resources}")
    } else {
        let files: std::collections::BTreeSet<_> =
            loaded.diagnostics.iter().map(|d| &d.file).collect();
        format!(
            "invalid: {} in {} (valid: {resources})",
            plural(loaded.diagnostics.len(), "error", "errors"),
            plural(files.len(), "file", "files"),
        )
    };
    Ok(Report {
        errors,
        warnings,
        summary,
    })
}

/// Every account's expansion of DIR: each distinct error once, naming the accounts it holds in
/// unless it holds in all.
fn check_accounts(args: &ManifestArgs, accounts: &Accounts) -> anyhow::Result<Report> {
    let checked = super::accounts::check(args, accounts)?;
    let each: Vec<String> = checked
        .declared
        .iter()
        .map(|(name, roles, policies)| {
            format!(
                "{name}: {}, {}",
                plural(*roles, "role", "roles"),
                plural(*policies, "policy", "policies")
            )
        })
        .collect();
    let summary = format!(
        "{} in {} ({})",
        plural(checked.declared.len(), "account", "accounts"),
        plural(checked.files, "file", "files"),
        each.join("; ")
    );
    let summary = if checked.errors.is_empty() {
        format!("valid: {summary}")
    } else {
        format!(
            "invalid: {} (checked: {summary})",
            plural(checked.errors.len(), "error", "errors")
        )
    };
    let mut warnings = checked.warnings;
    warnings.extend(checked.unselected);
    Ok(Report {
        errors: checked.errors,
        warnings,
        summary,
    })
}

/// The owner value becomes a tag value on everything iam-warden creates.
pub fn check_owner(owner: &str) -> anyhow::Result<()> {
    if owner.is_empty() {
        anyhow::bail!("--owner must not be empty");
    }
    limits::tag_value(owner).map_err(|e| anyhow::anyhow!("--owner `{owner}`: {e}"))
}
