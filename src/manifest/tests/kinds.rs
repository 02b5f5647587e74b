//! InstanceProfile and OpenIDConnectProvider manifests: each rule accepted and refused.

use super::*;

fn profile(spec: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: InstanceProfile\nmetadata:\n  name: web\nspec:\n{spec}"
    )
}

fn provider(spec: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: OpenIDConnectProvider\nmetadata:\n  name: eks\nspec:\n{spec}"
    )
}

#[test]
fn an_instance_profile_holds_one_role_by_name_or_by_ref() {
    let Resource::InstanceProfile(p) = only(&profile("  role: web-role\n  tags: {team: web}\n"))
    else {
        panic!()
    };
    assert_eq!(
        (p.path.as_str(), p.role, p.tags.len()),
        ("/", Some(RoleRef::Name("web-role".into())), 1)
    );
    let Resource::InstanceProfile(p) = only(&profile("  path: /x/\n  role: {ref: web-role}\n"))
    else {
        panic!()
    };
    assert_eq!(p.role, Some(RoleRef::Ref("web-role".into())));
    let Resource::InstanceProfile(p) = only(&profile("  {}\n")) else {
        panic!()
    };
    assert_eq!(p.role, None, "no role is a valid state");
}

#[test]
fn an_instance_profile_refuses_two_roles_a_bad_role_name_and_unknown_fields() {
    one_error(
        &profile("  role: [a, b]\n"),
        "spec.role",
        "IAM allows one role per instance profile",
    );
    one_error(&profile("  role: \"a role\"\n"), "spec.role", "");
    let errs = errors(&profile("  role: {name: x}\n"));
    assert!(
        errs.iter()
            .any(|e| e.contains("spec.role.name: unknown field `name`")),
        "{errs:?}"
    );
    one_error(
        &profile("  roles: x\n"),
        "spec.roles",
        "did you mean `role`?",
    );
    one_error(&profile("  path: x\n"), "spec.path", "");
}

#[test]
fn a_provider_is_its_url_client_ids_and_optional_thumbprints() {
    let Resource::OpenIDConnectProvider(p) = only(&provider(
        "  url: https://oidc.example.com/id/ABC\n  clientIDs: [sts.amazonaws.com, b]\n  thumbprints: [9E99A48A9960B14926BB7F3B02E22DA2B0AB7280]\n",
    )) else {
        panic!()
    };
    assert_eq!(p.host_path(), "oidc.example.com/id/ABC");
    assert_eq!(p.client_ids.len(), 2);
    assert_eq!(
        p.thumbprints,
        Some(["9e99a48a9960b14926bb7f3b02e22da2b0ab7280".to_string()].into()),
        "thumbprints are hex: kept lowercase"
    );
    let Resource::OpenIDConnectProvider(p) = only(&provider("  url: https://x.example.com\n"))
    else {
        panic!()
    };
    assert!(p.client_ids.is_empty());
    assert_eq!(p.thumbprints, None, "absent: IAM's own are fine");
}

#[test]
fn a_provider_refuses_what_iam_refuses() {
    one_error(&provider("  clientIDs: [a]\n"), "spec.url", "is required");
    one_error(
        &provider("  url: http://x.example.com\n"),
        "spec.url",
        "https://",
    );
    one_error(
        &provider("  url: https://x.example.com/\n"),
        "spec.url",
        "trailing slash",
    );
    one_error(
        &provider("  url: https://x.example.com:8443/id\n"),
        "spec.url",
        "port",
    );
    one_error(
        &provider("  url: https://x.example.com?a=1\n"),
        "spec.url",
        "query",
    );
    one_error(
        &provider("  url: https://x.example.com\n  thumbprints: [abc]\n"),
        "spec.thumbprints[0]",
        "40 hex digits",
    );
    let six: Vec<String> = (0..6).map(|i| format!("{i:040}")).collect();
    one_error(
        &provider(&format!(
            "  url: https://x.example.com\n  thumbprints: [{}]\n",
            six.join(", ")
        )),
        "spec.thumbprints",
        "at most 5",
    );
    let ids: Vec<String> = (0..101).map(|i| format!("id{i}")).collect();
    one_error(
        &provider(&format!(
            "  url: https://x.example.com\n  clientIDs: [{}]\n",
            ids.join(", ")
        )),
        "spec.clientIDs",
        "at most 100",
    );
    one_error(
        &provider("  url: https://x.example.com\n  clientIDs: [a, a]\n"),
        "spec.clientIDs[1]",
        "listed twice",
    );
}

#[test]
fn two_providers_with_one_url_are_one_provider_declared_twice() {
    let a = provider("  url: https://x.example.com\n");
    let b = a.replace("name: eks", "name: other");
    let (state, diags) = assemble([only(&a), only(&b)]);
    // Both are named and neither is used: no manifest can take over another's provider.
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(
        diags
            .iter()
            .all(|d| d.message.contains("IAM holds one provider per url")),
        "{diags:#?}"
    );
    assert!(state.oidc_providers.is_empty());
    // IAM keeps a url as written: another case in the host is another provider.
    let c = a
        .replace("x.example.com", "X.example.com")
        .replace("name: eks", "name: upper");
    let (state, diags) = assemble([only(&a), only(&c)]);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(state.oidc_providers.len(), 2);
}

#[test]
fn a_federated_ref_becomes_the_providers_arn_only_when_planned() {
    let role_text = "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: r}\nspec:\n  assumeRolePolicy:\n    Version: \"2012-10-17\"\n    Statement:\n      - Effect: Allow\n        Principal: {Federated: [{ref: eks}, \"arn:aws:iam::1:saml-provider/x\"]}\n        Action: sts:AssumeRoleWithWebIdentity\n";
    let Resource::Role(role) = only(role_text) else {
        panic!()
    };
    assert_eq!(role.provider_refs(), ["eks"]);
    let trust = role.trust_with_providers(|n| (n == "eks").then(|| "ARN".to_string()));
    assert_eq!(
        trust.value()["Statement"][0]["Principal"]["Federated"],
        serde_json::json!(["ARN", "arn:aws:iam::1:saml-provider/x"])
    );
    // Also inside a trust policy written as a JSON string.
    let json = "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: r}\nspec:\n  assumeRolePolicy: '{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"Federated\":{\"ref\":\"eks\"}},\"Action\":\"sts:AssumeRoleWithWebIdentity\"}}'\n";
    let Resource::Role(role) = only(json) else {
        panic!()
    };
    assert_eq!(role.provider_refs(), ["eks"]);
    // A mapping that is not {ref: NAME} is refused where it stands.
    let bad = role_text.replace("{ref: eks}", "{name: eks}");
    one_error(&bad, "spec.assumeRolePolicy", "{ref: NAME}");
    // Nowhere else is {ref} a provider: an identity policy's Principal is the grammar's.
    let refs = DesiredState::default();
    assert!(refs.oidc_provider("eks").is_none());
}
