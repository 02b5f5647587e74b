//! The operator's own IAM policy (deploy/iam/) against the code: it allows exactly the IAM and
//! STS operations that src/iam/ calls, and it passes iam-warden's own policy grammar, as do the
//! trust policies next to it.

use std::collections::BTreeSet;
use std::path::Path;

use iam_warden::policy::{PolicyDocument, PolicyKind, check};
use serde_json::Value;

const POLICY: &str = "deploy/iam/iam-warden-policy.json";
const TRUST_POLICIES: &[&str] = &[
    "deploy/iam/trust-irsa.json",
    "deploy/iam/trust-eks-pod-identity.json",
    "deploy/iam/trust-ecs.json",
    "deploy/iam/trust-spoke.json",
    "deploy/iam/trust-github-actions-plan.json",
    "deploy/iam/trust-github-actions-apply.json",
    "deploy/iam/trust-gitlab-plan.json",
    "deploy/iam/trust-gitlab-apply.json",
];
/// With --accounts: the hub's own permissions (it only assumes the spoke roles).
const HUB_POLICY: &str = "deploy/iam/hub-policy.json";
/// The CI's plan role (deploy/ci/): the operator's reads and nothing else.
const PLAN_POLICY: &str = "deploy/iam/iam-warden-plan-policy.json";

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// `get_account_authorization_details` -> `GetAccountAuthorizationDetails`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Every `.client.<op>(` / `.sts.<op>(` in `source` (whitespace and newlines allowed between
/// the parts, as rustfmt splits long chains), as IAM action names.
fn operations_in(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (field, service) in [(".client", "iam"), (".sts", "sts")] {
        for (at, _) in source.match_indices(field) {
            let rest = &source[at + field.len()..];
            // `.client` must be the whole field name (not `.client_config`).
            if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let Some(rest) = rest.trim_start().strip_prefix('.') else {
                continue;
            };
            let rest = rest.trim_start();
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && rest[name.len()..].trim_start().starts_with('(') {
                found.insert(format!("{service}:{}", pascal(&name)));
            }
        }
    }
    found
}

fn operations_called_by_the_code() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/iam");
    let mut ops = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("read src/iam") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            ops.extend(operations_in(&text));
        }
    }
    ops
}

fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().expect("action is a string").to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        one => vec![one],
    }
}

fn allowed_actions() -> BTreeSet<String> {
    allowed_actions_in(POLICY)
}

fn allowed_actions_in(path: &str) -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(&read(path)).expect("policy is JSON");
    let mut out = BTreeSet::new();
    for st in statements(&doc) {
        if st["Effect"] == "Allow" {
            assert!(
                st.get("NotAction").is_none(),
                "an Allow with NotAction grants what nobody listed: {st}"
            );
            out.extend(as_list(st.get("Action")));
        }
    }
    out
}

#[test]
fn the_extractor_reads_calls_split_over_lines() {
    let source = "self.client.get_role().role_name(n);\n let x = self\n    .client\n    \
                  .list_roles()\n .into_paginator(); self.sts.get_caller_identity().send(); \
                  self.client_config.ignored(); self.client.field;";
    assert_eq!(
        operations_in(source),
        BTreeSet::from([
            "iam:GetRole".to_string(),
            "iam:ListRoles".to_string(),
            "sts:GetCallerIdentity".to_string(),
        ])
    );
}

#[test]
fn the_operator_policy_allows_exactly_the_operations_the_code_calls() {
    let called = operations_called_by_the_code();
    // The extractor must see the code at all, or an empty policy would pass.
    assert!(
        called.contains("iam:GetAccountAuthorizationDetails")
            && called.contains("sts:GetCallerIdentity")
            && called.len() > 20,
        "the extractor found too little in src/iam: {called:?}"
    );
    // IAM action names ignore case; the SDK's method names spell `OpenIdConnect`, IAM's
    // documentation `OpenIDConnect`.
    let lower = |set: BTreeSet<String>| -> BTreeSet<String> {
        set.into_iter().map(|a| a.to_ascii_lowercase()).collect()
    };
    let called = lower(called);
    let allowed = lower(allowed_actions());
    let missing: Vec<_> = called.difference(&allowed).collect();
    let unused: Vec<_> = allowed.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "{POLICY} is out of step with src/iam:\n  called but not allowed: {missing:?}\n  \
         allowed but never called: {unused:?}"
    );
}

#[test]
fn the_operator_policy_never_allows_pass_role_or_wildcard_actions() {
    for action in allowed_actions() {
        assert!(
            !action.eq_ignore_ascii_case("iam:PassRole") && !action.contains('*'),
            "{POLICY} allows {action}"
        );
    }
}

/// `iam:GetRole` -> true; reads are the Get and List operations.
fn is_read(action: &str) -> bool {
    let op = action.split_once(':').map_or(action, |(_, op)| op);
    op.starts_with("Get") || op.starts_with("List")
}

#[test]
fn the_plan_policy_allows_exactly_the_operators_reads() {
    let operator = allowed_actions();
    let plan = allowed_actions_in(PLAN_POLICY);
    let beyond: Vec<_> = plan
        .iter()
        .filter(|a| !is_read(a) || !operator.contains(*a))
        .collect();
    assert!(
        beyond.is_empty(),
        "{PLAN_POLICY} allows what is no read of {POLICY}: {beyond:?}"
    );
    // Every read plan may make; iam:GetUser only serves a user's credentials, never a role's.
    let missing: Vec<_> = operator
        .iter()
        .filter(|a| is_read(a) && *a != "iam:GetUser" && !plan.contains(*a))
        .collect();
    assert!(
        missing.is_empty(),
        "{PLAN_POLICY} lacks reads of {POLICY}: {missing:?}"
    );
}

#[test]
fn the_ci_apply_roles_trust_only_the_main_branch() {
    for (path, sub) in [
        (
            "deploy/iam/trust-github-actions-apply.json",
            "repo:ORG/REPO:ref:refs/heads/main",
        ),
        (
            "deploy/iam/trust-gitlab-apply.json",
            "project_path:GROUP/PROJECT:ref_type:branch:ref:main",
        ),
    ] {
        let doc: Value = serde_json::from_str(&read(path)).expect("JSON");
        for st in statements(&doc) {
            let equals = &st["Condition"]["StringEquals"];
            let subs: Vec<_> = equals
                .as_object()
                .expect("StringEquals")
                .iter()
                .filter(|(k, _)| k.ends_with(":sub"))
                .map(|(_, v)| v.clone())
                .collect();
            assert_eq!(subs, [Value::String(sub.into())], "{path}: {st}");
            assert!(
                st["Condition"].get("StringLike").is_none(),
                "{path}: no wildcard subject: {st}"
            );
            let aud = equals
                .as_object()
                .expect("StringEquals")
                .iter()
                .any(|(k, v)| k.ends_with(":aud") && v == "sts.amazonaws.com");
            assert!(aud, "{path}: the audience must be STS: {st}");
        }
    }
}

#[test]
fn the_operator_policy_denies_touching_another_owners_tag() {
    let doc: Value = serde_json::from_str(&read(POLICY)).expect("policy is JSON");
    let deny = statements(&doc)
        .into_iter()
        .find(|st| {
            st["Effect"] == "Deny" && as_list(st.get("Action")).contains(&"iam:UntagRole".into())
        })
        .expect("a Deny statement on iam:UntagRole");
    let actions = as_list(deny.get("Action"));
    for a in [
        "iam:TagRole",
        "iam:UntagRole",
        "iam:TagPolicy",
        "iam:UntagPolicy",
    ] {
        assert!(actions.contains(&a.to_string()), "the Deny misses {a}");
    }
    let condition = deny["Condition"].to_string();
    assert!(
        condition.contains("aws:TagKeys")
            && condition.contains("aws:ResourceTag/iam-warden/owner")
            && condition.contains("StringNotEquals"),
        "the Deny must match requests naming the owner tag on resources another owner holds: \
         {condition}"
    );
}

#[test]
fn the_operator_and_trust_policies_pass_iam_wardens_own_grammar() {
    let mut docs = vec![
        (POLICY, PolicyKind::Identity),
        (HUB_POLICY, PolicyKind::Identity),
        (PLAN_POLICY, PolicyKind::Identity),
    ];
    docs.extend(TRUST_POLICIES.iter().map(|p| (*p, PolicyKind::Trust)));
    for (path, kind) in docs {
        let doc = PolicyDocument::parse_json(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let errors = check(doc.value(), kind);
        assert!(
            errors.is_empty(),
            "{path}: {:?}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_hub_may_assume_only_the_spoke_roles_and_pass_none() {
    let doc: Value = serde_json::from_str(&read(HUB_POLICY)).expect("JSON");
    let allowed: Vec<(Vec<String>, Vec<String>)> = statements(&doc)
        .into_iter()
        .filter(|st| st["Effect"] == "Allow")
        .map(|st| (as_list(st.get("Action")), as_list(st.get("Resource"))))
        .collect();
    for (actions, resources) in &allowed {
        if actions.contains(&"sts:AssumeRole".to_string()) {
            assert_eq!(resources, &["arn:aws:iam::*:role/platform/iam-warden"]);
        }
        assert!(
            actions
                .iter()
                .all(|a| a.starts_with("sts:") || a.starts_with("organizations:List")),
            "the hub holds no IAM permission of its own, and only lists the organization: {actions:?}"
        );
    }
    // The spoke trust names the hub role and requires the external id.
    let trust = read("deploy/iam/trust-spoke.json");
    assert!(trust.contains("role/platform/iam-warden-hub") && trust.contains("sts:ExternalId"));
}
