//! What /status shows: every resource's state, last reconcile, last error, drift corrections;
//! and the file errors, bounded.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::contest::ContestReport;
use super::desired::Key;
use crate::manifest::{Diagnostic, Kind};
use crate::reconcile::ResourceState;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub kind: Kind,
    pub name: String,
    pub arn: Option<String>,
    pub state: ResourceState,
    /// RFC 3339.
    pub last_reconcile: Option<String>,
    pub last_error: Option<String>,
    pub drift_corrections: u64,
    /// Only while contested: the fields that keep changing and when the next correction is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contested: Option<ContestReport>,
}

/// File errors shown per file at most; the rest are counted.
pub const MAX_ERRORS_PER_FILE: usize = 20;

/// The file errors for /status: at most [`MAX_ERRORS_PER_FILE`] per file, then one line
/// counting the rest, so that one huge broken file cannot blow up the response.
pub fn bounded_file_errors(errors: &[Diagnostic]) -> Vec<String> {
    let mut per_file: BTreeMap<&std::path::Path, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for d in errors {
        let n = per_file.entry(d.file.as_path()).or_default();
        *n += 1;
        if *n <= MAX_ERRORS_PER_FILE {
            out.push(d.to_string());
        }
    }
    for (file, n) in per_file {
        if n > MAX_ERRORS_PER_FILE {
            out.push(format!(
                "{}: and {} more errors",
                file.display(),
                n - MAX_ERRORS_PER_FILE
            ));
        }
    }
    out
}

#[derive(Default)]
pub struct StatusBoard {
    resources: BTreeMap<Key, ResourceStatus>,
}

impl StatusBoard {
    /// Keeps exactly the declared keys; new ones start pending.
    pub fn track(&mut self, keys: &[Key]) {
        self.resources.retain(|k, _| keys.contains(k));
        for key in keys {
            self.resources
                .entry(key.clone())
                .or_insert_with(|| ResourceStatus {
                    kind: key.0,
                    name: key.1.clone(),
                    arn: None,
                    state: ResourceState::Pending,
                    last_reconcile: None,
                    last_error: None,
                    drift_corrections: 0,
                    contested: None,
                });
        }
    }

    /// Records one reconcile of `key` (ignored if it is no longer declared).
    pub fn record(
        &mut self,
        key: &Key,
        state: ResourceState,
        arn: Option<String>,
        error: Option<String>,
        corrections: u64,
    ) {
        if let Some(s) = self.resources.get_mut(key) {
            s.state = state;
            if arn.is_some() {
                s.arn = arn;
            }
            s.last_error = error;
            s.drift_corrections += corrections;
            s.last_reconcile =
                Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
        }
    }

    /// Shows (or, with `None`, clears) what keeps contesting `key`.
    pub fn set_contest(&mut self, key: &Key, report: Option<ContestReport>) {
        if let Some(s) = self.resources.get_mut(key) {
            s.contested = report;
        }
    }

    pub fn state_of(&self, key: &Key) -> Option<ResourceState> {
        self.resources.get(key).map(|s| s.state)
    }

    pub fn all(&self) -> Vec<ResourceStatus> {
        self.resources.values().cloned().collect()
    }

    pub fn count(&self, state: ResourceState) -> usize {
        self.resources.values().filter(|s| s.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> Key {
        (Kind::Role, n.to_string())
    }

    #[test]
    fn tracks_declared_keys_and_records_reconciles() {
        let mut b = StatusBoard::default();
        b.track(&[key("a"), key("b")]);
        assert_eq!(b.count(ResourceState::Pending), 2);
        b.record(
            &key("a"),
            ResourceState::InSync,
            Some("arn:a".into()),
            None,
            2,
        );
        b.record(
            &key("a"),
            ResourceState::Error,
            None,
            Some("boom".into()),
            1,
        );
        let a = &b.all()[0];
        assert_eq!(
            (
                a.state,
                a.arn.as_deref(),
                a.last_error.as_deref(),
                a.drift_corrections
            ),
            (ResourceState::Error, Some("arn:a"), Some("boom"), 3)
        );
        assert!(a.last_reconcile.is_some());
        b.track(&[key("b")]);
        assert_eq!(b.all().len(), 1);
        b.record(&key("a"), ResourceState::InSync, None, None, 0);
        assert_eq!(b.all().len(), 1, "a removed key is not brought back");
    }

    #[test]
    fn file_errors_are_capped_per_file_with_a_count_of_the_rest() {
        let mut errors: Vec<Diagnostic> = (0..25)
            .map(|i| Diagnostic::file("big.yaml", format!("error {i}")))
            .collect();
        errors.push(Diagnostic::file("small.yaml", "one"));
        let shown = bounded_file_errors(&errors);
        assert_eq!(shown.len(), MAX_ERRORS_PER_FILE + 2, "{shown:?}");
        assert!(
            shown.contains(&"big.yaml: and 5 more errors".to_string()),
            "{shown:?}"
        );
        assert!(shown.iter().any(|l| l.contains("small.yaml")));
    }
}
