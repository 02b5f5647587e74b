//! The planner's rules as a table: (desired, observed) -> expected changes or findings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::iam::{Account, ObservedPolicy, ObservedRole, PolicyVersion};
use crate::manifest::{
    DesiredPolicy, DesiredRole, DesiredState, Kind, OWNER_TAG, Origin, PolicyRef,
};
use crate::policy::PolicyDocument;

fn doc(action: &str) -> PolicyDocument {
    PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})).unwrap()
}

fn trust(service: &str) -> PolicyDocument {
    PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service}}]})).unwrap()
}

fn account() -> Account {
    Account {
        partition: "aws".into(),
        id: "123456789012".into(),
    }
}

fn desired_role() -> DesiredRole {
    DesiredRole {
        name: "app".into(),
        path: "/app/".into(),
        description: "App".into(),
        max_session_duration: 3600,
        permissions_boundary: None,
        assume_role_policy: trust("ecs-tasks.amazonaws.com"),
        managed_policies: vec![PolicyRef::Ref("p".into())],
        inline_policies: BTreeMap::from([("logs".into(), doc("logs:PutLogEvents"))]),
        tags: BTreeMap::from([("team".into(), "data".into())]),
        annotations: BTreeMap::new(),
        origin: Origin {
            file: PathBuf::from("a.yaml"),
            line: 1,
            k8s: None,
        },
    }
}

fn desired_policy() -> DesiredPolicy {
    DesiredPolicy {
        name: "p".into(),
        path: "/".into(),
        description: "".into(),
        document: doc("s3:GetObject"),
        tags: BTreeMap::new(),
        annotations: BTreeMap::new(),
        origin: Origin {
            file: PathBuf::from("p.yaml"),
            line: 1,
            k8s: None,
        },
    }
}

const P_ARN: &str = "arn:aws:iam::123456789012:policy/p";

fn ctx() -> Context {
    let mut state = DesiredState::default();
    state.policies.insert("p".into(), desired_policy());
    Context::new("me", &["org:".to_string()], &account(), &state)
}

/// The role as it would look right after iam-warden converged it.
fn observed_role() -> ObservedRole {
    ObservedRole {
        name: "app".into(),
        arn: "arn:aws:iam::123456789012:role/app/app".into(),
        path: "/app/".into(),
        description: "App".into(),
        max_session_duration: 3600,
        permissions_boundary: None,
        assume_role_policy: trust("ecs-tasks.amazonaws.com"),
        managed_policies: BTreeSet::from([P_ARN.to_string()]),
        inline_policies: BTreeMap::from([("logs".into(), doc("logs:PutLogEvents"))]),
        tags: BTreeMap::from([
            ("team".into(), "data".into()),
            (OWNER_TAG.into(), "me".into()),
        ]),
    }
}

fn observed_policy() -> ObservedPolicy {
    ObservedPolicy {
        name: "p".into(),
        arn: P_ARN.into(),
        path: "/".into(),
        description: "".into(),
        document: doc("s3:GetObject"),
        versions: vec![PolicyVersion {
            id: "v1".into(),
            is_default: true,
            created: 1,
        }],
        tags: BTreeMap::from([(OWNER_TAG.into(), "me".into())]),
    }
}

fn role_plan(desired: DesiredRole, observed: Option<ObservedRole>) -> ResourcePlan {
    plan_role(&ctx(), &desired, observed.as_ref())
}

fn ops(plan: &ResourcePlan) -> Vec<String> {
    plan.changes.iter().map(render::summary).collect()
}

#[test]
fn a_converged_role_and_policy_plan_nothing() {
    let plan = role_plan(desired_role(), Some(observed_role()));
    assert_eq!(ops(&plan), Vec::<String>::new());
    assert_eq!(plan.state(), ResourceState::InSync);
    let plan = plan_policy(&ctx(), &desired_policy(), Some(&observed_policy()));
    assert_eq!(ops(&plan), Vec::<String>::new());
}

#[test]
fn a_missing_role_is_created_with_its_owner_tag_then_filled_in() {
    let plan = role_plan(desired_role(), None);
    assert_eq!(plan.state(), ResourceState::Pending);
    let Change::CreateRole { tags, path, .. } = &plan.changes[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("me"));
    assert_eq!(tags.get("team").map(String::as_str), Some("data"));
    assert_eq!(path, "/app/");
    assert_eq!(
        ops(&plan)[1..],
        [
            "add inline policy logs".to_string(),
            format!("attach {P_ARN}")
        ]
    );
}

#[test]
fn a_missing_policy_is_created_with_its_owner_tag() {
    let plan = plan_policy(&ctx(), &desired_policy(), None);
    let [Change::CreatePolicy { tags, .. }] = plan.changes.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("me"));
    assert_eq!(plan.arn.as_deref(), Some(P_ARN));
}

/// One row per field: a drifted observation and the single change that corrects it.
#[test]
fn each_drifted_role_field_plans_exactly_one_change() {
    type Drift = fn(&mut ObservedRole);
    let rows: Vec<(&str, Drift, &str)> = vec![
        (
            "trust",
            |o| o.assume_role_policy = trust("ec2.amazonaws.com"),
            "update assumeRolePolicy",
        ),
        (
            "description",
            |o| o.description = "x".into(),
            "description \"x\" -> \"App\"",
        ),
        (
            "max session",
            |o| o.max_session_duration = 7200,
            "maxSessionDuration 7200 -> 3600",
        ),
        (
            "boundary added",
            |o| o.permissions_boundary = Some(P_ARN.into()),
            "remove permissionsBoundary arn:aws:iam::123456789012:policy/p",
        ),
        (
            "tag changed",
            |o| {
                o.tags.insert("team".into(), "x".into());
            },
            "set tags team=data (was x)",
        ),
        (
            "tag added",
            |o| {
                o.tags.insert("extra".into(), "x".into());
            },
            "remove tags extra",
        ),
        (
            "tag removed",
            |o| {
                o.tags.remove("team");
            },
            "set tags team=data",
        ),
        (
            "inline added",
            |o| {
                o.inline_policies.insert("more".into(), doc("s3:*"));
            },
            "delete inline policy more",
        ),
        (
            "inline changed",
            |o| {
                o.inline_policies.insert("logs".into(), doc("s3:*"));
            },
            "update inline policy logs",
        ),
        (
            "inline removed",
            |o| {
                o.inline_policies.clear();
            },
            "add inline policy logs",
        ),
        (
            "managed attached",
            |o| {
                o.managed_policies
                    .insert("arn:aws:iam::aws:policy/X".into());
            },
            "detach arn:aws:iam::aws:policy/X",
        ),
        (
            "managed detached",
            |o| {
                o.managed_policies.clear();
            },
            "attach arn:aws:iam::123456789012:policy/p",
        ),
    ];
    for (name, drift, expected) in rows {
        let mut observed = observed_role();
        drift(&mut observed);
        let plan = role_plan(desired_role(), Some(observed));
        assert_eq!(ops(&plan), [expected.to_string()], "row `{name}`");
        assert_eq!(plan.state(), ResourceState::Drifted, "row `{name}`");
    }
}

#[test]
fn a_declared_boundary_is_put_when_missing_or_different() {
    let mut desired = desired_role();
    desired.permissions_boundary = Some(PolicyRef::Ref("p".into()));
    let plan = role_plan(desired.clone(), Some(observed_role()));
    assert_eq!(
        ops(&plan),
        [format!("permissionsBoundary (none) -> {P_ARN}")]
    );
    let mut observed = observed_role();
    observed.permissions_boundary = Some("arn:aws:iam::aws:policy/Other".into());
    assert_eq!(
        ops(&role_plan(desired, Some(observed))),
        [format!(
            "permissionsBoundary arn:aws:iam::aws:policy/Other -> {P_ARN}"
        )]
    );
}

#[test]
fn aws_and_ignored_tag_prefixes_are_never_removed() {
    let mut observed = observed_role();
    observed
        .tags
        .insert("aws:cloudformation:stack-name".into(), "s".into());
    observed.tags.insert("org:cost-center".into(), "42".into());
    assert_eq!(
        ops(&role_plan(desired_role(), Some(observed))),
        Vec::<String>::new()
    );
}

#[test]
fn equivalent_documents_are_never_rewritten() {
    let mut observed = observed_role();
    observed.inline_policies.insert(
        "logs".into(),
        PolicyDocument::from_value(json!({"Statement": {"Resource": ["*"], "Action": ["LOGS:putlogevents"], "Effect": "allow"}, "Version": "2012-10-17"})).unwrap(),
    );
    observed.assume_role_policy = PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Principal": {"Service": ["ecs-tasks.amazonaws.com"]}}})).unwrap();
    assert_eq!(
        ops(&role_plan(desired_role(), Some(observed))),
        Vec::<String>::new()
    );
}

#[test]
fn a_role_without_owner_tag_is_reported_and_left_alone() {
    let mut observed = observed_role();
    observed.tags.remove(OWNER_TAG);
    observed.description = "drifted".into();
    let plan = role_plan(desired_role(), Some(observed));
    assert!(plan.changes.is_empty());
    assert_eq!(plan.findings, [Finding::NotOwned { owner: None }]);
    assert_eq!(plan.state(), ResourceState::Conflict);
}

#[test]
fn adopting_an_unowned_role_writes_the_owner_tag_first() {
    let mut observed = observed_role();
    observed.tags.remove(OWNER_TAG);
    observed.description = "drifted".into();
    let mut desired = desired_role();
    desired
        .annotations
        .insert("iam-warden/adopt".into(), "true".into());
    let plan = role_plan(desired, Some(observed));
    let Change::SetTags { tags, .. } = &plan.changes[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("me"));
    assert_eq!(plan.changes.len(), 2);
}

#[test]
fn adopt_does_not_take_a_role_from_another_owner() {
    let mut observed = observed_role();
    observed.tags.insert(OWNER_TAG.into(), "them".into());
    let mut desired = desired_role();
    desired
        .annotations
        .insert("iam-warden/adopt".into(), "true".into());
    let plan = role_plan(desired, Some(observed));
    assert!(plan.changes.is_empty());
    assert_eq!(
        plan.findings,
        [Finding::NotOwned {
            owner: Some("them".into())
        }]
    );
}

#[test]
fn a_role_path_difference_is_a_conflict_with_no_changes() {
    let mut observed = observed_role();
    observed.path = "/old/".into();
    observed.description = "drifted".into();
    let plan = role_plan(desired_role(), Some(observed));
    assert!(plan.changes.is_empty());
    assert_eq!(
        plan.findings,
        [Finding::Immutable {
            field: "path",
            observed: "/old/".into(),
            desired: "/app/".into()
        }]
    );
}

#[test]
fn policy_path_and_description_differences_are_conflicts() {
    let mut observed = observed_policy();
    observed.description = "old".into();
    observed.document = doc("s3:*");
    let plan = plan_policy(&ctx(), &desired_policy(), Some(&observed));
    assert!(plan.changes.is_empty());
    assert_eq!(
        plan.findings,
        [Finding::Immutable {
            field: "description",
            observed: "old".into(),
            desired: "".into()
        }]
    );
    let mut observed = observed_policy();
    observed.path = "/x/".into();
    assert_eq!(
        plan_policy(&ctx(), &desired_policy(), Some(&observed))
            .findings
            .len(),
        1
    );
}

#[test]
fn a_changed_document_makes_a_new_version_and_deletes_the_oldest_non_default_at_five() {
    let mut observed = observed_policy();
    observed.document = doc("s3:*");
    assert_eq!(
        ops(&plan_policy(&ctx(), &desired_policy(), Some(&observed))),
        ["new default document version"]
    );
    observed.versions = vec![
        PolicyVersion {
            id: "v2".into(),
            is_default: false,
            created: 2,
        },
        PolicyVersion {
            id: "v1".into(),
            is_default: true,
            created: 1,
        },
        PolicyVersion {
            id: "v3".into(),
            is_default: false,
            created: 3,
        },
        PolicyVersion {
            id: "v4".into(),
            is_default: false,
            created: 4,
        },
        PolicyVersion {
            id: "v5".into(),
            is_default: false,
            created: 5,
        },
    ];
    let plan = plan_policy(&ctx(), &desired_policy(), Some(&observed));
    let [Change::CreatePolicyVersion { delete_first, .. }] = plan.changes.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(
        delete_first.as_deref(),
        Some("v2"),
        "the default v1 must never be deleted"
    );
}

#[test]
fn policy_tags_are_exact_too() {
    let mut observed = observed_policy();
    observed.tags.insert("extra".into(), "x".into());
    assert_eq!(
        ops(&plan_policy(&ctx(), &desired_policy(), Some(&observed))),
        ["remove tags extra"]
    );
}

#[test]
fn refs_resolve_to_the_declared_policy_arn() {
    let c = ctx();
    assert_eq!(c.resolve(&PolicyRef::Ref("p".into())), P_ARN);
    assert_eq!(
        c.resolve(&PolicyRef::Arn("arn:aws:iam::aws:policy/X".into())),
        "arn:aws:iam::aws:policy/X"
    );
}

#[test]
fn the_text_diff_shows_statement_level_changes() {
    let mut observed = observed_role();
    observed.inline_policies.insert("logs".into(), doc("s3:*"));
    let text = render::text(&[role_plan(desired_role(), Some(observed))]);
    assert!(
        text.contains("Role app\n  ~ inlinePolicies.logs\n"),
        "{text}"
    );
    assert!(
        text.contains(r#"      - {"Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"      + {"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}"#),
        "{text}"
    );
}

#[test]
fn prune_takes_only_owned_resources_that_no_manifest_declares() {
    let mut desired = DesiredState::default();
    desired.roles.insert("app".into(), desired_role());
    desired.policies.insert("p".into(), desired_policy());
    let listed = |kind, name: &str, owner: Option<&str>| prune::Candidate {
        kind,
        name: name.into(),
        arn: format!("arn:aws:iam::123456789012:x/{name}"),
        tags: owner
            .map(|o| BTreeMap::from([(OWNER_TAG.to_string(), o.to_string())]))
            .unwrap_or_default(),
        used_by: Vec::new(),
        undeclared_at: None,
    };
    let all = vec![
        listed(Kind::Role, "app", Some("me")),
        listed(Kind::Role, "APP", Some("me")),
        listed(Kind::Role, "old-role", Some("me")),
        listed(Kind::Role, "theirs", Some("them")),
        listed(Kind::Role, "clicked", None),
        listed(Kind::Policy, "P", Some("me")),
        listed(Kind::Policy, "old-policy", Some("me")),
    ];
    let names: Vec<(Kind, String)> = prune::undeclared_owned(&desired, "me", all, |_: &str| true)
        .into_iter()
        .map(|c| (c.kind, c.name))
        .collect();
    assert_eq!(
        names,
        [
            (Kind::Role, "old-role".to_string()),
            (Kind::Policy, "old-policy".to_string())
        ]
    );
}

#[test]
fn tag_keys_match_ignoring_case_and_are_never_set_and_removed_in_two_spellings() {
    // Same value in another spelling: no difference to IAM.
    let mut o = observed_role();
    let value = o.tags.remove("team").unwrap();
    o.tags.insert("Team".into(), value);
    assert_eq!(
        ops(&role_plan(desired_role(), Some(o.clone()))),
        Vec::<String>::new()
    );
    // Another value: set in the manifest's spelling, nothing removed.
    o.tags.insert("Team".into(), "other".into());
    assert_eq!(
        ops(&role_plan(desired_role(), Some(o))),
        ["set tags Team=data (was other)"]
    );
    // The owner tag in another spelling still says who owns it.
    let mut o = observed_role();
    let owner = o.tags.remove(OWNER_TAG).unwrap();
    o.tags.insert("Iam-Warden/Owner".into(), owner);
    let plan = role_plan(desired_role(), Some(o));
    assert!(plan.findings.is_empty(), "{plan:?}");
    assert_eq!(ops(&plan), Vec::<String>::new());
    // Ignored prefixes and aws: ignore case too.
    let mut o = observed_role();
    o.tags.insert("ORG:cost".into(), "1".into());
    o.tags.insert("AWS:cloudformation:stack".into(), "s".into());
    assert_eq!(
        ops(&role_plan(desired_role(), Some(o))),
        Vec::<String>::new()
    );
}

#[test]
fn an_arn_in_another_partition_is_a_conflict_not_a_failed_attach() {
    let mut desired = desired_role();
    desired.managed_policies = vec![PolicyRef::Arn(
        "arn:aws-cn:iam::aws:policy/ReadOnlyAccess".into(),
    )];
    let plan = role_plan(desired, None);
    assert!(plan.changes.is_empty(), "{plan:?}");
    assert!(
        plan.findings[0]
            .to_string()
            .contains("not in this account's partition `aws`")
    );
}

#[test]
fn puts_that_shrink_the_inline_total_come_before_puts_that_grow_it() {
    let big = PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": (0..50).map(|i| format!("arn:aws:s3:::b{i}/*")).collect::<Vec<_>>()}]})).unwrap();
    let small = doc("s3:GetObject");
    let mut observed = observed_role();
    observed.inline_policies =
        BTreeMap::from([("aaa".into(), small.clone()), ("zzz".into(), big.clone())]);
    let mut desired = desired_role();
    desired.inline_policies = BTreeMap::from([("aaa".into(), big), ("zzz".into(), small)]);
    assert_eq!(
        ops(&role_plan(desired, Some(observed))),
        ["update inline policy zzz", "update inline policy aaa"]
    );
}

#[test]
fn removals_come_before_additions_so_a_swap_at_a_quota_fits() {
    let mut desired = desired_role();
    desired.managed_policies = vec![PolicyRef::Arn("arn:aws:iam::aws:policy/New".into())];
    desired.inline_policies = BTreeMap::from([("new".into(), doc("logs:PutLogEvents"))]);
    let plan = role_plan(desired, Some(observed_role()));
    assert_eq!(
        ops(&plan),
        [
            "delete inline policy logs".to_string(),
            format!("detach {P_ARN}"),
            "add inline policy new".to_string(),
            "attach arn:aws:iam::aws:policy/New".to_string(),
        ]
    );
}

#[test]
fn a_case_only_rename_is_the_same_role_and_is_addressed_by_iams_spelling() {
    let mut desired = desired_role();
    desired.name = "APP".into();
    desired.description = "changed".into();
    let plan = role_plan(desired, Some(observed_role()));
    assert!(plan.findings.is_empty(), "{plan:?}");
    assert!(!plan.changes.iter().any(Change::is_create), "{plan:?}");
    assert_eq!(plan.iam_name(), "app");
    // Pruning never deletes a role a manifest declares in another case.
    let mut state = DesiredState::default();
    let mut declared = desired_role();
    declared.name = "APP".into();
    state.roles.insert("APP".into(), declared);
    let owned = prune::Candidate {
        kind: Kind::Role,
        name: "app".into(),
        arn: "arn:aws:iam::123456789012:role/app/app".into(),
        tags: BTreeMap::from([(OWNER_TAG.to_string(), "me".to_string())]),
        used_by: Vec::new(),
        undeclared_at: None,
    };
    assert!(prune::undeclared_owned(&state, "me", [owned], |_: &str| true).is_empty());
}

#[test]
fn a_policy_moved_to_another_path_is_a_conflict_naming_both_paths() {
    let mut observed = observed_policy();
    observed.path = "/old/".into();
    observed.arn = "arn:aws:iam::123456789012:policy/old/p".into();
    let plan = plan_policy(&ctx(), &desired_policy(), Some(&observed));
    assert!(plan.changes.is_empty(), "{plan:?}");
    assert_eq!(plan.state(), ResourceState::Conflict);
    let text = plan.findings[0].to_string();
    assert!(
        text.contains("`/old/` in AWS but `/` in the manifest"),
        "{text}"
    );
    assert_eq!(
        plan.arn.as_deref(),
        Some("arn:aws:iam::123456789012:policy/old/p")
    );
}

#[test]
fn refs_resolve_in_the_callers_partition_and_ignoring_case() {
    for partition in ["aws", "aws-cn", "aws-us-gov"] {
        let account = Account {
            partition: partition.into(),
            id: "210987654321".into(),
        };
        let mut state = DesiredState::default();
        state.policies.insert("p".into(), desired_policy());
        let ctx = Context::new("me", &[], &account, &state);
        assert_eq!(
            ctx.resolve(&PolicyRef::Ref("P".into())),
            format!("arn:{partition}:iam::210987654321:policy/p")
        );
    }
}
