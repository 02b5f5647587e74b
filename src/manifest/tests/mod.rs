//! Loading and validation of manifests, end to end over text: each rule once accepted and once
//! rejected, with the field path and line the error must name.

use std::fs;

use super::*;

const TRUST: &str = "  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement:
      - Effect: Allow
        Principal: {Service: ecs-tasks.amazonaws.com}
        Action: sts:AssumeRole
";

fn role(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata:\n  name: {name}\nspec:\n{TRUST}{extra_spec}"
    )
}

fn policy(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata:\n  name: {name}\nspec:\n  document:\n    Version: \"2012-10-17\"\n    Statement:\n      - {{Effect: Allow, Action: \"s3:GetObject\", Resource: \"*\"}}\n{extra_spec}"
    )
}

fn load_text(text: &str) -> FileReport {
    load_text_with(text, &Variables::default())
}

fn load_text_with(text: &str, vars: &Variables) -> FileReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    fs::write(&path, text).unwrap();
    let mut report = load_file(&path, vars);
    for d in &mut report.diagnostics {
        d.file = "m.yaml".into();
    }
    report
}

/// The diagnostics of `text` as `LINE: PATH: message` strings.
fn errors(text: &str) -> Vec<String> {
    load_text(text)
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}: {}", d.line.unwrap_or(0), d.path, d.message))
        .collect()
}

/// Asserts exactly one error, at `path`, whose message contains `needle`; returns its line.
fn one_error(text: &str, path: &str, needle: &str) -> usize {
    let report = load_text(text);
    assert_eq!(
        report.diagnostics.len(),
        1,
        "expected one error, got {:#?}",
        report.diagnostics
    );
    let d = &report.diagnostics[0];
    assert_eq!(d.path.to_string(), path, "{d}");
    assert!(
        d.message.contains(needle),
        "`{}` does not contain `{needle}`",
        d.message
    );
    assert!(report.resources.is_empty());
    d.line.unwrap_or(0)
}

/// The one resource `text` declares; it must be valid.
fn only(text: &str) -> Resource {
    let report = load_text(text);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    match report.resources.as_slice() {
        [r] => r.clone(),
        other => panic!("expected one resource, got {other:?}"),
    }
}

fn only_role(text: &str) -> DesiredRole {
    let report = load_text(text);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    match report.resources.as_slice() {
        [Resource::Role(r)] => r.clone(),
        other => panic!("expected one role, got {other:?}"),
    }
}

#[test]
fn a_minimal_role_gets_the_contract_defaults() {
    let r = only_role(&role("app", ""));
    assert_eq!(r.path, "/");
    assert_eq!(r.description, "");
    assert_eq!(r.max_session_duration, 3600);
    assert_eq!(r.permissions_boundary, None);
    assert!(r.managed_policies.is_empty() && r.inline_policies.is_empty() && r.tags.is_empty());
    assert_eq!(r.origin.line, 1);
}

#[test]
fn a_full_role_is_decoded_field_by_field() {
    let r = only_role(&role(
        "app",
        "  path: /agent/
  description: Agent task role
  maxSessionDuration: 7200
  permissionsBoundary: {ref: boundary}
  managedPolicies:
    - arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
    - ref: agent-task-policy
  inlinePolicies:
    s3: '{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"}}'
  tags: {team: data, cost: 42}
",
    ));
    assert_eq!(r.path, "/agent/");
    assert_eq!(r.description, "Agent task role");
    assert_eq!(r.max_session_duration, 7200);
    assert_eq!(
        r.permissions_boundary,
        Some(PolicyRef::Ref("boundary".into()))
    );
    assert_eq!(
        r.managed_policies,
        [
            PolicyRef::Arn(
                "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy".into()
            ),
            PolicyRef::Ref("agent-task-policy".into()),
        ]
    );
    assert_eq!(r.inline_policies.keys().collect::<Vec<_>>(), ["s3"]);
    assert_eq!(r.tags.get("cost").map(String::as_str), Some("42"));
}

#[test]
fn a_policy_is_decoded() {
    let report = load_text(&policy(
        "p",
        "  path: /x/\n  description: d\n  tags: {a: b}\n",
    ));
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    let [Resource::Policy(p)] = report.resources.as_slice() else {
        panic!("not a policy")
    };
    assert_eq!(
        (p.name.as_str(), p.path.as_str(), p.description.as_str()),
        ("p", "/x/", "d")
    );
    assert_eq!(
        p.document.to_json(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
    );
}

#[test]
fn policy_documents_may_be_json_strings_or_yaml_and_mean_the_same() {
    let yaml = only_role(&role("a", ""));
    let json = only_role(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: a}\nspec:\n  assumeRolePolicy: |\n    {\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"Service\": \"ecs-tasks.amazonaws.com\"}, \"Action\": \"sts:AssumeRole\"}]}\n",
    );
    assert!(
        yaml.assume_role_policy
            .is_equivalent(&json.assume_role_policy)
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    one_error(
        "- a\n- b\n",
        "",
        "must be a mapping (apiVersion, kind, metadata, spec), not a list",
    );
    one_error("just a string\n", "", "not a string");
}

#[test]
fn api_version_kind_and_name_are_required() {
    let text = "metadata: {}\nspec: {}\n";
    let errs = errors(text);
    assert!(
        errs.iter().any(|e| e.contains("apiVersion: is required")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("kind: is required")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("metadata.name: is required")),
        "{errs:?}"
    );
}

#[test]
fn unknown_api_version_and_kind_are_errors() {
    let text = role("a", "").replace("iamwarden/v1alpha1", "iamwarden/v2");
    assert_eq!(
        one_error(
            &text,
            "apiVersion",
            "unsupported apiVersion `iamwarden/v2` (supported: iamwarden/v1alpha1)"
        ),
        1
    );
    let text = role("a", "").replace("kind: Role", "kind: Rol");
    one_error(&text, "kind", "unknown kind `Rol`; did you mean `Role`?");
}

#[test]
fn unknown_fields_name_the_closest_known_one() {
    let line = one_error(
        &role("a", "  managedPolicy: []\n"),
        "spec.managedPolicy",
        "did you mean `managedPolicies`?",
    );
    assert_eq!(line, 12);
    one_error(
        &role("a", "").replace("metadata:", "metdata: {}\nmetadata:"),
        "metdata",
        "did you mean `metadata`?",
    );
    one_error(
        &role("a", "").replace("  name: a", "  name: a\n  labels: {}"),
        "metadata.labels",
        "unknown field `labels`",
    );
}

#[test]
fn role_names_follow_iam_rules() {
    only_role(&role("a+=,.@-_1", ""));
    one_error(
        &role("my role", ""),
        "metadata.name",
        "allowed are letters, digits and _+=,.@-",
    );
    one_error(
        &role(&"r".repeat(65), ""),
        "metadata.name",
        "1 to 64 characters",
    );
    let report = load_text(&policy(&"p".repeat(128), ""));
    assert!(report.diagnostics.is_empty());
    one_error(
        &policy(&"p".repeat(129), ""),
        "metadata.name",
        "1 to 128 characters",
    );
}

#[test]
fn paths_are_checked() {
    assert_eq!(only_role(&role("a", "  path: /a/b/\n")).path, "/a/b/");
    one_error(
        &role("a", "  path: agent\n"),
        "spec.path",
        "must begin and end with `/`",
    );
    one_error(
        &policy("p", "  path: /x\n"),
        "spec.path",
        "must begin and end with `/`",
    );
}

#[test]
fn descriptions_are_checked() {
    only_role(&role(
        "a",
        &format!("  description: {}\n", "d".repeat(1000)),
    ));
    one_error(
        &role("a", &format!("  description: {}\n", "d".repeat(1001))),
        "spec.description",
        "at most 1000",
    );
    one_error(
        &policy("p", &format!("  description: {}\n", "d".repeat(1001))),
        "spec.description",
        "at most 1000",
    );
}

#[test]
fn max_session_duration_is_a_number_in_range() {
    assert_eq!(
        only_role(&role("a", "  maxSessionDuration: 43200\n")).max_session_duration,
        43200
    );
    one_error(
        &role("a", "  maxSessionDuration: 60\n"),
        "spec.maxSessionDuration",
        "between 3600 and 43200",
    );
    one_error(
        &role("a", "  maxSessionDuration: one hour\n"),
        "spec.maxSessionDuration",
        "whole number",
    );
}

#[test]
fn permissions_boundary_is_an_arn_or_a_ref() {
    let r = only_role(&role(
        "a",
        "  permissionsBoundary: arn:aws:iam::aws:policy/PowerUserAccess\n",
    ));
    assert_eq!(
        r.permissions_boundary,
        Some(PolicyRef::Arn(
            "arn:aws:iam::aws:policy/PowerUserAccess".into()
        ))
    );
    one_error(
        &role("a", "  permissionsBoundary: PowerUserAccess\n"),
        "spec.permissionsBoundary",
        "not an IAM policy ARN",
    );
    let errs = errors(&role("a", "  permissionsBoundary: {reff: x}\n"));
    assert!(
        errs.iter().any(|e| e
            .contains("spec.permissionsBoundary.reff: unknown field `reff`; did you mean `ref`?")),
        "{errs:?}"
    );
}

#[test]
fn managed_policies_are_arns_or_refs_without_duplicates() {
    one_error(
        &role("a", "  managedPolicies: [arn:aws:s3:::bucket]\n"),
        "spec.managedPolicies[0]",
        "not an IAM policy ARN",
    );
    one_error(
        &role("a", "  managedPolicies: [{ref: p}, {ref: p}]\n"),
        "spec.managedPolicies[1]",
        "listed twice",
    );
    one_error(
        &role("a", "  managedPolicies: {ref: p}\n"),
        "spec.managedPolicies",
        "must be a list",
    );
    let many: Vec<String> = (0..21)
        .map(|i| format!("arn:aws:iam::aws:policy/P{i}"))
        .collect();
    one_error(
        &role("a", &format!("  managedPolicies: [{}]\n", many.join(", "))),
        "spec.managedPolicies",
        "at most 20",
    );
    let twenty = &many[..20];
    assert_eq!(
        only_role(&role(
            "a",
            &format!("  managedPolicies: [{}]\n", twenty.join(", "))
        ))
        .managed_policies
        .len(),
        20
    );
}

#[test]
fn assume_role_policy_is_required_and_is_a_trust_policy() {
    let text = "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: a}\nspec: {}\n";
    one_error(text, "spec.assumeRolePolicy", "is required");
    let text = role("a", "").replace(
        "Principal: {Service: ecs-tasks.amazonaws.com}",
        "Resource: \"*\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("9: spec.assumeRolePolicy.Statement[0].Principal: is required"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("10: spec.assumeRolePolicy.Statement[0].Resource: is not allowed"),
        "{errs:?}"
    );
}

#[test]
fn inline_policies_are_identity_policies_and_errors_point_into_them() {
    let text = role(
        "a",
        "  inlinePolicies:
    s3:
      Version: \"2012-10-17\"
      Statement:
        - Effect: Allow
          Action: s3:GetObject
          Resource: \"*\"
        - Effect: Allow
          Action: [s3:PutObject, PutObject]
          Resource: \"*\"
",
    );
    let line = one_error(
        &text,
        "spec.inlinePolicies.s3.Statement[1].Action[1]",
        "is not an action",
    );
    assert_eq!(line, 20);
    let bad_name = role(
        "a",
        "  inlinePolicies:\n    \"my policy\": {Version: \"2012-10-17\", Statement: {Effect: Allow, Action: \"*\", Resource: \"*\"}}\n",
    );
    one_error(
        &bad_name,
        "spec.inlinePolicies.my policy",
        "allowed are letters",
    );
    let principal = role(
        "a",
        "  inlinePolicies:\n    p: {Version: \"2012-10-17\", Statement: {Effect: Allow, Action: \"*\", Resource: \"*\", Principal: \"*\"}}\n",
    );
    one_error(
        &principal,
        "spec.inlinePolicies.p.Statement.Principal",
        "not allowed in an identity policy",
    );
}

#[test]
fn invalid_json_strings_name_the_position_inside_the_string() {
    let text = role(
        "a",
        "  inlinePolicies:\n    p: '{\"Version\": \"2012-10-17\",'\n",
    );
    one_error(
        &text,
        "spec.inlinePolicies.p",
        "invalid JSON in policy string (its line 1, column",
    );
    one_error(
        &role("a", "  inlinePolicies:\n    p: [1]\n"),
        "spec.inlinePolicies.p",
        "must be a policy document",
    );
}

#[test]
fn policy_sizes_are_limited() {
    let actions: Vec<String> = (0..450).map(|i| format!("s3:GetObjectNumber{i}")).collect();
    let big = format!(
        "  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: [{}], Resource: \"*\"}}}}\n",
        actions.join(", ")
    );
    one_error(&role("a", &big), "spec.inlinePolicies", "IAM allows 10240");
    let doc = format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata: {{name: p}}\nspec:\n  document: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: [{}], Resource: \"*\"}}}}\n",
        actions[..300].join(", ")
    );
    one_error(&doc, "spec.document", "IAM allows 6144");
    let services: Vec<String> = (0..100).map(|i| format!("svc{i}.amazonaws.com")).collect();
    let trust = format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: a}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: [{}]}}}}}}\n",
        services.join(", ")
    );
    one_error(&trust, "spec.assumeRolePolicy", "IAM allows 2048");
}

#[test]
fn tags_are_checked() {
    assert_eq!(
        only_role(&role("a", "  tags: {team: data}\n")).tags.len(),
        1
    );
    one_error(
        &role("a", "  tags: {\"aws:x\": y}\n"),
        "spec.tags.aws:x",
        "reserved for AWS",
    );
    one_error(
        &role("a", "  tags: {iam-warden/owner: me}\n"),
        "spec.tags.iam-warden/owner",
        "set by iam-warden",
    );
    one_error(
        &role("a", &format!("  tags: {{t: {}}}\n", "v".repeat(257))),
        "spec.tags.t",
        "at most 256",
    );
    let many: Vec<String> = (0..50).map(|i| format!("k{i}: v")).collect();
    one_error(
        &role("a", &format!("  tags: {{{}}}\n", many.join(", "))),
        "spec.tags",
        "at most 49",
    );
    one_error(
        &role("a", "  tags: [a]\n"),
        "spec.tags",
        "must be a mapping",
    );
}

#[test]
fn the_adopt_annotation_is_true_or_false() {
    let text = role("a", "").replace(
        "  name: a",
        "  name: a\n  annotations: {iam-warden/adopt: \"true\"}",
    );
    assert!(adopts(&only_role(&text).annotations));
    let text = role("a", "").replace(
        "  name: a",
        "  name: a\n  annotations: {iam-warden/adopt: \"yes\"}",
    );
    one_error(
        &text,
        "metadata.annotations.iam-warden/adopt",
        "must be \"true\" or \"false\"",
    );
}

#[test]
fn variables_are_resolved_everywhere_and_undefined_ones_are_errors() {
    let mut vars = Variables::default();
    vars.set("env", "prod");
    vars.set("max", "7200");
    let text = role(
        "app-${var.env}",
        "  maxSessionDuration: ${var.max}\n  description: ${aws:username} stays\n",
    );
    let report = load_text_with(&text, &vars);
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    assert_eq!(r.name, "app-prod");
    assert_eq!(r.max_session_duration, 7200);
    assert_eq!(r.description, "${aws:username} stays");
    let line = one_error(
        &role("app-${var.missing}", ""),
        "metadata.name",
        "variable `missing` is not defined",
    );
    assert_eq!(line, 4);
}

#[test]
fn every_error_of_a_document_is_reported_not_just_the_first() {
    let text = role(
        "bad name",
        "  path: nope\n  maxSessionDuration: 1\n  tagz: {}\n",
    );
    assert_eq!(errors(&text).len(), 4, "{:?}", errors(&text));
}

#[test]
fn several_documents_per_file_and_empty_ones_are_ignored() {
    let text = format!("---\n{}\n---\n\n---\n{}", role("a", ""), policy("p", ""));
    let report = load_text(&text);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.resources.len(), 2);
    assert!(load_text("").resources.is_empty() && load_text("").diagnostics.is_empty());
    assert!(load_text("# nothing\n---\n").diagnostics.is_empty());
}

#[test]
fn a_file_with_an_error_declares_nothing() {
    let text = format!("{}\n---\n{}", role("good", ""), role("bad name", ""));
    let report = load_text(&text);
    assert!(report.resources.is_empty());
    assert_eq!(report.diagnostics.len(), 1);
}

#[test]
fn syntax_errors_keep_earlier_errors_and_name_a_line() {
    let errs = errors("a: [\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("invalid YAML"), "{errs:?}");
    let errs = errors("a: 1\na: 2\n");
    assert!(errs[0].starts_with("2: a: duplicate key `a`"), "{errs:?}");
}

mod accounts;
mod ack;
mod across_files;
mod kinds;
