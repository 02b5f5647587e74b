//! Pruning in the daemon: owned resources that no manifest declares, decided by
//! `reconcile::prune` as the CLI decides them (a grace period recorded on the resource,
//! `prune: never`, policies still used elsewhere, the path guardrail, `--max-prune`), checked
//! again with fresh reads just before each write, and never while any manifest is invalid or
//! DIR holds none.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::desired::Key;
use super::metrics::ReconcileResult;
use super::resync::PolicyTags;
use super::{Controller, Generation, lock};
use crate::iam::{IamError, Snapshot};
use crate::manifest::Kind;
use crate::reconcile::prune::{self, Candidate};
use crate::reconcile::{Executor, Finding, ResourcePlan, fill_policy_users};

impl Controller {
    /// Pruning is on, and nothing suggests the manifests are incomplete: no invalid file, and
    /// at least one resource declared, in this account or another (an empty or unmounted DIR,
    /// or one whose files are empty, must never delete everything).
    pub(super) fn may_prune(&self) -> bool {
        if !self.config.prune || self.config.observe_only {
            return false;
        }
        let generation = self.generation();
        let nothing = prune::declares_nothing(
            generation.files,
            !generation.state.is_empty(),
            generation.elsewhere,
        );
        generation.errors.is_empty() && !nothing
    }

    /// Owned resources in the snapshot that no manifest declares (ignoring case), decided by
    /// `prune::decide_all` as the CLI decides them. Only what this decision deletes, within
    /// `--max-prune`, may be deleted before the next resync. Returns the keys with a write to
    /// make now (a grace mark, a let-go, a deletion); one waiting out its grace costs nothing
    /// more until it is due, and one kept is said when the reason starts or changes.
    pub(super) async fn prune_pass(
        &self,
        generation: &Generation,
        snapshot: &Snapshot,
        tags: &PolicyTags,
    ) -> Vec<Key> {
        let mut listed = prune::listed_in(snapshot, &generation.state, tags);
        match crate::reconcile::other_kinds(
            &self.acct.iam,
            &self.in_place_retry(),
            &generation.state,
            true,
        )
        .await
        {
            Ok(more) => listed.extend(more),
            Err(e) => {
                // Nothing is deleted on a listing not read: the next resync tries again.
                warn!(error = %e, "cannot list the instance profiles and OIDC providers to prune");
                lock(&self.acct.keys).set_prune_due(&Default::default());
                return Vec::new();
            }
        }
        let guardrails = &self.config.guardrails;
        let mut owned =
            prune::undeclared_owned(&generation.state, &self.config.owner, listed, |a| {
                guardrails.allows_arn(a)
            });
        prune::fill_provider_users(Some(snapshot), &generation.state, &mut owned);
        let now = SystemTime::now();
        let (owner, settings) = (&self.config.owner, &self.config.prune_settings);
        if let Err(e) = self.facts_of(&mut owned, now).await {
            // Nothing is deleted on facts not read: the next resync tries again.
            warn!(error = %e, "cannot check what uses the policies to prune");
            lock(&self.acct.keys).set_prune_due(&Default::default());
            return Vec::new();
        }
        let decision = prune::decide_all(&owned, owner, now, settings);
        self.set_prune_refused(decision.refused);
        let due: HashSet<Key> = decision
            .deletions()
            .map(|p| Key::new(p.kind, p.name.clone()))
            .collect();
        lock(&self.acct.keys).set_prune_due(&due);
        let mut to_write = Vec::new();
        for (c, plan) in owned.iter().zip(&decision.plans) {
            let key = Key::new(c.kind, c.name.clone());
            if matches!(c.kind, Kind::Policy | Kind::OpenIDConnectProvider) {
                self.with_record(&key, |r| r.prune_arn = Some(c.arn.clone()));
            }
            self.note_kept(&key, plan);
            if !plan.changes.is_empty() {
                to_write.push(key);
            }
        }
        to_write
    }

    /// Says why `plan` keeps its resource (still used, `--max-prune`) when that starts or
    /// changes, not at every resync.
    fn note_kept(&self, key: &Key, plan: &ResourcePlan) {
        let kept: Vec<String> = plan
            .findings
            .iter()
            .filter(|f| !matches!(f, Finding::PruneScheduled { .. }))
            .map(ToString::to_string)
            .collect();
        let kept = (!kept.is_empty()).then(|| kept.join("; "));
        let new = self.with_record(key, |r| {
            let new = kept.is_some() && r.prune_kept != kept;
            r.prune_kept = kept.clone();
            new
        });
        if let (true, Some(why)) = (new, &kept) {
            warn!(resource = %key, "not pruned: {why}");
        }
    }

    /// Why deletions are held back, for /status (`None` while they are not).
    pub(crate) fn prune_refused_reason(&self) -> Option<String> {
        lock(&self.acct.prune_refused).map(|n| {
            format!(
                "{n} resources would be deleted in one pass, more than --max-prune {}: nothing is deleted",
                self.config.prune_settings.max
            )
        })
    }

    /// Says once when `--max-prune` starts and stops holding deletions back.
    pub(super) fn set_prune_refused(&self, refused: Option<usize>) {
        let mut current = lock(&self.acct.prune_refused);
        match (*current, refused) {
            (None, Some(n)) => warn!(
                deletions = n,
                max = self.config.prune_settings.max,
                "--max-prune: {n} resources would be deleted in one pass; nothing is deleted"
            ),
            (Some(_), None) => info!("--max-prune: deletions are within the limit again"),
            _ => {}
        }
        *current = refused;
        self.metrics.prune_refused(refused.unwrap_or(0));
    }

    /// One step of pruning an undeclared resource, after checking, fresh, that it is still
    /// ours and still undeclared: start its grace period, wait, let it go, or delete it.
    pub(super) async fn prune(&self, key: &Key) {
        let resource = key.to_string();
        let generation = self.generation();
        // A manifest renamed only in case still declares it: IAM names ignore case.
        let declared = match key.kind {
            // Pruned providers are keyed by their url (IAM's name for them).
            Kind::OpenIDConnectProvider => generation
                .state
                .oidc_providers
                .values()
                .any(|p| p.host_path() == key.name),
            kind => generation.state.declared_name(kind, &key.name).is_some(),
        };
        if declared {
            self.pruned(key);
            return;
        }
        let retry = self.in_place_retry();
        // Policies and providers are read by the ARN the resync listed them at.
        let listed_arn = lock(&self.acct.keys)
            .get(key)
            .and_then(|r| r.prune_arn.clone());
        let iam = &self.acct.iam;
        let observed = match (key.kind, listed_arn) {
            (Kind::Role, _) => iam
                .observe_role(&key.name)
                .await
                .map(|r| r.map(|r| (r.arn, r.tags))),
            (Kind::InstanceProfile, _) => iam
                .observe_instance_profile(&key.name)
                .await
                .map(|p| p.map(|p| (p.arn, p.tags))),
            (Kind::Policy, Some(arn)) => iam
                .observe_policy(&arn)
                .await
                .map(|p| p.map(|p| (p.arn, p.tags))),
            (Kind::OpenIDConnectProvider, Some(arn)) => iam
                .observe_oidc_provider(&arn)
                .await
                .map(|p| p.map(|p| (p.arn, p.tags))),
            (Kind::Policy | Kind::OpenIDConnectProvider, None) => return,
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
        let guardrails = &self.config.guardrails;
        let mut owned = prune::undeclared_owned(
            &generation.state,
            &self.config.owner,
            [Candidate::listed(key.kind, &key.name, &arn, tags)],
            |a| guardrails.allows_arn(a),
        );
        if owned.is_empty() {
            self.pruned(key);
            return;
        }
        let (owner, settings) = (&self.config.owner, &self.config.prune_settings);
        let now = SystemTime::now();
        if let Err(e) = self.facts_of(&mut owned, now).await {
            warn!(resource = %resource, error = %e, "cannot check what uses a policy to prune");
            self.error_policy(key, true);
            return;
        }
        // No role counts as gone here: one deleted before this check is no longer a user.
        let mut plan = prune::decide(&owned[0], &[], owner, now, settings);
        let deletes = prune::deletes(&plan);
        // Stopping: no deletion starts now (the next process decides again).
        if deletes && self.queue.is_closed() {
            return;
        }
        if deletes && !lock(&self.acct.keys).take_prune_due(key) {
            // Deletions happen only for what a resync counted within --max-prune: many files
            // gone at once are never deleted one reload event at a time. The next resync
            // queues it again if it is still due.
            return;
        }
        for finding in &plan.findings {
            if let Finding::PruneScheduled { remaining_secs, .. } = finding {
                self.queue
                    .add_after(key.clone(), Duration::from_secs(*remaining_secs + 1));
            }
        }
        self.note_kept(key, &plan);
        if plan.changes.is_empty() {
            return;
        }
        if deletes {
            warn!(resource = %resource, "pruning: no manifest declares it any more");
        }
        let executor = Executor {
            iam: &self.acct.iam,
            owner: &self.config.owner,
            retry,
        };
        let started = Instant::now();
        plan.observe_only = false;
        match executor.apply(&plan).await {
            Ok(_) => {
                if deletes {
                    self.metrics.reconciled(
                        key.kind,
                        ReconcileResult::Pruned,
                        started.elapsed().as_secs_f64(),
                    );
                }
                self.error_policy(key, false);
                if deletes || plan.findings.is_empty() {
                    // Deleted, or let go (`prune: never`): nothing more to do.
                    self.pruned(key);
                }
            }
            Err(e) => {
                warn!(resource = %resource, error = %e, "prune failed");
                self.metrics.reconciled(
                    key.kind,
                    ReconcileResult::Error,
                    started.elapsed().as_secs_f64(),
                );
                self.error_policy(key, true);
            }
        }
    }

    /// Nothing more to prune for `key`: its record goes (unless it is declared again).
    fn pruned(&self, key: &Key) {
        let mut keys = lock(&self.acct.keys);
        if keys.get(key).is_some() {
            let r = keys.entry(key);
            r.prune_arn = None;
            r.undeclared_at = None;
        }
    }

    /// The facts a decision needs beyond the listing, for the resync and a key's own check
    /// alike: when this process saw each manifest go, and who uses each policy where that can
    /// change anything (read fresh, with the roles the last snapshot showed using it).
    async fn facts_of(&self, owned: &mut [Candidate], now: SystemTime) -> Result<(), IamError> {
        self.seen_undeclared(owned);
        let (owner, settings) = (&self.config.owner, &self.config.prune_settings);
        fill_policy_users(
            &self.acct.iam,
            &self.in_place_retry(),
            |arn| self.acct.known.role_users_of(arn),
            owned,
            |c| prune::users_matter(c, owner, now, settings),
        )
        .await
    }

    /// What this process saw of each candidate: when its manifest went.
    fn seen_undeclared(&self, candidates: &mut [Candidate]) {
        let keys = lock(&self.acct.keys);
        for c in candidates {
            c.undeclared_at = keys
                .get(&Key::new(c.kind, c.name.clone()))
                .and_then(|r| r.undeclared_at);
        }
    }
}
