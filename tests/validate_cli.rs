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

/// Runs `validate DIR` under GNU time, which reports the peak resident memory of exactly that
/// process: (exit code, stdout and stderr, peak RSS in KiB).
///
/// Why not wait4(2) on a child of this test process: Linux carries the parent's peak over into
/// the child's at exec (fork and vfork alike), so a large test process would be measured
/// instead. GNU time forks the program from its own small process.
fn validate_measured(dir: &Path) -> (i32, String, i64) {
    const TIME: &str = "/usr/bin/time";
    assert!(
        Path::new(TIME).exists(),
        "{TIME} (GNU time) is needed to measure peak memory; install the `time` package"
    );
    let peak_file = tempfile::NamedTempFile::new().unwrap();
    let warden = warden();
    let mut cmd = std::process::Command::new(TIME);
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(peak_file.path())
        .arg(warden.get_program())
        .arg("validate")
        .arg(dir)
        .current_dir(repo_root());
    for (k, v) in warden.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let (out, stdout, stderr) = run(&mut cmd);
    let code = out.status.code().expect("exit code");
    let peak = fs::read_to_string(peak_file.path()).unwrap();
    // %M is in KiB. A process that ran at all has touched more than 1 MiB: anything less would
    // mean the measurement is broken, not that memory is low.
    let peak: i64 = peak
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from {TIME}: {peak:?}\n{stderr}"));
    assert!(peak > 1024, "implausible peak RSS {peak} KiB");
    (code, format!("{stdout}{stderr}"), peak)
}

/// The largest peak any hostile 1 MiB file may cause, in KiB.
const PEAK_LIMIT_KIB: i64 = 100 * 1024;

/// One document of about 91,000 nodes (anchor copies included) from 260 bytes.
fn near_limit_bomb_document() -> String {
    let mut doc = String::from("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..4 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str(&format!("a4: [{}]\n", ["*a3"; 6].join(", ")));
    doc
}

#[test]
fn a_megabyte_of_documents_each_under_the_alias_limit_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let doc = near_limit_bomb_document();
    let bomb = doc.repeat(1024 * 1024 / doc.len());
    assert!(bomb.len() > 1000 * 1024, "{} bytes", bomb.len());
    fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bomb.yaml:18: a4[3]: file expands to more than 250000 values"),
        "{out}"
    );
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_megabyte_long_flow_collection_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let flow = format!("[{}]\n", vec!["x"; 500_000].join(","));
    fs::write(dir.path().join("flow.yaml"), flow).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("flow.yaml:1: a single value here") && out.contains("longer than 128 KiB"),
        "{out}"
    );
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_megabyte_of_empty_documents_reports_a_hundred_errors_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty.yaml"), "{}\n---\n".repeat(140_000)).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("empty.yaml: more than 100 errors; the rest of this file is not checked"),
        "{out}"
    );
    assert!(out.contains("invalid: 101 errors in 1 file"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn files_that_together_exceed_the_load_budget_are_each_refused() {
    let dir = tempfile::tempdir().unwrap();
    let two = near_limit_bomb_document().repeat(2);
    for i in 0..14 {
        fs::write(dir.path().join(format!("f{i:02}.yaml")), &two).unwrap();
    }
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("together expand to more than 2000000 values"))
        .collect();
    // About 180,000 nodes a file: the 11th crosses 2,000,000, and every file after it is refused.
    assert_eq!(refused.len(), 4, "{out}");
    assert!(refused[0].contains("f10.yaml:"), "{out}");
    assert!(refused[3].contains("f13.yaml:"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_link_out_of_dir_is_refused_naming_it_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("/", d.join("root")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", d.join("host.yaml")).unwrap();
    fs::write(d.join("empty.yaml"), "").unwrap();
    let (code, out, peak) = validate_measured(d);
    assert_eq!(code, 1, "{out}");
    let root = d.join("root");
    let expected = format!(
        "{}: symbolic link points outside {} (to /); not followed",
        root.display(),
        d.display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(
        out.contains("host.yaml: symbolic link points outside"),
        "{out}"
    );
    assert!(out.contains("invalid: 2 errors in 2 files"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

/// A valid role named `name`.
fn role(name: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n"
    )
}

#[test]
fn links_that_stay_inside_dir_are_read_as_git_sync_and_configmaps_make_them() {
    use std::os::unix::fs::symlink;
    // A ConfigMap volume: `..data` -> `..2024_…`, top-level links into `..data`.
    let cm = tempfile::tempdir().unwrap();
    let version = cm.path().join("..2024_01_01_00_00_00.000");
    fs::create_dir(&version).unwrap();
    fs::write(version.join("role.yaml"), role("from-configmap")).unwrap();
    symlink("..2024_01_01_00_00_00.000", cm.path().join("..data")).unwrap();
    symlink("..data/role.yaml", cm.path().join("role.yaml")).unwrap();
    let (code, out) = validate(cm.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 1 role, 0 policies in 1 file"), "{out}");

    // git-sync: DIR itself is a link to the current revision, which links a sibling inside it.
    let gs = tempfile::tempdir().unwrap();
    let rev = gs.path().join("rev-abc");
    fs::create_dir_all(rev.join("shared")).unwrap();
    fs::write(rev.join("shared/role.yaml"), role("from-git")).unwrap();
    symlink("shared", rev.join("current")).unwrap();
    symlink("rev-abc", gs.path().join("manifests")).unwrap();
    let (code, out) = validate(&gs.path().join("manifests"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 1 role, 0 policies in 1 file"), "{out}");
}

#[test]
fn a_fifo_a_dangling_link_and_a_link_loop_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = std::process::Command::new("mkfifo")
        .arg(d.join("pipe.yaml"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    std::os::unix::fs::symlink("gone.yaml", d.join("dangling.yaml")).unwrap();
    std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
    fs::write(d.join("role.yaml"), role("fine")).unwrap();
    let (code, out) = validate(d, &[]);
    assert_eq!(code, 1, "{out}");
    for (name, needle) in [
        ("pipe.yaml", "not a regular file"),
        ("dangling.yaml", "symbolic link cannot be resolved"),
        ("loop", "symbolic link loop"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(name) && l.contains(needle)),
            "{name}: expected `{needle}` in\n{out}"
        );
    }
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
