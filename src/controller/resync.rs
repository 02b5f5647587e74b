//! The resync: one snapshot of the account compared with every declared resource, so that
//! out-of-band drift is found in a few calls rather than a few per resource.

use std::sync::atomic::Ordering;

use tracing::warn;

use super::desired::Key;
use super::{Controller, lock};
use crate::iam::Snapshot;
use crate::manifest::Resource;
use crate::reconcile;
use crate::reconcile::ResourceState;

impl Controller {
    /// Queues every declared resource: the resync that catches out-of-band drift.
    /// The resync that catches out-of-band drift: one snapshot of the account, compared with
    /// every declared resource; what differs (or is not known to be in sync) is queued.
    /// Without a snapshot, everything is queued and each reconcile observes for itself.
    pub async fn resync(&self) {
        if self.resyncing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.metrics.resync_started();
        let keys = lock(&self.desired).keys();
        match self.iam.snapshot().await {
            Ok(snapshot) => {
                for key in keys {
                    if self.differs(&key, &snapshot).await {
                        self.queue.add(key);
                    }
                }
                if self.may_prune() {
                    for key in self.undeclared_owned(&snapshot).await {
                        self.queue.add(key);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot read the account in bulk; reconciling every resource");
                for key in keys {
                    self.queue.add(key);
                }
            }
        }
        self.resyncing.store(false, Ordering::SeqCst);
    }

    /// Whether `key` needs a reconcile, judged from the snapshot.
    async fn differs(&self, key: &Key, snapshot: &Snapshot) -> bool {
        if lock(&self.status).state_of(key) != Some(ResourceState::InSync) {
            return true;
        }
        let Some(resource) = lock(&self.desired).get(key) else {
            return false;
        };
        let ctx = self.ctx.read().unwrap_or_else(|p| p.into_inner()).clone();
        // The snapshot lacks a policy's tags: read them for declared policies that exist.
        let tags = match &resource {
            Resource::Policy(policy) => match snapshot.policy(&policy.name) {
                Some(o) => match self.iam.policy_tags(&o.arn).await {
                    Ok(tags) => Some(tags),
                    Err(_) => return true,
                },
                None => None,
            },
            Resource::Role(_) => None,
        };
        let plan = reconcile::plan_one(&ctx, &resource, snapshot, tags);
        !plan.changes.is_empty() || !plan.findings.is_empty()
    }
}
