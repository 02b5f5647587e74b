//! The prune decision as tables: (candidate, users, marks, settings) -> what happens.

use super::*;
use crate::iam::{EntityKind, PolicyUser};

const NOW: u64 = 1_800_000_000;
const OWNER: &str = "me";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn arn(kind: Kind, name: &str) -> String {
    let kind = match kind {
        Kind::Role => "role",
        Kind::Policy => "policy",
        Kind::InstanceProfile => "instance-profile",
        Kind::OpenIDConnectProvider => "oidc-provider",
    };
    format!("arn:aws:iam::123456789012:{kind}/{name}")
}

/// A mark iam-warden wrote for `kind`/`name`, `ago` seconds before NOW.
fn ours(kind: Kind, name: &str, ago: u64) -> String {
    write_mark(None, OWNER, &arn(kind, name), at(NOW - ago))
}

fn candidate(kind: Kind, name: &str, tags: &[(&str, &str)], used_by: &[PolicyUser]) -> Candidate {
    let mut all: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.insert(OWNER_TAG.into(), OWNER.into());
    Candidate {
        kind,
        name: name.into(),
        arn: arn(kind, name),
        tags: all,
        used_by: used_by.to_vec(),
        undeclared_at: None,
    }
}

fn role_user(name: &str) -> PolicyUser {
    PolicyUser::new(EntityKind::Role, name, false)
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

/// What one candidate's plan does, in a word: delete, mark (grace starts now), wait (within
/// its grace), let-go, blocked, nothing.
fn outcome(plan: &ResourcePlan) -> &'static str {
    let (changes, findings) = summary(plan);
    if deletes(plan) {
        "delete"
    } else if changes.iter().any(|c| c.starts_with("set tags")) {
        "mark"
    } else if changes.iter().any(|c| c.starts_with("remove tags")) {
        "let-go"
    } else if findings.iter().any(|f| f.contains("still used by")) {
        "blocked"
    } else if findings.iter().any(|f| f.contains("deleted in")) {
        "wait"
    } else {
        "nothing"
    }
}

#[test]
fn what_happens_to_one_undeclared_owned_resource() {
    let settings = PruneSettings::default();
    let role = Kind::Role;
    let recent = ours(role, "old", 60);
    let old = ours(role, "old", 601);
    let other_resource = ours(role, "old-2", 601);
    let future = ours(role, "old", 0).replace("2027-01-15T08:00:00Z", "2027-01-15T09:00:00Z");
    let in_future = write_mark(None, OWNER, &arn(role, "old"), at(NOW + 3600));
    let other_owner = write_mark(None, "you", &arn(role, "old"), at(NOW - 601));
    let other_key = write_mark(Some("k"), OWNER, &arn(role, "old"), at(NOW - 601));
    let users = [PolicyUser::new(EntityKind::User, "alice", false)];
    for (why, tags, used_by, expected) in [
        ("first seen: the grace starts", vec![], &[][..], "mark"),
        (
            "within its grace",
            vec![(UNDECLARED_SINCE_TAG, recent.as_str())],
            &[],
            "wait",
        ),
        (
            "after its grace",
            vec![(UNDECLARED_SINCE_TAG, old.as_str())],
            &[],
            "delete",
        ),
        (
            "a hand-set mark",
            vec![(UNDECLARED_SINCE_TAG, "2001-01-01T00:00:00Z")],
            &[],
            "mark",
        ),
        (
            "a hand-set mark, another key case",
            vec![("IAM-Warden/Undeclared-Since", "2001-01-01T00:00:00Z")],
            &[],
            "mark",
        ),
        (
            "a mark copied from another resource",
            vec![(UNDECLARED_SINCE_TAG, other_resource.as_str())],
            &[],
            "mark",
        ),
        (
            "a mark with its time edited",
            vec![(UNDECLARED_SINCE_TAG, future.as_str())],
            &[],
            "mark",
        ),
        (
            "a mark from the future",
            vec![(UNDECLARED_SINCE_TAG, in_future.as_str())],
            &[],
            "mark",
        ),
        (
            "a mark of another owner",
            vec![(UNDECLARED_SINCE_TAG, other_owner.as_str())],
            &[],
            "mark",
        ),
        (
            "a mark signed with another key",
            vec![(UNDECLARED_SINCE_TAG, other_key.as_str())],
            &[],
            "mark",
        ),
        (
            "a mark that cannot be read",
            vec![(UNDECLARED_SINCE_TAG, "garbage")],
            &[],
            "mark",
        ),
        (
            "prune: never",
            vec![(PRUNE_ANNOTATION, "never")],
            &[],
            "let-go",
        ),
        (
            "prune: never, even when due",
            vec![
                (PRUNE_ANNOTATION, "never"),
                (UNDECLARED_SINCE_TAG, old.as_str()),
            ],
            &[],
            "let-go",
        ),
        ("still used", vec![], &users[..], "blocked"),
        (
            "still used, even when due",
            vec![(UNDECLARED_SINCE_TAG, old.as_str())],
            &users[..],
            "blocked",
        ),
    ] {
        let c = candidate(role, "old", &tags, used_by);
        let plan = decide(&c, &[], OWNER, at(NOW), &settings);
        assert_eq!(outcome(&plan), expected, "{why}: {:?}", summary(&plan));
    }
}

#[test]
fn a_restarted_grace_is_recorded_as_our_mark_in_the_key_spelling_iam_has() {
    let settings = PruneSettings::default();
    let c = candidate(
        Kind::Role,
        "old",
        &[("IAM-Warden/Undeclared-Since", "2001-01-01T00:00:00Z")],
        &[],
    );
    let plan = decide(&c, &[], OWNER, at(NOW), &settings);
    let Some(Change::SetTags { tags, before }) = plan.changes.first() else {
        panic!("{:?}", plan.changes);
    };
    let value = &tags["IAM-Warden/Undeclared-Since"];
    assert_eq!(read_mark(None, OWNER, &c.arn, value), Some(at(NOW)));
    assert_eq!(
        before["IAM-Warden/Undeclared-Since"],
        "2001-01-01T00:00:00Z"
    );
    let (_, findings) = summary(&plan);
    assert!(findings[0].contains("deleted in 10m"), "{findings:?}");
}

#[test]
fn a_genuine_mark_older_than_what_this_process_saw_cannot_shorten_the_grace() {
    let settings = PruneSettings::default();
    // A genuine mark of an earlier episode, replayed: ten minutes old...
    let replayed = ours(Kind::Role, "old", 601);
    let mut c = candidate(Kind::Role, "old", &[(UNDECLARED_SINCE_TAG, &replayed)], &[]);
    assert_eq!(
        outcome(&decide(&c, &[], OWNER, at(NOW), &settings)),
        "delete"
    );
    // ...but this process saw the manifest go a minute ago: the grace runs from then.
    c.undeclared_at = Some(at(NOW - 60));
    let plan = decide(&c, &[], OWNER, at(NOW), &settings);
    assert_eq!(outcome(&plan), "wait", "{:?}", summary(&plan));
    assert!(
        summary(&plan).1[0].contains("deleted in 9m"),
        "{:?}",
        summary(&plan)
    );
    // What it saw earlier than the mark changes nothing.
    c.undeclared_at = Some(at(NOW - 700));
    assert_eq!(
        outcome(&decide(&c, &[], OWNER, at(NOW), &settings)),
        "delete"
    );
}

#[test]
fn with_a_mark_key_only_marks_signed_with_it_count() {
    let settings = PruneSettings {
        mark_key: Some("secret".into()),
        ..PruneSettings::default()
    };
    let unkeyed = ours(Kind::Role, "old", 601);
    let keyed = write_mark(
        Some("secret"),
        OWNER,
        &arn(Kind::Role, "old"),
        at(NOW - 601),
    );
    for (mark, expected) in [(unkeyed, "mark"), (keyed, "delete")] {
        let c = candidate(Kind::Role, "old", &[(UNDECLARED_SINCE_TAG, &mark)], &[]);
        assert_eq!(
            outcome(&decide(&c, &[], OWNER, at(NOW), &settings)),
            expected
        );
    }
}

#[test]
fn without_a_grace_period_it_is_deleted_at_once_whatever_its_mark() {
    let settings = PruneSettings {
        grace: Duration::ZERO,
        ..PruneSettings::default()
    };
    for tags in [vec![], vec![(UNDECLARED_SINCE_TAG, "2001-01-01T00:00:00Z")]] {
        let c = candidate(Kind::Role, "old", &tags, &[]);
        let plan = decide(&c, &[], OWNER, at(NOW), &settings);
        assert_eq!(plan.changes, vec![Change::DeleteRole]);
    }
}

/// A policy `p` undeclared and due, used by the role `user`; `role` is the undeclared role
/// candidate (or none): what happens to `p`.
#[test]
fn a_policy_is_kept_while_any_identity_that_is_not_deleted_now_uses_it() {
    let settings = PruneSettings::default();
    let due_policy = |users: &[PolicyUser]| {
        candidate(
            Kind::Policy,
            "p",
            &[(UNDECLARED_SINCE_TAG, &ours(Kind::Policy, "p", 601))],
            users,
        )
    };
    let due_role = |name: &str| {
        candidate(
            Kind::Role,
            name,
            &[(UNDECLARED_SINCE_TAG, &ours(Kind::Role, name, 601))],
            &[],
        )
    };
    let in_grace = candidate(
        Kind::Role,
        "app",
        &[(UNDECLARED_SINCE_TAG, &ours(Kind::Role, "app", 60))],
        &[],
    );
    let first_seen = candidate(Kind::Role, "app", &[], &[]);
    let let_go = candidate(Kind::Role, "app", &[(PRUNE_ANNOTATION, "never")], &[]);
    let boundary = PolicyUser::new(EntityKind::Role, "app", true);
    for (why, role, users, expected) in [
        (
            "its only user is deleted now",
            Some(due_role("app")),
            vec![role_user("app")],
            "delete",
        ),
        (
            "its only user is deleted now, named in another case",
            Some(due_role("app")),
            vec![role_user("APP")],
            "delete",
        ),
        (
            "its boundary user is deleted now",
            Some(due_role("app")),
            vec![boundary.clone()],
            "delete",
        ),
        (
            "a role whose name starts with the deleted one's",
            Some(due_role("app")),
            vec![role_user("app"), role_user("app-2")],
            "blocked",
        ),
        (
            "a user named like the deleted role",
            Some(due_role("app")),
            vec![PolicyUser::new(EntityKind::User, "app", false)],
            "blocked",
        ),
        (
            "its user is in its grace period",
            Some(in_grace),
            vec![role_user("app")],
            "blocked",
        ),
        (
            "its user is seen undeclared for the first time",
            Some(first_seen),
            vec![role_user("app")],
            "blocked",
        ),
        (
            "its user is let go (prune: never)",
            Some(let_go),
            vec![role_user("app")],
            "blocked",
        ),
        (
            "its user is declared",
            None,
            vec![role_user("app")],
            "blocked",
        ),
        (
            "an unowned role's boundary",
            None,
            vec![PolicyUser::new(EntityKind::Role, "bounded", true)],
            "blocked",
        ),
        ("nobody uses it", None, vec![], "delete"),
    ] {
        let mut candidates: Vec<Candidate> = role.into_iter().collect();
        candidates.push(due_policy(&users));
        let decision = decide_all(&candidates, OWNER, at(NOW), &settings);
        let plan = decision
            .plans
            .iter()
            .find(|p| p.kind == Kind::Policy)
            .unwrap();
        assert_eq!(outcome(plan), expected, "{why}: {:?}", summary(plan));
    }
}

#[test]
fn what_still_uses_a_policy_is_named() {
    let users = [
        PolicyUser::new(EntityKind::Role, "app-2", false),
        PolicyUser::new(EntityKind::Role, "bounded", true),
        PolicyUser::new(EntityKind::Group, "ops", false),
    ];
    let c = candidate(Kind::Policy, "p", &[], &users);
    let plan = decide(&c, &[], OWNER, at(NOW), &PruneSettings::default());
    assert_eq!(
        plan.findings,
        vec![Finding::PruneBlocked {
            used_by: vec![
                "role/app-2".into(),
                "role/bounded (as its permissions boundary)".into(),
                "group/ops".into()
            ]
        }]
    );
}

#[test]
fn above_max_prune_nothing_is_deleted_and_roles_come_first() {
    let settings = PruneSettings {
        max: 2,
        ..PruneSettings::default()
    };
    let due = |kind: Kind, name: &str| {
        candidate(
            kind,
            name,
            &[(UNDECLARED_SINCE_TAG, &ours(kind, name, 601))],
            &[],
        )
    };
    let candidates = [
        due(Kind::Policy, "p"),
        due(Kind::Role, "r0"),
        due(Kind::Role, "r1"),
    ];
    let decision = decide_all(&candidates, OWNER, at(NOW), &settings);
    assert_eq!(decision.refused, Some(3));
    assert_eq!(decision.deletions().count(), 0);
    assert!(
        decision
            .plans
            .iter()
            .all(|p| p.findings[0].to_string().contains("exceed --max-prune 2"))
    );
    let settings = PruneSettings { max: 3, ..settings };
    let decision = decide_all(&candidates, OWNER, at(NOW), &settings);
    assert_eq!(decision.refused, None);
    let order: Vec<(Kind, &str)> = decision
        .plans
        .iter()
        .map(|p| (p.kind, p.name.as_str()))
        .collect();
    assert_eq!(
        order,
        [(Kind::Role, "r0"), (Kind::Role, "r1"), (Kind::Policy, "p")]
    );
    assert_eq!(decision.deletions().count(), 3);
}

#[test]
fn a_policy_freed_by_a_refused_role_deletion_is_not_deleted_either() {
    let settings = PruneSettings {
        max: 1,
        ..PruneSettings::default()
    };
    let role = candidate(
        Kind::Role,
        "app",
        &[(UNDECLARED_SINCE_TAG, &ours(Kind::Role, "app", 601))],
        &[],
    );
    let policy = candidate(
        Kind::Policy,
        "p",
        &[(UNDECLARED_SINCE_TAG, &ours(Kind::Policy, "p", 601))],
        &[role_user("app")],
    );
    let decision = decide_all(&[role, policy], OWNER, at(NOW), &settings);
    assert_eq!(decision.refused, Some(2));
    assert_eq!(decision.deletions().count(), 0);
}

#[test]
fn candidates_are_owned_undeclared_and_inside_the_allowed_paths() {
    use crate::manifest::{DesiredRole, Origin};
    let mut desired = DesiredState::default();
    // Only its name matters here.
    let declared = DesiredRole {
        name: "Declared".into(),
        path: "/".into(),
        description: String::new(),
        max_session_duration: 3600,
        permissions_boundary: None,
        assume_role_policy: crate::policy::PolicyDocument::from_value(
            serde_json::json!({"Version": "2012-10-17", "Statement": []}),
        )
        .unwrap(),
        managed_policies: vec![],
        inline_policies: BTreeMap::new(),
        tags: BTreeMap::new(),
        annotations: BTreeMap::new(),
        origin: Origin {
            file: "a.yaml".into(),
            line: 1,
            k8s: None,
        },
    };
    desired.roles.insert(declared.name.clone(), declared);
    let listed = |name: &str, owner: Option<&str>, path: &str| Candidate {
        kind: Kind::Role,
        name: name.into(),
        arn: format!("arn:aws:iam::123456789012:role{path}{name}"),
        tags: owner
            .map(|o| BTreeMap::from([(OWNER_TAG.to_string(), o.to_string())]))
            .unwrap_or_default(),
        used_by: vec![],
        undeclared_at: None,
    };
    let all = [
        listed("declared", Some(OWNER), "/agent/"),
        listed("gone", Some(OWNER), "/agent/"),
        listed("theirs", Some("you"), "/agent/"),
        listed("nobodys", None, "/agent/"),
        listed("elsewhere", Some(OWNER), "/other/"),
    ];
    let got = undeclared_owned(&desired, OWNER, all, |arn: &str| arn.contains("/agent/"));
    let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["gone"]);
}

#[test]
fn users_are_read_only_where_they_can_stop_a_deletion() {
    let settings = PruneSettings::default();
    let due = ours(Kind::Policy, "p", 601);
    let waiting = ours(Kind::Policy, "p", 60);
    for (why, kind, tags, expected) in [
        (
            "a policy due",
            Kind::Policy,
            vec![(UNDECLARED_SINCE_TAG, due.as_str())],
            true,
        ),
        (
            "a policy in its grace",
            Kind::Policy,
            vec![(UNDECLARED_SINCE_TAG, waiting.as_str())],
            false,
        ),
        (
            "a policy seen for the first time",
            Kind::Policy,
            vec![],
            false,
        ),
        (
            "a policy let go",
            Kind::Policy,
            vec![
                (PRUNE_ANNOTATION, "never"),
                (UNDECLARED_SINCE_TAG, due.as_str()),
            ],
            false,
        ),
        (
            "a role due",
            Kind::Role,
            vec![(UNDECLARED_SINCE_TAG, ours(Kind::Role, "p", 601).as_str())],
            false,
        ),
    ] {
        let c = candidate(kind, "p", &tags, &[]);
        assert_eq!(
            users_matter(&c, OWNER, at(NOW), &settings),
            expected,
            "{why}"
        );
    }
    let immediate = PruneSettings {
        grace: Duration::ZERO,
        ..PruneSettings::default()
    };
    assert!(users_matter(
        &candidate(Kind::Policy, "p", &[], &[]),
        OWNER,
        at(NOW),
        &immediate
    ));
}

#[test]
fn only_a_dir_that_declares_nothing_for_any_account_refuses_pruning() {
    // No manifest file at all: an empty or unmounted DIR.
    assert!(declares_nothing(0, false, 0));
    assert!(declares_nothing(0, false, 3));
    // Files, but nothing declared anywhere (only empty documents).
    assert!(declares_nothing(2, false, 0));
    // Something declared here, or for other accounts only (this one is selected by none).
    assert!(!declares_nothing(2, true, 0));
    assert!(!declares_nothing(2, false, 1));
}

#[test]
fn a_provider_is_used_by_a_role_that_trusts_it_now_or_once_applied_and_kept() {
    use crate::manifest::{DesiredRole, Origin};
    let provider = arn(Kind::OpenIDConnectProvider, "idp.example.com");
    let trusting = |federated: &str| {
        crate::policy::PolicyDocument::from_value(serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": federated}}]})).unwrap()
    };
    let mut desired = DesiredState::default();
    desired.roles.insert(
        "new-role".into(),
        DesiredRole {
            name: "new-role".into(),
            path: "/".into(),
            description: String::new(),
            max_session_duration: 3600,
            permissions_boundary: None,
            assume_role_policy: trusting(&provider),
            managed_policies: vec![],
            inline_policies: BTreeMap::new(),
            tags: BTreeMap::new(),
            annotations: BTreeMap::new(),
            origin: Origin {
                file: "a.yaml".into(),
                line: 1,
                k8s: None,
            },
        },
    );
    let candidates = || {
        vec![
            Candidate::listed(
                Kind::OpenIDConnectProvider,
                "idp.example.com",
                &provider,
                BTreeMap::from([(OWNER_TAG.to_string(), OWNER.to_string())]),
            ),
            Candidate::listed(
                Kind::OpenIDConnectProvider,
                "unused.example.com",
                &arn(Kind::OpenIDConnectProvider, "unused.example.com"),
                BTreeMap::from([(OWNER_TAG.to_string(), OWNER.to_string())]),
            ),
        ]
    };
    // The role does not exist yet: its declared trust is what counts.
    let mut owned = candidates();
    fill_provider_users(Some(&crate::iam::Snapshot::default()), &desired, &mut owned);
    assert_eq!(
        owned[0].used_by,
        [PolicyUser::new(EntityKind::Role, "new-role", false)]
    );
    assert!(owned[1].used_by.is_empty());
    let settings = PruneSettings {
        grace: Duration::ZERO,
        ..PruneSettings::default()
    };
    let decision = decide_all(&owned, OWNER, at(NOW), &settings);
    assert_eq!(decision.deletions().count(), 1, "{decision:?}");
    // Without a snapshot nobody's trust is known: no provider is a candidate.
    let mut owned = candidates();
    fill_provider_users(None, &desired, &mut owned);
    assert!(owned.is_empty());
}
