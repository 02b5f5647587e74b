//! The first pass, from one bulk snapshot: at start-up every declared resource is compared
//! with a snapshot of the account (a few calls, whatever their number), and only what differs
//! goes to the workers, which observe it on its own. Policy tags, which the snapshot lacks,
//! are read after readiness. Resources already in sync are recorded as
//! such at once, so a large, converged directory is ready in seconds, not after one
//! observation per resource. Without a snapshot, the workers observe everything.

use std::collections::HashSet;

use tracing::{debug, info};

use super::desired::{self, Key};
use super::keys::Outcome;
use super::{Controller, lock};
use crate::manifest::{Kind, Resource};
use crate::reconcile::{self, Eventual, ResourceState};

impl Controller {
    /// Starts the first pass over what the first reload queued: ready at once when nothing is
    /// declared, else from a snapshot where one can be read.
    pub(super) async fn first_pass(&self) {
        if lock(&self.acct.keys).start_first_pass() {
            self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        } else {
            self.first_pass_from_snapshot().await;
        }
        // The first pass reconciles everything that reload() queued.
        self.metrics.resync_started();
        self.liveness.resync_finished();
    }

    async fn first_pass_from_snapshot(&self) {
        let retry = self.in_place_retry();
        let snapshot = match reconcile::retrying(&retry, Eventual::No, || self.acct.iam.snapshot())
            .await
        {
            Ok(s) if self.is_ours(&s) => s,
            Ok(_) => return,
            Err(e) => {
                debug!(error = %e, "no snapshot for the first pass; each resource is observed on its own");
                return;
            }
        };
        self.acct.known.refresh(&snapshot);
        let generation = self.generation();
        let ctx = generation.ctx.clone().with_observed_policy_arns(
            snapshot
                .policies()
                .map(|p| (p.name.as_str(), p.arn.as_str())),
        );
        let mut settled: Vec<(Key, Resource, Option<String>)> = Vec::new();
        // Policies (by lowercased name) that a role still to reconcile refers to.
        let mut needed: HashSet<String> = HashSet::new();
        for key in generation.keys() {
            let Some(resource) = generation.get(&key) else {
                continue;
            };
            // The snapshot lacks policy tags, and reading them costs a request per policy: a
            // thousand policies would hold readiness for 20 s at the default pace. They are
            // taken to be what the manifest wants, and read by the resyncs that follow
            // (which queue what differs). Every write reads them fresh first.
            let policy_tags = match &resource {
                Resource::Policy(p) => Some(ctx.policy_tags_wanted(p)),
                _ => None,
            };
            // An instance profile is not in the snapshot: it stays queued, observed alone.
            let Some(plan) = reconcile::plan_one(&ctx, &resource, &snapshot, policy_tags) else {
                continue;
            };
            if plan.changes.is_empty() && plan.findings.is_empty() {
                settled.push((key, resource, plan.arn));
            } else if let Resource::Role(role) = &resource {
                needed.extend(role.policy_refs().map(str::to_lowercase));
            }
        }
        // A policy a role about to be written needs is observed in full (its owner read)
        // first: a role must not attach a policy in conflict on an assumption.
        settled
            .retain(|(k, _, _)| k.kind != Kind::Policy || !needed.contains(&k.name.to_lowercase()));
        let settled: HashSet<Key> = {
            let mut keys = lock(&self.acct.keys);
            settled
                .into_iter()
                .map(|(key, resource, arn)| {
                    keys.entry(&key).converged = Some(desired::fingerprint(&resource));
                    keys.record(&key, Outcome::new(ResourceState::InSync).with_arn(arn));
                    key
                })
                .collect()
        };
        self.queue.retain(|k| !settled.contains(k));
        info!(
            in_sync = settled.len(),
            to_reconcile = generation.keys().len() - settled.len(),
            "first pass from one snapshot of the account"
        );
        for key in &settled {
            self.first_pass_done(key);
        }
        self.update_resource_gauge();
        drop(snapshot);
        release_freed_memory();
    }
}

/// The snapshot of a large account is the daemon's largest allocation, and it is freed right
/// after each pass and resync; glibc keeps freed memory unless asked, so it is handed back.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory at the top of glibc's heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
