//! What several commands print alike: counts in words, and dangerous grants at their lines.

use crate::manifest::{self, danger};

/// The dangerous grants of `state`, each at the line of its field.
pub fn located_warnings(state: &manifest::DesiredState) -> Vec<danger::Warning> {
    let mut warnings = danger::warnings(state);
    danger::locate(&mut warnings);
    warnings
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
