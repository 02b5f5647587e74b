//! The order roles are applied in: a role whose trust policy names another declared role comes
//! after it, because IAM refuses a trust policy naming a principal that does not exist yet
//! ("Invalid principal"). Pure, so it is tested as a table.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::ResourcePlan;
use crate::iam::name_and_path;
use crate::manifest::DesiredState;

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
            if id.split(':').nth(5).is_some_and(|r| r.starts_with("role/")) {
                if let Some((name, _)) = name_and_path(id) {
                    names.push(name.to_string());
                }
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
            origin: Origin { file: "r.yaml".into(), line: 1 },
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
