//! One reconcile of one key: observe it, plan it, and act on the plan (correct drift, apply
//! an edit, hold back a contested correction, or only report in observe mode).

use std::time::Instant;

use tracing::{debug, info, warn};

use super::decide::{Choice, Converged, decide};
use super::desired::{self, Key};
use super::keys::Outcome;
use super::metrics::ReconcileResult;
use super::{Controller, lock};
use crate::manifest::{Kind, Resource};
use crate::plan::PolicyVerdict;
use crate::reconcile::{self, Executor, ResourcePlan, ResourceState};

impl Controller {
    /// One reconcile of one key: observe, plan, and (unless observe-only) apply.
    pub async fn reconcile(&self, key: &Key) {
        if self.faults.fires(&format!("panic:reconcile:{key}")) {
            panic!("test fault: the reconcile of {key} panics");
        }
        let started = Instant::now();
        let _forget = ForgetPolicyTags(self, key);
        let generation = self.generation();
        let Some(resource) = generation.get(key) else {
            if self.may_prune() {
                self.prune(key).await;
            }
            lock(&self.acct.keys).forget_if_done(key);
            self.first_pass_done(key);
            return;
        };
        // Refs resolve to where IAM has the policies (a moved or case-renamed policy), and a
        // role to the name IAM has for it.
        let role = (key.kind == Kind::Role).then_some(key.name.as_str());
        let ctx = self.acct.known.context(generation.ctx.clone(), role);
        let outcome =
            match reconcile::observe_one(&self.acct.iam, &ctx, &resource, &self.in_place_retry())
                .await
            {
                Ok(plan) => self.act(key, &resource, plan).await,
                Err(f) => Outcome::new(ResourceState::Error).with_error(f.error),
            };
        // A role just created or found: a later rename only in case finds it before the
        // next bulk read.
        if let (Kind::Role, Some((name, _))) = (
            key.kind,
            outcome.arn.as_deref().and_then(crate::arn::name_and_path),
        ) {
            self.acct.known.role_found(name);
        }
        let result = match outcome.state {
            ResourceState::Error => ReconcileResult::Error,
            ResourceState::Conflict => ReconcileResult::Conflict,
            _ => ReconcileResult::Success,
        };
        self.metrics
            .reconciled(key.kind, result, started.elapsed().as_secs_f64());
        // A final error waits for the next resync or edit, not for a fast backoff.
        let failed = outcome.state == ResourceState::Error && !outcome.final_error;
        let mut keys = lock(&self.acct.keys);
        let resource = key.to_string();
        match (&outcome.error, outcome.state) {
            // While AWS is unreachable, or when it is the error it failed with last time (one
            // retrying cannot fix comes back at every resync): not said again.
            (Some(e), ResourceState::Error)
                if self.aws.is_unreachable() || keys.last_error(key) == Some(e.as_str()) =>
            {
                debug!(resource = %resource, error = %e, "reconcile failed")
            }
            (Some(e), ResourceState::Error) => {
                warn!(resource = %resource, error = %e, "reconcile failed")
            }
            // A conflict repeats at every resync: say it when it starts, not every time.
            (Some(e), ResourceState::Conflict)
                if keys.state_of(key) != Some(ResourceState::Conflict) =>
            {
                warn!(resource = %resource, "left alone: {e}")
            }
            _ => {}
        }
        keys.record(key, outcome);
        drop(keys);
        self.update_resource_gauge();
        self.error_policy(key, failed);
        self.first_pass_done(key);
    }

    /// Runs `f` on the record of `key` (created if missing).
    pub(super) fn with_record<T>(
        &self,
        key: &Key,
        f: impl FnOnce(&mut super::keys::KeyRecord) -> T,
    ) -> T {
        f(lock(&self.acct.keys).entry(key))
    }

    /// Why a resource must wait (see `plan::blocked_by`), from the states of what it needs.
    pub(super) fn blocking_policy(&self, spec: &Resource) -> Option<(PolicyVerdict, String)> {
        let generation = self.generation();
        let keys = lock(&self.acct.keys);
        crate::plan::blocked_by(spec, |kind, n| {
            let key = generation.declared_key(kind, n)?;
            match keys.state_of(&key)? {
                ResourceState::Conflict => Some(PolicyVerdict::Conflict),
                ResourceState::Error => Some(PolicyVerdict::Failed),
                _ => None,
            }
        })
    }

    pub(super) async fn act(&self, key: &Key, spec: &Resource, plan: ResourcePlan) -> Outcome {
        let arn = plan.arn.clone();
        if let (Kind::Policy, Some(found)) = (key.kind, &arn) {
            self.acct.known.policy_found(&key.name, found);
        }
        let resource = key.to_string();
        let outcome = |state, error: Option<String>, corrections| Outcome {
            error,
            ..Outcome::new(state)
                .with_arn(arn.clone())
                .with_corrections(corrections)
        };
        let observe = self.config.observe_only || plan.observe_only;
        let converged = {
            let now = desired::fingerprint(spec);
            self.with_record(key, |r| match r.converged {
                None => Converged::Never,
                Some(last) if last == now => Converged::ThisSpec,
                Some(_) => Converged::OtherSpec,
            })
        };
        let policy = self.contest;
        let is_drift = match decide(&plan, self.blocking_policy(spec), converged, observe) {
            Choice::Conflict(why) => return outcome(ResourceState::Conflict, Some(why), 0),
            Choice::Waits(why) => return outcome(ResourceState::Error, Some(why), 0),
            Choice::InSync => {
                let (ended, contested) = self.with_record(key, |r| {
                    r.converged = Some(desired::fingerprint(spec));
                    r.observed = None;
                    let ended = r.contest.quiet(Instant::now(), &policy);
                    (ended, r.contest.is_contested())
                });
                if ended {
                    info!(resource = %resource, "no longer contested: no drift for {}", humantime::format_duration(policy.window));
                }
                let state = if contested {
                    ResourceState::Contested
                } else {
                    ResourceState::InSync
                };
                return outcome(state, None, 0);
            }
            Choice::Observe { drift } => return self.observe(key, &plan, drift, outcome).await,
            Choice::CorrectDrift => {
                let fields = plan
                    .changes
                    .iter()
                    .map(|c| (c.field(), reconcile::render::summary(c)));
                let now = self.with_record(key, |r| {
                    r.contest.drift_seen(Instant::now(), fields, &policy)
                });
                if !now {
                    debug!(resource = %resource, "contested: correction held back");
                    return outcome(ResourceState::Contested, None, 0);
                }
                // Each write is logged by the executor as it happens; here only why.
                warn!(resource = %resource, fields = ?changed_fields(&plan), "drift found: {}", summary(&plan));
                true
            }
            Choice::ApplyEdit => {
                info!(resource = %resource, changes = plan.changes.len(), "applying the manifest");
                false
            }
        };
        // Shown while the correction is in flight, not only once it is done; a key retrying
        // after a failure keeps showing that failure until it succeeds.
        let in_flight = if is_drift {
            ResourceState::Drifted
        } else {
            ResourceState::Pending
        };
        {
            let mut keys = lock(&self.acct.keys);
            if keys.state_of(key) != Some(ResourceState::Error) {
                keys.record(key, Outcome::new(in_flight).with_arn(arn.clone()));
            }
        }
        let executor = Executor {
            iam: &self.acct.iam,
            owner: &self.config.owner,
            retry: self.in_place_retry(),
        };
        match executor.apply(&plan).await {
            Ok(n) => {
                let (became, contested) = self.with_record(key, |r| {
                    r.converged = Some(desired::fingerprint(spec));
                    let became = is_drift && r.contest.corrected(Instant::now(), &policy);
                    (
                        became.then(|| r.contest.report(Instant::now())),
                        r.contest.is_contested(),
                    )
                });
                if is_drift {
                    for change in &plan.changes {
                        self.metrics.drift_corrected(key.kind, change.field());
                    }
                }
                if let Some(report) = became {
                    let fields: Vec<String> = report
                        .fields
                        .iter()
                        .map(|(f, last)| format!("{f} ({last})"))
                        .collect();
                    warn!(
                        resource = %resource,
                        fields = %fields.join("; "),
                        "contested: something keeps changing it back (more than {} corrections within {}); corrections now back off up to 16 resync intervals",
                        policy.threshold,
                        humantime::format_duration(policy.window)
                    );
                }
                let state = if contested {
                    ResourceState::Contested
                } else {
                    ResourceState::InSync
                };
                let mut done = outcome(state, None, if is_drift { n as u64 } else { 0 });
                if is_drift {
                    done.corrected = plan
                        .changes
                        .iter()
                        .map(reconcile::render::summary)
                        .collect();
                    done.corrected_diff = reconcile::render::body(&plan)
                        .lines()
                        .map(str::to_string)
                        .collect();
                }
                done
            }
            Err(e) => Outcome {
                final_error: e.is_final(),
                ..outcome(ResourceState::Error, Some(e.to_string()), 0)
            },
        }
    }
}

impl Controller {
    /// Observe mode: reports what differs, said once while it stays the same (not at every
    /// resync), and writes only the `prune: never` record (not under `--observe-only`).
    async fn observe(
        &self,
        key: &Key,
        plan: &ResourcePlan,
        drift: bool,
        outcome: impl Fn(ResourceState, Option<String>, u64) -> Outcome,
    ) -> Outcome {
        let state = if drift {
            ResourceState::Drifted
        } else {
            ResourceState::Pending
        };
        let said = summary(plan);
        let new = self.with_record(key, |r| {
            let new = r.observed.as_deref() != Some(said.as_str());
            r.observed = Some(said.clone());
            new
        });
        if new {
            let what = if drift {
                "drift found"
            } else {
                "would apply the manifest"
            };
            warn!(resource = %key, fields = ?changed_fields(plan), "observe-only, {what}: {said}");
        }
        if let Some(record) = plan
            .observe_mode_record()
            .filter(|_| !self.config.observe_only)
        {
            let executor = Executor {
                iam: &self.acct.iam,
                owner: &self.config.owner,
                retry: self.in_place_retry(),
            };
            if let Err(e) = executor.apply(&record).await {
                return outcome(ResourceState::Error, Some(e.to_string()), 0);
            }
        }
        outcome(state, None, 0)
    }
}

/// The fields a plan changes, for logs.
fn changed_fields(plan: &ResourcePlan) -> Vec<&'static str> {
    plan.changes.iter().map(|c| c.field()).collect()
}

/// Every change of a plan in one line, for logs.
fn summary(plan: &ResourcePlan) -> String {
    let parts: Vec<String> = plan
        .changes
        .iter()
        .map(reconcile::render::summary)
        .collect();
    parts.join("; ")
}

/// After a reconcile of a policy, however it ended: the resync reads its tags again, which the
/// reconcile may have written.
struct ForgetPolicyTags<'a>(&'a Controller, &'a Key);

impl Drop for ForgetPolicyTags<'_> {
    fn drop(&mut self) {
        if self.1.kind == Kind::Policy {
            self.0.acct.policy_tags.forget(&self.1.name);
        }
    }
}
