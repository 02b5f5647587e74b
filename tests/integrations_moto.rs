//! The CI integrations run as written: the pre-commit hook (.pre-commit-hooks.yaml) through
//! pre-commit itself, and the jobs of deploy/ci/'s GitHub Actions workflow and GitLab pipeline
//! through tests/support/ci_run.py, which runs each job's own scripts with the binary under test
//! on PATH, against moto. What no machine but GitHub's or GitLab's can run (the actions of
//! `uses:` steps, installing the binary from the image, the OIDC exchange) is skipped by the
//! runner, and its configuration is checked here from the files instead. The assertions are on
//! end states: the SARIF file, the one pull request comment or merge request note, IAM's roles.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::moto::{Moto, client_for};
use support::tools::{assert_valid_sarif, tool};
use support::{repo_root, run, warden_on};

const GITHUB: &str = "deploy/ci/github-actions.yaml";
const GITLAB: &str = "deploy/ci/gitlab-ci.yml";
const HOOKS: &str = ".pre-commit-hooks.yaml";
/// The first line of `plan --output markdown`: how a job finds its own comment.
const MARKER: &str = "<!-- iam-warden:plan -->";

/// What GitHub would give the workflow's expressions.
const GITHUB_CONTEXT: &[&str] = &[
    "vars.IAM_WARDEN_IMAGE=ghcr.io/example/iam-warden:test",
    "github.token=ghs_test-token",
    "github.repository=example/infra",
    "github.event.pull_request.number=7",
];
/// The pipeline's CI/CD variables and the merge request's predefined ones.
const GITLAB_TOKEN: &str = "glpat-test-token";
const GITLAB_CONTEXT: &[&str] = &[
    "CI_PROJECT_ID=42",
    "CI_MERGE_REQUEST_IID=7",
    "IAM_WARDEN_GITLAB_TOKEN=glpat-test-token",
    "IAM_WARDEN_PLAN_ROLE_ARN=arn:aws:iam::123456789012:role/platform/iam-warden-plan",
    "IAM_WARDEN_APPLY_ROLE_ARN=arn:aws:iam::123456789012:role/platform/iam-warden-apply",
];

/// The example manifests' roles, as apply makes them with deploy/values.example.yaml.
const ROLES: &[&str] = &[
    "data-agent-ec2-role",
    "data-agent-irsa-role",
    "data-agent-task-execution-role",
    "data-agent-task-role",
];

/// A program of the host the jobs use as their CI's machines have it (the fake gh's jq, the
/// GitLab job's curl); panics when it is missing.
fn host_tool(name: &str) {
    let found = Command::new(name).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} is missing: apt-get install {name} (and run scripts/test-env for the rest)"
    );
}

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn text(v: &serde_yaml::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string, not {v:?}"))
}

/// The entries of an `env:`/`variables:` mapping whose values are literals (no `${{ }}`).
fn literal_env(block: &serde_yaml::Value) -> Vec<(String, String)> {
    block
        .as_mapping()
        .expect("a mapping of variables")
        .iter()
        .filter_map(|(k, v)| Some((text(k).to_string(), v.as_str()?.to_string())))
        .filter(|(_, v)| !v.contains("${{"))
        .collect()
}

fn value_of<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the CI file sets no {name}"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A checkout as the CI file's configuration expects it: the example manifests in
/// IAM_WARDEN_DIR and deploy/values.example.yaml at IAM_WARDEN_VALUES.
fn checkout(env: &[(String, String)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("manifests"),
        &root.path().join(value_of(env, "IAM_WARDEN_DIR")),
    );
    let values = root.path().join(value_of(env, "IAM_WARDEN_VALUES"));
    std::fs::create_dir_all(values.parent().expect("parent")).expect("mkdir");
    std::fs::copy(repo_root().join("deploy/values.example.yaml"), &values).expect("copy values");
    root
}

/// Misspells a field of the task role's manifest; its path (as the tools print it, relative
/// to the checkout) and the line of the error.
fn break_manifest(checkout: &Path, dir: &str) -> (String, usize) {
    let file = format!("{dir}/agent/task-role.yaml");
    let path = checkout.join(&file);
    let broken = std::fs::read_to_string(&path)
        .expect("read the manifest")
        .replace("managedPolicies:", "managedPolicy:");
    std::fs::write(&path, &broken).expect("write the manifest");
    let line = broken
        .lines()
        .position(|l| l.contains("managedPolicy:"))
        .expect("the misspelt field")
        + 1;
    (file, line)
}

/// Runs `job` of `file` with tests/support/ci_run.py in `workdir`, with moto's credentials
/// when `endpoint` is given (and no AWS settings at all otherwise).
fn ci_run(
    file: &str,
    job: &str,
    workdir: &Path,
    endpoint: Option<&str>,
    args: &[String],
) -> (Output, String) {
    let mut cmd = Command::new(tool("python"));
    cmd.arg(repo_root().join("tests/support/ci_run.py"))
        .arg(repo_root().join(file))
        .arg(job)
        .arg("--workdir")
        .arg(workdir)
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_iam-warden"))
        .args(["--timeout", "60"])
        .args(args);
    for (k, _) in std::env::vars() {
        let ci = [
            "IAM_WARDEN_",
            "AWS_",
            "GITHUB_",
            "GITLAB_",
            "CI_",
            "RUNNER_",
        ];
        if k == "CI" || ci.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    if let Some(endpoint) = endpoint {
        // AWS_REGION comes from the CI file; the credentials stand in for the OIDC exchange.
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("IAM_WARDEN_ENDPOINT_URL", endpoint)
            .env("IAM_WARDEN_RETRY_TIMEOUT", "20s");
    }
    let (out, stdout, stderr) = run(&mut cmd);
    (out, format!("{stdout}{stderr}"))
}

fn context_args(context: &[&str]) -> Vec<String> {
    context
        .iter()
        .flat_map(|c| ["--context".to_string(), c.to_string()])
        .collect()
}

fn path_arg(flag: &str, path: &Path) -> [String; 2] {
    [flag.to_string(), path.display().to_string()]
}

/// The JSON lines the fakes record (none yet when the file does not exist).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read JSON")).expect("JSON")
}

/// (file, line) of every result of a SARIF log.
fn sarif_results(sarif: &Value) -> Vec<(String, u64)> {
    sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                loc["artifactLocation"]["uri"]
                    .as_str()
                    .expect("uri")
                    .to_string(),
                loc["region"]["startLine"].as_u64().expect("startLine"),
            )
        })
        .collect()
}

async fn role_names(iam: &aws_sdk_iam::Client) -> Vec<String> {
    let roles = iam.list_roles().into_paginator().items().send();
    let roles: Vec<_> = roles.collect::<Result<Vec<_>, _>>().await.unwrap();
    let mut names: Vec<String> = roles.iter().map(|r| r.role_name().to_string()).collect();
    names.sort();
    names
}

/// Every role, customer-managed policy, instance profile and OIDC provider in the account.
async fn everything(iam: &aws_sdk_iam::Client) -> Vec<String> {
    let mut all = role_names(iam).await;
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .expect("list policies");
    all.extend(
        policies
            .policies()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string)),
    );
    let profiles = iam
        .list_instance_profiles()
        .send()
        .await
        .expect("list instance profiles");
    all.extend(
        profiles
            .instance_profiles()
            .iter()
            .map(|p| p.arn().to_string()),
    );
    let providers = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list OIDC providers");
    all.extend(
        providers
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string)),
    );
    all
}

/// After apply: the roles exist, owned by the CI file's owner, and a plan with the CI file's
/// configuration finds everything in sync (exit 0).
async fn assert_converged(endpoint: &str, checkout: &Path, env: &[(String, String)]) {
    let iam = client_for(endpoint).await;
    assert_eq!(role_names(&iam).await, ROLES);
    let role = iam
        .get_role()
        .role_name("data-agent-task-role")
        .send()
        .await
        .expect("the task role");
    let owner = value_of(env, "IAM_WARDEN_OWNER");
    assert!(
        role.role()
            .expect("role")
            .tags()
            .iter()
            .any(|t| t.key() == "iam-warden/owner" && t.value() == owner),
        "the role is not owned by {owner}: {role:?}"
    );
    let mut plan = warden_on(endpoint);
    plan.current_dir(checkout)
        .envs(env.iter().cloned())
        .arg("plan");
    let (out, stdout, stderr) = run(&mut plan);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a plan after apply is not in sync:\n{stdout}{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// The files themselves

#[test]
fn the_ci_files_pass_their_published_schemas() {
    for (file, schema) in [
        (GITHUB, "vendor.github-workflows"),
        (GITLAB, "vendor.gitlab-ci"),
    ] {
        let out = Command::new(tool("check-jsonschema"))
            .args(["--builtin-schema", schema])
            .arg(repo_root().join(file))
            .output()
            .expect("run check-jsonschema");
        assert!(
            out.status.success(),
            "{file} against {schema}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(tool("pre-commit"))
        .arg("validate-manifest")
        .arg(repo_root().join(HOOKS))
        .output()
        .expect("run pre-commit");
    assert!(
        out.status.success(),
        "{HOOKS}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the runner cannot run (actions) is configured as the jobs need it; and no `run:`
/// script holds an expression (GitHub pastes it into the script: an injection).
#[test]
fn the_github_workflows_actions_and_expressions_are_where_they_belong() {
    let wf = yaml(GITHUB);
    let jobs = wf["jobs"].as_mapping().expect("jobs");
    for (name, job) in jobs {
        for step in job["steps"].as_sequence().expect("steps") {
            if let Some(script) = step["run"].as_str() {
                assert!(
                    !script.contains("${{"),
                    "job {name:?}: an expression inside run: {script}"
                );
            }
        }
    }
    let steps = |job: &str| -> Vec<serde_yaml::Value> {
        wf["jobs"][job]["steps"]
            .as_sequence()
            .unwrap_or_else(|| panic!("job {job} has steps"))
            .clone()
    };
    let uses = |steps: &[serde_yaml::Value], action: &str| -> serde_yaml::Value {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
            .unwrap_or_else(|| panic!("no step uses {action}"))
            .clone()
    };
    // validate: the SARIF goes to code scanning even when validate failed.
    let validate = steps("validate");
    let writes = validate
        .iter()
        .position(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("--output sarif > iam-warden.sarif"))
        })
        .expect("a step writes iam-warden.sarif");
    let upload = validate
        .iter()
        .position(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .expect("a step uploads the SARIF");
    assert!(
        writes < upload,
        "the upload comes after the SARIF is written"
    );
    assert_eq!(validate[upload]["if"].as_str(), Some("always()"));
    assert_eq!(
        validate[upload]["with"]["sarif_file"].as_str(),
        Some("iam-warden.sarif")
    );
    assert_eq!(
        wf["jobs"]["validate"]["permissions"]["security-events"].as_str(),
        Some("write")
    );
    // plan and apply: each its own role, through GitHub's OIDC token.
    for (job, role) in [
        ("plan", "${{ vars.IAM_WARDEN_PLAN_ROLE_ARN }}"),
        ("apply", "${{ vars.IAM_WARDEN_APPLY_ROLE_ARN }}"),
    ] {
        let creds = uses(&steps(job), "aws-actions/configure-aws-credentials@");
        assert_eq!(
            creds["with"]["role-to-assume"].as_str(),
            Some(role),
            "{job}"
        );
        assert_eq!(
            wf["jobs"][job]["permissions"]["id-token"].as_str(),
            Some("write"),
            "{job}"
        );
    }
    assert_eq!(
        wf["jobs"]["plan"]["permissions"]["pull-requests"].as_str(),
        Some("write")
    );
    assert!(
        wf["jobs"]["plan"]["needs"].is_null(),
        "plan runs without validate: invalid manifests get their comment"
    );
    assert_eq!(
        wf["jobs"]["apply"]["concurrency"]["group"].as_str(),
        Some("iam-warden-apply")
    );
    // The step the runner skips installs the binary from the image named by a variable.
    for job in ["validate", "plan", "apply"] {
        let install = steps(job)
            .into_iter()
            .find(|s| s["name"].as_str() == Some("Install iam-warden"))
            .unwrap_or_else(|| panic!("job {job} installs iam-warden"));
        let script = text(&install["run"]);
        assert!(
            script.contains("docker create \"$IAM_WARDEN_IMAGE\"")
                && script.contains(":/usr/local/bin/iam-warden"),
            "{job}: {script}"
        );
    }
    assert_eq!(
        wf["env"]["IAM_WARDEN_IMAGE"].as_str(),
        Some("${{ vars.IAM_WARDEN_IMAGE }}")
    );
}

/// The same for the GitLab pipeline: OIDC for both roles, SARIF and plan kept as artifacts.
#[test]
fn the_gitlab_pipelines_tokens_and_artifacts_are_where_they_belong() {
    let ci = yaml(GITLAB);
    for (job, role) in [
        ("iam-warden:plan", "$IAM_WARDEN_PLAN_ROLE_ARN"),
        ("iam-warden:apply", "$IAM_WARDEN_APPLY_ROLE_ARN"),
    ] {
        assert_eq!(
            ci[job]["id_tokens"]["AWS_OIDC_TOKEN"]["aud"].as_str(),
            Some("sts.amazonaws.com"),
            "{job}"
        );
        assert_eq!(ci[job]["variables"]["AWS_ROLE_ARN"].as_str(), Some(role));
        assert!(
            ci[job]["variables"]["AWS_WEB_IDENTITY_TOKEN_FILE"]
                .as_str()
                .is_some(),
            "{job}"
        );
    }
    assert_eq!(
        ci["iam-warden:apply"]["resource_group"].as_str(),
        Some("iam-warden-apply")
    );
    let validate = &ci["iam-warden:validate"]["artifacts"];
    assert_eq!(validate["when"].as_str(), Some("always"));
    assert_eq!(validate["paths"][0].as_str(), Some("iam-warden.sarif"));
    assert_eq!(
        ci["iam-warden:plan"]["artifacts"]["paths"][0].as_str(),
        Some("plan.md")
    );
    let binary = text(&ci["iam-warden:binary"]["script"][1]);
    assert!(
        binary.contains("docker create \"$IAM_WARDEN_IMAGE\""),
        "{binary}"
    );
}

// ---------------------------------------------------------------------------------------------
// pre-commit

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=iam-warden tests",
            "-c",
            "user.email=tests@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_pre_commit_hook_passes_valid_manifests_and_names_the_broken_line() {
    let pre_commit = tool("pre-commit");
    // This repository's hooks, as pre-commit fetches them: a git repository at a commit.
    let hooks = tempfile::tempdir().expect("tempdir");
    git(hooks.path(), &["init", "-q"]);
    std::fs::copy(repo_root().join(HOOKS), hooks.path().join(HOOKS)).expect("copy hooks");
    git(hooks.path(), &["add", "-A"]);
    git(hooks.path(), &["commit", "-q", "-m", "hooks"]);
    let rev = git(hooks.path(), &["rev-parse", "HEAD"]);
    // A user's repository: the manifests as deploy/ci/ lays them out, the hook configured.
    let env = literal_env(&yaml(GITHUB)["env"]);
    let project = checkout(&env);
    let (dir, values) = (
        value_of(&env, "IAM_WARDEN_DIR"),
        value_of(&env, "IAM_WARDEN_VALUES"),
    );
    let config = format!(
        "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      \
         - id: iam-warden-validate\n        args: [{dir}, --values, {values}]\n",
        hooks.path().display()
    );
    std::fs::write(project.path().join(".pre-commit-config.yaml"), config).expect("config");
    git(project.path(), &["init", "-q"]);
    git(project.path(), &["add", "-A"]);
    // `language: system`: the iam-warden on PATH.
    let bin = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_iam-warden"),
        bin.path().join("iam-warden"),
    )
    .expect("symlink");
    let home = tempfile::tempdir().expect("tempdir");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pre_commit_run = || {
        let mut cmd = Command::new(&pre_commit);
        cmd.args(["run", "--all-files", "--color", "never"])
            .current_dir(project.path())
            .env("PRE_COMMIT_HOME", home.path())
            .env("PATH", &path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        for (k, _) in std::env::vars() {
            if k.starts_with("IAM_WARDEN_") {
                cmd.env_remove(k);
            }
        }
        let (out, stdout, stderr) = run(&mut cmd);
        (out, format!("{stdout}{stderr}"))
    };
    let (out, log) = pre_commit_run();
    assert!(out.status.success(), "valid manifests:\n{log}");
    assert!(
        log.contains("iam-warden validate") && log.contains("Passed"),
        "{log}"
    );

    let (file, line) = break_manifest(project.path(), dir);
    git(project.path(), &["add", "-A"]);
    let (out, log) = pre_commit_run();
    assert_eq!(out.status.code(), Some(1), "a broken manifest:\n{log}");
    assert!(log.contains("Failed"), "{log}");
    assert!(
        log.contains(&format!("{file}:{line}: spec.managedPolicy")),
        "the hook's output names {file}:{line}:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// validate, GitHub and GitLab

#[test]
fn the_validate_jobs_keep_valid_sarif_and_fail_on_a_broken_manifest() {
    for (file, job, env) in [
        (GITHUB, "validate", literal_env(&yaml(GITHUB)["env"])),
        (
            GITLAB,
            "iam-warden:validate",
            literal_env(&yaml(GITLAB)["variables"]),
        ),
    ] {
        let context = if file == GITHUB {
            context_args(GITHUB_CONTEXT)
        } else {
            context_args(GITLAB_CONTEXT)
        };
        let co = checkout(&env);
        let sarif = co.path().join("iam-warden.sarif");
        let (out, log) = ci_run(file, job, co.path(), None, &context);
        assert!(
            out.status.success(),
            "{file} {job}, valid manifests:\n{log}"
        );
        let results = sarif_results(&assert_valid_sarif(&sarif));
        assert!(results.is_empty(), "{file} {job}: {results:?}");

        std::fs::remove_file(&sarif).expect("remove the SARIF");
        let (broken, line) = break_manifest(co.path(), value_of(&env, "IAM_WARDEN_DIR"));
        let (out, log) = ci_run(file, job, co.path(), None, &context);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{file} {job}, a broken manifest:\n{log}"
        );
        assert!(
            log.contains(&format!("{broken}:{line}:")),
            "{file} {job}: the log names {broken}:{line}:\n{log}"
        );
        // Written all the same, for code scanning (GitHub) or as an artifact (GitLab).
        let results = sarif_results(&assert_valid_sarif(&sarif));
        assert!(
            results.contains(&(broken.clone(), line as u64)),
            "{file} {job}: {results:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// plan and apply against moto

#[tokio::test(flavor = "multi_thread")]
async fn the_github_plan_comments_once_then_edits_its_comment_and_apply_converges() {
    host_tool("jq"); // The fake gh evaluates the workflow's --jq with it, as gh would.
    let moto = Moto::start();
    let endpoint = Some(moto.endpoint.as_str());
    let iam = client_for(&moto.endpoint).await;
    let env = literal_env(&yaml(GITHUB)["env"]);
    let co = checkout(&env);
    let state = tempfile::tempdir().expect("tempdir");
    let (comments, log) = (
        state.path().join("comments.json"),
        state.path().join("gh.log"),
    );
    // A review under way (more than one page of comments) and iam-warden's comment on
    // another pull request: neither is this plan's comment.
    let this_pr = "https://api.github.com/repos/example/infra/issues/7";
    let mut seeded: Vec<Value> = (0..35)
        .map(|i| {
            json!({"id": 100 + i, "issue_url": this_pr, "user": {"login": "alice", "type": "User"},
                   "body": format!("review comment {i}")})
        })
        .collect();
    let other_pr = "https://api.github.com/repos/example/infra/issues/8";
    seeded.push(json!({"id": 200, "issue_url": other_pr,
                       "user": {"login": "github-actions[bot]", "type": "Bot"},
                       "body": format!("{MARKER}\nanother pull request's plan")}));
    // Someone else's comment starting with the marker: not ours to edit.
    seeded.push(json!({"id": 90, "issue_url": this_pr,
                       "user": {"login": "mallory", "type": "User"},
                       "body": format!("{MARKER}\nall in sync, merge away")}));
    std::fs::write(&comments, Value::Array(seeded.clone()).to_string()).expect("seed");
    let mut args = context_args(GITHUB_CONTEXT);
    args.extend(path_arg("--gh-comments", &comments));
    args.extend(path_arg("--gh-log", &log));

    let (out, output) = ci_run(GITHUB, "plan", co.path(), endpoint, &args);
    assert!(out.status.success(), "plan:\n{output}");
    let calls = json_lines(&log);
    let writes: Vec<&Value> = calls.iter().filter(|c| c["method"] != "GET").collect();
    assert_eq!(writes.len(), 1, "one comment written: {calls:#?}");
    assert_eq!(writes[0]["method"], "POST");
    assert_eq!(
        writes[0]["endpoint"],
        "repos/example/infra/issues/7/comments"
    );
    assert_eq!(writes[0]["gh_token"], "ghs_test-token");
    let body = writes[0]["fields"]["body"].as_str().expect("a body");
    assert!(body.starts_with(MARKER), "{body}");
    assert!(body.contains("Role/data-agent-task-role"), "{body}");
    assert_eq!(
        body,
        std::fs::read_to_string(co.path().join("plan.md")).expect("plan.md")
    );
    assert_eq!(
        everything(&iam).await,
        Vec::<String>::new(),
        "plan wrote to IAM"
    );

    // The next push: the same comment, edited.
    let before = calls.len();
    let (out, output) = ci_run(GITHUB, "plan", co.path(), endpoint, &args);
    assert!(out.status.success(), "plan again:\n{output}");
    let state_now = json_file(&comments);
    let ours: Vec<&Value> = state_now
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| {
            c["issue_url"] == this_pr
                && c["user"]["login"] == "github-actions[bot]"
                && c["body"].as_str().unwrap().starts_with(MARKER)
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one plan comment on the pull request: {ours:#?}"
    );
    let calls = json_lines(&log);
    let writes: Vec<&Value> = calls[before..]
        .iter()
        .filter(|c| c["method"] != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{calls:#?}");
    assert_eq!(writes[0]["method"], "PATCH");
    assert_eq!(
        writes[0]["endpoint"],
        format!("repos/example/infra/issues/comments/{}", ours[0]["id"])
    );
    assert_eq!(&state_now.as_array().unwrap()[..seeded.len()], &seeded[..]);
    assert_eq!(
        everything(&iam).await,
        Vec::<String>::new(),
        "plan wrote to IAM"
    );

    // Merged: apply on main.
    let (out, output) = ci_run(GITHUB, "apply", co.path(), endpoint, &args);
    assert!(out.status.success(), "apply:\n{output}");
    assert_converged(&moto.endpoint, co.path(), &env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitlab_plan_notes_once_then_edits_its_note_and_apply_converges() {
    host_tool("curl"); // The pipeline's HTTP client, in its image as on the host.
    let moto = Moto::start();
    let endpoint = Some(moto.endpoint.as_str());
    let iam = client_for(&moto.endpoint).await;
    let ci = yaml(GITLAB);
    let env = literal_env(&ci["variables"]);
    let co = checkout(&env);
    let state = tempfile::tempdir().expect("tempdir");
    let (notes, log) = (
        state.path().join("notes.json"),
        state.path().join("notes.log"),
    );
    let mut args = context_args(GITLAB_CONTEXT);
    args.extend(path_arg("--gitlab-notes", &notes));
    args.extend(path_arg("--gitlab-log", &log));
    args.extend(["--gitlab-token".to_string(), GITLAB_TOKEN.to_string()]);
    let mr_notes = "/api/v4/projects/42/merge_requests/7/notes";

    let (out, output) = ci_run(GITLAB, "iam-warden:plan", co.path(), endpoint, &args);
    assert!(out.status.success(), "plan:\n{output}");
    let requests = json_lines(&log);
    assert!(
        requests.iter().all(|r| r["private_token"] == GITLAB_TOKEN),
        "{requests:#?}"
    );
    let writes: Vec<&Value> = requests.iter().filter(|r| r["method"] != "GET").collect();
    assert_eq!(writes.len(), 1, "one note written: {requests:#?}");
    assert_eq!(writes[0]["method"], "POST");
    assert_eq!(writes[0]["path"], mr_notes);
    assert_eq!(writes[0]["status"], 201);
    let body = writes[0]["form"]["body"].as_str().expect("a body");
    assert!(body.starts_with(MARKER), "{body}");
    assert!(body.contains("Role/data-agent-task-role"), "{body}");
    assert_eq!(
        body,
        std::fs::read_to_string(co.path().join("plan.md")).expect("plan.md")
    );
    // The job handed its id token to the AWS SDK through the file it names.
    let token_file = text(&ci["iam-warden:plan"]["variables"]["AWS_WEB_IDENTITY_TOKEN_FILE"])
        .replace("$CI_PROJECT_DIR", &co.path().display().to_string());
    let token = std::fs::read_to_string(&token_file).expect("the web identity token file");
    assert!(token.contains("aud=sts.amazonaws.com"), "{token}");
    assert_eq!(
        everything(&iam).await,
        Vec::<String>::new(),
        "plan wrote to IAM"
    );

    // The review goes on (more than a page of notes after the plan's), then the next push.
    let mut all = json_file(&notes).as_array().expect("notes").clone();
    let ours = all[0]["id"].clone();
    for i in 0..120 {
        all.push(
            json!({"id": 9000 + i, "body": format!("review note {i}"), "project_id": 42,
                        "noteable_iid": 7, "system": false}),
        );
    }
    // Someone else's note starting with the marker, newer than ours: not ours to edit.
    all.push(
        json!({"id": 9500, "body": format!("{MARKER}\nall in sync, merge away"),
                    "project_id": 42, "noteable_iid": 7, "system": false,
                    "author": {"id": 5, "username": "mallory"}}),
    );
    std::fs::write(&notes, Value::Array(all).to_string()).expect("more notes");
    let before = requests.len();
    let (out, output) = ci_run(GITLAB, "iam-warden:plan", co.path(), endpoint, &args);
    assert!(out.status.success(), "plan again:\n{output}");
    let requests = json_lines(&log);
    let writes: Vec<&Value> = requests[before..]
        .iter()
        .filter(|r| r["method"] != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{requests:#?}");
    assert_eq!(writes[0]["method"], "PUT");
    assert_eq!(writes[0]["path"], format!("{mr_notes}/{ours}"));
    assert_eq!(writes[0]["status"], 200);
    let marked = json_file(&notes)
        .as_array()
        .expect("notes")
        .iter()
        .filter(|n| n["author"]["id"] == 77 && n["body"].as_str().unwrap().starts_with(MARKER))
        .count();
    assert_eq!(marked, 1, "one plan note of ours on the merge request");
    assert_eq!(
        everything(&iam).await,
        Vec::<String>::new(),
        "plan wrote to IAM"
    );

    // Merged: apply on the default branch.
    let (out, output) = ci_run(GITLAB, "iam-warden:apply", co.path(), endpoint, &args);
    assert!(out.status.success(), "apply:\n{output}");
    assert_converged(&moto.endpoint, co.path(), &env).await;
}

/// Broken manifests in a pull request: the plan job still comments, saying so (and naming the
/// line), then fails; IAM is not touched.
#[tokio::test(flavor = "multi_thread")]
async fn the_github_plan_of_broken_manifests_comments_why_and_fails() {
    host_tool("jq");
    let moto = Moto::start();
    let iam = client_for(&moto.endpoint).await;
    let env = literal_env(&yaml(GITHUB)["env"]);
    let co = checkout(&env);
    let (broken, line) = break_manifest(co.path(), value_of(&env, "IAM_WARDEN_DIR"));
    let state = tempfile::tempdir().expect("tempdir");
    let (comments, log) = (
        state.path().join("comments.json"),
        state.path().join("gh.log"),
    );
    std::fs::write(&comments, "[]").expect("no comments yet");
    let mut args = context_args(GITHUB_CONTEXT);
    args.extend(path_arg("--gh-comments", &comments));
    args.extend(path_arg("--gh-log", &log));
    let (out, output) = ci_run(GITHUB, "plan", co.path(), Some(&moto.endpoint), &args);
    assert_eq!(out.status.code(), Some(1), "the job fails:\n{output}");
    let calls = json_lines(&log);
    let posted: Vec<&Value> = calls.iter().filter(|c| c["method"] == "POST").collect();
    assert_eq!(posted.len(), 1, "{calls:#?}");
    let body = posted[0]["fields"]["body"].as_str().expect("a body");
    assert!(body.starts_with(MARKER), "{body}");
    assert!(body.contains("nothing was planned"), "{body}");
    assert!(body.contains(&format!("{broken}:{line}")), "{body}");
    assert_eq!(everything(&iam).await, Vec::<String>::new());
}
