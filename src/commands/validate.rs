//! `iam-warden validate DIR`: every error of every file, one line each, then every dangerous
//! grant (`warning: …`, the exit code unchanged), then a summary.

use anyhow::Context;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ManifestArgs;
use crate::manifest::danger;
use crate::manifest::{self, Variables, limits};

pub fn run(args: &ManifestArgs) -> anyhow::Result<u8> {
    check_owner(&args.owner)?;
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
    let resources = format!(
        "{}, {} in {}",
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

/// The dangerous grants of `state`, each at the line of its field.
pub fn located_warnings(state: &manifest::DesiredState) -> Vec<danger::Warning> {
    let mut warnings = danger::warnings(state);
    danger::locate(&mut warnings);
    warnings
}

/// The owner value becomes a tag value on everything iam-warden creates.
pub fn check_owner(owner: &str) -> anyhow::Result<()> {
    if owner.is_empty() {
        anyhow::bail!("--owner must not be empty");
    }
    limits::tag_value(owner).map_err(|e| anyhow::anyhow!("--owner `{owner}`: {e}"))
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
