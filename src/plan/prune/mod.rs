//! Pruning, decided in one place: what happens to each owned resource that no manifest
//! declares. Pure, so every rule is a row in a table; the CLI (`observe_prune`) and the
//! daemon gather the facts (a snapshot, tags, who uses each policy) and only carry out what
//! [`decide_all`] returns.
//!
//! - Outside the allowed paths (guardrails): not a candidate at all, before anything counts.
//! - `iam-warden/prune: never` recorded on it (also recorded for `mode: observe`): it is let
//!   go (iam-warden's tags removed), never deleted.
//! - Still used by an identity that deleting it would break (a policy attached to, or the
//!   permissions boundary of, a role, user or group that this pass does not delete now):
//!   reported, kept. Identities are compared exactly (kind and name, ignoring case as IAM
//!   does), never by prefix.
//! - Otherwise a grace period runs (`--prune-after`), recorded on the resource itself by the
//!   first pass that finds it undeclared (`mark`), so every pass and every process agrees on
//!   it; a mark iam-warden did not write starts it again, it never shortens it.
//! - More deletions in one pass than `--max-prune`: none of them is made.
//!
//! Roles come before policies in the result: deleting a role detaches what it uses.

mod mark;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::change::{Change, Finding, ResourcePlan};
use super::resource::tag_value;
use crate::iam::{EntityKind, PolicyUser, Snapshot};
use crate::manifest::{
    DesiredState, Kind, OWNER_TAG, PRUNE_ANNOTATION, RESERVED_TAGS, UNDECLARED_SINCE_TAG,
};

pub use mark::{read as read_mark, write as write_mark};

/// `--prune-after`, `--max-prune` and `--prune-mark-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneSettings {
    pub grace: Duration,
    pub max: usize,
    pub mark_key: Option<String>,
}

impl Default for PruneSettings {
    fn default() -> Self {
        PruneSettings {
            grace: Duration::from_secs(600),
            max: 10,
            mark_key: None,
        }
    }
}

/// An owned resource no manifest declares, as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub kind: Kind,
    pub name: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    /// Identities using it (policies only), as observed; those this pass deletes are set
    /// aside by [`decide_all`].
    pub used_by: Vec<PolicyUser>,
    /// When this process saw its manifest go, having seen it declared: its grace cannot have
    /// started earlier, whatever mark it carries (a genuine mark of an earlier episode,
    /// replayed, would otherwise shorten it). `None`: not known here.
    pub undeclared_at: Option<SystemTime>,
}

impl Candidate {
    /// A listed resource; what uses it is looked up later, for the undeclared owned ones only.
    pub fn listed(kind: Kind, name: &str, arn: &str, tags: BTreeMap<String, String>) -> Candidate {
        Candidate {
            kind,
            name: name.to_string(),
            arn: arn.to_string(),
            tags,
            used_by: Vec::new(),
            undeclared_at: None,
        }
    }
}

/// What [`decide_all`] decided: a plan per candidate, roles first, and how many deletions
/// `--max-prune` refused (`None` when it did not).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneDecision {
    pub plans: Vec<ResourcePlan>,
    pub refused: Option<usize>,
}

impl PruneDecision {
    /// The resources it deletes now.
    pub fn deletions(&self) -> impl Iterator<Item = &ResourcePlan> {
        self.plans.iter().filter(|p| deletes(p))
    }
}

/// Whether DIR, as loaded, declares nothing at all: no manifest file, or nothing declared
/// in this account nor left by a selector for another. An empty or unmounted DIR must never
/// prune everything; an account that no manifest selects may be pruned.
pub fn declares_nothing(files: usize, declares_here: bool, for_other_accounts: usize) -> bool {
    files == 0 || (!declares_here && for_other_accounts == 0)
}

/// Every role of `snapshot`, and every customer-managed policy no manifest declares whose tags
/// `policy_tags` holds (the snapshot lacks policy tags; one without is not a candidate this
/// pass): what may be an undeclared owned resource, for [`undeclared_owned`].
pub fn listed_in(
    snapshot: &Snapshot,
    desired: &DesiredState,
    policy_tags: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Candidate> {
    let roles = snapshot
        .roles()
        .map(|r| Candidate::listed(Kind::Role, &r.name, &r.arn, r.tags.clone()));
    let policies = snapshot
        .policies()
        .filter(|p| desired.policy(&p.name).is_none())
        .filter_map(|p| {
            let tags = policy_tags.get(&p.arn)?;
            Some(Candidate::listed(
                Kind::Policy,
                &p.name,
                &p.arn,
                tags.clone(),
            ))
        });
    roles.chain(policies).collect()
}

/// Each OIDC provider candidate's users: the roles in `snapshot` whose trust policy names it
/// as `Federated` (a role trusting a deleted provider could no longer be assumed), and the
/// declared roles whose trust will name it once applied. Without a snapshot nobody's trust is
/// known, so providers are left out of `candidates` altogether.
pub fn fill_provider_users(
    snapshot: Option<&Snapshot>,
    desired: &DesiredState,
    candidates: &mut Vec<Candidate>,
) {
    let Some(snapshot) = snapshot else {
        candidates.retain(|c| c.kind != Kind::OpenIDConnectProvider);
        return;
    };
    let mut trusted: Vec<(String, String)> = Vec::new();
    let trusts = snapshot
        .roles()
        .map(|r| (&r.name, &r.assume_role_policy))
        .chain(
            desired
                .roles
                .values()
                .map(|r| (&r.name, &r.assume_role_policy)),
        );
    for (name, trust) in trusts {
        let mut doc = trust.value().clone();
        crate::manifest::for_federated(&mut doc, &mut |v| {
            if let Some(arn) = v.as_str() {
                trusted.push((arn.to_string(), name.clone()));
            }
        });
    }
    for c in candidates.iter_mut() {
        if c.kind == Kind::OpenIDConnectProvider {
            for (arn, role) in &trusted {
                if *arn == c.arn {
                    PolicyUser::add_to(
                        &mut c.used_by,
                        PolicyUser::new(EntityKind::Role, role, false),
                    );
                }
            }
        }
    }
}

/// Whether who uses `c` can change what happens to it now: a policy that would be deleted
/// if nothing used it. Only for those are the users read (two requests a policy).
pub fn users_matter(c: &Candidate, owner: &str, now: SystemTime, settings: &PruneSettings) -> bool {
    c.kind == Kind::Policy && deletes(&decide(c, &[], owner, now, settings))
}

/// The resources of `listed` that `owner` owns, that no manifest declares (names compared
/// ignoring case, as IAM does), and that lie where prune may act (`allowed`, the path
/// guardrail: tagging a role elsewhere must not make it deletable). Their `used_by` is still
/// to be filled in.
pub fn undeclared_owned(
    desired: &DesiredState,
    owner: &str,
    listed: impl IntoIterator<Item = Candidate>,
    allowed: impl Fn(&str) -> bool,
) -> Vec<Candidate> {
    listed
        .into_iter()
        .filter(|c| tag_value(&c.tags, OWNER_TAG).is_some_and(|o| o == owner))
        .filter(|c| match c.kind {
            // A role a declared instance profile holds is still wanted, declared or not.
            Kind::Role => {
                desired.role(&c.name).is_none()
                    && !desired.instance_profiles.values().any(|p| {
                        p.role
                            .as_ref()
                            .is_some_and(|r| r.name().eq_ignore_ascii_case(&c.name))
                    })
            }
            // A provider is known by its ARN (its url), not by a manifest's name.
            Kind::OpenIDConnectProvider => desired.oidc_provider_at(&c.arn).is_none(),
            kind => desired.declared_name(kind, &c.name).is_none(),
        })
        .filter(|c| allowed(&c.arn))
        .collect()
}

/// What to do with one candidate at `now`, its users other than the roles in `gone` (which
/// this pass deletes before it).
pub fn decide(
    c: &Candidate,
    gone: &[&str],
    owner: &str,
    now: SystemTime,
    settings: &PruneSettings,
) -> ResourcePlan {
    let mut plan = ResourcePlan::new(c.kind, &c.name, Some(c.arn.clone()));
    if tag_value(&c.tags, PRUNE_ANNOTATION).is_some_and(|v| v == "never") {
        let ours: BTreeMap<String, String> = c
            .tags
            .iter()
            .filter(|(k, _)| RESERVED_TAGS.iter().any(|t| k.eq_ignore_ascii_case(t)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        plan.changes.push(Change::RemoveTags { keys: ours });
        return plan;
    }
    let used_by: Vec<String> = c
        .used_by
        .iter()
        .filter(|u| !gone.iter().any(|g| u.is(EntityKind::Role, g)))
        .map(ToString::to_string)
        .collect();
    if !used_by.is_empty() {
        plan.findings.push(Finding::PruneBlocked { used_by });
        return plan;
    }
    if settings.grace.is_zero() {
        plan.changes.push(delete(c.kind));
        return plan;
    }
    let key = settings.mark_key.as_deref();
    let mark = tag_value(&c.tags, UNDECLARED_SINCE_TAG);
    let since = mark
        .and_then(|v| mark::read(key, owner, &c.arn, v))
        .filter(|since| *since <= now)
        .map(|since| c.undeclared_at.map_or(since, |seen| since.max(seen)));
    match since {
        Some(since) => {
            let elapsed = now.duration_since(since).unwrap_or_default();
            if elapsed >= settings.grace {
                plan.changes.push(delete(c.kind));
            } else {
                plan.findings.push(Finding::PruneScheduled {
                    since: humantime::format_rfc3339_seconds(since).to_string(),
                    remaining_secs: (settings.grace - elapsed).as_secs().max(1),
                });
            }
        }
        // No mark, or one iam-warden did not write for this resource: the grace starts now.
        None => {
            let (spelled, before) = match c
                .tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(UNDECLARED_SINCE_TAG))
            {
                Some((k, old)) => (k.clone(), BTreeMap::from([(k.clone(), old.clone())])),
                None => (UNDECLARED_SINCE_TAG.to_string(), BTreeMap::new()),
            };
            plan.changes.push(Change::SetTags {
                tags: BTreeMap::from([(spelled, mark::write(key, owner, &c.arn, now))]),
                before,
            });
            plan.findings.push(Finding::PruneScheduled {
                since: humantime::format_rfc3339_seconds(now).to_string(),
                remaining_secs: settings.grace.as_secs(),
            });
        }
    }
    plan
}

fn delete(kind: Kind) -> Change {
    match kind {
        Kind::Role => Change::DeleteRole,
        Kind::Policy => Change::DeletePolicy,
        Kind::InstanceProfile => Change::DeleteInstanceProfile,
        Kind::OpenIDConnectProvider => Change::DeleteOpenIDConnectProvider,
    }
}

/// Whether `plan` deletes its resource.
pub fn deletes(plan: &ResourcePlan) -> bool {
    plan.changes.iter().any(Change::is_delete)
}

/// Every candidate decided, roles first. A role counts as gone for a policy's users only if
/// its own plan deletes it now (not one in its grace period, nor one let go). Above
/// `settings.max` deletions, none is made and each says why.
pub fn decide_all(
    candidates: &[Candidate],
    owner: &str,
    now: SystemTime,
    settings: &PruneSettings,
) -> PruneDecision {
    let (roles, policies): (Vec<&Candidate>, Vec<&Candidate>) =
        candidates.iter().partition(|c| c.kind == Kind::Role);
    let mut plans: Vec<ResourcePlan> = roles
        .iter()
        .map(|c| decide(c, &[], owner, now, settings))
        .collect();
    let gone: Vec<String> = plans
        .iter()
        .filter(|p| deletes(p))
        .map(|p| p.name.clone())
        .collect();
    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
    plans.extend(
        policies
            .iter()
            .map(|c| decide(c, &gone, owner, now, settings)),
    );
    let deletions = plans.iter().filter(|p| deletes(p)).count();
    if deletions <= settings.max {
        return PruneDecision {
            plans,
            refused: None,
        };
    }
    for plan in plans.iter_mut().filter(|p| deletes(p)) {
        plan.changes.clear();
        plan.findings.push(Finding::PruneRefused {
            deletions,
            max: settings.max,
        });
    }
    PruneDecision {
        plans,
        refused: Some(deletions),
    }
}

#[cfg(test)]
mod tests;
