//! The order roles are applied in: a role whose trust policy names another declared role comes
//! after it, because IAM refuses a trust policy naming a principal that does not exist yet
//! ("Invalid principal"). Pure, so it is tested as a table.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Change, ResourcePlan};
use crate::arn::Arn;
use crate::manifest::DesiredState;
use crate::policy::PolicyDocument;

/// `roles` reordered so that each comes after the declared roles its trust policy names; the
/// given order is kept otherwise, and roles in a cycle keep it too.
pub fn roles_after_their_principals(
    desired: &DesiredState,
    roles: Vec<ResourcePlan>,
) -> Vec<ResourcePlan> {
    let index: BTreeMap<String, usize> = roles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.to_lowercase(), i))
        .collect();
    let needs: Vec<BTreeSet<usize>> = roles
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            desired
                .role(&plan.name)
                .map(|r| trusted_role_names(r.assume_role_policy.value()))
                .unwrap_or_default()
                .iter()
                .filter_map(|n| index.get(&n.to_lowercase()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    let mut placed = vec![false; roles.len()];
    let mut order = Vec::with_capacity(roles.len());
    while order.len() < roles.len() {
        let ready = (0..roles.len())
            .find(|&i| !placed[i] && needs[i].iter().all(|&j| placed[j]))
            // A cycle: take the first unplaced role; IAM's propagation retry does the rest.
            .or_else(|| (0..roles.len()).find(|&i| !placed[i]));
        let Some(i) = ready else { break };
        placed[i] = true;
        order.push(i);
    }
    let mut slots: Vec<Option<ResourcePlan>> = roles.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Roles in order (from [`roles_after_their_principals`]) grouped into waves that may run at
/// once: a role runs in a wave after every declared role it trusts that comes before it.
pub fn waves(desired: &DesiredState, roles: Vec<ResourcePlan>) -> Vec<Vec<ResourcePlan>> {
    let index: BTreeMap<String, usize> = roles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.to_lowercase(), i))
        .collect();
    let mut wave_of: Vec<usize> = Vec::with_capacity(roles.len());
    for (i, plan) in roles.iter().enumerate() {
        let wave = desired
            .role(&plan.name)
            .map(|r| trusted_role_names(r.assume_role_policy.value()))
            .unwrap_or_default()
            .iter()
            .filter_map(|n| index.get(&n.to_lowercase()).copied())
            .filter(|&j| j < i)
            .map(|j| wave_of[j] + 1)
            .max()
            .unwrap_or(0);
        wave_of.push(wave);
    }
    let mut waves: Vec<Vec<ResourcePlan>> = Vec::new();
    for (plan, wave) in roles.into_iter().zip(wave_of) {
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(plan);
    }
    waves
}

/// For roles that trust each other (a cycle) and are both new, the first one created cannot
/// name the other yet: its CreateRole gets a trust policy without the roles still to be
/// created, and the returned plans put the whole trust policy back once they exist. `roles`
/// must already be in [`roles_after_their_principals`] order.
pub fn defer_trust_of_roles_not_yet_created(roles: &mut [ResourcePlan]) -> Vec<ResourcePlan> {
    // Lowercased names of the roles this pass creates, in creation order.
    let mut not_yet: Vec<String> = roles
        .iter()
        .filter(|p| p.changes.first().is_some_and(Change::is_create))
        .map(|p| p.name.to_lowercase())
        .collect();
    let mut follow_ups = Vec::new();
    for plan in roles.iter_mut() {
        let Some(Change::CreateRole {
            assume_role_policy, ..
        }) = plan.changes.first_mut()
        else {
            continue;
        };
        let me = plan.name.to_lowercase();
        not_yet.retain(|n| *n != me);
        let pending: Vec<String> = trusted_role_names(assume_role_policy.value())
            .into_iter()
            .filter(|n| not_yet.contains(&n.to_lowercase()))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let full = assume_role_policy.clone();
        let reduced = without_roles(&full, &pending);
        *assume_role_policy = reduced.clone();
        let mut follow_up = ResourcePlan::new(plan.kind, &plan.name, plan.arn.clone());
        follow_up.changes.push(Change::UpdateAssumeRolePolicy {
            before: reduced,
            after: full,
        });
        follow_ups.push(follow_up);
    }
    follow_ups
}

/// The role an AWS principal names (`arn:…:iam::ACCOUNT:role/PATH/NAME`), if it names one.
fn role_name(id: &str) -> Option<&str> {
    Arn::parse(id)
        .ok()
        .filter(|arn| arn.is_iam("role"))
        .and_then(|arn| arn.name())
}

/// A trust policy without the AWS principals naming `roles`; a statement left with no
/// principal goes, and with none left, a statement that allows nobody keeps it valid.
fn without_roles(doc: &PolicyDocument, roles: &[String]) -> PolicyDocument {
    let names =
        |id: &str| role_name(id).is_some_and(|n| roles.iter().any(|r| r.eq_ignore_ascii_case(n)));
    let statements: Vec<Value> = match doc.value().get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    for mut s in statements {
        if let Some(Value::Object(principal)) = s.get_mut("Principal") {
            if let Some(aws) = principal.remove("AWS") {
                let ids: Vec<Value> = match aws {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                let left: Vec<Value> = ids
                    .into_iter()
                    .filter(|v| !v.as_str().is_some_and(names))
                    .collect();
                if !left.is_empty() {
                    principal.insert("AWS".into(), Value::Array(left));
                }
            }
            if principal.is_empty() {
                continue;
            }
        }
        kept.push(s);
    }
    if kept.is_empty() {
        kept.push(serde_json::json!({
            "Effect": "Deny",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }));
    }
    let mut value = doc.value().clone();
    value["Statement"] = Value::Array(kept);
    PolicyDocument::from_value(value).unwrap_or_else(|_| doc.clone())
}

/// Names of the roles that a trust policy's `AWS` principals name by ARN.
fn trusted_role_names(doc: &Value) -> Vec<String> {
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let mut names = Vec::new();
    for s in statements {
        let Some(aws) = s.get("Principal").and_then(|p| p.get("AWS")) else {
            continue;
        };
        let ids: Vec<&str> = match aws {
            Value::String(id) => vec![id.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for id in ids {
            if let Some(name) = role_name(id) {
                names.push(name.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{DesiredRole, Kind, Origin};
    use crate::policy::PolicyDocument;
    use serde_json::json;

    fn role(name: &str, trusts: &[&str]) -> DesiredRole {
        let principals: Vec<String> = trusts
            .iter()
            .map(|t| format!("arn:aws:iam::123456789012:role/team/{t}"))
            .collect();
        let principal = if principals.is_empty() {
            json!({"Service": "ecs-tasks.amazonaws.com"})
        } else {
            json!({ "AWS": principals })
        };
        DesiredRole {
            name: name.into(),
            path: "/".into(),
            description: String::new(),
            max_session_duration: 3600,
            permissions_boundary: None,
            assume_role_policy: PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}]})).unwrap(),
            managed_policies: Vec::new(),
            inline_policies: BTreeMap::new(),
            tags: BTreeMap::new(),
            annotations: BTreeMap::new(),
            origin: Origin { file: "r.yaml".into(), line: 1 , k8s: None},
        }
    }

    fn order(roles: &[DesiredRole]) -> Vec<String> {
        let mut desired = DesiredState::default();
        for r in roles {
            desired.roles.insert(r.name.clone(), r.clone());
        }
        let plans = desired
            .roles
            .keys()
            .map(|n| ResourcePlan::new(Kind::Role, n, None))
            .collect();
        roles_after_their_principals(&desired, plans)
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn roles_that_trust_each_other_are_created_with_the_other_left_out_then_completed() {
        let a = role("a", &["b"]);
        let b = role("b", &["a"]);
        let create = |r: &DesiredRole| {
            let mut plan = ResourcePlan::new(Kind::Role, &r.name, None);
            plan.changes.push(Change::CreateRole {
                path: "/".into(),
                description: String::new(),
                max_session_duration: 3600,
                assume_role_policy: r.assume_role_policy.clone(),
                permissions_boundary: None,
                tags: BTreeMap::new(),
            });
            plan
        };
        let mut plans = vec![create(&a), create(&b)];
        let follow_ups = defer_trust_of_roles_not_yet_created(&mut plans);
        let Change::CreateRole {
            assume_role_policy, ..
        } = &plans[0].changes[0]
        else {
            panic!()
        };
        let first = assume_role_policy.to_json();
        assert!(!first.contains("role/team/b"), "{first}");
        assert!(first.contains("\"Deny\""), "{first}");
        // The second may name the first, which exists by then.
        let Change::CreateRole {
            assume_role_policy, ..
        } = &plans[1].changes[0]
        else {
            panic!()
        };
        assert!(assume_role_policy.to_json().contains("role/team/a"));
        assert_eq!(follow_ups.len(), 1);
        assert_eq!(follow_ups[0].name, "a");
        let Change::UpdateAssumeRolePolicy { after, .. } = &follow_ups[0].changes[0] else {
            panic!()
        };
        assert_eq!(after, &a.assume_role_policy);
        // A role that exists already needs no such care.
        let mut plans = vec![create(&a), ResourcePlan::new(Kind::Role, "b", None)];
        assert!(defer_trust_of_roles_not_yet_created(&mut plans).is_empty());
    }

    #[test]
    fn roles_run_in_waves_after_the_roles_they_trust() {
        let roles = [
            role("a", &["c"]),
            role("b", &[]),
            role("c", &[]),
            role("d", &["a", "b"]),
        ];
        let mut desired = DesiredState::default();
        for r in &roles {
            desired.roles.insert(r.name.clone(), r.clone());
        }
        let plans: Vec<ResourcePlan> = desired
            .roles
            .keys()
            .map(|n| ResourcePlan::new(Kind::Role, n, None))
            .collect();
        let ordered = roles_after_their_principals(&desired, plans);
        let waves: Vec<Vec<String>> = waves(&desired, ordered)
            .into_iter()
            .map(|w| w.into_iter().map(|p| p.name).collect())
            .collect();
        assert_eq!(waves, [vec!["b", "c"], vec!["a"], vec!["d"]]);
    }

    #[test]
    fn a_role_comes_after_the_roles_it_trusts() {
        for (roles, expected) in [
            (vec![role("a", &["b"]), role("b", &[])], vec!["b", "a"]),
            (
                vec![role("a", &["c"]), role("b", &["a"]), role("c", &[])],
                vec!["c", "a", "b"],
            ),
            // Case-insensitive, an unknown principal is ignored, self-trust is no dependency.
            (
                vec![role("a", &["B", "x", "a"]), role("b", &[])],
                vec!["b", "a"],
            ),
            (vec![role("a", &[]), role("b", &[])], vec!["a", "b"]),
            // A cycle keeps the given order.
            (vec![role("a", &["b"]), role("b", &["a"])], vec!["a", "b"]),
        ] {
            assert_eq!(order(&roles), expected);
        }
    }
}
