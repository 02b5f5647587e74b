//! The retry policy, in one place: a failed key comes back after its own growing, jittered
//! delay; a success resets it; AWS answering again after an outage retries every failed key
//! at once; a panicking reconcile is a failure like any other.

use std::time::{Duration, Instant};

use tracing::error;

use super::desired::Key;
use super::keys::Outcome;
use super::{Controller, IN_PLACE_RETRY, lock};
use crate::reconcile::{ResourceState, RetryPolicy, failure_delay};

/// A failed key's first retry comes after about this long...
pub(super) const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ...and its delay grows to about this at most.
pub(super) const LAST_RETRY: Duration = Duration::from_secs(300);

impl Controller {
    /// In the daemon a change is retried in place only briefly (see [`IN_PLACE_RETRY`]).
    pub(super) fn in_place_retry(&self) -> RetryPolicy {
        let r = &self.config.retry;
        RetryPolicy {
            initial: r.initial.min(Duration::from_millis(500)),
            max_interval: r.max_interval.min(Duration::from_secs(2)),
            max_elapsed: r.max_elapsed.min(IN_PLACE_RETRY),
        }
    }

    /// The retry policy, in one place: a failed key comes back after its own growing, jittered
    /// delay; a success resets it. Other keys are never held up.
    pub(super) fn error_policy(&self, key: &Key, failed: bool) {
        let mut keys = lock(&self.acct.keys);
        if !failed {
            if keys.get(key).is_some() {
                let r = keys.entry(key);
                r.failures = 0;
                r.retry_at = None;
            }
            return;
        }
        let r = keys.entry(key);
        r.failures = r.failures.saturating_add(1);
        let delay = failure_delay(r.failures, FIRST_RETRY, LAST_RETRY);
        r.retry_at = Some(Instant::now() + delay);
        drop(keys);
        self.queue.add_after(key.clone(), delay);
    }

    /// Whether `key` failed and waits for its retry, or is being retried right now: a resync
    /// leaves it to its backoff (queueing a running key would run it again the moment it fails).
    pub(super) fn backing_off(&self, key: &Key) -> bool {
        if self.queue.is_running(key) {
            return true;
        }
        lock(&self.acct.keys)
            .get(key)
            .and_then(|r| r.retry_at)
            .is_some_and(|t| t > Instant::now())
    }

    /// AWS answers again after an outage: every failed key is retried now, not after its
    /// (by now long) backoff.
    pub(super) fn retry_failed_now(&self) {
        let keys: Vec<Key> = lock(&self.acct.keys)
            .iter_mut()
            .filter(|(_, r)| r.retry_at.is_some())
            .map(|(k, r)| {
                r.failures = 0;
                r.retry_at = None;
                k.clone()
            })
            .collect();
        for key in keys {
            self.queue.add(key);
        }
    }

    /// A reconcile panicked (a bug): the key is marked failed and retried with backoff, the
    /// worker goes on.
    pub(super) fn panicked(&self, key: &Key, message: &str) {
        let resource = key.to_string();
        error!(resource = %resource, "reconcile panicked: {message}; retrying with backoff");
        self.metrics
            .reconciled(key.kind, super::metrics::ReconcileResult::Panic, 0.0);
        lock(&self.acct.keys).record(
            key,
            Outcome::new(ResourceState::Error).with_error(format!("reconcile panicked: {message}")),
        );
        self.update_resource_gauge();
        self.error_policy(key, true);
        self.first_pass_done(key);
    }
}
