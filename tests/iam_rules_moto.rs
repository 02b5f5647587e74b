//! IAM's own rules, end to end through the binary against moto: values reach IAM exactly as
//! written, built-in variables, names and tag keys ignore case, a policy cannot move paths,
//! swaps at a quota converge, and retries mean something (lost answers, principals that do not
//! exist yet or any more). The proxy plays what moto does not: IAM's quotas, "Invalid
//! principal", lost answers.

mod support;

use std::collections::BTreeSet;

use aws_sdk_iam::Client;
use iam_warden::policy::PolicyDocument;
use serde_json::json;
use support::bed::Bed;
use support::fixtures::tag;
use support::{run, warden};

const ACCOUNT: &str = "123456789012";

fn role(name: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: {name}}}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
{extra_spec}"#
    )
}

fn trusting(name: &str, principal: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: {name}}}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{AWS: "{principal}"}}, Action: sts:AssumeRole}}]
"#
    )
}

async fn trust_of(bed: &Bed, name: &str) -> serde_json::Value {
    let role = bed.role(name).await;
    PolicyDocument::from_iam(role.assume_role_policy_document().unwrap())
        .unwrap()
        .value()
        .clone()
}

async fn attached(iam: &Client, role: &str) -> BTreeSet<String> {
    iam.list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect()
}

async fn inline_names(iam: &Client, role: &str) -> Vec<String> {
    iam.list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec()
}

#[tokio::test]
async fn an_account_id_with_a_leading_zero_reaches_iam_as_the_string_written() {
    let manifest = r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: zero}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal: {Service: ecs-tasks.amazonaws.com}
        Action: sts:AssumeRole
        Condition:
          StringEquals:
            aws:SourceAccount: ${var.account_id}
            sts:ExternalId: ${var.ext}
"#;
    let bed = Bed::new(
        &[("zero.yaml", manifest)],
        &[
            "--var",
            "account_id=012345678901",
            "--var",
            "ext=123456789012345678901234",
        ],
    )
    .await;
    bed.converge();
    let trust = trust_of(&bed, "zero").await;
    let condition = &trust["Statement"][0]["Condition"]["StringEquals"];
    assert_eq!(
        condition["aws:SourceAccount"],
        json!("012345678901"),
        "{trust}"
    );
    assert_eq!(
        condition["sts:ExternalId"],
        json!("123456789012345678901234"),
        "{trust}"
    );
}

#[tokio::test]
async fn built_in_variables_and_variables_in_keys_make_an_irsa_trust_that_works_in_any_account() {
    let manifest = r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: irsa}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal: {Federated: "arn:${aws.partition}:iam::${aws.account_id}:oidc-provider/${var.oidc}"}
        Action: sts:AssumeRoleWithWebIdentity
        Condition:
          StringEquals:
            "${var.oidc}:sub": system:serviceaccount:agent:${aws.region}
"#;
    let oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC";
    let bed = Bed::new(
        &[("irsa.yaml", manifest)],
        &["--var", &format!("oidc={oidc}")],
    )
    .await;
    bed.converge();
    let trust = trust_of(&bed, "irsa").await;
    let statement = &trust["Statement"][0];
    assert_eq!(
        statement["Principal"]["Federated"],
        json!(format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}")),
        "{trust}"
    );
    assert_eq!(
        statement["Condition"]["StringEquals"][format!("{oidc}:sub")],
        json!("system:serviceaccount:agent:us-east-1"),
        "{trust}"
    );

    // validate makes no AWS call: it checks the built-ins' names only.
    let mut validate = warden();
    validate
        .args(["validate"])
        .arg(bed.dir.path())
        .args(["--var", "oidc=x"]);
    let (out, stdout, _) = run(&mut validate);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    std::fs::write(
        bed.dir.path().join("irsa.yaml"),
        manifest.replace("${aws.account_id}", "${aws.acount_id}"),
    )
    .unwrap();
    let (out, stdout, _) = run(&mut validate);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("spec.assumeRolePolicy.Statement[0].Principal.Federated")
            && stdout.contains("`${aws.acount_id}` is not a built-in variable"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_case_only_rename_updates_the_same_role_and_is_never_pruned() {
    let bed = Bed::new(
        &[("r.yaml", &role("MyRole", "  description: first\n"))],
        &["--prune"],
    )
    .await;
    bed.converge();
    let id = bed.role("MyRole").await.role_id().to_string();

    bed.write("r.yaml", &role("myrole", "  description: first\n"));
    bed.proxy.reset_counts();
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "a case-only rename is no change:\n{out}");
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{out}");

    // A real change under the new spelling updates the role IAM has.
    bed.write("r.yaml", &role("myrole", "  description: second\n"));
    bed.converge();
    let after = bed.role("MyRole").await;
    assert_eq!(after.role_id(), id, "the role was replaced");
    assert_eq!(after.description(), Some("second"));
    assert!(
        !bed.proxy
            .writes()
            .iter()
            .any(|w| w == "DeleteRole" || w == "CreateRole")
    );
}

#[tokio::test]
async fn tag_keys_that_differ_only_in_case_are_one_key() {
    let bed = Bed::new(
        &[("r.yaml", &role("tagged", "  tags: {team: data}\n"))],
        &[],
    )
    .await;
    bed.converge();
    // Someone rewrites the key in another spelling with the same value: no difference.
    bed.iam
        .untag_role()
        .role_name("tagged")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    bed.iam
        .tag_role()
        .role_name("tagged")
        .tags(tag("Team", "data"))
        .send()
        .await
        .unwrap();
    bed.proxy.reset_counts();
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
    // Another value: set in the spelling IAM has, never set in one and removed in another;
    // so even moto (which, unlike AWS, keeps `Team` and `team` apart) ends with one key.
    bed.iam
        .tag_role()
        .role_name("tagged")
        .tags(tag("Team", "other"))
        .send()
        .await
        .unwrap();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.proxy.writes(), ["TagRole"], "{out}");
    let tags = bed.role_tags("tagged").await;
    let team: Vec<&(String, String)> = tags
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("team"))
        .collect();
    assert_eq!(
        team,
        [&("Team".to_string(), "data".to_string())],
        "{tags:?}"
    );
}

fn policy(name: &str, path: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {{name: {name}}}
spec:
  path: {path}
  document: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "s3:GetObject", Resource: "*"}}]}}
"#
    )
}

#[tokio::test]
async fn moving_a_policy_to_another_path_is_a_conflict_never_a_create() {
    let bed = Bed::new(&[("p.yaml", &policy("moved", "/a/"))], &[]).await;
    bed.converge();
    bed.write("p.yaml", &policy("moved", "/b/"));
    bed.proxy.reset_counts();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("path is `/a/` in AWS but `/b/` in the manifest"),
        "{out}"
    );
    assert!(!out.contains("+ "), "planned a create:\n{out}");
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("not owned"), "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/a/moved");
    bed.iam.get_policy().policy_arn(&arn).send().await.unwrap();
}

async fn customer_policies(iam: &Client, n: usize) -> Vec<String> {
    let mut arns = Vec::new();
    for i in 0..n {
        let out = iam
            .create_policy()
            .policy_name(format!("quota-{i:02}"))
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        arns.push(out.policy().unwrap().arn().unwrap().to_string());
    }
    arns
}

fn managed(arns: &[String]) -> String {
    let list: Vec<String> = arns.iter().map(|a| format!("    - {a}\n")).collect();
    format!("  managedPolicies:\n{}", list.concat())
}

#[tokio::test]
async fn swapping_a_managed_policy_on_a_role_at_the_quota_converges() {
    let bed = Bed::new(&[], &[]).await;
    let arns = customer_policies(&bed.iam, 11).await;
    bed.proxy.enforce_quotas(10, 10_240);
    bed.write("r.yaml", &role("full", &managed(&arns[..10])));
    bed.converge();
    let swapped: Vec<String> = arns[..9].iter().chain(&arns[10..]).cloned().collect();
    bed.write("r.yaml", &role("full", &managed(&swapped)));
    bed.converge();
    assert_eq!(
        attached(&bed.iam, "full").await,
        swapped.into_iter().collect::<BTreeSet<_>>()
    );
}

fn big_inline(name: &str) -> String {
    let resources: Vec<String> = (0..200)
        .map(|i| format!("\"arn:aws:s3:::staging-bucket-{i:04}/*\""))
        .collect();
    format!(
        "  inlinePolicies:\n    {name}:\n      Version: \"2012-10-17\"\n      Statement: [{{Effect: Allow, Action: \"s3:GetObject\", Resource: [{}]}}]\n",
        resources.join(", ")
    )
}

#[tokio::test]
async fn renaming_a_large_inline_policy_near_the_aggregate_limit_converges() {
    let bed = Bed::new(&[("r.yaml", &role("big", &big_inline("big-a")))], &[]).await;
    bed.proxy.enforce_quotas(10, 10_240);
    bed.converge();
    bed.write("r.yaml", &role("big", &big_inline("big-b")));
    bed.converge();
    assert_eq!(inline_names(&bed.iam, "big").await, ["big-b"]);
}

#[tokio::test]
async fn a_lost_create_role_answer_then_no_such_entity_is_not_a_conflict() {
    let bed = Bed::new(&[("r.yaml", &role("lost", ""))], &[]).await;
    bed.proxy.lose_answer("CreateRole");
    // IAM's propagation: the role just created cannot be read yet.
    bed.proxy.fail(
        "GetRole",
        1,
        404,
        "NoSuchEntity",
        "The role with name lost cannot be found.",
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let tags = bed.role_tags("lost").await;
    assert!(tags.contains(&("iam-warden/owner".to_string(), "default".to_string())));
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_role_trusting_a_role_that_sorts_after_it_converges_in_one_apply() {
    let provider = format!("arn:aws:iam::{ACCOUNT}:role/z-provider");
    let bed = Bed::new(
        &[
            ("a.yaml", &trusting("a-consumer", &provider)),
            ("z.yaml", &role("z-provider", "")),
        ],
        &[],
    )
    .await;
    // IAM refuses a trust policy naming a role that does not exist yet.
    bed.proxy.fail_matching(
        "CreateRole",
        "role/z-provider",
        Some("z-provider"),
        "MalformedPolicyDocument",
        &format!("Invalid principal in policy: \"AWS\":\"{provider}\""),
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        bed.proxy.count("CreateRole"),
        2,
        "{:?}",
        bed.proxy.actions()
    );
    bed.role("a-consumer").await;
    bed.role("z-provider").await;
}

#[tokio::test]
async fn a_principal_that_stays_invalid_is_reported_by_name_not_retried_forever() {
    let gone = format!("arn:aws:iam::{ACCOUNT}:role/deleted-role");
    let bed = Bed::new(
        &[("a.yaml", &trusting("orphan", &gone))],
        &["--retry-timeout", "4s"],
    )
    .await;
    bed.proxy.fail_matching(
        "CreateRole",
        "role/deleted-role",
        None,
        "MalformedPolicyDocument",
        &format!("Invalid principal in policy: \"AWS\":\"{gone}\""),
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("role/deleted-role") && out.contains("the principal does not exist"),
        "{out}"
    );
    assert!(
        bed.proxy.count("CreateRole") >= 2,
        "it was not retried at all"
    );
}

#[tokio::test]
async fn limit_exceeded_and_malformed_documents_are_not_retried() {
    let bed = Bed::new(&[("r.yaml", &role("limited", "  tags: {a: b}\n"))], &[]).await;
    bed.proxy.fail(
        "CreateRole",
        5,
        409,
        "LimitExceeded",
        "Cannot exceed quota for RolesPerAccount: 1000",
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert_eq!(bed.proxy.count("CreateRole"), 1, "{out}");
    assert!(out.contains("LimitExceeded"), "{out}");
}
