//! `plan` points out dangerous grants against a real IAM API (moto): in its text and in
//! `--output json`, whether or not the resource has changes, without changing the exit code.

mod support;

use std::fs;

use support::moto::Moto;
use support::{run, warden_on};

const OPEN_ROLE: &str = "apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: open-role}
spec:
  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement:
      - Effect: Allow
        Action: sts:AssumeRole
        Principal: \"*\"
---
apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {name: deployer}
spec:
  document:
    Version: \"2012-10-17\"
    Statement:
      Effect: Allow
      Action: iam:Pass*
      Resource: \"*\"
";

fn plan(endpoint: &str, dir: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let (out, stdout, stderr) = run(warden_on(endpoint).arg("plan").arg(dir).args(extra));
    (out.status.code().expect("exit code"), stdout, stderr)
}

#[test]
fn plan_warns_of_dangerous_grants_in_text_and_json_with_the_usual_exit_codes() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("open.yaml");
    fs::write(&file, OPEN_ROLE).unwrap();
    let file = file.display().to_string();

    let (code, stdout, stderr) = plan(&moto.endpoint, dir.path(), &[]);
    assert_eq!(code, 2, "changes pending\n{stdout}{stderr}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(
        warnings[0].starts_with(&format!(
            "warning: {file}:10: spec.assumeRolePolicy.Statement[0].Principal: any principal"
        )),
        "{stdout}"
    );
    assert!(
        warnings[1].starts_with(&format!(
            "warning: {file}:20: spec.document.Statement.Action: allows iam:PassRole on every role"
        )),
        "{stdout}"
    );

    let (code, stdout, stderr) = plan(&moto.endpoint, dir.path(), &["--output", "json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("plan JSON");
    assert_eq!(
        json["resources"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
    let warnings = json["warnings"].as_array().expect("a warnings array");
    assert_eq!(warnings.len(), 2, "{json}");
    assert_eq!(warnings[0]["kind"], "Role");
    assert_eq!(warnings[0]["name"], "open-role");
    assert_eq!(warnings[0]["file"], file.as_str());
    assert_eq!(warnings[0]["line"], 10);
    assert_eq!(
        warnings[0]["path"],
        "spec.assumeRolePolicy.Statement[0].Principal"
    );
    assert_eq!(warnings[0]["grant"], "any-principal");
    assert_eq!(warnings[1]["name"], "deployer");
    assert_eq!(warnings[1]["grant"], "pass-role-any-role");
    assert!(
        warnings[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("iam:PassRole")),
        "{json}"
    );

    // In sync is not safe: after apply, plan exits 0 and still warns.
    let (out, stdout, stderr) = run(warden_on(&moto.endpoint).arg("apply").arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "apply\n{stdout}{stderr}");
    let (code, stdout, stderr) = plan(&moto.endpoint, dir.path(), &[]);
    assert_eq!(code, 0, "in sync\n{stdout}{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count(),
        2,
        "{stdout}"
    );
}
