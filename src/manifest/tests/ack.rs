//! ACK iam-controller objects: read as they are, rewritten into the native shape, each field
//! and annotation ACK has either honoured or refused by name.

use super::*;

const ACK_ROLE: &str = r#"apiVersion: iam.services.k8s.aws/v1alpha1
kind: Role
metadata:
  name: k8s-role
  namespace: team-a
  annotations:
    services.k8s.aws/deletion-policy: retain
    services.k8s.aws/read-only: "true"
    services.k8s.aws/region: us-west-2
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  name: RealRole
  path: /ack/
  description: from ACK
  maxSessionDuration: 7200
  assumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
  permissionsBoundaryRef: {from: {name: k8s-boundary}}
  policies: [arn:aws:iam::aws:policy/ReadOnlyAccess]
  policyRefs:
    - from: {name: k8s-policy, namespace: team-a}
  inlinePolicies:
    s3: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
  tags:
    - key: team
      value: data
    - key: empty
status:
  ackResourceMetadata: {arn: x}
  conditions: []
"#;

#[test]
fn an_ack_role_becomes_the_role_it_describes() {
    let Resource::Role(r) = only(ACK_ROLE) else {
        panic!()
    };
    assert_eq!(r.name, "RealRole", "spec.name is the IAM name");
    assert_eq!(
        r.origin.k8s,
        Some(K8sName {
            namespace: "team-a".into(),
            name: "k8s-role".into()
        })
    );
    assert_eq!(
        (
            r.path.as_str(),
            r.description.as_str(),
            r.max_session_duration
        ),
        ("/ack/", "from ACK", 7200)
    );
    assert_eq!(
        r.permissions_boundary,
        Some(PolicyRef::Ref("k8s-boundary".into()))
    );
    assert!(
        r.managed_policies
            .contains(&PolicyRef::Ref("k8s-policy".into()))
    );
    assert!(r.managed_policies.contains(&PolicyRef::Arn(
        "arn:aws:iam::aws:policy/ReadOnlyAccess".into()
    )));
    assert_eq!(r.inline_policies.len(), 1);
    assert_eq!(r.tags.get("team").map(String::as_str), Some("data"));
    assert_eq!(r.tags.get("empty").map(String::as_str), Some(""));
    let a = &r.annotations;
    assert!(never_pruned(a), "deletion-policy: retain is prune: never");
    assert!(observe_only(a), "read-only is observe mode");
    assert!(a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
}

#[test]
fn refs_by_kubernetes_name_resolve_to_the_iam_names() {
    let policy = |k8s: &str, iam: &str| {
        format!(
            "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {{name: {k8s}, namespace: team-a}}\nspec:\n  name: {iam}\n  policyDocument: '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}]}}'\n"
        )
    };
    let profile = "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: InstanceProfile\nmetadata: {name: k8s-profile, namespace: team-a}\nspec:\n  name: RealProfile\n  roleRef: {from: {name: k8s-role}}\n";
    let text = format!(
        "{ACK_ROLE}---\n{}---\n{}---\n{profile}",
        policy("k8s-policy", "RealPolicy"),
        policy("k8s-boundary", "RealBoundary")
    );
    let report = load_text(&text);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    let (state, diags) = assemble(report.resources.iter().cloned());
    assert!(diags.is_empty(), "{diags:#?}");
    let role = state.role("RealRole").unwrap();
    assert!(
        role.managed_policies
            .contains(&PolicyRef::Ref("RealPolicy".into()))
    );
    assert_eq!(
        role.permissions_boundary,
        Some(PolicyRef::Ref("RealBoundary".into()))
    );
    assert_eq!(
        state.instance_profile("RealProfile").unwrap().role,
        Some(RoleRef::Ref("RealRole".into()))
    );
}

#[test]
fn an_ack_ref_means_the_kubernetes_name_in_its_own_namespace_first() {
    let role = |ns: &str, k8s: &str, iam: &str| {
        format!(
            "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: Role\nmetadata: {{name: {k8s}, namespace: {ns}}}\nspec:\n  name: {iam}\n  assumeRolePolicyDocument: '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"ec2.amazonaws.com\"}},\"Action\":\"sts:AssumeRole\"}}]}}'\n"
        )
    };
    let profile = |ns: &str| {
        format!(
            "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: InstanceProfile\nmetadata: {{name: p-{ns}, namespace: {ns}}}\nspec:\n  name: p-{ns}\n  roleRef: {{from: {{name: web}}}}\n"
        )
    };
    // `web` is a role's Kubernetes name in team-a and team-b, and another role's IAM name.
    let text = [
        role("team-a", "web", "a-web"),
        role("team-b", "web", "b-web"),
        role("team-a", "other", "web"),
        profile("team-a"),
        profile("team-b"),
    ]
    .join("---\n");
    let report = load_text(&text);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    let (state, diags) = assemble(report.resources.iter().cloned());
    assert!(diags.is_empty(), "{diags:#?}");
    let role_of = |p: &str| state.instance_profile(p).unwrap().role.clone();
    assert_eq!(role_of("p-team-a"), Some(RoleRef::Ref("a-web".into())));
    assert_eq!(role_of("p-team-b"), Some(RoleRef::Ref("b-web".into())));
    // A ref into another namespace is not resolved silently.
    let across = profile("team-a").replace("{name: web}", "{name: web, namespace: team-b}");
    one_error(&across, "spec.roleRef.from.namespace", "own namespace");
    // One Kubernetes object declared twice is an error.
    let twice = [
        role("team-a", "web", "a-web"),
        role("team-a", "web", "a-web2"),
    ]
    .join("---\n");
    let report = load_text(&twice);
    let (_, diags) = assemble(report.resources.iter().cloned());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(diags[0].message.contains("declared twice"), "{diags:#?}");
}

#[test]
fn errors_name_acks_fields_and_lines() {
    let text = ACK_ROLE.replace("maxSessionDuration: 7200", "maxSessionDuration: 100");
    let line = one_error(&text, "spec.maxSessionDuration", "3600");
    assert_eq!(line, 15);
    let text = ACK_ROLE.replace(
        "\"Action\":\"sts:AssumeRole\"",
        "\"Actoin\":\"sts:AssumeRole\"",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("16: spec.assumeRolePolicyDocument.Statement[0].Actoin")),
        "{errs:?}"
    );
    let text = ACK_ROLE.replace("value: data", "value: [data]");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.contains("spec.tags[0]")), "{errs:?}");
}

#[test]
fn what_ack_has_and_iam_warden_cannot_honour_is_an_error_never_dropped() {
    for (from, to, path, needle) in [
        (
            "  description: from ACK\n",
            "  descripton: x\n",
            "spec.descripton",
            "did you mean `description`?",
        ),
        (
            "services.k8s.aws/region: us-west-2",
            "services.k8s.aws/adopton-policy: adopt",
            "metadata.annotations.services.k8s.aws/adopton-policy",
            "cannot honour",
        ),
        (
            "services.k8s.aws/read-only: \"true\"",
            "services.k8s.aws/read-only: maybe",
            "metadata.annotations.services.k8s.aws/read-only",
            "\"true\" or \"false\"",
        ),
        (
            "services.k8s.aws/deletion-policy: retain",
            "services.k8s.aws/deletion-policy: orphan",
            "metadata.annotations.services.k8s.aws/deletion-policy",
            "\"retain\" or \"delete\"",
        ),
        (
            "services.k8s.aws/region: us-west-2",
            "services.k8s.aws/owner-account-id: prod",
            "metadata.annotations.services.k8s.aws/owner-account-id",
            "12-digit",
        ),
        (
            "  namespace: team-a\n",
            "  namespace: team-a\n  generateName: x-\n",
            "metadata.generateName",
            "unknown field",
        ),
        ("  name: RealRole\n", "", "spec.name", "the IAM name"),
        (
            "  permissionsBoundaryRef: {from: {name: k8s-boundary}}\n",
            "  permissionsBoundaryRef: {from: {name: b}}\n  permissionsBoundary: arn:aws:iam::aws:policy/X\n",
            "spec.permissionsBoundaryRef",
            "give one",
        ),
        (
            "    - key: empty\n",
            "    - key: team\n      value: again\n",
            "spec.tags[1].key",
            "listed twice",
        ),
    ] {
        assert!(ACK_ROLE.contains(from), "{from}");
        let text = ACK_ROLE.replace(from, to);
        one_error(&text, path, needle);
    }
}

#[test]
fn an_ack_adoption_without_a_spec_says_to_write_the_spec_with_import() {
    let text = "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: Role\nmetadata:\n  name: r\n  annotations:\n    services.k8s.aws/adoption-policy: adopt\n    services.k8s.aws/adoption-fields: '{\"name\": \"r\"}'\n";
    one_error(text, "spec", "iam-warden import");
    // With a spec, adoption-fields must name the resource the spec names.
    let with_spec = format!(
        "{}spec:\n  name: other\n  assumeRolePolicyDocument: '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"ec2.amazonaws.com\"}},\"Action\":\"sts:AssumeRole\"}}]}}'\n",
        text
    );
    one_error(
        &with_spec,
        "metadata.annotations.services.k8s.aws/adoption-fields",
        "iam-warden adopts the resource the spec names",
    );
    let Resource::Role(r) = only(&with_spec.replace("name: other", "name: r")) else {
        panic!()
    };
    assert!(
        adopts(&r.annotations),
        "adopt (and adopt-or-create) is adopt"
    );
}

#[test]
fn an_ack_provider_is_named_by_its_object_and_keeps_its_thumbprints_optional() {
    let text = "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: OpenIDConnectProvider\nmetadata: {name: eks}\nspec:\n  url: https://oidc.example.com\n  clientIDs: [sts.amazonaws.com]\n  tags: [{key: a, value: b}]\n";
    let Resource::OpenIDConnectProvider(p) = only(text) else {
        panic!()
    };
    assert_eq!((p.name.as_str(), p.thumbprints.clone()), ("eks", None));
    assert_eq!(p.origin.k8s.map(|k| k.name).as_deref(), Some("eks"));
}

#[test]
fn an_owner_account_id_is_the_accounts_the_manifest_applies_to() {
    let text = ACK_ROLE.replace(
        "services.k8s.aws/region: us-west-2",
        "services.k8s.aws/owner-account-id: \"111111111111\"",
    );
    let (docs, _) = yaml::parse_documents(&text);
    let native = crate::manifest::ack::to_native(docs[0].root.as_ref().unwrap()).unwrap();
    let json = native.node.to_json();
    assert_eq!(
        json["metadata"]["annotations"][ACCOUNTS_ANNOTATION],
        "111111111111"
    );
    // Without --accounts, the one account is the caller's: a manifest for another account
    // declares nothing here.
    let report = load_text(&text);
    assert!(report.resources.is_empty() && report.diagnostics.is_empty());
    assert_eq!(report.elsewhere.len(), 1);
}

#[test]
fn an_ack_object_of_a_kind_ack_does_not_have_is_refused() {
    let text = "apiVersion: iam.services.k8s.aws/v1alpha1\nkind: User\nmetadata: {name: u}\nspec: {name: u}\n";
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|e| e.contains("ACK's kind `User` is not one iam-warden manages")),
        "{errs:?}"
    );
}
