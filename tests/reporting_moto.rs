//! Untrusted values and honest reporting through the binary against moto: a value can never
//! change a document's structure, reads are retried like writes (and what could not be read is
//! not acted on), a denied bulk read falls back to reading resources one by one, and missing
//! credentials say where they were looked for.

mod support;

use iam_warden::policy::PolicyDocument;
use support::bed::Bed;
use support::{run, warden};

const INJECTION: &str = r#"ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}, {"Effect": "Allow", "Principal": {"AWS": "*"#;

fn json_trust_role(principal_kind: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: injected}}
spec:
  assumeRolePolicy: '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"{principal_kind}": "${{var.svc}}"}}, "Action": "sts:AssumeRole"}}]}}'
"#
    )
}

#[tokio::test]
async fn a_value_cannot_add_a_statement_to_a_json_string_trust_policy() {
    // Into a service principal: not a service name, so refused before any AWS call.
    let bed = Bed::new(
        &[("r.yaml", &json_trust_role("Service"))],
        &["--var", &format!("svc={INJECTION}")],
    )
    .await;
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("spec.assumeRolePolicy.Statement[0].Principal.Service")
            && out.contains("is not a service principal"),
        "{out}"
    );
    assert_eq!(
        bed.proxy.actions(),
        Vec::<String>::new(),
        "an AWS call was made"
    );

    // Into an AWS principal: it stays one string in one statement.
    let bed = Bed::new(
        &[("r.yaml", &json_trust_role("AWS"))],
        &["--var", &format!("svc={INJECTION}")],
    )
    .await;
    // moto stores any principal; AWS would refuse this one as invalid, which is fine too.
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let role = support::moto::get_role(&bed.iam, "injected")
        .await
        .expect("the role was created");
    let trust = PolicyDocument::from_iam(role.assume_role_policy_document().unwrap()).unwrap();
    let statements = trust.value()["Statement"].as_array().unwrap().clone();
    assert_eq!(statements.len(), 1, "{trust:?}");
    assert_eq!(
        statements[0]["Principal"]["AWS"],
        serde_json::json!(INJECTION)
    );
}

#[tokio::test]
async fn a_value_that_holds_a_reference_is_refused_naming_the_variable() {
    let bed = Bed::agent().await;
    let mut cmd = bed.command("plan");
    cmd.args(["--var", "name_prefix=${var.staging_bucket}"]);
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("variable `name_prefix`"), "{stderr}");
    assert_eq!(bed.proxy.actions(), Vec::<String>::new());
}

#[tokio::test]
async fn reads_are_retried_like_writes_under_throttling_and_server_errors() {
    let bed = Bed::agent().await;
    bed.converge();
    bed.proxy.reset_counts();
    // More faults than the SDK's own three attempts absorb.
    bed.proxy.fail(
        "GetAccountAuthorizationDetails",
        4,
        400,
        "Throttling",
        "Rate exceeded",
    );
    bed.proxy
        .fail("ListRoles", 3, 500, "ServiceFailure", "oops");
    bed.proxy
        .fail("ListPolicyTags", 4, 400, "Throttling", "Rate exceeded");
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_role_whose_policy_could_not_be_observed_is_not_attempted() {
    let bed = Bed::agent().await;
    bed.converge();
    // Drift on the role that needs the policy, and the policy cannot be read.
    bed.iam
        .detach_role_policy()
        .role_name("data-agent-task-role")
        .policy_arn("arn:aws:iam::123456789012:policy/agent/data-agent-task-policy")
        .send()
        .await
        .unwrap();
    bed.proxy
        .fail("ListPolicyTags", 1000, 403, "AccessDenied", "not allowed");
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Role data-agent-task-role: FAILED: not attempted: it needs Policy `data-agent-task-policy`"),
        "{out}"
    );
    assert_eq!(bed.proxy.count("AttachRolePolicy"), 0, "{out}");
    // The other role is still converged.
    assert!(
        !out.contains("data-agent-task-execution-role: FAILED"),
        "{out}"
    );
}

#[tokio::test]
async fn a_denied_bulk_read_falls_back_to_reading_each_resource() {
    let bed = Bed::agent().await;
    bed.converge();
    bed.proxy.fail(
        "GetAccountAuthorizationDetails",
        1000,
        403,
        "AccessDenied",
        "not authorized to perform iam:GetAccountAuthorizationDetails",
    );
    bed.proxy.reset_counts();
    let (out, stdout, stderr) = run(&mut bed.command("plan"));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stderr.matches("reading each resource on its own").count(),
        1,
        "{stderr}"
    );
    assert!(bed.proxy.count("GetRole") >= 2, "{:?}", bed.proxy.actions());
}

#[tokio::test]
async fn no_credentials_say_where_they_were_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = warden();
    cmd.args(["plan"])
        .arg(support::repo_root().join("manifests/agent"))
        .args(["--values", "deploy/values.example.yaml"])
        .args(["--endpoint-url", "http://127.0.0.1:9"])
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1");
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for needle in [
        "no AWS credentials found",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        assert!(stderr.contains(needle), "`{needle}` missing:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    // Enough errors to fill a pipe's buffer many times over.
    for i in 0..400 {
        std::fs::write(
            dir.path().join(format!("bad{i}.yaml")),
            "apiVersion: iamwarden/v1alpha1\nkind: Rolle\nmetadata: {name: \"bad name\"}\nspec: {}\n",
        )
        .unwrap();
    }
    let mut child = warden()
        .arg("validate")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("bad"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
