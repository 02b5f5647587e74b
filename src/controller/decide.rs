//! What one reconcile does with its plan, decided purely: report a conflict, settle in sync,
//! only report (observe mode), correct out-of-band drift, or apply a manifest edit. The
//! controller gathers the facts (what blocks the resource, whether its spec changed since it
//! last converged) and carries the choice out; the contest may still hold a correction back.

use crate::plan::PolicyVerdict;
use crate::reconcile::ResourcePlan;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Something stops every change (a finding, or a policy the role needs in conflict):
    /// reported, and left until an edit or a resync.
    Conflict(String),
    /// A policy the role needs failed: not attempted, and retried with its own backoff (by
    /// then the policy may be there).
    Waits(String),
    /// Nothing differs.
    InSync,
    /// Observe mode: what differs is reported, never written (but for its `prune: never`
    /// record). `drift`: IAM moved away from a converged spec, rather than a pending edit.
    Observe { drift: bool },
    /// IAM moved away from the spec it last converged to: correct it (unless contested).
    CorrectDrift,
    /// The manifest changed (or the resource is new): apply it.
    ApplyEdit,
}

/// What the resource last converged to, since the daemon started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Converged {
    /// Nothing yet: what differs is either out-of-band drift or a resource still to create.
    Never,
    /// This very spec: whatever differs now (even a resource gone) was done out of band.
    ThisSpec,
    /// Another spec: the manifest was edited since.
    OtherSpec,
}

/// The choice for `plan`. `blocked`: why the resource must wait (a policy it needs failed or
/// is in conflict); `converged`: what it last converged to; `observe`: `--observe-only` or
/// `iam-warden/mode: observe`.
pub fn decide(
    plan: &ResourcePlan,
    blocked: Option<(PolicyVerdict, String)>,
    converged: Converged,
    observe: bool,
) -> Choice {
    match blocked {
        Some((PolicyVerdict::Failed, why)) => {
            return Choice::Waits(format!("not attempted: {why}"));
        }
        Some((PolicyVerdict::Conflict, why)) => {
            return Choice::Conflict(format!("not attempted: {why}"));
        }
        None => {}
    }
    if !plan.findings.is_empty() {
        let why: Vec<String> = plan.findings.iter().map(ToString::to_string).collect();
        return Choice::Conflict(why.join("; "));
    }
    if plan.changes.is_empty() {
        return Choice::InSync;
    }
    // A resource to create is drift only once it had converged: someone deleted it.
    let drift = match converged {
        Converged::OtherSpec => false,
        Converged::ThisSpec => true,
        Converged::Never => !plan.changes.iter().any(|c| c.is_create()),
    };
    match (observe, drift) {
        (true, drift) => Choice::Observe { drift },
        (false, true) => Choice::CorrectDrift,
        (false, false) => Choice::ApplyEdit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Kind;
    use crate::reconcile::{Change, Finding};

    fn plan(changes: Vec<Change>, findings: Vec<Finding>) -> ResourcePlan {
        ResourcePlan {
            changes,
            findings,
            ..ResourcePlan::new(Kind::Role, "r", None)
        }
    }

    #[test]
    fn each_plan_gets_one_choice() {
        let tag = || Change::RemoveTags {
            keys: [("x".to_string(), "y".to_string())].into(),
        };
        let create = || Change::CreatePolicy {
            path: "/".into(),
            description: String::new(),
            document: crate::policy::PolicyDocument::from_value(
                serde_json::json!({"Version": "2012-10-17", "Statement": []}),
            )
            .unwrap(),
            tags: Default::default(),
        };
        let not_owned = || Finding::NotOwned { owner: None };
        let blocked = || {
            Some((
                PolicyVerdict::Failed,
                "it needs Policy `p`, which failed".to_string(),
            ))
        };
        let held = || {
            Some((
                PolicyVerdict::Conflict,
                "it needs Policy `p`, which is in conflict".to_string(),
            ))
        };
        use Choice::*;
        for (why, p, blocking, edited, observe, expected) in [
            (
                "a policy it needs failed",
                plan(vec![tag()], vec![]),
                blocked(),
                false,
                false,
                Waits("not attempted: it needs Policy `p`, which failed".into()),
            ),
            (
                "a policy it needs is in conflict",
                plan(vec![tag()], vec![]),
                held(),
                false,
                false,
                Conflict("not attempted: it needs Policy `p`, which is in conflict".into()),
            ),
            (
                "a finding",
                plan(vec![], vec![not_owned()]),
                None,
                false,
                false,
                Conflict(not_owned().to_string()),
            ),
            (
                "a finding, even observed",
                plan(vec![], vec![not_owned()]),
                None,
                false,
                true,
                Conflict(not_owned().to_string()),
            ),
            (
                "nothing differs",
                plan(vec![], vec![]),
                None,
                false,
                false,
                InSync,
            ),
            (
                "nothing differs, edited",
                plan(vec![], vec![]),
                None,
                true,
                false,
                InSync,
            ),
            (
                "IAM moved away",
                plan(vec![tag()], vec![]),
                None,
                false,
                false,
                CorrectDrift,
            ),
            (
                "the manifest changed",
                plan(vec![tag()], vec![]),
                None,
                true,
                false,
                ApplyEdit,
            ),
            (
                "new",
                plan(vec![create()], vec![]),
                None,
                false,
                false,
                ApplyEdit,
            ),
            (
                "observed drift",
                plan(vec![tag()], vec![]),
                None,
                false,
                true,
                Observe { drift: true },
            ),
            (
                "observed edit",
                plan(vec![tag()], vec![]),
                None,
                true,
                true,
                Observe { drift: false },
            ),
            (
                "observed, missing",
                plan(vec![create()], vec![]),
                None,
                false,
                true,
                Observe { drift: false },
            ),
        ] {
            let converged = if edited {
                Converged::OtherSpec
            } else {
                Converged::Never
            };
            assert_eq!(decide(&p, blocking, converged, observe), expected, "{why}");
        }
    }

    #[test]
    fn a_resource_gone_after_it_converged_was_deleted_out_of_band() {
        let create = || Change::CreateInstanceProfile {
            path: "/".into(),
            tags: Default::default(),
        };
        let gone = plan(vec![create()], vec![]);
        assert_eq!(
            decide(&gone, None, Converged::ThisSpec, false),
            Choice::CorrectDrift
        );
        assert_eq!(
            decide(&gone, None, Converged::ThisSpec, true),
            Choice::Observe { drift: true }
        );
        assert_eq!(
            decide(&gone, None, Converged::OtherSpec, false),
            Choice::ApplyEdit,
            "an edit that renames makes a new one"
        );
        assert_eq!(
            decide(&gone, None, Converged::Never, false),
            Choice::ApplyEdit
        );
    }
}
