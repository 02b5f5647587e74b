//! What the daemon remembers per key, as one record per key in one table: its /status entry,
//! whether the first pass still waits for it, its failure backoff, the spec it last converged
//! to, a pending prune, and its contest.
//!
//! Invariant: a record has a status exactly while its key is declared; a record whose key is
//! not declared is kept only while something is pending for it (a prune, a retry), so the
//! table never outgrows the desired state by more than the work in flight.

use std::collections::{BTreeMap, HashSet};
use std::time::{Instant, SystemTime};

use super::contest::Contest;
use super::desired::Key;
use super::status::{Correction, ResourceStatus};
use crate::reconcile::ResourceState;

/// How one reconcile of a key ended: what its /status entry shows next.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: ResourceState,
    /// The ARN found or made (`None`: keep the one known).
    pub arn: Option<String>,
    pub error: Option<String>,
    /// Drift corrections this reconcile made.
    pub corrections: u64,
    /// What they changed, a line each, and the diff of what was found (for the resource's
    /// history on /status).
    pub corrected: Vec<String>,
    pub corrected_diff: Vec<String>,
    /// The error cannot go away by retrying the same request (see `IamError::is_final`): no
    /// fast backoff, the next resync or edit tries again.
    pub final_error: bool,
}

impl Outcome {
    pub fn new(state: ResourceState) -> Outcome {
        Outcome {
            state,
            arn: None,
            error: None,
            corrections: 0,
            corrected: Vec::new(),
            corrected_diff: Vec::new(),
            final_error: false,
        }
    }

    pub fn with_arn(mut self, arn: Option<String>) -> Outcome {
        self.arn = arn;
        self
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Outcome {
        self.error = Some(error.into());
        self
    }

    pub fn with_corrections(mut self, corrections: u64) -> Outcome {
        self.corrections = corrections;
        self
    }
}

#[derive(Default)]
pub struct KeyRecord {
    /// Its /status entry, while declared.
    status: Option<ResourceStatus>,
    /// Failures in a row, cleared by a success: the retry policy's delay grows with it.
    pub failures: u32,
    /// When the failed key's retry is due.
    pub retry_at: Option<Instant>,
    /// The spec it last converged to: a difference from it is a manifest edit being applied,
    /// not drift.
    pub converged: Option<u64>,
    /// An undeclared owned policy found for pruning: its ARN.
    pub prune_arn: Option<String>,
    /// The last resync's prune decision deletes it, within `--max-prune`: the only way a
    /// prune may delete it before the next resync.
    prune_due: bool,
    pub contest: Contest,
    /// When this process saw the key's manifest go (with prune on), having seen it declared:
    /// the earliest its grace period may have started. Cleared when declared again or gone.
    pub undeclared_at: Option<SystemTime>,
    /// What observe mode last reported as differing: said again only when it changes.
    pub observed: Option<String>,
    /// Why prune last kept it (still used, --max-prune): said again only when it changes.
    pub prune_kept: Option<String>,
}

impl KeyRecord {
    /// Undeclared, and nothing pending: it can go.
    fn is_done(&self) -> bool {
        self.status.is_none()
            && self.prune_arn.is_none()
            && self.undeclared_at.is_none()
            && !self.prune_due
            && self.retry_at.is_none_or(|t| t <= Instant::now())
    }
}

#[derive(Default)]
pub struct KeyTable {
    records: BTreeMap<Key, KeyRecord>,
    /// Declared at start-up and not reconciled yet: readiness waits for them.
    first_pass: HashSet<Key>,
    /// How many the first pass started with, for its progress.
    first_pass_total: usize,
}

impl KeyTable {
    /// Keeps a status for exactly the declared keys (new ones start pending, the others keep
    /// theirs), and drops the records of undeclared keys with nothing pending.
    pub fn track(&mut self, declared: &[Key]) {
        let declared: HashSet<&Key> = declared.iter().collect();
        for (key, r) in self.records.iter_mut() {
            if !declared.contains(key) {
                r.status = None;
            }
        }
        self.first_pass.retain(|k| declared.contains(k));
        for key in declared {
            let r = self.records.entry(key.clone()).or_default();
            r.undeclared_at = None;
            r.status.get_or_insert_with(|| ResourceStatus {
                kind: key.kind,
                name: key.name.clone(),
                arn: None,
                state: ResourceState::Pending,
                last_reconcile: None,
                last_error: None,
                drift_corrections: 0,
                contested: None,
                recent_corrections: std::collections::VecDeque::new(),
            });
        }
        self.records.retain(|_, r| !r.is_done());
    }

    /// Records how one reconcile of `key` ended (ignored if it is no longer declared).
    pub fn record(&mut self, key: &Key, outcome: Outcome) {
        let Outcome {
            state,
            arn,
            error,
            corrections,
            corrected,
            corrected_diff,
            final_error: _,
        } = outcome;
        let Some(r) = self.records.get_mut(key) else {
            return;
        };
        let contest = r
            .contest
            .is_contested()
            .then(|| r.contest.report(Instant::now()));
        if let Some(s) = r.status.as_mut() {
            s.state = state;
            if arn.is_some() {
                s.arn = arn;
            }
            s.last_error = error;
            s.drift_corrections += corrections;
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            if !corrected.is_empty() {
                s.record_correction(Correction::new(now.clone(), corrected, corrected_diff));
            }
            s.last_reconcile = Some(now);
            s.contested = contest;
        }
    }

    /// Exactly the keys in `due` are due for deletion now (a resync's prune decision).
    pub fn set_prune_due(&mut self, due: &HashSet<Key>) {
        for (key, r) in self.records.iter_mut() {
            r.prune_due = due.contains(key);
        }
        for key in due {
            self.entry(key).prune_due = true;
        }
        self.records.retain(|_, r| !r.is_done());
    }

    /// Whether `key` was due for deletion, which it no longer is: one decision, one delete.
    pub fn take_prune_due(&mut self, key: &Key) -> bool {
        self.records
            .get_mut(key)
            .is_some_and(|r| std::mem::take(&mut r.prune_due))
    }

    /// The record of `key`, created if missing.
    pub fn entry(&mut self, key: &Key) -> &mut KeyRecord {
        self.records.entry(key.clone()).or_default()
    }

    pub fn get(&self, key: &Key) -> Option<&KeyRecord> {
        self.records.get(key)
    }

    /// Every record, for changes across keys.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Key, &mut KeyRecord)> {
        self.records.iter_mut()
    }

    /// Drops the record of `key` if it is undeclared and nothing is pending for it.
    pub fn forget_if_done(&mut self, key: &Key) {
        if self.records.get(key).is_some_and(KeyRecord::is_done) {
            self.records.remove(key);
        }
    }

    /// The error the last reconcile of `key` ended with.
    pub fn last_error(&self, key: &Key) -> Option<&str> {
        self.records
            .get(key)?
            .status
            .as_ref()?
            .last_error
            .as_deref()
    }

    pub fn state_of(&self, key: &Key) -> Option<ResourceState> {
        self.records.get(key)?.status.as_ref().map(|s| s.state)
    }

    /// Every declared key's status, in key order.
    pub fn statuses(&self) -> Vec<ResourceStatus> {
        self.records
            .values()
            .filter_map(|r| r.status.clone())
            .collect()
    }

    pub fn count(&self, state: ResourceState) -> usize {
        self.records
            .values()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.state == state))
            .count()
    }

    /// The first pass starts: it waits for every declared key. Returns whether there is none.
    pub fn start_first_pass(&mut self) -> bool {
        self.first_pass = self
            .records
            .iter()
            .filter(|(_, r)| r.status.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        self.first_pass_total = self.first_pass.len();
        self.first_pass.is_empty()
    }

    /// `key` was reconciled once. Returns whether the first pass waits for nothing more.
    pub fn first_pass_done(&mut self, key: &Key) -> bool {
        self.first_pass.remove(key);
        self.first_pass.is_empty()
    }

    /// The first pass's keys reconciled so far, and how many it started with.
    pub fn first_pass_progress(&self) -> (usize, usize) {
        let total = self.first_pass_total;
        (total.saturating_sub(self.first_pass.len()), total)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Kind;
    use std::time::Duration;

    fn key(n: &str) -> Key {
        Key::new(Kind::Role, n.to_string())
    }

    #[test]
    fn tracks_declared_keys_and_records_reconciles() {
        let mut t = KeyTable::default();
        t.track(&[key("a"), key("b")]);
        assert_eq!(t.count(ResourceState::Pending), 2);
        t.record(
            &key("a"),
            Outcome::new(ResourceState::InSync)
                .with_arn(Some("arn:a".into()))
                .with_corrections(2),
        );
        t.record(
            &key("a"),
            Outcome::new(ResourceState::Error)
                .with_error("boom")
                .with_corrections(1),
        );
        let a = &t.statuses()[0];
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
        t.track(&[key("b")]);
        assert_eq!(t.statuses().len(), 1);
        t.record(&key("a"), Outcome::new(ResourceState::InSync));
        assert_eq!(t.statuses().len(), 1, "a removed key is not brought back");
        assert_eq!(t.len(), 1, "nor is its record kept");
    }

    #[test]
    fn a_prune_is_due_once_per_decision_and_only_for_the_keys_decided() {
        let mut t = KeyTable::default();
        t.track(&[key("kept")]);
        t.set_prune_due(&HashSet::from([key("gone"), key("old")]));
        assert!(t.take_prune_due(&key("gone")));
        assert!(!t.take_prune_due(&key("gone")), "one decision, one delete");
        assert!(!t.take_prune_due(&key("kept")));
        // The next decision replaces the last: what it leaves out is no longer due.
        t.set_prune_due(&HashSet::from([key("gone")]));
        assert!(!t.take_prune_due(&key("old")));
        assert!(t.take_prune_due(&key("gone")));
        // Records kept only for a due prune go once nothing is due.
        t.set_prune_due(&HashSet::new());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn tracking_again_keeps_what_declared_keys_show() {
        let mut t = KeyTable::default();
        t.track(&[key("a")]);
        t.record(
            &key("a"),
            Outcome::new(ResourceState::InSync).with_corrections(1),
        );
        t.track(&[key("a"), key("b")]);
        assert_eq!(t.state_of(&key("a")), Some(ResourceState::InSync));
        assert_eq!(t.state_of(&key("b")), Some(ResourceState::Pending));
    }

    #[test]
    fn an_undeclared_key_is_kept_only_while_something_is_pending() {
        let mut t = KeyTable::default();
        t.track(&[key("retrying"), key("pruning"), key("idle")]);
        t.entry(&key("retrying")).retry_at = Some(Instant::now() + Duration::from_secs(60));
        t.entry(&key("pruning")).prune_arn = Some("arn:p".into());
        t.track(&[]);
        assert_eq!(t.len(), 2);
        assert!(t.statuses().is_empty());
        t.entry(&key("pruning")).prune_arn = None;
        t.forget_if_done(&key("pruning"));
        t.forget_if_done(&key("retrying"));
        assert_eq!(t.len(), 1, "the retry is still pending");
    }

    #[test]
    fn the_first_pass_waits_for_declared_keys_only_while_they_are() {
        let mut t = KeyTable::default();
        t.track(&[key("a"), key("b")]);
        assert!(!t.start_first_pass());
        assert!(!t.first_pass_done(&key("a")));
        // b is removed before it was ever reconciled: nothing waits for it any more.
        t.track(&[key("a")]);
        assert!(t.first_pass_done(&key("a")));
    }
}
