//! The resync: one snapshot of the account compared with every declared resource, so that
//! out-of-band drift is found in a few calls rather than a few per resource.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::desired::Key;
use super::{Controller, Generation, lock};
use crate::iam::{ErrorKind, ObservedPolicy, Snapshot};
use crate::manifest::Resource;
use crate::reconcile;
use crate::reconcile::{Eventual, ResourceState};

/// Policy tags by ARN.
pub(super) type PolicyTags =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// Clears the `resyncing` flag however the resync ends (a panic included).
struct Resyncing<'a>(&'a AtomicBool);

impl Drop for Resyncing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Controller {
    /// The resync that catches out-of-band drift: one snapshot of the account, compared with
    /// every declared resource; what differs (or is not known to be in sync) is queued, except
    /// a key that failed and waits for its own retry. Without a snapshot, everything is queued
    /// and each reconcile observes for itself; while AWS is unreachable, nothing is.
    /// Whether every ARN of `snapshot` is in this controller's account; said once when not.
    pub(super) fn is_ours(&self, snapshot: &crate::iam::Snapshot) -> bool {
        let account = &self.generation().ctx.account.id;
        match snapshot.arn_outside(account) {
            None => {
                self.acct.foreign.store(false, Ordering::SeqCst);
                true
            }
            Some(arn) => {
                if !self.acct.foreign.swap(true, Ordering::SeqCst) {
                    error!(
                        arn,
                        "IAM answered with a resource of another account than {account}: the \
                         credentials no longer reach this account; nothing is changed from this \
                         read"
                    );
                }
                false
            }
        }
    }

    pub async fn resync(&self) {
        if self.acct.resyncing.swap(true, Ordering::SeqCst) {
            return;
        }
        let _resyncing = Resyncing(&self.acct.resyncing);
        if self.faults.fires("panic:resync") {
            panic!("test fault: the resync panics");
        }
        if self.faults.fires("stall:resync") {
            std::future::pending::<()>().await;
        }
        let started = Instant::now();
        self.metrics.resync_started();
        let generation = self.generation();
        let keys = generation.keys();
        let read_account = match self.acct.iam.snapshot().await {
            Ok(snapshot) if !self.is_ours(&snapshot) => false,
            Ok(snapshot) => {
                self.acct.known.refresh(&snapshot);
                if self.acct.bulk_failing.swap(false, Ordering::SeqCst) {
                    info!("the account can be read in bulk again");
                }
                let may_prune = self.may_prune();
                let tags = self
                    .policy_tags(&generation, &snapshot, may_prune, false)
                    .await;
                // Refs resolve to the ARNs IAM has for the declared policies: once a resync,
                // not once a key (a copy of every policy's ARN each time).
                let ctx = generation.ctx.clone().with_observed_policy_arns(
                    snapshot
                        .policies()
                        .map(|p| (p.name.as_str(), p.arn.as_str())),
                );
                for key in keys {
                    if !self.backing_off(&key)
                        && self.differs(&key, &generation, &ctx, &snapshot, &tags)
                    {
                        self.queue.add(key);
                    }
                }
                if may_prune {
                    for key in self.prune_pass(&generation, &snapshot, &tags).await {
                        if !self.backing_off(&key) {
                            self.queue.add(key);
                        }
                    }
                }
                true
            }
            // The outage is reported as such; each failed key's backoff retries it.
            Err(_) if self.aws.is_unreachable() => false,
            Err(e) => {
                if e.kind == ErrorKind::AccessDenied {
                    // Refused: the account denies the bulk read until its policy changes.
                    if !self.acct.bulk_failing.swap(true, Ordering::SeqCst) {
                        warn!(error = %e, "cannot read the account in bulk; reconciling every resource at each resync");
                    }
                } else {
                    // Failed (IAM answering with server errors, throttled): an AWS condition
                    // of its own (/status, /readyz), not a refusal.
                    debug!(error = %e, "the bulk read failed this resync; reconciling every resource on its own");
                }
                for key in keys {
                    if !self.backing_off(&key) {
                        self.queue.add(key);
                    }
                }
                false
            }
        };
        super::first_pass::release_freed_memory();
        self.metrics
            .resync_finished(started.elapsed().as_secs_f64(), read_account);
        self.liveness.resync_finished();
    }

    /// The tags of the policies this resync judges: the declared ones that exist and, when it
    /// may prune, the undeclared ones (their owner). Mostly from the cache (`policy_tags`);
    /// a read that fails is retried with `retry`, else left for the reconcile to observe.
    pub(super) async fn policy_tags(
        &self,
        generation: &Generation,
        snapshot: &Snapshot,
        undeclared_too: bool,
        retry: bool,
    ) -> PolicyTags {
        let needed: Vec<&ObservedPolicy> = snapshot
            .policies()
            .filter(|p| undeclared_too || generation.state.policy(&p.name).is_some())
            .collect();
        let retry = retry.then(|| self.in_place_retry());
        self.acct
            .policy_tags
            .tags(&needed, |arn| {
                let retry = retry.clone();
                async move {
                    match retry {
                        Some(r) => {
                            reconcile::retrying(&r, Eventual::No, || {
                                self.acct.iam.policy_tags(&arn)
                            })
                            .await
                        }
                        None => self.acct.iam.policy_tags(&arn).await,
                    }
                }
            })
            .await
    }

    /// Whether `key` needs a reconcile, judged from the snapshot and the policies' tags.
    fn differs(
        &self,
        key: &Key,
        generation: &Generation,
        ctx: &reconcile::Context,
        snapshot: &Snapshot,
        tags: &PolicyTags,
    ) -> bool {
        if lock(&self.acct.keys).state_of(key) != Some(ResourceState::InSync) {
            return true;
        }
        let Some(resource) = generation.get(key) else {
            return false;
        };
        let policy_tags = match &resource {
            Resource::Policy(policy) => match snapshot.policy(&policy.name) {
                // Tags that could not be read: a reconcile observes it instead.
                Some(o) => match tags.get(&o.arn) {
                    Some(t) => Some(t.clone()),
                    None => return true,
                },
                None => None,
            },
            _ => None,
        };
        // Not in the snapshot (an instance profile): a reconcile observes it.
        reconcile::plan_one(ctx, &resource, snapshot, policy_tags)
            .is_none_or(|plan| !plan.changes.is_empty() || !plan.findings.is_empty())
    }
}
