//! The pacing profiles of `cargo bench --bench scale`: 100 ECS task roles (CreateRole with
//! tags, PutRolePolicy, AttachRolePolicy of one shared policy) converged from empty through a
//! proxy that delays every answer by 100 ms (IAM as seen from a pod), and, in a second
//! profile, also accepts only 20 requests a second and answers Throttling beyond (an account's
//! IAM limit). iam-warden with default flags and unpaced, beside a bare SDK client with 8
//! tasks and one, in the same run.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use crate::support;
use support::moto::Moto;
use support::proxy::Proxy;

pub const ROLES: usize = 100;
const LATENCY: Duration = Duration::from_millis(100);
const LIMIT: u32 = 20;

fn trust() -> &'static str {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#
}

fn inline(i: usize) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-{i}/*"}}]}}"#
    )
}

const SHARED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#;

/// The manifests: one shared policy, ROLES roles attaching it.
pub fn write_manifests(dir: &Path) {
    fs::write(
        dir.join("shared.yaml"),
        format!(
            "apiVersion: iamwarden/v1alpha1\nkind: Policy\nmetadata: {{name: pace-shared}}\nspec:\n  document: {SHARED}\n"
        ),
    )
    .expect("write");
    for i in 0..ROLES {
        let text = format!(
            "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: pace-task-role-{i}}}\nspec:\n  assumeRolePolicy: {trust}\n  inlinePolicies:\n    secrets: {inline}\n  managedPolicies:\n    - ref: pace-shared\n  tags: {{team: data, index: \"{i}\"}}\n",
            trust = trust(),
            inline = inline(i)
        );
        fs::write(dir.join(format!("role-{i}.yaml")), text).expect("write");
    }
}

/// A bare SDK client with the SDK's default retries (standard mode, 3 attempts).
fn bare_client(endpoint: &str) -> aws_sdk_iam::Client {
    support::moto::client_with(
        endpoint,
        aws_sdk_iam::config::retry::RetryConfig::standard(),
    )
}

/// The bare client's converge with `tasks` at a time: wall time and roles fully made.
async fn bare(endpoint: &str, tasks: usize) -> (Duration, usize) {
    let iam = bare_client(endpoint);
    let tag = |k: &str, v: &str| support::fixtures::tag(k, v);
    let started = Instant::now();
    let Ok(policy) = iam
        .create_policy()
        .policy_name("pace-shared")
        .policy_document(SHARED)
        .send()
        .await
    else {
        return (started.elapsed(), 0);
    };
    let arn = policy
        .policy()
        .and_then(|p| p.arn())
        .unwrap_or_default()
        .to_string();
    let made = stream::iter(0..ROLES)
        .map(|i| {
            let iam = iam.clone();
            let arn = arn.clone();
            async move {
                let role = format!("pace-task-role-{i}");
                iam.create_role()
                    .role_name(&role)
                    .assume_role_policy_document(trust())
                    .tags(tag("team", "data"))
                    .tags(tag("index", &i.to_string()))
                    .send()
                    .await
                    .ok()?;
                iam.put_role_policy()
                    .role_name(&role)
                    .policy_name("secrets")
                    .policy_document(inline(i))
                    .send()
                    .await
                    .ok()?;
                iam.attach_role_policy()
                    .role_name(&role)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .ok()
            }
        })
        .buffer_unordered(tasks)
        .filter_map(|made| async move { made })
        .count()
        .await;
    (started.elapsed(), made)
}

struct Cell {
    wall: Duration,
    requests: usize,
    throttled: usize,
    /// For the bare client: roles fully made (iam-warden fails its run otherwise).
    made: Option<usize>,
}

impl Cell {
    fn show(&self) -> String {
        let made = match self.made {
            Some(n) if n < ROLES => format!(", **{n} of {ROLES} roles made**"),
            _ => String::new(),
        };
        format!(
            "{:.1} s, {} requests, {} throttled ({:.1} %){made}",
            self.wall.as_secs_f64(),
            self.requests,
            self.throttled,
            100.0 * self.throttled as f64 / (self.requests.max(1)) as f64
        )
    }
}

fn apply(endpoint: &str, dir: &Path, max_rps: Option<&str>) -> (Duration, bool) {
    let mut cmd = support::warden_on(endpoint);
    cmd.env_remove("IAM_WARDEN_MAX_REQUESTS_PER_SECOND");
    if let Some(rps) = max_rps {
        cmd.env("IAM_WARDEN_MAX_REQUESTS_PER_SECOND", rps);
    }
    cmd.arg("apply").arg(dir);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let started = Instant::now();
    let ok = cmd.status().is_ok_and(|s| s.success());
    (started.elapsed(), ok)
}

pub struct Profile {
    name: String,
    warden_default: Cell,
    warden_unpaced: Cell,
    bare_8: Cell,
    bare_1: Cell,
    noop_requests: usize,
}

fn measure_one(
    proxy: &Proxy,
    moto: &Moto,
    run: impl FnOnce() -> (Duration, Option<usize>),
) -> Cell {
    crate::reset(moto);
    proxy.reset_counts();
    let before = proxy.throttled();
    let (wall, made) = run();
    Cell {
        wall,
        requests: proxy.actions().len(),
        throttled: proxy.throttled() - before,
        made,
    }
}

pub async fn profile(moto: &Moto, limit: Option<u32>) -> Profile {
    let proxy = Proxy::start(&moto.endpoint);
    proxy.set_latency(LATENCY);
    if let Some(l) = limit {
        proxy.limit_rate(l);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifests(dir.path());
    let runtime = tokio::runtime::Handle::current();
    let warden = |rps: Option<&'static str>| {
        let (wall, ok) = apply(&proxy.endpoint, dir.path(), rps);
        assert!(ok, "iam-warden apply failed (max rps {rps:?})");
        (wall, None)
    };
    let warden_default = measure_one(&proxy, moto, || warden(None));
    proxy.reset_counts();
    let (_, ok) = apply(&proxy.endpoint, dir.path(), None);
    assert!(ok, "no-op apply failed");
    let noop_requests = proxy.actions().len();
    let warden_unpaced = measure_one(&proxy, moto, || warden(Some("0")));
    let bare_run = |tasks| {
        let (wall, made) =
            tokio::task::block_in_place(|| runtime.block_on(bare(&proxy.endpoint, tasks)));
        (wall, Some(made))
    };
    let bare_8 = measure_one(&proxy, moto, || bare_run(8));
    let bare_1 = measure_one(&proxy, moto, || bare_run(1));
    Profile {
        name: match limit {
            Some(l) => format!("{} ms latency + {l} req/s limit", LATENCY.as_millis()),
            None => format!("{} ms latency", LATENCY.as_millis()),
        },
        warden_default,
        warden_unpaced,
        bare_8,
        bare_1,
        noop_requests,
    }
}

/// The table, and each target judged from its figures.
pub fn table(profiles: &[Profile]) -> String {
    let mut t = String::new();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(
        t,
        "| converge {ROLES} task roles from empty | {} |",
        names.join(" | ")
    );
    let _ = writeln!(t, "|---|{}", "---|".repeat(profiles.len()));
    let mut line = |name: &str, f: &dyn Fn(&Profile) -> String| {
        let cells: Vec<String> = profiles.iter().map(f).collect();
        let _ = writeln!(t, "| {name} | {} |", cells.join(" | "));
    };
    line(
        "iam-warden, default flags (ceiling 100 req/s, adaptive)",
        &|p| p.warden_default.show(),
    );
    line("iam-warden, `--max-requests-per-second 0`", &|p| {
        p.warden_unpaced.show()
    });
    line("a bare client, 8 tasks", &|p| p.bare_8.show());
    line("a bare client, sequential", &|p| p.bare_1.show());
    line("no-op `apply` after, requests", &|p| {
        p.noop_requests.to_string()
    });
    let _ = writeln!(t);
    for p in profiles {
        let w = &p.warden_default;
        let judged = match p.name.contains("limit") {
            true => {
                let floor = w.requests as f64 / f64::from(LIMIT);
                let ratio = w.wall.as_secs_f64() / floor;
                let share = 100.0 * w.throttled as f64 / w.requests.max(1) as f64;
                format!(
                    "{:.2}x of requests / limit ({} / {LIMIT} = {floor:.1} s; target 1.15x: {}), {share:.1} % throttled (target 5 %: {})",
                    ratio,
                    w.requests,
                    met(ratio <= 1.15),
                    met(share <= 5.0)
                )
            }
            false => {
                let ratio = w.wall.as_secs_f64() / p.bare_8.wall.as_secs_f64();
                format!(
                    "{ratio:.2}x of the bare 8-task client (target 1.2x: {})",
                    met(ratio <= 1.2)
                )
            }
        };
        let noop = format!(
            "no-op apply {} requests (target 5: {})",
            p.noop_requests,
            met(p.noop_requests <= 5)
        );
        let _ = writeln!(
            t,
            "- {}: default flags converge in {judged}; {noop}.",
            p.name
        );
    }
    t
}

pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**MISSED**" }
}
