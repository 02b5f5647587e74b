//! The planner's rules for instance profiles, OIDC providers and roles that trust a declared
//! provider, as a table: (desired, observed) -> expected changes or findings.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::*;
use crate::iam::{Account, ObservedInstanceProfile, ObservedOidcProvider};
use crate::manifest::{
    DesiredInstanceProfile, DesiredOidcProvider, DesiredRole, DesiredState, OWNER_TAG, Origin,
    RoleRef, provider_ref_marker,
};
use crate::policy::PolicyDocument;

fn account() -> Account {
    Account {
        partition: "aws-cn".into(),
        id: "123456789012".into(),
    }
}

fn origin() -> Origin {
    Origin {
        file: "m.yaml".into(),
        line: 1,
        k8s: None,
    }
}

fn owned(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.insert(OWNER_TAG.into(), "me".into());
    t
}

fn profile(role: Option<RoleRef>) -> DesiredInstanceProfile {
    DesiredInstanceProfile {
        name: "web".into(),
        path: "/".into(),
        role,
        tags: BTreeMap::from([("team".into(), "web".into())]),
        annotations: BTreeMap::new(),
        origin: origin(),
    }
}

fn observed_profile(roles: &[&str]) -> ObservedInstanceProfile {
    ObservedInstanceProfile {
        name: "web".into(),
        arn: "arn:aws-cn:iam::123456789012:instance-profile/web".into(),
        path: "/".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        tags: owned(&[("team", "web")]),
    }
}

fn provider(thumbprints: Option<&[&str]>) -> DesiredOidcProvider {
    DesiredOidcProvider {
        name: "eks".into(),
        url: "https://oidc.example.com/id/A".into(),
        client_ids: BTreeSet::from(["sts.amazonaws.com".to_string(), "b".to_string()]),
        thumbprints: thumbprints.map(|t| t.iter().map(|s| s.to_string()).collect()),
        tags: BTreeMap::new(),
        annotations: BTreeMap::new(),
        origin: origin(),
    }
}

const PROVIDER_ARN: &str = "arn:aws-cn:iam::123456789012:oidc-provider/oidc.example.com/id/A";

fn observed_provider(client_ids: &[&str], thumbprints: &[&str]) -> ObservedOidcProvider {
    ObservedOidcProvider {
        arn: PROVIDER_ARN.into(),
        url: "oidc.example.com/id/A".into(),
        client_ids: client_ids.iter().map(|s| s.to_string()).collect(),
        thumbprints: thumbprints.iter().map(|s| s.to_string()).collect(),
        tags: owned(&[]),
    }
}

fn ctx(state: &DesiredState) -> Context {
    Context::new("me", &[], &account(), state)
}

#[test]
fn a_missing_profile_is_created_with_its_tags_then_given_its_role() {
    let plan = plan_instance_profile(
        &ctx(&DesiredState::default()),
        &profile(Some(RoleRef::Ref("web-role".into()))),
        None,
    );
    assert_eq!(
        plan.changes,
        [
            Change::CreateInstanceProfile {
                path: "/".into(),
                tags: owned(&[("team", "web")]),
            },
            Change::AddRoleToInstanceProfile {
                role: "web-role".into()
            },
        ]
    );
    assert_eq!(
        plan.arn.as_deref(),
        Some("arn:aws-cn:iam::123456789012:instance-profile/web"),
        "the ARN is built from the caller's partition"
    );
}

#[test]
fn a_profiles_role_is_swapped_removing_first_and_compared_ignoring_case() {
    let c = ctx(&DesiredState::default());
    let want = profile(Some(RoleRef::Name("web-role".into())));
    let rows: [(&[&str], Vec<Change>); 4] = [
        (&["web-role"], vec![]),
        (&["WEB-ROLE"], vec![]),
        (
            &["intruder"],
            vec![
                Change::RemoveRoleFromInstanceProfile {
                    role: "intruder".into(),
                },
                Change::AddRoleToInstanceProfile {
                    role: "web-role".into(),
                },
            ],
        ),
        (
            &[],
            vec![Change::AddRoleToInstanceProfile {
                role: "web-role".into(),
            }],
        ),
    ];
    for (held, want_changes) in rows {
        let plan = plan_instance_profile(&c, &want, Some(&observed_profile(held)));
        assert_eq!(plan.changes, want_changes, "holding {held:?}");
    }
    // No role declared: whatever it holds is removed.
    let plan = plan_instance_profile(&c, &profile(None), Some(&observed_profile(&["x"])));
    assert_eq!(
        plan.changes,
        [Change::RemoveRoleFromInstanceProfile { role: "x".into() }]
    );
}

#[test]
fn a_profile_not_ours_or_at_another_path_is_left_alone() {
    let c = ctx(&DesiredState::default());
    let want = profile(None);
    let mut theirs = observed_profile(&["x"]);
    theirs.tags.insert(OWNER_TAG.into(), "other".into());
    let plan = plan_instance_profile(&c, &want, Some(&theirs));
    assert!(plan.changes.is_empty() && !plan.findings.is_empty());
    let mut moved = observed_profile(&[]);
    moved.path = "/x/".into();
    let plan = plan_instance_profile(&c, &want, Some(&moved));
    assert!(matches!(
        plan.findings.as_slice(),
        [Finding::Immutable { field: "path", .. }]
    ));
    assert!(plan.changes.is_empty());
}

#[test]
fn a_providers_client_ids_are_an_exact_set_removed_before_added() {
    let c = ctx(&DesiredState::default());
    let plan = plan_oidc_provider(
        &c,
        &provider(None),
        Some(&observed_provider(&["sts.amazonaws.com", "old"], &["t"])),
    );
    assert_eq!(
        plan.changes,
        [
            Change::RemoveClientId {
                client_id: "old".into()
            },
            Change::AddClientId {
                client_id: "b".into()
            },
        ]
    );
    let plan = plan_oidc_provider(
        &c,
        &provider(None),
        Some(&observed_provider(&["b", "sts.amazonaws.com"], &[])),
    );
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
}

#[test]
fn thumbprints_are_compared_only_when_declared() {
    let c = ctx(&DesiredState::default());
    let ids = ["sts.amazonaws.com", "b"];
    let plan = plan_oidc_provider(&c, &provider(None), Some(&observed_provider(&ids, &["x"])));
    assert!(plan.changes.is_empty(), "absent: IAM's own are fine");
    let plan = plan_oidc_provider(
        &c,
        &provider(Some(&["a"])),
        Some(&observed_provider(&ids, &["x"])),
    );
    assert_eq!(
        plan.changes,
        [Change::UpdateThumbprints {
            before: BTreeSet::from(["x".to_string()]),
            after: BTreeSet::from(["a".to_string()]),
        }]
    );
    let plan = plan_oidc_provider(
        &c,
        &provider(Some(&["a"])),
        Some(&observed_provider(&ids, &["a"])),
    );
    assert!(plan.changes.is_empty());
}

#[test]
fn a_missing_provider_is_created_whole_at_the_arn_its_url_gives() {
    let plan = plan_oidc_provider(&ctx(&DesiredState::default()), &provider(None), None);
    assert_eq!(plan.arn.as_deref(), Some(PROVIDER_ARN));
    assert!(matches!(
        plan.changes.as_slice(),
        [Change::CreateOpenIDConnectProvider {
            thumbprints: None,
            ..
        }]
    ));
}

#[test]
fn a_role_trusting_a_declared_provider_by_ref_is_planned_with_its_arn() {
    let mut state = DesiredState::default();
    state.oidc_providers.insert("eks".into(), provider(None));
    let trust = |federated: serde_json::Value| {
        PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": federated}}]})).unwrap()
    };
    let role = DesiredRole {
        name: "irsa".into(),
        path: "/".into(),
        description: String::new(),
        max_session_duration: 3600,
        permissions_boundary: None,
        assume_role_policy: trust(json!(provider_ref_marker("EKS"))),
        managed_policies: Vec::new(),
        inline_policies: BTreeMap::new(),
        tags: BTreeMap::new(),
        annotations: BTreeMap::new(),
        origin: origin(),
    };
    let plan = plan_role(&ctx(&state), &role, None);
    let Some(Change::CreateRole {
        assume_role_policy, ..
    }) = plan.changes.first()
    else {
        panic!("{:?}", plan.changes)
    };
    assert!(
        assume_role_policy.is_equivalent(&trust(json!(PROVIDER_ARN))),
        "refs ignore case, as names do: {}",
        assume_role_policy.to_json()
    );
}
