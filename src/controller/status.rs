//! What /status shows: every resource's state, last reconcile, last error, drift corrections.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::desired::Key;
use crate::manifest::Kind;
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
}
