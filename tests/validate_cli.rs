//! `iam-warden validate` through the real binary: the examples pass, every malformed manifest of
//! the corpus fails with its file and field named, hostile input is an error and never a panic.

mod support;

use std::fs;
use std::path::Path;

use support::{repo_root, run, warden};

fn validate(dir: &Path, extra: &[&str]) -> (i32, String) {
    let (out, stdout, stderr) = run(warden().arg("validate").arg(dir).args(extra));
    let code = out.status.code().expect("exit code");
    (code, format!("{stdout}{stderr}"))
}

#[test]
fn the_example_manifests_are_valid_with_the_example_values() {
    let dir = repo_root().join("manifests/agent");
    let (code, out) = validate(&dir, &["--values", "deploy/values.example.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 2 roles, 1 policy in 2 files"), "{out}");
}

#[test]
fn the_example_manifests_without_values_name_each_missing_variable() {
    let (code, out) = validate(&repo_root().join("manifests/agent"), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("task-role.yaml:18: spec.document.Statement[0].Resource: variable `staging_bucket` is not defined"), "{out}");
}

#[test]
fn every_malformed_manifest_fails_naming_its_file_and_field() {
    let corpus = repo_root().join("tests/malformed");
    let mut files: Vec<_> = fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus holds {} files", files.len());
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks its `# expect:` line", file.display()));
        let dir = tempfile::tempdir().unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        fs::copy(&file, dir.path().join(name)).unwrap();
        let (code, out) = validate(dir.path(), &[]);
        assert_eq!(code, 1, "{name}: exit {code}\n{out}");
        let line = out
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: no line names the file\n{out}"));
        assert!(
            line.contains(&format!(": {expect}")),
            "{name}: expected `{expect}` in\n{out}"
        );
    }
}

#[test]
fn hostile_files_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("big.yaml"),
        format!("# {}\n", "x".repeat(1024 * 1024)),
    )
    .unwrap();
    fs::write(d.join("binary.yaml"), [b'k', b':', b' ', 0xff, 0xfe, b'\n']).unwrap();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        let refs = [prev.as_str(); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    fs::write(d.join("bomb.yaml"), bomb).unwrap();
    fs::write(
        d.join("deep.yaml"),
        format!("a: {}{}\n", "[".repeat(100), "]".repeat(100)),
    )
    .unwrap();
    fs::write(d.join("dupes.yaml"), "apiVersion: x\napiVersion: y\n").unwrap();
    fs::write(d.join("scalar.yaml"), "42\n").unwrap();
    fs::write(d.join("tabs.yaml"), "a:\n\t- b\n").unwrap();
    let (code, out) = validate(d, &[]);
    assert_eq!(code, 1, "{out}");
    for (file, needle) in [
        ("big.yaml", "larger than 1024 KiB"),
        ("binary.yaml", "not valid UTF-8"),
        ("bomb.yaml", "alias bomb"),
        ("deep.yaml", "nesting deeper than 64"),
        ("dupes.yaml", "apiVersion: duplicate key `apiVersion`"),
        ("scalar.yaml", "must be a mapping"),
        ("tabs.yaml", "invalid YAML"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(file) && l.contains(needle)),
            "{file}: expected `{needle}` in\n{out}"
        );
    }
}

#[test]
fn empty_files_and_documents_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty.yaml"), "").unwrap();
    fs::write(
        dir.path().join("comments.yml"),
        "# nothing here\n---\n---\n",
    )
    .unwrap();
    let (code, out) = validate(dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_missing_directory_is_an_error() {
    let (code, out) = validate(Path::new("/nonexistent/manifests"), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot read directory /nonexistent/manifests"),
        "{out}"
    );
}

#[test]
fn flags_come_from_the_environment_too() {
    let (out, stdout, stderr) = run(warden()
        .arg("validate")
        .env("IAM_WARDEN_DIR", "manifests/agent")
        .env("IAM_WARDEN_VALUES", "deploy/values.example.yaml")
        .env("IAM_WARDEN_VAR", "name_prefix=from-env"));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
}

#[test]
fn var_beats_values_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("r.yaml"),
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: \"${var.n}\"}\nspec:\n  assumeRolePolicy: {Version: \"2012-10-17\", Statement: {Effect: Allow, Action: \"sts:AssumeRole\", Principal: {Service: ecs-tasks.amazonaws.com}}}\n",
    )
    .unwrap();
    fs::write(dir.path().join("values.txt"), "n: \"bad name\"\n").unwrap();
    let values = dir.path().join("values.txt");
    let values = values.to_str().unwrap();
    let (code, out) = validate(dir.path(), &["--values", values]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = validate(dir.path(), &["--values", values, "--var", "n=good-name"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let (out, _, stderr) = run(warden().args(["validate"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (out, stdout, _) = run(warden().args(["--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("validate"));
}

#[test]
fn nesting_past_the_parser_limit_is_an_error_too() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("deeper.yaml"),
        format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    let (code, out) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("deeper.yaml:1: a: invalid YAML: recursion limit exceeded"),
        "{out}"
    );
}

const DANGEROUS: &str = "apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: open-admin}
spec:
  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement:
      - Effect: Allow
        Action: sts:AssumeRole
        Principal: {AWS: \"*\"}
  inlinePolicies:
    admin:
      Version: \"2012-10-17\"
      Statement:
        - Effect: Allow
          Action: [s3:GetObject, \"IAM:*\"]
          Resource: \"*\"
";

#[test]
fn dangerous_grants_are_warnings_naming_file_line_and_field_and_keep_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("open.yaml"), DANGEROUS).unwrap();
    let (code, out) = validate(dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    let file = dir.path().join("open.yaml");
    let file = file.display();
    let expected = [
        format!(
            "warning: {file}:10: spec.assumeRolePolicy.Statement[0].Principal.AWS: any principal may assume this role"
        ),
        format!(
            "warning: {file}:16: spec.inlinePolicies.admin.Statement[0].Action[1]: allows every IAM action on every resource"
        ),
    ];
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{out}");
    for (line, expected) in warnings.iter().zip(&expected) {
        assert!(
            line.starts_with(expected),
            "expected `{expected}`, got\n{out}"
        );
    }
    assert!(out.contains("valid: 1 role, 0 policies in 1 file"), "{out}");

    // Next to an error, the exit code is the error's.
    fs::write(dir.path().join("bad.yaml"), "kind: Nope\n").unwrap();
    let (code, out) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("warning: ")).count(),
        2
    );
}

#[test]
fn the_example_manifests_grant_nothing_dangerous() {
    let dir = repo_root().join("manifests/agent");
    let (code, out) = validate(&dir, &["--values", "deploy/values.example.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning:"), "{out}");
}
