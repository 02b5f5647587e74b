//! deploy/ against the real binary on moto: container logs are plain text, the metrics the
//! dashboard and the alerts query are ones the daemon exports, and the Kubernetes Deployment's
//! and the ECS task definition's configuration runs as written (paths moved to a temp dir).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::CommandFactory;
use serde_json::Value;
use support::daemon::{Daemon, wait_for};
use support::moto::{Moto, client_for};
use support::{repo_root, warden_on};

const WAIT: Duration = Duration::from_secs(10);

/// The example manifests, as in the container images.
fn agent_daemon(moto: &Moto, args: &[&str]) -> Daemon {
    let mut all = vec!["--values", "deploy/values.example.yaml"];
    all.extend_from_slice(args);
    Daemon::start(&moto.endpoint, &repo_root().join("manifests/agent"), &all)
}

#[test]
fn the_daemons_text_log_on_a_pipe_has_no_colour_escapes() {
    let moto = Moto::start();
    let daemon = agent_daemon(&moto, &[]);
    daemon.wait_ready();
    let log = daemon.log();
    assert!(
        log.contains("INFO"),
        "expected text log lines on stderr:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log written to a pipe:\n{log:?}"
    );
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

/// Every metric name the daemon's /metrics declares or shows, with the sample names of
/// counters (`_total`) and histograms (`_bucket`, `_sum`, `_count`).
fn exported_metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_string());
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {}
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// The `iam_warden_*` names in a PromQL expression.
fn queried_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in expr.match_indices("iam_warden_") {
        if at > 0 && expr[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = expr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        names.insert(name);
    }
    names
}

/// Every PromQL expression of the dashboard and of the PrometheusRule, with where it is.
fn deploy_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/iam-warden.json"))
            .expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            out.push((
                format!("dashboard panel {}", panel["title"]),
                target["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    let rule: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/kubernetes/base/prometheusrule.yaml"))
            .expect("read the PrometheusRule"),
    )
    .expect("the PrometheusRule is YAML");
    for group in rule["spec"]["groups"].as_array().expect("groups") {
        for r in group["rules"].as_array().expect("rules") {
            out.push((
                format!("alert {}", r["alert"]),
                r["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_metric_name_extractor_skips_longer_identifiers() {
    assert_eq!(
        queried_names("sum(rate(iam_warden_a_total[5m])) / x_iam_warden_b + iam_warden_c{s=\"x\"}"),
        BTreeSet::from(["iam_warden_a_total".to_string(), "iam_warden_c".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    let moto = Moto::start();
    let daemon = agent_daemon(&moto, &["--resync-interval", "1s"]);
    daemon.wait_ready();
    // A metric family shows on /metrics once it has a sample: drift one role so the
    // corrections counter has one.
    let iam = client_for(&moto.endpoint).await;
    iam.update_role()
        .role_name("data-agent-task-role")
        .description("changed by hand")
        .send()
        .await
        .expect("update the role by hand");
    wait_for("a drift correction", Duration::from_secs(30), || {
        daemon
            .get("/metrics")
            .1
            .contains("iam_warden_drift_corrections_total{")
    });
    let (code, text) = daemon.get("/metrics");
    assert_eq!(code, 200);
    let exported = exported_metric_names(&text);
    let queries = deploy_queries();
    // The panels and alerts the issue asks for, so that an emptied file cannot pass.
    let all: BTreeSet<String> = queries.iter().flat_map(|(_, e)| queried_names(e)).collect();
    for name in [
        "iam_warden_resources",
        "iam_warden_drift_corrections_total",
        "iam_warden_reconcile_duration_seconds_bucket",
        "iam_warden_aws_requests_total",
        "iam_warden_resync_duration_seconds_bucket",
        "iam_warden_last_successful_resync_timestamp_seconds",
        "iam_warden_queue_depth",
        "iam_warden_reconcile_total",
    ] {
        assert!(all.contains(name), "nothing in deploy/ queries {name}");
    }
    let mut unknown = Vec::new();
    for (place, expr) in &queries {
        for name in queried_names(expr) {
            if !exported.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "queried but not exported by the daemon:\n  {}\nexported: {exported:?}",
        unknown.join("\n  ")
    );
}

/// The env names of every flag of `run` (`IAM_WARDEN_DIR` included).
fn run_env_names() -> BTreeSet<String> {
    let cli = iam_warden::cli::Cli::command();
    let run = cli.find_subcommand("run").expect("the run command");
    run.get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// The variables that hold a file or directory the container reads.
const PATH_ENVS: &[&str] = &[
    "IAM_WARDEN_DIR",
    "IAM_WARDEN_VALUES",
    "IAM_WARDEN_GUARDRAILS",
    "IAM_WARDEN_ACCOUNTS",
];

/// A container's args and env, with the container's paths moved under `root` and the listen
/// address on a free loopback port.
struct Container {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Container {
    fn from_deployment(path: &str) -> Container {
        Container::from_pod_template(path, &[])
    }

    /// The iam-warden container of a Deployment's or StatefulSet's pod template; `downward`
    /// gives what the downward API would (`metadata.name`), and `$(NAME)` in a value expands
    /// as Kubernetes expands it.
    fn from_pod_template(path: &str, downward: &[(&str, &str)]) -> Container {
        let doc: Value = serde_yaml::from_str(
            &std::fs::read_to_string(repo_root().join(path)).expect("read the workload"),
        )
        .expect("YAML");
        let c = doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == "iam-warden")
            .expect("an iam-warden container")
            .clone();
        let mut env = c["env"].clone();
        let mut defined: Vec<(String, String)> = Vec::new();
        for e in env.as_array_mut().expect("env") {
            if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                let value = downward
                    .iter()
                    .find(|(f, _)| *f == field)
                    .unwrap_or_else(|| panic!("no downward value for {field}"))
                    .1;
                e["value"] = Value::String(value.to_string());
            }
            let mut value = e["value"].as_str().expect("a value").to_string();
            for (name, v) in &defined {
                value = value.replace(&format!("$({name})"), v);
            }
            e["value"] = Value::String(value.clone());
            defined.push((e["name"].as_str().expect("name").to_string(), value));
        }
        Container::from(&c["args"], &env)
    }

    fn from_task_definition(path: &str) -> Container {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join(path)).expect("read the task definition"),
        )
        .expect("JSON");
        let c = doc["containerDefinitions"]
            .as_array()
            .expect("containerDefinitions")
            .iter()
            .find(|c| c["name"] == "iam-warden")
            .expect("an iam-warden container")
            .clone();
        Container::from(&c["command"], &c["environment"])
    }

    fn from(args: &Value, env: &Value) -> Container {
        Container {
            args: args
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("string arg").to_string())
                .collect(),
            env: env
                .as_array()
                .expect("env")
                .iter()
                .map(|e| {
                    (
                        e["name"].as_str().expect("name").to_string(),
                        e["value"].as_str().expect("a literal value").to_string(),
                    )
                })
                .collect(),
        }
    }

    /// Runs it against `endpoint` with the paths it reads under `root`: the test lays out
    /// `root` as the container would see it.
    fn run(&self, endpoint: &str, root: &Path) -> Daemon {
        let moved = |v: &str| {
            if v.starts_with('/') {
                format!("{}{v}", root.display())
            } else {
                v.to_string()
            }
        };
        let mut cmd: Command = warden_on(endpoint);
        cmd.args(self.args.iter().map(|a| moved(a)));
        for (name, value) in &self.env {
            let value = match name.as_str() {
                "IAM_WARDEN_LISTEN" => "127.0.0.1:0".to_string(),
                n if PATH_ENVS.contains(&n) => moved(value),
                _ => value.clone(),
            };
            cmd.env(name, value);
        }
        Daemon::spawn(cmd)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A directory laid out as a container sees it: each (repository path, path inside) copied.
fn lay_out(layout: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    for (from, to) in layout {
        let (from, to) = (repo_root().join(from), root.path().join(to));
        if from.is_dir() {
            copy_dir(&from, &to);
        } else {
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&from, &to).expect("copy");
        }
    }
    root
}

/// Runs `container` on moto with the agent manifests where it expects them; the roles must
/// converge, owned by the configured owner.
async fn converges(container: Container, layout: &[(&str, &str)]) {
    let known = run_env_names();
    for (name, _) in &container.env {
        if name.starts_with("IAM_WARDEN_") {
            assert!(
                known.contains(name),
                "{name} is no flag of `iam-warden run` (known: {known:?})"
            );
        }
    }
    let owner = container
        .env
        .iter()
        .find(|(n, _)| n == "IAM_WARDEN_OWNER")
        .map(|(_, v)| v.clone())
        .expect("the container sets IAM_WARDEN_OWNER");
    let root = lay_out(layout);
    let moto = Moto::start();
    let daemon = container.run(&moto.endpoint, root.path());
    daemon.wait_ready();
    let status = daemon.status();
    let resources = status["resources"].as_array().expect("resources").clone();
    assert_eq!(resources.len(), 3, "{status:#}");
    for r in &resources {
        assert_eq!(r["state"], "in-sync", "{status:#}\n{}", daemon.log());
    }
    let iam = client_for(&moto.endpoint).await;
    let role = iam
        .get_role()
        .role_name("data-agent-task-role")
        .send()
        .await
        .expect("the task role exists");
    let role = role.role().expect("role");
    assert_eq!(role.path(), "/agent/");
    assert!(
        role.tags()
            .iter()
            .any(|t| t.key() == "iam-warden/owner" && t.value() == owner),
        "owner tag {owner} missing: {:?}",
        role.tags()
    );
    assert_eq!(daemon.terminate(WAIT), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubernetes_deployments_configuration_runs_as_written() {
    converges(
        Container::from_deployment("deploy/kubernetes/base/deployment.yaml"),
        &[
            ("manifests/agent", "git/current/manifests/agent"),
            (
                "deploy/values.example.yaml",
                "git/current/deploy/values.example.yaml",
            ),
        ],
    )
    .await;
}

/// The many-accounts StatefulSet as written, with deploy/accounts.example.yaml where its
/// ConfigMap goes: its three pods split the accounts, and each account converges.
#[tokio::test(flavor = "multi_thread")]
async fn the_statefulsets_configuration_splits_the_accounts_between_its_pods() {
    let path = "deploy/kubernetes/overlays/many-accounts/statefulset.yaml";
    let root = lay_out(&[
        ("manifests/agent", "git/current/manifests/agent"),
        (
            "deploy/values.example.yaml",
            "git/current/deploy/values.example.yaml",
        ),
        (
            "deploy/accounts.example.yaml",
            "etc/iam-warden/accounts.yaml",
        ),
    ]);
    let moto = Moto::start();
    let known = run_env_names();
    let mut managed = Vec::new();
    let mut daemons = Vec::new();
    for pod in ["iam-warden-0", "iam-warden-1", "iam-warden-2"] {
        let container = Container::from_pod_template(path, &[("metadata.name", pod)]);
        for (name, _) in &container.env {
            assert!(
                !name.starts_with("IAM_WARDEN_") || known.contains(name),
                "{name}"
            );
        }
        let daemon = container.run(&moto.endpoint, root.path());
        daemon.wait_ready();
        let status = daemon.status();
        for a in status["accounts"].as_array().expect("accounts") {
            managed.push(a["id"].as_str().expect("id").to_string());
        }
        for r in status["resources"].as_array().expect("resources") {
            assert_eq!(r["state"], "in-sync", "{status:#}\n{}", daemon.log());
        }
        daemons.push(daemon);
    }
    managed.sort();
    assert_eq!(
        managed,
        ["111111111111", "222222222222"],
        "each account in one pod"
    );
    for id in ["111111111111", "222222222222"] {
        let iam = support::moto::client_in(&moto.endpoint, id).await;
        let role = iam
            .get_role()
            .role_name("data-agent-task-role")
            .send()
            .await
            .expect("the task role exists in every account");
        assert_eq!(role.role().map(|r| r.path()), Some("/agent/"));
    }
    for d in daemons {
        assert_eq!(d.terminate(WAIT), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ecs_task_definitions_configuration_runs_as_written() {
    converges(
        Container::from_task_definition("deploy/ecs/task-definition.json"),
        &[
            ("manifests/agent", "manifests"),
            ("deploy/values.example.yaml", "etc/iam-warden/values.yaml"),
        ],
    )
    .await;
}
