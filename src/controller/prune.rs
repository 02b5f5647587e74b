//! Pruning in the daemon: owned resources that no manifest declares are deleted, checked
//! again just before, and never while any manifest is invalid or DIR holds none.

use std::collections::HashSet;
use std::time::Instant;

use tracing::warn;

use super::desired::Key;
use super::{Controller, Generation, lock};
use crate::iam::Snapshot;
use crate::manifest::{Kind, OWNER_TAG};
use crate::reconcile::{Change, Executor, ResourcePlan};

impl Controller {
    /// Pruning is on, and nothing suggests the manifests are incomplete: no invalid file, and
    /// at least one file at all (an empty or unmounted DIR must never delete everything).
    pub(super) fn may_prune(&self) -> bool {
        if !self.config.prune || self.config.observe_only {
            return false;
        }
        let generation = self.generation();
        generation.files > 0 && generation.errors.is_empty()
    }

    /// Owned resources in the snapshot that no manifest declares.
    pub(super) async fn undeclared_owned(
        &self,
        generation: &Generation,
        snapshot: &Snapshot,
    ) -> Vec<Key> {
        let state = &generation.state;
        let roles: HashSet<&String> = state.roles.keys().collect();
        let policies: HashSet<&String> = state.policies.keys().collect();
        let owner = Some(&self.config.owner);
        let mut keys: Vec<Key> = snapshot
            .roles
            .values()
            .filter(|r| !roles.contains(&r.name) && r.tags.get(OWNER_TAG) == owner)
            .map(|r| (Kind::Role, r.name.clone()))
            .collect();
        for p in snapshot
            .policies
            .values()
            .filter(|p| !policies.contains(&p.name))
        {
            if let Ok(tags) = self.iam.policy_tags(&p.arn).await {
                if tags.get(OWNER_TAG) == owner {
                    let key = (Kind::Policy, p.name.clone());
                    self.with_record(&key, |r| r.prune_arn = Some(p.arn.clone()));
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Deletes an undeclared resource after checking, fresh, that it is still ours.
    pub(super) async fn prune(&self, key: &Key) {
        let resource = format!("{}/{}", key.0, key.1);
        let observed = match key.0 {
            Kind::Role => self
                .iam
                .observe_role(&key.1)
                .await
                .map(|r| r.map(|r| (r.arn, r.tags))),
            Kind::Policy => {
                let arn = lock(&self.keys).get(key).and_then(|r| r.prune_arn.clone());
                let Some(arn) = arn else {
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
            Ok(None) => {
                self.pruned(key);
                return;
            }
            Err(e) => {
                warn!(resource = %resource, error = %e, "cannot check a resource to prune");
                self.error_policy(key, true);
                return;
            }
        };
        if tags.get(OWNER_TAG) != Some(&self.config.owner) {
            self.pruned(key);
            return;
        }
        let change = match key.0 {
            Kind::Role => Change::DeleteRole,
            Kind::Policy => Change::DeletePolicy,
        };
        let plan = ResourcePlan {
            kind: key.0,
            name: key.1.clone(),
            arn: Some(arn),
            changes: vec![change],
            findings: Vec::new(),
        };
        warn!(resource = %resource, "pruning: no manifest declares it any more");
        let executor = Executor {
            iam: &self.iam,
            owner: &self.config.owner,
            retry: self.in_place_retry(),
        };
        let started = Instant::now();
        match executor.apply(&plan).await {
            Ok(_) => {
                self.metrics
                    .reconciled(key.0, "pruned", started.elapsed().as_secs_f64());
                self.error_policy(key, false);
                self.pruned(key);
            }
            Err(e) => {
                warn!(resource = %resource, error = %e, "prune failed");
                self.metrics
                    .reconciled(key.0, "error", started.elapsed().as_secs_f64());
                self.error_policy(key, true);
            }
        }
    }

    /// Nothing more to prune for `key`: its record goes (unless it is declared again).
    fn pruned(&self, key: &Key) {
        let mut keys = lock(&self.keys);
        if keys.get(key).is_some() {
            keys.entry(key).prune_arn = None;
        }
    }
}
