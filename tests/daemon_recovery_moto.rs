//! The daemon comes back by itself, against moto: the watcher after a subdirectory of DIR
//! was unreadable for a while, and the report of an IAM that answers with server errors.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::bed::Bed;
use support::daemon::{Daemon, wait_for};
use support::eventually;

const WAIT: Duration = Duration::from_secs(60);

fn role(description: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: watched}}
spec:
  description: {description}
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
"#
    )
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `run` as an unprivileged user, for whom `chmod 000` really shuts a directory: `nobody`
/// through setpriv when the tests run as root (CI), the test's own user otherwise.
fn unprivileged_warden(endpoint: &str, dir: &Path) -> Command {
    let bin = env!("CARGO_BIN_EXE_iam-warden");
    let mut cmd = if is_root() {
        for entry in walk(dir) {
            std::os::unix::fs::chown(&entry, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
            "--".into(),
            bin.into(),
        ]);
        c
    } else {
        Command::new(bin)
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("IAM_WARDEN_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", dir)
        .env("IAM_WARDEN_ENDPOINT_URL", endpoint)
        .current_dir(dir);
    cmd
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// IAM refuses every UpdateRole as malformed: sending it again cannot help.
fn refuse_update_role(bed: &Bed) {
    bed.proxy.fail(
        "UpdateRole",
        1000,
        400,
        "MalformedPolicyDocument",
        "refused for the test",
    );
}

/// `run` on the bed's directory, ready.
fn ready_daemon(bed: &Bed, args: &[&str]) -> Daemon {
    let d = bed.daemon(bed.dir.path(), args);
    d.wait_ready();
    d
}

async fn description(bed: &Bed) -> String {
    bed.description("watched").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_seen_within_seconds_after_a_subdirectory_was_unreadable() {
    let bed = Bed::new(&[], &[]).await;
    let sub = bed.dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("r.yaml"), role("one")).unwrap();
    // The default resync (60 s): only the watcher can make the edit land in time.
    let d = Daemon::start_cmd(
        unprivileged_warden(&bed.proxy.endpoint, bed.dir.path()),
        bed.dir.path(),
        &[],
    );
    d.wait_ready();
    assert_eq!(description(&bed).await, "one");

    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    wait_for("the unreadable subdirectory on /status", WAIT, || {
        d.status()["fileErrors"].to_string().contains("sub")
    });
    // Meanwhile its resources keep their last good state: still shown, still enforced.
    assert_eq!(d.resource("watched")["name"], "watched", "{}", d.status());
    assert!(
        d.get("/readyz").1.contains("warning: invalid manifests: "),
        "{}",
        d.get("/readyz").1
    );
    bed.iam
        .update_role()
        .role_name("watched")
        .description("hacked")
        .send()
        .await
        .unwrap();
    d.signal("HUP");
    eventually(
        "the drift under the unreadable subdirectory corrected",
        || async { description(&bed).await == "one" },
    )
    .await;
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    wait_for("the file error cleared", Duration::from_secs(15), || {
        d.status()["fileErrors"] == serde_json::json!([])
    });
    // An edit after the directory came back reaches IAM well before the next resync.
    std::fs::write(sub.join("r.yaml"), role("two")).unwrap();
    let saved = Instant::now();
    while description(&bed).await != "two" {
        assert!(
            saved.elapsed() < Duration::from_secs(20),
            "the edit was not seen by the watcher:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_answering_server_errors_is_reported_as_failing_not_as_a_refusal() {
    let bed = Bed::new(&[("r.yaml", &role("one"))], &[]).await;
    let d = ready_daemon(&bed, &["--resync-interval", "1s"]);
    for action in [
        "GetAccountAuthorizationDetails",
        "ListRoles",
        "GetRole",
        "ListRoleTags",
        "ListRolePolicies",
        "ListAttachedRolePolicies",
    ] {
        bed.proxy
            .fail(action, 10_000, 503, "ServiceUnavailable", "IAM is down");
    }
    wait_for("/readyz to warn that AWS is failing", WAIT, || {
        let (code, body) = d.get("/readyz");
        code == 200 && body.contains("warning: AWS failing: ") && body.contains("IAM is down")
    });
    let status = d.status();
    assert!(
        status["aws"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("IAM is down")),
        "{status}"
    );
    // Several resyncs of it: never taken for a denied bulk read.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        d.logged("cannot read the account in bulk"),
        0,
        "{}",
        d.log()
    );
    assert!(
        d.logged("AWS answers with server errors") >= 1,
        "{}",
        d.log()
    );

    bed.proxy.clear_faults();
    wait_for("the warning gone", WAIT, || {
        !d.get("/readyz").1.contains("warning:")
    });
    assert!(d.logged("AWS answers without server errors again") >= 1);
}

/// GET /metrics with `accept`: the Content-Type answered and the body.
fn scrape(d: &Daemon, accept: Option<&str>) -> (String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(&d.addr).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "GET /metrics HTTP/1.0\r\nHost: localhost\r\n{accept}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_format_their_content_type_names() {
    let bed = Bed::new(&[("r.yaml", &role("one"))], &[]).await;
    let d = ready_daemon(&bed, &[]);
    // What Prometheus sends: OpenMetrics first.
    let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (content_type, body) = scrape(&d, Some(prometheus));
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    for accept in [None, Some("text/plain")] {
        let (content_type, body) = scrape(&d, accept);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        assert!(!body.contains("# EOF"), "{body}");
        assert!(
            body.contains("# TYPE iam_warden_reconcile_total counter"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_retrying_cannot_fix_waits_for_the_next_resync_not_a_fast_backoff() {
    let bed = Bed::new(&[("r.yaml", &role("one"))], &[]).await;
    let d = ready_daemon(&bed, &[]);
    refuse_update_role(&bed);
    bed.proxy.reset_counts();
    std::fs::write(bed.dir.path().join("r.yaml"), role("two")).unwrap();
    wait_for("the error on /status", WAIT, || {
        d.resource("watched")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("refused for the test"))
    });
    // A fast backoff would have tried again four or five times by now (1 s, 1.5 s, …); the
    // default resync (60 s) is far off.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        bed.proxy.count("UpdateRole"),
        1,
        "{:?}",
        bed.proxy.actions()
    );
    assert_eq!(d.resource("watched")["state"], "error");
    // A new edit is tried at once.
    bed.proxy.clear_faults();
    std::fs::write(bed.dir.path().join("r.yaml"), role("three")).unwrap();
    wait_for("the next edit applied", WAIT, || {
        d.resource("watched")["state"] == "in-sync"
    });
    assert_eq!(description(&bed).await, "three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_retrying_cannot_fix_is_tried_again_at_each_resync_and_said_once() {
    let bed = Bed::new(&[("r.yaml", &role("one"))], &[]).await;
    let d = ready_daemon(&bed, &["--resync-interval", "1s"]);
    refuse_update_role(&bed);
    std::fs::write(bed.dir.path().join("r.yaml"), role("two")).unwrap();
    wait_for("tried again at a later resync", WAIT, || {
        bed.proxy.count("UpdateRole") >= 3
    });
    assert_eq!(d.resource("watched")["state"], "error");
    assert_eq!(d.logged("reconcile failed"), 1, "{}", d.log());
    // Fixed elsewhere (here: IAM accepts it again): the next resync converges it.
    bed.proxy.clear_faults();
    wait_for("converged", WAIT, || {
        d.resource("watched")["state"] == "in-sync"
    });
    assert_eq!(description(&bed).await, "two");
}
