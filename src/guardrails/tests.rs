//! The guardrails as tables: a manifest, the rules, and the violations expected.

use super::*;
use crate::manifest::{Resource, Variables, load_file};

fn resource(spec: &str, kind: &str) -> Resource {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: iamwarden/v1alpha1\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{spec}"
        ),
    )
    .unwrap();
    let report = load_file(&path, &Variables::default());
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    report.resources.first().cloned().unwrap()
}

const TRUST_ECS: &str = "  assumeRolePolicy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}]}\n";

fn role(extra: &str) -> Resource {
    resource(&format!("{TRUST_ECS}{extra}"), "Role")
}

fn trusting(principal: &str) -> Resource {
    resource(
        &format!(
            "  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {principal}, Action: sts:AssumeRole}}]}}\n"
        ),
        "Role",
    )
}

fn allowing(actions: &str) -> Resource {
    resource(
        &format!(
            "  document: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, {actions}, Resource: \"*\"}}]}}\n"
        ),
        "Policy",
    )
}

fn rules(yaml: &str) -> Guardrails {
    Guardrails {
        sources: vec![("g.yaml".into(), Rules::from_yaml(yaml).unwrap())],
    }
}

fn violations(g: &Guardrails, r: &Resource) -> Vec<String> {
    check(g, r)
        .into_iter()
        .map(|(p, _, m)| format!("{p}: {m}"))
        .collect()
}

#[test]
fn every_role_carries_exactly_the_required_boundary() {
    let g = rules("requirePermissionsBoundary: arn:aws:iam::123456789012:policy/org/boundary\n");
    let ok = role("  permissionsBoundary: arn:aws:iam::123456789012:policy/org/boundary\n");
    assert_eq!(violations(&g, &ok), Vec::<String>::new());
    let by_ref = role("  permissionsBoundary: {ref: Boundary}\n");
    assert_eq!(violations(&g, &by_ref), Vec::<String>::new());
    let none = violations(&g, &role(""));
    assert_eq!(none.len(), 1);
    assert!(
        none[0].starts_with("spec.permissionsBoundary: every role must carry"),
        "{none:?}"
    );
    assert!(none[0].ends_with("(guardrail from g.yaml)"), "{none:?}");
    let other = role("  permissionsBoundary: arn:aws:iam::aws:policy/PowerUserAccess\n");
    assert!(violations(&g, &other)[0].contains("not arn:aws:iam::aws:policy/PowerUserAccess"));
    // Policies carry no boundary.
    assert_eq!(
        violations(&g, &allowing("Action: s3:GetObject")),
        Vec::<String>::new()
    );
}

#[test]
fn resources_live_under_an_allowed_path() {
    let g = rules("allowedPathPrefixes: [/agent/, /team-a/]\n");
    assert_eq!(
        violations(&g, &role("  path: /agent/x/\n")),
        Vec::<String>::new()
    );
    let v = violations(&g, &role(""));
    assert_eq!(
        v,
        ["spec.path: `/` is outside the allowed paths (/agent/, /team-a/) (guardrail from g.yaml)"]
    );
    let v = violations(&g, &allowing("Action: s3:GetObject"));
    assert_eq!(v.len(), 1, "{v:?}");
}

#[test]
fn denied_actions_are_refused_with_iams_wildcards() {
    let g = rules("denyActions: [\"iam:*\", \"*\", \"organizations:*\"]\n");
    for (actions, expected) in [
        ("Action: s3:GetObject", vec![]),
        (
            "Action: [s3:GetObject, iam:PassRole]",
            vec!["spec.document.Statement[0].Action[1]"],
        ),
        (
            "Action: IAM:passrole",
            vec!["spec.document.Statement[0].Action"],
        ),
        (
            "Action: \"i*:*\"",
            vec!["spec.document.Statement[0].Action"],
        ),
        ("Action: \"*\"", vec!["spec.document.Statement[0].Action"]),
        (
            "Action: \"organizations:List*\"",
            vec!["spec.document.Statement[0].Action"],
        ),
        // NotAction allows everything it does not name.
        (
            "NotAction: [s3:*]",
            vec!["spec.document.Statement[0].NotAction"; 3],
        ),
        (
            "NotAction: [\"iam:*\", \"organizations:*\"]",
            vec!["spec.document.Statement[0].NotAction"],
        ),
    ] {
        let v = violations(&g, &allowing(actions));
        let paths: Vec<&str> = v.iter().map(|m| m.split(": ").next().unwrap()).collect();
        assert_eq!(paths, expected, "{actions}: {v:?}");
    }
    // Deny statements grant nothing.
    let deny = resource(
        "  document: {Version: \"2012-10-17\", Statement: [{Effect: Deny, Action: \"iam:*\", Resource: \"*\"}]}\n",
        "Policy",
    );
    assert_eq!(violations(&g, &deny), Vec::<String>::new());
    // Inline policies of a role count too.
    let inline = role(
        "  inlinePolicies:\n    p: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"iam:CreateRole\", Resource: \"*\"}]}\n",
    );
    assert_eq!(
        violations(&g, &inline)[0].split(": ").next(),
        Some("spec.inlinePolicies.p.Statement[0].Action")
    );
}

#[test]
fn denied_trust_principals_and_accounts_outside_the_list_are_refused() {
    let g = rules(
        "denyTrustPrincipals: [\"*\", \"arn:aws:iam::*:root\"]\nallowedTrustAccounts: [\"111111111111\"]\n",
    );
    for (principal, expected) in [
        ("{Service: ecs-tasks.amazonaws.com}", 0),
        ("{AWS: \"arn:aws:iam::111111111111:role/ci\"}", 0),
        ("{AWS: \"111111111111\"}", 0),
        ("\"*\"", 2),
        ("{AWS: \"*\"}", 2),
        ("{AWS: \"arn:aws:iam::111111111111:root\"}", 1),
        ("{AWS: \"arn:aws:iam::222222222222:role/x\"}", 1),
        ("{AWS: \"222222222222\"}", 1),
        (
            "{Federated: \"arn:aws:iam::222222222222:oidc-provider/x\"}",
            1,
        ),
        ("{AWS: \"arn:aws:iam::*:role/x\"}", 1),
    ] {
        let v = violations(&g, &trusting(principal));
        assert_eq!(v.len(), expected, "{principal}: {v:?}");
        assert!(
            v.iter()
                .all(|m| m.starts_with("spec.assumeRolePolicy.Statement[0].Principal")),
            "{v:?}"
        );
    }
}

#[test]
fn prune_stays_under_the_allowed_paths() {
    let g = rules("allowedPathPrefixes: [/agent/]\n");
    assert!(g.allows_arn("arn:aws:iam::1:role/agent/x"));
    assert!(!g.allows_arn("arn:aws:iam::1:role/x"));
    assert!(Guardrails::default().allows_arn("arn:aws:iam::1:role/x"));
}

#[test]
fn flags_and_file_combine_and_the_stricter_wins() {
    let g = Guardrails {
        sources: vec![
            (
                "flags".into(),
                Rules::from_yaml("allowedPathPrefixes: [/agent/]").unwrap(),
            ),
            (
                "g.yaml".into(),
                Rules::from_yaml("allowedPathPrefixes: [/agent/ecs/]").unwrap(),
            ),
        ],
    };
    assert_eq!(
        violations(&g, &role("  path: /agent/ecs/\n")),
        Vec::<String>::new()
    );
    let v = violations(&g, &role("  path: /agent/\n"));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].ends_with("(guardrail from g.yaml)"));
}

#[test]
fn a_guardrails_file_with_an_unknown_field_or_a_bad_account_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    std::fs::write(&path, "denyAction: [\"*\"]\n").unwrap();
    let e = Guardrails::load(Rules::default(), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(e.contains("denyAction") && e.contains("line 1"), "{e}");
    assert!(e.contains("did you mean `denyActions`"), "{e}");
    for (text, says) in [
        (
            "denyActions: \"iam:*\"\n",
            "line 1: denyActions: invalid type",
        ),
        (
            "requirePermissionsBoundary: x\ndenyActions: {a: b}\n",
            "line 2: denyActions",
        ),
        ("- denyActions\n", "a mapping of rules, not a"),
        (
            "denyActions: [a:b]\n---\ndenyActions: [c:d]\n",
            "holds 2 documents",
        ),
        ("a: &x [*x]\n", "line 1"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = Guardrails::load(Rules::default(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{text:?}: {e}");
    }
    std::fs::write(&path, "allowedTrustAccounts: [\"12345\"]\n").unwrap();
    let e = Guardrails::load(Rules::default(), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a 12-digit account id"), "{e}");
    for blank in ["", "# all rules off\n\n"] {
        std::fs::write(&path, blank).unwrap();
        let e = Guardrails::load(Rules::default(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is empty"), "{e}");
    }
    std::fs::write(&path, "denyActions: [\"iam\"]\n").unwrap();
    let e = Guardrails::load(Rules::default(), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(e.contains("can never match an action"), "{e}");
    let flags = Rules {
        deny_actions: vec!["iam".into()],
        ..Rules::default()
    };
    assert!(Guardrails::load(flags, None).is_err());
}

#[test]
fn an_issuer_url_allow_list_never_lets_a_wildcard_cross_from_host_into_path() {
    let g = rules("allowedOidcProviderUrls: [\"https://oidc.eks.*.amazonaws.com/id/*\"]\n");
    let provider = |url: &str| resource(&format!("  url: {url}\n"), "OpenIDConnectProvider");
    assert!(
        violations(
            &g,
            &provider("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC")
        )
        .is_empty()
    );
    assert!(
        violations(
            &g,
            &provider("https://OIDC.EKS.eu-west-1.amazonaws.com/id/ABC")
        )
        .is_empty(),
        "hosts ignore case"
    );
    for bad in [
        "https://oidc.eks.attacker.example/x.amazonaws.com/id/1",
        "https://token.actions.githubusercontent.com",
        "https://oidc.eks.eu-west-1.amazonaws.com/other/ABC",
    ] {
        let v = violations(&g, &provider(bad));
        assert_eq!(v.len(), 1, "{bad}: {v:?}");
        assert!(v[0].starts_with("spec.url: "), "{v:?}");
    }
    // Prune judges a provider by the same list (it has no path for the path guardrail).
    assert!(g.allows_arn("arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"));
    assert!(
        !g.allows_arn(
            "arn:aws:iam::1:oidc-provider/oidc.eks.attacker.example/x.amazonaws.com/id/1"
        )
    );
    let paths = rules("allowedPathPrefixes: [/agent/]\n");
    assert!(paths.allows_arn("arn:aws:iam::1:oidc-provider/anything.example.com"));
}
