//! What several commands print alike: counts in words, and dangerous grants at their lines.

use crate::manifest::{self, danger};

/// The dangerous grants of DIR as `loaded` (with guardrails) read it. A document that breaks
/// only a guardrail is not part of that state, but its grants are as dangerous: when there
/// are errors, DIR is read again without guardrails for its warnings.
pub fn all_warnings(
    loaded: &manifest::Loaded,
    dir: &std::path::Path,
    vars: &manifest::Variables,
) -> Vec<danger::Warning> {
    if loaded.diagnostics.is_empty() {
        return located_warnings(&loaded.state);
    }
    match manifest::load_guarded(dir, vars, &manifest::NoRules) {
        Ok(unguarded) => located_warnings(&unguarded.state),
        Err(_) => located_warnings(&loaded.state),
    }
}

/// The dangerous grants of `state`, each at the line of its field.
pub fn located_warnings(state: &manifest::DesiredState) -> Vec<danger::Warning> {
    let mut warnings = danger::warnings(state);
    danger::locate(&mut warnings);
    warnings
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
