//! `iam-warden validate DIR`: every error of every file, one line each, then every dangerous
//! grant (`warning: …`, the exit code unchanged), then a summary.

use anyhow::Context;

use super::accounts::Targets;
use super::report::{located_warnings, plural};
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ManifestArgs;
use crate::manifest::accounts::Accounts;
use crate::manifest::{self, Variables, limits};

pub fn run(args: &ManifestArgs) -> anyhow::Result<u8> {
    check_owner(&args.owner)?;
    match super::accounts::targets(args) {
        Targets::Caller => {}
        Targets::Invalid => return Ok(EXIT_FAILED),
        Targets::Many(accounts) => return run_accounts(args, &accounts),
    }
    let vars = Variables::load(&args.values, &args.vars)?;
    let guardrails = args.guardrails()?;
    let loaded = manifest::load_guarded(&args.dir, &vars, &guardrails)
        .with_context(|| format!("cannot load manifests from {}", args.dir.display()))?;
    for d in &loaded.diagnostics {
        println!("{d}");
    }
    for w in &located_warnings(&loaded.state) {
        println!("{w}");
    }
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
    if loaded.diagnostics.is_empty() {
        println!("valid: {resources}");
        Ok(EXIT_OK)
    } else {
        let files: std::collections::BTreeSet<_> =
            loaded.diagnostics.iter().map(|d| &d.file).collect();
        println!(
            "invalid: {} in {} (valid: {resources})",
            plural(loaded.diagnostics.len(), "error", "errors"),
            plural(files.len(), "file", "files"),
        );
        Ok(EXIT_FAILED)
    }
}

/// Every account's expansion of DIR: each distinct error once, naming the accounts it holds in
/// unless it holds in all.
fn run_accounts(args: &ManifestArgs, accounts: &Accounts) -> anyhow::Result<u8> {
    let checked = super::accounts::check(args, accounts)?;
    for e in &checked.errors {
        println!("{e}");
    }
    for w in checked.warnings.iter().chain(&checked.unselected) {
        println!("{w}");
    }
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
    if checked.errors.is_empty() {
        println!("valid: {summary}");
        Ok(EXIT_OK)
    } else {
        println!(
            "invalid: {} (checked: {summary})",
            plural(checked.errors.len(), "error", "errors")
        );
        Ok(EXIT_FAILED)
    }
}

/// The owner value becomes a tag value on everything iam-warden creates.
pub fn check_owner(owner: &str) -> anyhow::Result<()> {
    if owner.is_empty() {
        anyhow::bail!("--owner must not be empty");
    }
    limits::tag_value(owner).map_err(|e| anyhow::anyhow!("--owner `{owner}`: {e}"))
}
