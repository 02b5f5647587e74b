//! `plan` and `apply` through the real binary against moto's IAM server: creation, every kind
//! of out-of-band drift reverted, equivalent documents left alone, ownership, conflicts, and
//! retries under injected faults.

mod support;

use std::fs;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use iam_warden::policy::PolicyDocument;
use support::bed::Bed;
use support::fixtures::{APP_POLICY_ARN, BOUNDARY_ARN, FULL, OTHER_DOC, tag};
use support::moto::get_role;
use support::{run, warden_on};

const ACCOUNT: &str = "123456789012";

#[tokio::test]
async fn applying_the_agent_manifests_creates_both_roles_and_the_policy_and_a_second_apply_writes_nothing()
 {
    let bed = Bed::agent().await;
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("3 to create"), "{out}");
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");

    let exec = bed.role("data-agent-task-execution-role").await;
    assert_eq!(exec.path(), "/agent/");
    assert!(
        exec.tags()
            .iter()
            .any(|t| t.key() == "iam-warden/owner" && t.value() == "default")
    );
    let trust = PolicyDocument::from_iam(exec.assume_role_policy_document().unwrap()).unwrap();
    assert!(
        trust
            .value()
            .to_string()
            .contains("ecs-tasks.amazonaws.com")
    );
    let inline = bed
        .iam
        .get_role_policy()
        .role_name("data-agent-task-execution-role")
        .policy_name("ecr-and-cloudwatch")
        .send()
        .await
        .unwrap();
    let inline = PolicyDocument::from_iam(inline.policy_document())
        .unwrap()
        .value()
        .to_string();
    for action in [
        "ecr-public:GetAuthorizationToken",
        "sts:GetServiceBearerToken",
        "ecr:BatchGetImage",
        "logs:PutLogEvents",
    ] {
        assert!(inline.contains(action), "{action} missing from {inline}");
    }

    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/agent/data-agent-task-policy");
    let attached = bed
        .iam
        .list_attached_role_policies()
        .role_name("data-agent-task-role")
        .send()
        .await
        .unwrap();
    let arns: Vec<_> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [policy_arn.as_str()]);
    let policy = bed
        .iam
        .get_policy()
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    let version = policy
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    let doc = bed
        .iam
        .get_policy_version()
        .policy_arn(&policy_arn)
        .version_id(version)
        .send()
        .await
        .unwrap();
    let doc = PolicyDocument::from_iam(doc.policy_version().unwrap().document().unwrap())
        .unwrap()
        .value()
        .to_string();
    for needle in [
        "arn:aws:s3:::data-agent-staging/*",
        "secret:data-agent/platform-key-??????",
        "secretsmanager:ListSecrets",
    ] {
        assert!(doc.contains(needle), "{needle} missing from {doc}");
    }

    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let writes = bed.proxy.writes();
    assert_eq!(writes, Vec::<String>::new(), "a second apply wrote to IAM");
    assert!(
        !bed.proxy.actions().is_empty(),
        "the proxy saw no traffic at all"
    );
}

/// Applies FULL, makes one out-of-band change, and checks that plan shows it and apply reverts it.
async fn drift_is_reverted<F, Fut>(expect_in_plan: &str, drift: F) -> Bed
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let bed = Bed::full().await;
    bed.converge();
    drift(bed.iam.clone()).await;
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "drift not planned:\n{out}");
    assert!(
        out.contains(expect_in_plan),
        "expected `{expect_in_plan}` in:\n{out}"
    );
    bed.converge();
    bed
}

#[tokio::test]
async fn a_changed_trust_policy_is_reverted() {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let bed = drift_is_reverted("~ assumeRolePolicy", |iam| async move {
        iam.update_assume_role_policy()
            .role_name("app-role")
            .policy_document(trust)
            .send()
            .await
            .unwrap();
    })
    .await;
    let role = bed.role("app-role").await;
    let doc = role.assume_role_policy_document().unwrap();
    assert!(
        PolicyDocument::from_iam(doc)
            .unwrap()
            .value()
            .to_string()
            .contains("ecs-tasks.amazonaws.com")
    );
}

#[tokio::test]
async fn a_changed_description_is_reverted() {
    let bed = drift_is_reverted(
        "~ description: \"hacked\" -> \"App role\"",
        |iam| async move {
            iam.update_role()
                .role_name("app-role")
                .description("hacked")
                .max_session_duration(7200)
                .send()
                .await
                .unwrap();
        },
    )
    .await;
    assert_eq!(bed.description("app-role").await, "App role");
}

#[tokio::test]
async fn a_changed_max_session_is_reverted_without_losing_the_description() {
    let bed = drift_is_reverted("~ maxSessionDuration: 3600 -> 7200", |iam| async move {
        iam.update_role()
            .role_name("app-role")
            .description("App role")
            .max_session_duration(3600)
            .send()
            .await
            .unwrap();
    })
    .await;
    let role = bed.role("app-role").await;
    assert_eq!(role.max_session_duration(), Some(7200));
    assert_eq!(bed.description("app-role").await, "App role");
}

#[tokio::test]
async fn a_removed_boundary_is_put_back() {
    let bed = drift_is_reverted(
        &format!("+ permissionsBoundary: {BOUNDARY_ARN}"),
        |iam| async move {
            iam.delete_role_permissions_boundary()
                .role_name("app-role")
                .send()
                .await
                .unwrap();
        },
    )
    .await;
    let role = bed.role("app-role").await;
    let boundary = role
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn());
    assert_eq!(boundary, Some(BOUNDARY_ARN));
}

#[tokio::test]
async fn a_boundary_added_out_of_band_is_removed() {
    let bed = Bed::agent().await;
    bed.converge();
    let boundary = format!("arn:aws:iam::{ACCOUNT}:policy/agent/data-agent-task-policy");
    bed.iam
        .put_role_permissions_boundary()
        .role_name("data-agent-task-role")
        .permissions_boundary(&boundary)
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("- permissionsBoundary: {boundary}")),
        "{out}"
    );
    bed.converge();
    let role = bed.role("data-agent-task-role").await;
    assert!(role.permissions_boundary().is_none());
}

#[tokio::test]
async fn a_changed_tag_is_reverted() {
    drift_is_reverted("~ tags.team: \"other\" -> \"data\"", |iam| async move {
        iam.tag_role()
            .role_name("app-role")
            .tags(tag("team", "other"))
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_added_tag_is_removed() {
    let bed = drift_is_reverted("- tags.extra: \"x\"", |iam| async move {
        iam.tag_role()
            .role_name("app-role")
            .tags(tag("extra", "x"))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert!(
        !bed.role_tags("app-role")
            .await
            .iter()
            .any(|(k, _)| k == "extra")
    );
}

#[tokio::test]
async fn a_removed_tag_is_put_back() {
    let bed = drift_is_reverted("+ tags.env: \"test\"", |iam| async move {
        iam.untag_role()
            .role_name("app-role")
            .tag_keys("env")
            .send()
            .await
            .unwrap();
    })
    .await;
    assert!(
        bed.role_tags("app-role")
            .await
            .contains(&("env".into(), "test".into()))
    );
}

#[tokio::test]
async fn tags_under_an_ignored_prefix_are_left_alone() {
    let bed = Bed::new(&[("app.yaml", FULL)], &["--ignore-tag-prefix", "org:"]).await;
    bed.converge();
    bed.iam
        .tag_role()
        .role_name("app-role")
        .tags(tag("org:cost-center", "42"))
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn an_added_inline_policy_is_deleted() {
    let bed = drift_is_reverted("- inlinePolicies.backdoor", |iam| async move {
        iam.put_role_policy()
            .role_name("app-role")
            .policy_name("backdoor")
            .policy_document(OTHER_DOC)
            .send()
            .await
            .unwrap();
    })
    .await;
    let names = bed
        .iam
        .list_role_policies()
        .role_name("app-role")
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["logs"]);
}

#[tokio::test]
async fn a_changed_inline_policy_is_rewritten() {
    drift_is_reverted("~ inlinePolicies.logs", |iam| async move {
        iam.put_role_policy()
            .role_name("app-role")
            .policy_name("logs")
            .policy_document(OTHER_DOC)
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_removed_inline_policy_is_put_back() {
    drift_is_reverted("+ inlinePolicies.logs", |iam| async move {
        iam.delete_role_policy()
            .role_name("app-role")
            .policy_name("logs")
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_attached_managed_policy_is_detached() {
    let bed = drift_is_reverted(
        &format!("- managedPolicies: {BOUNDARY_ARN}"),
        |iam| async move {
            iam.attach_role_policy()
                .role_name("app-role")
                .policy_arn(BOUNDARY_ARN)
                .send()
                .await
                .unwrap();
        },
    )
    .await;
    let attached = bed
        .iam
        .list_attached_role_policies()
        .role_name("app-role")
        .send()
        .await
        .unwrap();
    let arns: Vec<_> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [APP_POLICY_ARN]);
}

#[tokio::test]
async fn a_detached_managed_policy_is_attached_again() {
    drift_is_reverted(
        &format!("+ managedPolicies: {APP_POLICY_ARN}"),
        |iam| async move {
            iam.detach_role_policy()
                .role_name("app-role")
                .policy_arn(APP_POLICY_ARN)
                .send()
                .await
                .unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn a_changed_policy_document_gets_a_new_default_version() {
    let bed = drift_is_reverted("~ document (new default version)", |iam| async move {
        add_versions(&iam, 1).await;
    })
    .await;
    assert_eq!(version_ids(&bed.iam).await.len(), 3);
}

#[tokio::test]
async fn a_changed_policy_tag_is_reverted() {
    drift_is_reverted("~ tags.team: \"other\" -> \"data\"", |iam| async move {
        iam.tag_policy()
            .policy_arn(APP_POLICY_ARN)
            .tags(tag("team", "other"))
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_sixth_version_deletes_the_oldest_non_default_one_first() {
    let bed = drift_is_reverted(
        "the oldest non-default one, v1, is deleted first",
        |iam| async move { add_versions(&iam, 4).await },
    )
    .await;
    let ids = version_ids(&bed.iam).await;
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(!ids.contains(&"v1".to_string()), "{ids:?}");
}

/// Out of band: `n` new default versions of the app policy.
async fn add_versions(iam: &Client, n: usize) {
    for _ in 0..n {
        iam.create_policy_version()
            .policy_arn(APP_POLICY_ARN)
            .policy_document(OTHER_DOC)
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }
}

async fn version_ids(iam: &Client) -> Vec<String> {
    let out = iam
        .list_policy_versions()
        .policy_arn(APP_POLICY_ARN)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn equivalent_documents_in_other_forms_plan_as_in_sync_after_apply() {
    let manifest = r#"
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: forms}
spec:
  assumeRolePolicy: '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "STS:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": true}}}}'
  inlinePolicies:
    s3:
      Version: "2012-10-17"
      Statement:
        Effect: Allow
        Action: [s3:PutObject, s3:GetObject, s3:getobject]
        Resource: arn:aws:s3:::b/*
"#;
    let bed = Bed::new(&[("forms.yaml", manifest)], &[]).await;
    bed.converge();
    // Rewrite the same meaning in other forms out of band: nothing may be planned.
    let trust = r#"{"Statement":[{"Action":["sts:AssumeRole"],"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}},"Principal":{"AWS":["arn:aws:iam::123456789012:root"]},"Effect":"Allow"}],"Version":"2012-10-17"}"#;
    bed.iam
        .update_assume_role_policy()
        .role_name("forms")
        .policy_document(trust)
        .send()
        .await
        .unwrap();
    let inline = r#"{"Version":"2012-10-17","Statement":[{"Resource":["arn:aws:s3:::b/*"],"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"]}]}"#;
    bed.iam
        .put_role_policy()
        .role_name("forms")
        .policy_name("s3")
        .policy_document(inline)
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

const UNOWNED: &str = r#"
apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: clicked
  annotations: {}
spec:
  description: declared
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}]
"#;

/// UNOWNED with the adopt annotation.
fn adopting() -> String {
    UNOWNED.replace(
        "annotations: {}",
        "annotations: {iam-warden/adopt: \"true\"}",
    )
}

async fn clicked_role(bed: &Bed, tags: Vec<Tag>) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    bed.iam
        .create_role()
        .role_name("clicked")
        .assume_role_policy_document(trust)
        .description("by hand")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_role_without_the_owner_tag_is_reported_and_untouched() {
    let bed = Bed::new(&[("r.yaml", UNOWNED)], &[]).await;
    clicked_role(&bed, vec![]).await;
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("without an iam-warden/owner tag"), "{out}");
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
    assert_eq!(bed.description("clicked").await, "by hand");
}

#[tokio::test]
async fn a_role_of_another_owner_is_left_alone_even_with_adopt() {
    let bed = Bed::new(&[("r.yaml", &adopting())], &[]).await;
    clicked_role(&bed, vec![tag("iam-warden/owner", "team-b")]).await;
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("owned by iam-warden owner `team-b`"), "{out}");
    assert_eq!(bed.description("clicked").await, "by hand");
}

#[tokio::test]
async fn the_adopt_annotation_takes_over_an_unowned_role_and_converges_it() {
    let bed = Bed::new(&[("r.yaml", &adopting())], &[]).await;
    clicked_role(&bed, vec![tag("team", "x")]).await;
    bed.converge();
    assert_eq!(bed.description("clicked").await, "declared");
    let tags = bed.role_tags("clicked").await;
    assert_eq!(
        tags,
        [("iam-warden/owner".to_string(), "default".to_string())]
    );
}

#[tokio::test]
async fn a_role_path_change_is_a_conflict_and_changes_nothing() {
    let bed = Bed::full().await;
    bed.converge();
    bed.write(
        "app.yaml",
        &FULL.replace(
            "  path: /app/\n  description: App role",
            "  path: /moved/\n  description: Changed",
        ),
    );
    bed.proxy.reset_counts();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("path is `/app/` in AWS but `/moved/` in the manifest"),
        "{out}"
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
    assert_eq!(bed.description("app-role").await, "App role");
}

#[tokio::test]
async fn plan_json_lists_changes_per_resource() {
    let bed = Bed::full().await;
    let mut cmd = bed.command("plan");
    cmd.args(["--output", "json"]);
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let resources = json["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 3);
    let role = resources.iter().find(|r| r["name"] == "app-role").unwrap();
    assert_eq!(role["kind"], "Role");
    assert_eq!(role["changes"][0]["op"], "createRole");
}

#[tokio::test]
async fn invalid_manifests_change_nothing_in_aws() {
    let bed = Bed::new(
        &[(
            "bad.yaml",
            &FULL.replace("maxSessionDuration: 7200", "maxSessionDuration: 1"),
        )],
        &[],
    )
    .await;
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("spec.maxSessionDuration"), "{out}");
    assert!(bed.proxy.actions().is_empty(), "{:?}", bed.proxy.actions());
}

#[tokio::test]
async fn eventual_consistency_and_throttling_are_retried() {
    let bed = Bed::full().await;
    let faults = [
        (
            "AttachRolePolicy",
            404,
            "NoSuchEntity",
            "The role with name app-role cannot be found.",
        ),
        (
            "CreateRole",
            400,
            "MalformedPolicyDocument",
            "Invalid principal in policy: x",
        ),
        ("PutRolePolicy", 400, "Throttling", "Rate exceeded"),
        ("CreatePolicy", 409, "ConcurrentModification", "Try again"),
    ];
    for (action, status, code, message) in faults {
        bed.proxy.fail(action, 2, status, code, message);
    }
    bed.converge();
    for (action, ..) in faults {
        // Two refusals, then the attempt that went through (app-role's one create/attach/put,
        // and the first of the two policies' creates).
        let expected = if action == "CreatePolicy" { 4 } else { 3 };
        assert_eq!(
            bed.proxy.count(action),
            expected,
            "{action}: {:?}",
            bed.proxy.actions()
        );
    }
}

#[tokio::test]
async fn a_lost_create_answer_is_success_when_the_role_carries_our_owner_tag() {
    let bed = Bed::full().await;
    bed.proxy.lose_answer("CreateRole");
    bed.converge();
    let creates = bed.proxy.count("CreateRole");
    assert_eq!(
        creates,
        2,
        "the lost CreateRole was not sent again: {:?}",
        bed.proxy.actions()
    );
}

#[tokio::test]
async fn access_denied_fails_fast_and_the_other_resources_still_apply() {
    let bed = Bed::full().await;
    bed.proxy.fail(
        "CreatePolicy",
        1,
        403,
        "AccessDenied",
        "User is not authorized to perform iam:CreatePolicy",
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("AccessDenied: User is not authorized"),
        "{out}"
    );
    // The first CreatePolicy to arrive (the two policies are created concurrently) failed and
    // was not retried; the other was created, and app-role, which needs both, was not
    // attempted.
    let failed = out
        .lines()
        .find_map(|l| l.strip_prefix("Policy ")?.strip_suffix(": FAILED: CreatePolicy failed: AccessDenied: User is not authorized to perform iam:CreatePolicy"))
        .unwrap_or_else(|| panic!("no policy failed: {out}"));
    assert!(
        out.contains(&format!("not attempted: it needs Policy `{failed}`")),
        "{out}"
    );
    let creates = bed.proxy.count("CreatePolicy");
    assert_eq!(creates, 2, "{:?}", bed.proxy.actions());
    // The next apply converges.
    bed.converge();
}

#[tokio::test]
async fn prune_deletes_owned_resources_no_longer_declared_and_nothing_else() {
    let bed = Bed::full().await;
    bed.converge();
    // Someone else's and nobody's roles must survive any prune.
    clicked_role(&bed, vec![]).await;
    bed.iam
        .create_role()
        .role_name("theirs")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .tags(tag("iam-warden/owner", "team-b"))
        .send()
        .await
        .unwrap();
    // Only the boundary policy stays declared.
    let boundary_only = FULL.split("\n---\n").next().unwrap();
    bed.write("app.yaml", boundary_only);
    let (code, out) = bed.plan();
    assert_eq!(
        code, 0,
        "without --prune nothing is planned for undeclared resources:\n{out}"
    );

    let mut plan = bed.command("plan");
    plan.args(["--prune", "--prune-after", "0s"]);
    let (out, stdout, _) = run(&mut plan);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("Role app-role\n  - delete role"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Policy app-policy\n  - delete policy"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("clicked") && !stdout.contains("theirs"),
        "{stdout}"
    );

    let mut apply = bed.command("apply");
    apply.args(["--prune", "--prune-after", "0s"]);
    let (out, stdout, stderr) = run(&mut apply);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        get_role(&bed.iam, "app-role").await.is_none(),
        "app-role was not deleted"
    );
    assert!(
        bed.iam
            .get_policy()
            .policy_arn(APP_POLICY_ARN)
            .send()
            .await
            .is_err(),
        "app-policy was not deleted"
    );
    assert!(
        bed.iam
            .get_policy()
            .policy_arn(BOUNDARY_ARN)
            .send()
            .await
            .is_ok()
    );
    assert!(get_role(&bed.iam, "clicked").await.is_some());
    assert!(get_role(&bed.iam, "theirs").await.is_some());
}

#[tokio::test]
async fn prune_on_a_directory_without_manifests_is_refused() {
    let bed = Bed::full().await;
    bed.converge();
    fs::remove_file(bed.dir.path().join("app.yaml")).unwrap();
    let mut apply = bed.command("apply");
    apply.arg("--prune");
    let (out, stdout, stderr) = run(&mut apply);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("--prune refused"), "{stderr}");
    assert!(get_role(&bed.iam, "app-role").await.is_some());
}

#[tokio::test]
async fn an_imported_hand_made_role_applies_as_an_adoption_that_changes_nothing_else() {
    let bed = Bed::new(&[], &[]).await;
    let policy = bed
        .iam
        .create_policy()
        .policy_name("hand-policy")
        .path("/hand/")
        .policy_document(OTHER_DOC)
        .send()
        .await
        .unwrap();
    let policy_arn = policy.policy().unwrap().arn().unwrap().to_string();
    clicked_role(&bed, vec![tag("team", "x")]).await;
    bed.iam
        .attach_role_policy()
        .role_name("clicked")
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    bed.iam
        .put_role_policy()
        .role_name("clicked")
        .policy_name("inline")
        .policy_document(OTHER_DOC)
        .send()
        .await
        .unwrap();

    // Throttled reads are retried, as in every command.
    bed.proxy
        .fail("GetRole", 3, 400, "Throttling", "Rate exceeded");
    let mut import = warden_on(&bed.proxy.endpoint);
    import
        .args(["import", "clicked", "--policy", &policy_arn, "--out"])
        .arg(bed.dir.path());
    let (out, stdout, stderr) = run(&mut import);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let role_yaml = fs::read_to_string(bed.dir.path().join("role-clicked.yaml")).unwrap();
    assert!(role_yaml.contains("ref: hand-policy"), "{role_yaml}");
    // A YAML 1.1 reader (PyYAML, as many CI tools use) reads every value as a string where
    // ours does: `Version: 2012-10-17` unquoted would be a date to it.
    for file in ["role-clicked.yaml", "policy-hand-policy.yaml"] {
        let path = bed.dir.path().join(file);
        let python = support::repo_root().join(".venv/bin/python");
        let check = std::process::Command::new(python)
            .args([
                "-c",
                "import sys, yaml, json\n\
                 def walk(v):\n\
                 \x20   if isinstance(v, dict): [walk(x) for x in v.values()]\n\
                 \x20   elif isinstance(v, list): [walk(x) for x in v]\n\
                 \x20   elif not isinstance(v, (str, int, bool)) and v is not None: sys.exit('not a plain value: %r' % (v,))\n\
                 docs = list(yaml.safe_load_all(open(sys.argv[1])))\n\
                 walk(docs)\n\
                 print(json.dumps(docs))",
            ])
            .arg(&path)
            .output()
            .expect("run the venv's python");
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "{file}: {}{stdout}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(
            stdout.contains("\"Version\": \"2012-10-17\""),
            "{file}: {stdout}"
        );
    }

    bed.proxy.reset_counts();
    bed.converge();
    let writes = bed.proxy.writes();
    assert_eq!(
        writes,
        ["TagPolicy", "TagRole"],
        "adoption only adds owner tags"
    );
    assert_eq!(bed.description("clicked").await, "by hand");
}

#[tokio::test]
async fn the_account_comes_from_iam_when_only_an_iam_endpoint_is_configured() {
    let bed = Bed::full().await;
    // No --endpoint-url: the SDK's service-specific variable sends IAM to moto and STS to its
    // real address, which cannot answer here (or refuses the dummy credentials elsewhere).
    let mut plan = warden_on(&bed.proxy.endpoint);
    plan.env_remove("IAM_WARDEN_ENDPOINT_URL")
        .env("AWS_ENDPOINT_URL_IAM", &bed.proxy.endpoint)
        .arg("plan")
        .arg(bed.dir.path());
    let (out, stdout, stderr) = run(&mut plan);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("3 to create"), "{stdout}");
    assert!(
        bed.proxy.actions().contains(&"GetUser".to_string()),
        "{:?}",
        bed.proxy.actions()
    );
}
