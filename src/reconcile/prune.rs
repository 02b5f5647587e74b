//! Pruning, decided: what happens to an owned resource that no manifest declares. Pure, so
//! every rule is a row in a table; `observe_prune` (commands) and the daemon gather the facts.
//!
//! - `iam-warden/prune: never` recorded on it: it is let go (owner tag removed), never deleted.
//! - Still used by something deleting it would break (a policy attached to a role, user or
//!   group outside this pass, or used as a permissions boundary): reported, kept.
//! - Otherwise a grace period runs (`--prune-after`), recorded on the resource itself as
//!   `iam-warden/undeclared-since`, so every pass and every process agrees on it, and a
//!   manifest that comes back in time removes the mark instead of recreating anything.
//! - More deletions in one pass than `--max-prune`: none of them is made.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::change::{Change, Finding, ResourcePlan};
use super::plan::tag_value;
use crate::manifest::{DesiredState, Kind, OWNER_TAG, PRUNE_ANNOTATION, UNDECLARED_SINCE_TAG};

/// `--prune-after` and `--max-prune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneSettings {
    pub grace: Duration,
    pub max: usize,
}

impl Default for PruneSettings {
    fn default() -> Self {
        PruneSettings {
            grace: Duration::from_secs(600),
            max: 10,
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
    /// Entities that still use it (policies only), other than what this pass deletes.
    pub used_by: Vec<String>,
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
        }
    }
}

/// The resources of `listed` that `owner` owns and no manifest declares (names compared
/// ignoring case, as IAM does). Their `used_by` is still to be filled in.
pub fn undeclared_owned(
    desired: &DesiredState,
    owner: &str,
    listed: impl IntoIterator<Item = Candidate>,
) -> Vec<Candidate> {
    listed
        .into_iter()
        .filter(|c| tag_value(&c.tags, OWNER_TAG).is_some_and(|o| o == owner))
        .filter(|c| match c.kind {
            Kind::Role => desired.role(&c.name).is_none(),
            Kind::Policy => desired.policy(&c.name).is_none(),
        })
        .collect()
}

/// What to do with one candidate at `now`.
pub fn decide(c: &Candidate, now: SystemTime, settings: &PruneSettings) -> ResourcePlan {
    let mut plan = ResourcePlan::new(c.kind, &c.name, Some(c.arn.clone()));
    if tag_value(&c.tags, PRUNE_ANNOTATION).is_some_and(|v| v == "never") {
        let ours: BTreeMap<String, String> = c
            .tags
            .iter()
            .filter(|(k, _)| {
                [OWNER_TAG, PRUNE_ANNOTATION, UNDECLARED_SINCE_TAG]
                    .iter()
                    .any(|t| k.eq_ignore_ascii_case(t))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        plan.changes.push(Change::RemoveTags { keys: ours });
        return plan;
    }
    if !c.used_by.is_empty() {
        plan.findings.push(Finding::PruneBlocked {
            used_by: c.used_by.clone(),
        });
        return plan;
    }
    if settings.grace.is_zero() {
        plan.changes.push(delete(c.kind));
        return plan;
    }
    let since = tag_value(&c.tags, UNDECLARED_SINCE_TAG)
        .and_then(|v| humantime::parse_rfc3339(v).ok())
        .filter(|since| *since <= now);
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
        None => {
            let stamp = humantime::format_rfc3339_seconds(now).to_string();
            let before = tag_value(&c.tags, UNDECLARED_SINCE_TAG)
                .map(|old| BTreeMap::from([(UNDECLARED_SINCE_TAG.to_string(), old.clone())]))
                .unwrap_or_default();
            plan.changes.push(Change::SetTags {
                tags: BTreeMap::from([(UNDECLARED_SINCE_TAG.to_string(), stamp.clone())]),
                before,
            });
            plan.findings.push(Finding::PruneScheduled {
                since: stamp,
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
    }
}

/// Whether `plan` deletes its resource.
pub fn deletes(plan: &ResourcePlan) -> bool {
    plan.changes
        .iter()
        .any(|c| matches!(c, Change::DeleteRole | Change::DeletePolicy))
}

/// Every candidate decided, roles first (deleting a role detaches what it uses); above
/// `settings.max` deletions, none is made and each says why. Returns the plans and, when
/// deletions were refused, how many.
pub fn decide_all(
    candidates: &[Candidate],
    now: SystemTime,
    settings: &PruneSettings,
) -> (Vec<ResourcePlan>, Option<usize>) {
    let mut plans: Vec<ResourcePlan> = candidates
        .iter()
        .map(|c| decide(c, now, settings))
        .collect();
    plans.sort_by_key(|p| p.kind != Kind::Role);
    let deletions = plans.iter().filter(|p| deletes(p)).count();
    if deletions <= settings.max {
        return (plans, None);
    }
    for plan in plans.iter_mut().filter(|p| deletes(p)) {
        plan.changes.clear();
        plan.findings.push(Finding::PruneRefused {
            deletions,
            max: settings.max,
        });
    }
    (plans, Some(deletions))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn stamp(secs: u64) -> String {
        humantime::format_rfc3339_seconds(at(secs)).to_string()
    }

    fn candidate(tags: &[(&str, &str)], used_by: &[&str]) -> Candidate {
        Candidate {
            kind: Kind::Role,
            name: "old".into(),
            arn: "arn:aws:iam::123456789012:role/old".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            used_by: used_by.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn summary(plan: &ResourcePlan) -> (Vec<String>, Vec<String>) {
        (
            plan.changes
                .iter()
                .map(super::super::render::summary)
                .collect(),
            plan.findings.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn what_happens_to_an_undeclared_owned_resource() {
        let settings = PruneSettings::default();
        let owner = (OWNER_TAG, "me");
        let recent = stamp(NOW - 60);
        let old = stamp(NOW - 601);
        for (tags, used_by, changes, finding) in [
            // First seen: the grace period starts, recorded on the resource.
            (
                vec![owner],
                vec![],
                vec![format!("set tags {UNDECLARED_SINCE_TAG}={}", stamp(NOW))],
                Some("deleted in 10m"),
            ),
            // Within the grace period: nothing, the time left is said.
            (
                vec![owner, (UNDECLARED_SINCE_TAG, recent.as_str())],
                vec![],
                vec![],
                Some("deleted in 9m"),
            ),
            // After it: deleted.
            (
                vec![owner, (UNDECLARED_SINCE_TAG, old.as_str())],
                vec![],
                vec!["delete role (no manifest declares it; --prune)".to_string()],
                None,
            ),
            // A mark that cannot be read, or from the future, starts again.
            (
                vec![owner, (UNDECLARED_SINCE_TAG, "garbage")],
                vec![],
                vec![format!(
                    "set tags {UNDECLARED_SINCE_TAG}={} (was garbage)",
                    stamp(NOW)
                )],
                Some("deleted in 10m"),
            ),
            // prune: never lets it go instead.
            (
                vec![owner, (PRUNE_ANNOTATION, "never")],
                vec![],
                vec![format!("remove tags {OWNER_TAG}, {PRUNE_ANNOTATION}")],
                None,
            ),
            // Still in use: kept, and who uses it is said.
            (
                vec![owner],
                vec!["user/alice"],
                vec![],
                Some("still used by user/alice"),
            ),
        ] {
            let c = candidate(&tags, &used_by);
            let plan = decide(&c, at(NOW), &settings);
            let (got_changes, got_findings) = summary(&plan);
            assert_eq!(got_changes, changes, "{tags:?}");
            match finding {
                Some(f) => assert!(
                    got_findings.iter().any(|g| g.contains(f)),
                    "{tags:?}: {got_findings:?}"
                ),
                None => assert!(got_findings.is_empty(), "{tags:?}: {got_findings:?}"),
            }
        }
        let immediate = PruneSettings {
            grace: Duration::ZERO,
            max: 10,
        };
        let plan = decide(&candidate(&[owner], &[]), at(NOW), &immediate);
        assert_eq!(plan.changes, vec![Change::DeleteRole]);
    }

    #[test]
    fn above_max_prune_nothing_is_deleted() {
        let old = stamp(NOW - 601);
        let due: Vec<Candidate> = (0..3)
            .map(|i| Candidate {
                name: format!("r{i}"),
                ..candidate(&[(OWNER_TAG, "me"), (UNDECLARED_SINCE_TAG, &old)], &[])
            })
            .collect();
        let settings = PruneSettings {
            grace: Duration::from_secs(600),
            max: 2,
        };
        let (plans, refused) = decide_all(&due, at(NOW), &settings);
        assert_eq!(refused, Some(3));
        assert!(plans.iter().all(|p| p.changes.is_empty()));
        assert!(
            plans
                .iter()
                .all(|p| p.findings[0].to_string().contains("exceed --max-prune 2"))
        );
        let settings = PruneSettings { max: 3, ..settings };
        let (plans, refused) = decide_all(&due, at(NOW), &settings);
        assert_eq!(refused, None);
        assert!(plans.iter().all(|p| p.changes == vec![Change::DeleteRole]));
    }
}
