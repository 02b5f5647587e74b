//! What a pull request sees, through the binary against moto: `plan --output markdown` (the
//! comment, as a golden file of a real plan), `validate`/`plan --output sarif` checked against
//! SARIF 2.1.0's published schema, and `validate --output json`.

mod support;

use std::path::{Path, PathBuf};

use support::bed::Bed;
use support::{repo_root, run, warden};

/// A role that allows every action: a dangerous grant, reported but not refused.
const ADMIN: &str = r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: break-glass}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Principal: {AWS: "arn:aws:iam::123456789012:root"}, Action: sts:AssumeRole}
  inlinePolicies:
    admin:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: "*"
          Resource: "*"
"#;

/// A role someone made by hand: it exists without the owner tag.
const HAND_MADE: &str = r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: hand-made}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
"#;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn golden(name: &str) -> PathBuf {
    repo_root().join("tests/golden").join(name)
}

/// Compares `actual` with the golden file, or rewrites it with `UPDATE_GOLDEN=1`.
fn assert_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        want == actual,
        "{} differs (UPDATE_GOLDEN=1 rewrites it):\n--- want\n{want}\n--- got\n{actual}",
        path.display()
    );
}

/// Validates a SARIF log printed by the binary against SARIF 2.1.0's published schema.
fn assert_valid_sarif(sarif: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), sarif).unwrap();
    support::tools::assert_valid_sarif(file.path());
}

/// (ruleId, file name, startLine, startColumn) of every result.
fn results(sarif: &serde_json::Value) -> Vec<(String, String, u64, Option<u64>)> {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
            (
                r["ruleId"].as_str().unwrap().to_string(),
                uri.rsplit('/').next().unwrap().to_string(),
                loc["region"]["startLine"].as_u64().unwrap(),
                loc["region"]["startColumn"].as_u64(),
            )
        })
        .collect()
}

/// Drift of every sort on FULL's resources, a new role with a dangerous grant, and a hand-made
/// role in the way of a manifest.
async fn drifted_bed() -> Bed {
    let bed = Bed::full().await;
    bed.converge();
    bed.iam
        .update_role()
        .role_name("app-role")
        .description("edited by hand")
        .send()
        .await
        .unwrap();
    bed.iam
        .put_role_policy()
        .role_name("app-role")
        .policy_name("logs")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    bed.set_tag("app-role", "env", "prod").await;
    bed.iam
        .create_role()
        .role_name("hand-made")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    bed.write("admin.yaml", ADMIN);
    bed.write("hand-made.yaml", HAND_MADE);
    bed
}

fn with_dir_as(text: &str, dir: &Path, name: &str) -> String {
    text.replace(&dir.display().to_string(), name)
}

#[tokio::test]
async fn the_plan_comment_of_a_real_plan_matches_its_golden_file() {
    let bed = drifted_bed().await;
    let mut cmd = bed.command("plan");
    cmd.args(["--output", "markdown"]);
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let comment = with_dir_as(&stdout, bed.dir.path(), "manifests");
    assert_golden("plan.md", &comment);
    // What the golden file shows, said plainly.
    assert!(
        comment.starts_with("<!-- iam-warden:plan -->\n"),
        "{comment}"
    );
    assert!(
        comment
            .contains("**Plan: 1 to create, 1 to update, 0 to delete, 2 in sync, 1 in conflict.**"),
        "{comment}"
    );
    assert!(
        comment
            .contains("| ⛔ | `Role/hand-made` | conflict: exists without an iam-warden/owner tag"),
        "{comment}"
    );
    assert!(
        comment.contains("> [!WARNING]\n> **Dangerous grants and warnings** (1)"),
        "{comment}"
    );
    assert!(
        comment
            .contains("> **In conflict** (1): `Role/hand-made`. `apply` leaves it alone and fails"),
        "a conflict passes plan (exit 2) but fails apply: said first\n{comment}"
    );
    assert!(
        comment.find("[!WARNING]") < comment.find("| Resource |"),
        "callouts come before the table"
    );
    // Applying what the comment showed leaves nothing for the next one.
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "the conflict fails apply: {out}");
    let mut cmd = bed.command("plan");
    cmd.args(["--output", "markdown"]);
    let (_, after, _) = run(&mut cmd);
    assert!(!after.contains("`Role/app-role`"), "{after}");
    assert!(after.contains("`Role/hand-made`"), "{after}");
}

#[tokio::test]
async fn plan_sarif_is_valid_and_points_at_dangerous_grants_and_conflicts() {
    let bed = drifted_bed().await;
    let mut cmd = bed.command("plan");
    cmd.args(["--output", "sarif"]);
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_valid_sarif(&stdout);
    let sarif: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut got = results(&sarif);
    got.sort();
    assert_eq!(
        got,
        [
            (
                "conflict/not-owned".to_string(),
                "hand-made.yaml".to_string(),
                1,
                Some(1)
            ),
            (
                "danger/all-actions".to_string(),
                "admin.yaml".to_string(),
                14,
                Some(11)
            ),
        ]
    );
}

/// Every kind of error validate reports, each at its file, line and column.
#[tokio::test]
async fn validate_sarif_names_each_error_with_its_rule_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("admin.yaml", ADMIN);
    write("syntax.yaml", "kind: Role\nmetadata: {name: [x\n");
    write(
        "field.yaml",
        "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  path: /ok/\n  documnet: {}\n",
    );
    write(
        "guarded.yaml",
        "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata: {name: g}\nspec:\n  path: /outside/\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"*\"}]}\n",
    );
    let mut cmd = warden();
    cmd.args([
        "validate",
        "--output",
        "sarif",
        "--allowed-path-prefix",
        "/ok/",
    ])
    .arg(dir.path());
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_valid_sarif(&stdout);
    let sarif: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let got = results(&sarif);
    let has = |rule: &str, file: &str, line: u64, column: Option<u64>| {
        assert!(
            got.contains(&(rule.to_string(), file.to_string(), line, column)),
            "no {rule} at {file}:{line}:{column:?} in {got:?}"
        );
    };
    // Past the file's last line: no column to point at.
    has("yaml-syntax", "syntax.yaml", 3, None);
    has("manifest", "field.yaml", 6, Some(3));
    has("guardrail/allowed-path-prefix", "guarded.yaml", 5, Some(3));
    has("guardrail/allowed-path-prefix", "admin.yaml", 5, Some(3));
    // Every result's rule is described in the run, at the index it gives.
    let log = &sarif["runs"][0];
    for r in log["results"].as_array().unwrap() {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(log["tool"]["driver"]["rules"][i]["id"], r["ruleId"]);
    }

    // Across documents (checked once every file is valid on its own).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dangling.yaml"),
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: d}\nspec:\n  assumeRolePolicy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: \"sts:AssumeRole\"}]}\n  managedPolicies: [{ref: nobody}]\n",
    )
    .unwrap();
    let (out, stdout, _) = run(warden()
        .args(["validate", "--output", "sarif"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert_valid_sarif(&stdout);
    let sarif: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        results(&sarif),
        [(
            "reference".to_string(),
            "dangling.yaml".to_string(),
            1,
            Some(1)
        )]
    );
}

#[test]
fn validate_json_lists_errors_and_warnings_with_their_places() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.yaml"), ADMIN).unwrap();
    let mut cmd = warden();
    cmd.args(["validate", "--output", "json"]).arg(dir.path());
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["errors"], serde_json::json!([]));
    let w = &v["warnings"][0];
    assert_eq!(w["rule"], "danger/all-actions");
    assert_eq!(w["level"], "warning");
    assert_eq!(
        (w["line"].as_u64(), w["column"].as_u64()),
        (Some(14), Some(11))
    );
    assert_eq!(w["path"], "spec.inlinePolicies.admin.Statement[0].Action");
    assert_eq!(v["summary"], "valid: 1 role, 0 policies in 1 file");

    // A guardrail refuses the role; its dangerous grants are reported all the same.
    let (out, stdout, _) = run(warden()
        .args(["validate", "--output", "json", "--deny-action", "iam:*"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["errors"][0]["rule"], "guardrail/deny-action", "{v}");
    assert_eq!(v["warnings"][0]["rule"], "danger/all-actions", "{v}");

    std::fs::write(dir.path().join("bad.yaml"), "kind: Nope\n").unwrap();
    let (out, stdout, _) = run(warden()
        .args(["validate", "--output", "json"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(!v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["errors"][0]["level"], "error");
}

#[test]
fn plan_reports_invalid_manifests_in_the_format_asked_for_without_calling_aws() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "kind: Nope\n").unwrap();
    // No endpoint and no credentials: any AWS call would fail differently.
    let (out, stdout, stderr) = run(warden()
        .args(["plan", "--output", "markdown"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("<!-- iam-warden:plan -->\n"), "{stdout}");
    assert!(stdout.contains("nothing was planned"), "{stdout}");
    assert!(stdout.contains("> [!CAUTION]"), "{stdout}");

    // Forty files quoting names of 18,000 characters back: still a comment GitHub takes.
    let huge = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let name = "&".repeat(18_000);
        std::fs::write(
            huge.path().join(format!("r{i}.yaml")),
            format!("apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: \"{name}\"}}\nspec: {{}}\n"),
        )
        .unwrap();
    }
    let (out, comment, stderr) = run(warden()
        .args(["plan", "--output", "markdown"])
        .arg(huge.path()));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        comment.starts_with("<!-- iam-warden:plan -->\n"),
        "{comment}"
    );
    assert!(
        comment.contains("nothing was planned"),
        "{}",
        &comment[..400]
    );
    // The names are quoted (escaped), cut short, and the comment fits.
    assert!(comment.contains("&amp;&amp;&amp;"), "{}", &comment[..400]);
    assert!(comment.chars().count() <= 65_536, "{}", comment.len());

    let (out, stdout, _) = run(warden().args(["plan", "--output", "sarif"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert_valid_sarif(&stdout);

    // Nothing to read at all: still a valid log (for the upload), saying the run failed.
    let missing = dir.path().join("missing");
    for verb in ["validate", "plan"] {
        let (out, stdout, stderr) = run(warden().args([verb, "--output", "sarif"]).arg(&missing));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert_valid_sarif(&stdout);
        let log: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false, "{log}");
        assert!(
            invocation["toolExecutionNotifications"][0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("cannot load manifests"),
            "{log}"
        );
    }
}

/// Text output quotes manifests: a newline or an escape in a key must not start a line a CI
/// reads as a command, nor reach a terminal.
#[test]
fn text_output_escapes_control_characters_from_manifests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  \"x\\n::error file=README.md,line=1::forged\\e[2J\": 1\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"*\"}]}\n",
    )
    .unwrap();
    let (out, stdout, stderr) = run(warden().arg("validate").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("::")),
        "a line starts a workflow command:\n{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(stdout.contains("x\\n::error file=README.md"), "{stdout}");
}
