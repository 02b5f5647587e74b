//! Watching a running daemon, against moto: `iam-warden status` (the table, one resource's
//! history of corrections, JSON, `--watch`, exit codes) and the page at `/`, rendered by
//! Debian's headless Chromium, while the daemon holds one drifted, one
//! contested, one failing and one conflicting resource.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::bed::Bed;
use support::daemon::{Daemon, wait_for};
use support::fixtures::tag;
use support::{repo_root, run, warden};

const WAIT: Duration = Duration::from_secs(60);

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn role(name: &str, extra_metadata: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: {name}
{extra_metadata}spec:
  description: managed by iam-warden
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - {{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}
  tags: {{team: data}}
{extra_spec}"#
    )
}

/// A daemon holding one resource in each state a person must look at: `watched` drifted (in
/// observe mode, so it stays so), `fought` contested (something tags it back every second),
/// `broken` failing (it attaches a policy that does not exist), `hand-made` in conflict (not
/// ours), and `fine` in sync.
struct Scene {
    /// Kept for its moto and manifests, which the daemon uses.
    _bed: Bed,
    daemon: Daemon,
    fighting: Arc<AtomicBool>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.fighting.store(false, Ordering::SeqCst);
    }
}

async fn scene() -> Scene {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    let write =
        |name: &str, text: String| fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
    write("fine", role("fine", "", ""));
    write("fought", role("fought", "", ""));
    write(
        "watched",
        role("watched", "  annotations: {iam-warden/mode: observe}\n", ""),
    );
    write(
        "broken",
        role(
            "broken",
            "",
            "  managedPolicies: [arn:aws:iam::123456789012:policy/does-not-exist]\n",
        ),
    );
    write("hand-made", role("hand-made", "", ""));
    for (name, description) in [("watched", "edited by hand"), ("hand-made", "made by hand")] {
        bed.iam
            .create_role()
            .role_name(name)
            .description(description)
            .assume_role_policy_document(TRUST)
            .send()
            .await
            .unwrap();
    }
    // `watched` is ours, so observe mode reports its drift rather than a conflict.
    bed.iam
        .tag_role()
        .role_name("watched")
        .tags(tag("iam-warden/owner", "default"))
        .send()
        .await
        .unwrap();
    let daemon = bed.daemon(
        &dir,
        &[
            "--resync-interval",
            "1s",
            "--contest-threshold",
            "1",
            "--contest-window",
            "5m",
        ],
    );
    let fighting = Arc::new(AtomicBool::new(true));
    {
        let iam = bed.iam.clone();
        let fighting = fighting.clone();
        tokio::spawn(async move {
            while fighting.load(Ordering::SeqCst) {
                let _ = iam
                    .tag_role()
                    .role_name("fought")
                    .tags(tag("team", "theirs"))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        });
    }
    for (name, state) in [
        ("fine", "in-sync"),
        ("watched", "drifted"),
        ("fought", "contested"),
        ("broken", "error"),
        ("hand-made", "conflict"),
    ] {
        wait_for(&format!("{name} {state} in /status"), WAIT, || {
            daemon.resource(name)["state"] == state
        });
    }
    Scene {
        _bed: bed,
        daemon,
        fighting,
    }
}

/// `status ARGS` once `settled` holds of its output. `fought` shows `drifted` for the moment a
/// correction its backoff lets through is in flight: a look may fall into that moment.
fn settled_status(
    scene: &Scene,
    args: &[&str],
    settled: impl Fn(&str) -> bool,
) -> (Option<i32>, String, String) {
    let mut last = status(scene, args);
    for _ in 0..300 {
        if settled(&last.1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        last = status(scene, args);
    }
    last
}

fn status(scene: &Scene, args: &[&str]) -> (Option<i32>, String, String) {
    let (out, stdout, stderr) = run(warden()
        .arg("status")
        .args(["--listen", &scene.daemon.addr])
        .args(args));
    (out.status.code(), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_resource_and_exits_by_the_worst() {
    let scene = scene().await;
    let every_state = "ready; 5 resources: 1 error, 1 conflict, 1 contested, 1 drifted, 1 in-sync";
    let (code, out, err) = settled_status(&scene, &[], |o| o.starts_with(every_state));
    assert_eq!(code, Some(1), "errors and conflicts exit 1: {out}{err}");
    let rows: Vec<&str> = out.lines().collect();
    let header = rows
        .iter()
        .position(|l| l.starts_with("KIND  "))
        .unwrap_or_else(|| panic!("no table header: {out}"));
    assert_eq!(
        rows[header],
        "KIND  NAME       STATE      LAST RECONCILE  CORRECTIONS  LAST ERROR"
    );
    // The most urgent first.
    let order: Vec<&str> = rows[header + 1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        order,
        ["broken", "hand-made", "fought", "watched", "fine"],
        "{out}"
    );
    let broken = rows[header + 1];
    assert!(broken.contains("NoSuchEntity"), "its last error: {broken}");
    assert!(
        rows[0].starts_with(
            "ready; 5 resources: 1 error, 1 conflict, 1 contested, 1 drifted, 1 in-sync"
        ),
        "{out}"
    );

    // JSON is /status as the daemon answers it.
    let (code, out, _) = status(&scene, &["--output", "json"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resources"].as_array().unwrap().len(), 5);

    // One resource, with its history: the contested one exits 2 and lists its corrections.
    let (code, out, _) = settled_status(&scene, &["role/fought"], |o| {
        o.contains("state:            contested")
    });
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.starts_with("Role/fought\n  state:            contested\n"),
        "{out}"
    );
    assert!(out.contains("corrections (oldest first):"), "{out}");
    assert!(
        out.contains("      - set tags team=data (was theirs)"),
        "{out}"
    );
    let (code, out, _) = status(&scene, &["Role/fine"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("corrections:      none"), "{out}");
    let (code, _, err) = status(&scene, &["Role/fien"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("did you mean `Role/fine`?"), "{err}");

    // `--watch` shows it again and again (here on a pipe: one after the other).
    let mut watch = warden()
        .arg("status")
        .args([
            "--listen",
            &scene.daemon.addr,
            "--watch",
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut shown = 0;
    while shown < 3 {
        let line = lines.next().expect("watch output").unwrap();
        if line.starts_with("ready; 5 resources") {
            shown += 1;
        }
    }
    watch.kill().unwrap();
    let _ = watch.wait();
}

#[test]
fn status_without_a_daemon_says_so_and_exits_1() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (out, stdout, stderr) = run(warden().arg("status").args(["--listen", &port.to_string()]));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("cannot read the daemon's /status at {port}")),
        "{stderr}"
    );
}

/// Debian's headless Chromium, installed by scripts/test-env.
fn chromium(profile: &std::path::Path) -> Command {
    let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is missing: run scripts/test-env");
    let mut cmd = Command::new(path);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_needs_attention_in_a_browser_without_scripts() {
    let scene = scene().await;
    let url = format!("http://{}/", scene.daemon.addr);
    let (code, body) = scene.daemon.get("/");
    assert_eq!(code, 200);
    assert!(
        body.contains("<meta http-equiv=\"refresh\""),
        "it refreshes itself"
    );

    // The DOM as the browser built it, once it shows every state (`fought` is `drifted` for
    // the moment a correction is in flight).
    let profile = tempfile::tempdir().unwrap();
    let states = ["error", "conflict", "contested", "drifted"];
    let has =
        |dom: &str, state: &str| dom.contains(&format!("<span class=\"s {state}\">{state}</span>"));
    let mut dom = String::new();
    for _ in 0..20 {
        let out = chromium(profile.path())
            .args(["--dump-dom", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dom = String::from_utf8_lossy(&out.stdout).into_owned();
        if states.iter().all(|s| has(&dom, s)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Scripts off changes nothing: the page has none, and the browser's DOM is the page.
    // (Chromium's headless dump and screenshot need scripts on for themselves, so the page's
    // independence of them is asserted this way.)
    assert!(
        !dom.contains("<script") && !dom.contains("javascript:"),
        "{dom}"
    );
    for state in states {
        assert!(has(&dom, state), "{state} missing from the page:\n{dom}");
    }
    let attention = dom.find("Needs attention").unwrap();
    let in_sync = dom.find("In sync (1)").unwrap();
    for name in ["broken", "hand-made", "fought", "watched"] {
        let at = dom.find(&format!("<code>{name}</code>")).unwrap();
        assert!(
            attention < at && at < in_sync,
            "{name} among what needs attention"
        );
    }
    assert!(
        dom.contains("does-not-exist"),
        "the failing resource's error"
    );
    assert!(
        dom.contains("<code>Role/fought</code>"),
        "its correction is listed"
    );
    assert!(dom.contains("set tags team=data (was theirs)"));

    // The screenshot a person would see (docs/status-page.png is one; UPDATE_SCREENSHOT=1
    // refreshes it).
    let shot = repo_root().join("target/status-page.png");
    let _ = fs::remove_file(&shot);
    let out = chromium(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1280,900", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 10_000,
        "a page, not a blank: {} bytes",
        png.len()
    );
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        fs::copy(&shot, repo_root().join("docs/status-page.png")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_deleted_by_hand_is_put_back_and_its_history_says_so() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("gone.yaml"), role("gone", "", "")).unwrap();
    let daemon = bed.daemon(&dir, &["--resync-interval", "1s"]);
    daemon.wait_ready();
    wait_for("gone in sync", WAIT, || {
        daemon.resource("gone")["state"] == "in-sync"
    });
    bed.iam
        .delete_role()
        .role_name("gone")
        .send()
        .await
        .unwrap();
    let mut back = false;
    for _ in 0..600 {
        if support::moto::get_role(&bed.iam, "gone").await.is_some()
            && daemon.resource("gone")["driftCorrections"].as_u64() > Some(0)
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "not put back as a correction: {}",
        daemon.resource("gone")
    );
    let (out, stdout, stderr) =
        run(warden()
            .arg("status")
            .args(["--listen", &daemon.addr, "Role/gone"]));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("      - create role at path /"), "{stdout}");
    // The history keeps what was found: the whole role, as the plan showed it.
    assert!(
        stdout.contains("        + create role (path /, maxSessionDuration 3600)"),
        "{stdout}"
    );
}
