//! The request pace and timeouts, against moto behind a proxy that plays IAM's latency and an
//! account's rate limit: a throttling account is converged with default flags, a long paced
//! pass is neither an outage nor a failure of /healthz, an edit goes ahead of the backlog, and
//! an endpoint that never answers fails a call instead of stalling it.

mod support;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::bed::Bed;
use support::daemon::wait_for;
use support::moto::get_role;
use support::proxy::is_read;

const WAIT: Duration = Duration::from_secs(120);

fn role(i: usize, description: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: paced-{i}}}
spec:
  description: {description}
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
  inlinePolicies:
    secrets:
      Version: "2012-10-17"
      Statement: [{{Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-{i}/*"}}]
  managedPolicies:
    - ref: paced-policy-{i}
---
apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {{name: paced-policy-{i}}}
spec:
  document:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::bucket-{i}/*"}}]
"#
    )
}

async fn bed_of(n: usize) -> Bed {
    let bed = Bed::new(&[], &[]).await;
    for i in 0..n {
        bed.write(&format!("r{i}.yaml"), &role(i, "paced"));
    }
    bed
}

async fn description(bed: &Bed, i: usize) -> Option<String> {
    get_role(&bed.iam, &format!("paced-{i}"))
        .await
        .map(|r| r.description().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_default_flags_converges_an_account_that_throttles() {
    let n = 60;
    let bed = bed_of(n).await;
    bed.proxy.set_latency(Duration::from_millis(20));
    bed.proxy.limit_rate(20);
    let (code, out) = bed.run_with("apply", &[]);
    assert_eq!(code, 0, "{out}");
    for i in 0..n {
        assert_eq!(description(&bed, i).await.as_deref(), Some("paced"), "{i}");
    }
    let requests = bed.proxy.actions().len();
    let throttled = bed.proxy.throttled();
    eprintln!("{throttled} of {requests} answers were Throttling");
    assert!(
        throttled > 0,
        "the limit was never reached: nothing measured"
    );
    // Unpaced, a quarter of the answers are Throttling; the pace keeps well under that.
    assert!(
        throttled * 10 <= requests,
        "{throttled} of {requests} answers were Throttling"
    );
    assert!(!out.contains("unreachable"), "{out}");
    // A run of seconds on a pipe: no progress bar in what it printed.
    assert!(!out.contains("ETA"), "{out}");
    bed.proxy.limit_rate(1000);
    assert!(
        bed.in_sync(bed.dir.path()),
        "plan finds changes after apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_paced_first_pass_is_healthy_logs_no_outage_and_serves_an_edit_first() {
    let n = 40;
    let bed = bed_of(n).await;
    bed.proxy.set_latency(Duration::from_millis(150));
    bed.proxy.limit_rate(8);
    let d = bed.daemon(bed.dir.path(), &["--resync-interval", "2s"]);
    // An edit saved while the backlog is long: it does not wait behind it.
    wait_for("the first pass to start writing", WAIT, || {
        bed.proxy.actions().iter().any(|a| !is_read(a))
    });
    let last = n - 1;
    fs::write(
        bed.dir.path().join(format!("r{last}.yaml")),
        role(last, "edited"),
    )
    .unwrap();
    let mut unhealthy = Vec::new();
    let started = Instant::now();
    let mut edited_at = None;
    loop {
        let (code, body) = d.get("/healthz");
        if code != 200 {
            unhealthy.push(body);
        }
        if edited_at.is_none() && description(&bed, last).await.as_deref() == Some("edited") {
            edited_at = Some(bed.proxy.writes().len());
        }
        if d.get("/readyz").0 == 200 && edited_at.is_some() {
            break;
        }
        assert!(started.elapsed() < WAIT, "not ready: {}", d.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(unhealthy.is_empty(), "/healthz failed: {unhealthy:?}");
    // Each role takes a few writes; the edited one came long before the last of them.
    let writes = bed.proxy.writes().len();
    let edited_at = edited_at.unwrap_or(writes);
    assert!(
        edited_at * 2 < writes,
        "the edit reached IAM after {edited_at} of {writes} writes"
    );
    for i in 0..last {
        assert_eq!(description(&bed, i).await.as_deref(), Some("paced"), "{i}");
    }
    // Two resyncs on the slow, throttling account: still healthy, never an outage.
    let resyncs = || {
        d.metric("iam_warden_resync_duration_seconds_count")
            .unwrap_or(0.0)
    };
    let now = resyncs();
    wait_for("two resyncs", WAIT, || resyncs() >= now + 2.0);
    assert_eq!(d.get("/healthz").0, 200, "{}", d.get("/healthz").1);
    let log = d.log();
    for outage in ["unreachable", "minimum throughput", "dispatch failure"] {
        assert!(!log.contains(outage), "logged `{outage}`:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_iam_with_short_intervals_is_an_outage_not_a_dead_daemon() {
    let bed = bed_of(2).await;
    // STS answers (the account is known); every IAM call hangs.
    bed.proxy.hold_all_but(&["GetCallerIdentity"]);
    let d = bed.daemon(
        bed.dir.path(),
        &[
            "--resync-interval",
            "1s",
            "--attempt-timeout",
            "1s",
            "--operation-timeout",
            "3s",
        ],
    );
    let started = Instant::now();
    let mut unhealthy = Vec::new();
    // Several times the bound of three intervals + 10 s.
    while started.elapsed() < Duration::from_secs(30) {
        let (code, body) = d.get("/healthz");
        if code != 200 {
            unhealthy.push(body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(unhealthy.is_empty(), "/healthz failed: {unhealthy:?}");
    let timeouts: f64 = d
        .get("/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with("iam_warden_aws_requests_total") && l.contains("timeout"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(timeouts > 0.0, "timed-out calls are not counted");
    bed.proxy.release();
    d.wait_ready();
    // Ready once every resource was tried; the ones that timed out come back on their backoff.
    let bed = &bed;
    for i in 0..2 {
        support::eventually(&format!("paced-{i} created"), || async move {
            description(bed, i).await.as_deref() == Some("paced")
        })
        .await;
    }
}

/// A server that accepts connections and never answers: a black-holed IAM.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            let mut c = conn.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            });
            held.push(conn);
        }
    });
    endpoint
}

#[test]
fn a_black_holed_endpoint_fails_a_call_instead_of_stalling_it() {
    let endpoint = black_hole();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("r.yaml"), role(0, "x")).unwrap();
    let mut child = support::warden_on(&endpoint)
        .args(["plan"])
        .arg(dir.path())
        .args(["--attempt-timeout", "1s", "--operation-timeout", "2s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without timeouts it would wait for ever: give it far longer than it needs.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("plan against a black hole did not end");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot identify the AWS account") && err.contains("timeout"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_dropped_by_the_listener() {
    let bed = bed_of(1).await;
    let d = bed.daemon(bed.dir.path(), &[]);
    d.wait_ready();
    let mut conn = std::net::TcpStream::connect(&d.addr).unwrap();
    use std::io::Write;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = Vec::new();
    // The server closes it (with or without a 408) well before the read timeout.
    let started = Instant::now();
    let _ = conn.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a half-sent request was held for {:?}",
        started.elapsed()
    );
    assert_eq!(d.get("/healthz").0, 200);
}
