//! Pruning in the daemon: owned resources that no manifest declares are deleted, checked
//! again just before, and never while any manifest is invalid or DIR holds none.

use std::time::Instant;

use tracing::warn;

use super::desired::Key;
use super::{Controller, lock};
use crate::iam::Snapshot;
use crate::manifest::{Kind, OWNER_TAG};
use crate::reconcile::{Change, Executor, ResourcePlan, tag_value};

impl Controller {
    /// Pruning is on, and nothing suggests the manifests are incomplete: no invalid file, and
    /// at least one file at all (an empty or unmounted DIR must never delete everything).
    pub(super) fn may_prune(&self) -> bool {
        if !self.config.prune || self.config.observe_only {
            return false;
        }
        let store = lock(&self.desired);
        store.file_count() > 0 && store.errors().is_empty()
    }

    /// Owned resources in the snapshot that no manifest declares.
    pub(super) async fn undeclared_owned(&self, snapshot: &Snapshot) -> Vec<Key> {
        let state = lock(&self.desired).state().clone();
        let owner = self.config.owner.as_str();
        let owns = |tags: &std::collections::BTreeMap<String, String>| {
            tag_value(tags, OWNER_TAG).is_some_and(|o| o == owner)
        };
        // Declared is judged ignoring case, as IAM names are.
        let mut keys: Vec<Key> = snapshot
            .roles()
            .filter(|r| state.role(&r.name).is_none() && owns(&r.tags))
            .map(|r| (Kind::Role, r.name.clone()))
            .collect();
        for p in snapshot
            .policies()
            .filter(|p| state.policy(&p.name).is_none())
        {
            if let Ok(tags) = self.iam.policy_tags(&p.arn).await {
                if owns(&tags) {
                    lock(&self.prune_arns).insert(p.name.clone(), p.arn.clone());
                    keys.push((Kind::Policy, p.name.clone()));
                }
            }
        }
        keys
    }

    /// Deletes an undeclared resource after checking, fresh, that it is still ours.
    pub(super) async fn prune(&self, key: &Key) {
        let resource = format!("{}/{}", key.0, key.1);
        // A manifest renamed only in case still declares it: IAM names ignore case.
        let declared = {
            let store = lock(&self.desired);
            match key.0 {
                Kind::Role => store.state().role(&key.1).is_some(),
                Kind::Policy => store.state().policy(&key.1).is_some(),
            }
        };
        if declared {
            return;
        }
        let observed = match key.0 {
            Kind::Role => self
                .iam
                .observe_role(&key.1)
                .await
                .map(|r| r.map(|r| (r.arn, r.tags))),
            Kind::Policy => {
                let Some(arn) = lock(&self.prune_arns).get(&key.1).cloned() else {
                    return;
                };
                self.iam
                    .observe_policy(&arn)
                    .await
                    .map(|p| p.map(|p| (p.arn, p.tags)))
            }
        };
        let (arn, tags) = match observed {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                warn!(resource = %resource, error = %e, "cannot check a resource to prune");
                self.error_policy(key, true);
                return;
            }
        };
        if tag_value(&tags, OWNER_TAG) != Some(&self.config.owner) {
            return;
        }
        let change = match key.0 {
            Kind::Role => Change::DeleteRole,
            Kind::Policy => Change::DeletePolicy,
        };
        let mut plan = ResourcePlan::new(key.0, &key.1, Some(arn));
        plan.changes.push(change);
        warn!(resource = %resource, "pruning: no manifest declares it any more");
        let executor = Executor {
            iam: &self.iam,
            owner: &self.config.owner,
            retry: self.config.retry.clone(),
        };
        let started = Instant::now();
        match executor.apply(&plan).await {
            Ok(_) => {
                self.metrics
                    .reconciled(key.0, "pruned", started.elapsed().as_secs_f64());
                lock(&self.prune_arns).remove(&key.1);
                self.error_policy(key, false);
            }
            Err(e) => {
                warn!(resource = %resource, error = %e, "prune failed");
                self.metrics
                    .reconciled(key.0, "error", started.elapsed().as_secs_f64());
                self.error_policy(key, true);
            }
        }
    }
}
