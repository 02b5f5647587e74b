//! `cargo bench --bench daemon`: the daemon on the agent manifests against moto (needs
//! `scripts/test-env`). Prints save-to-converged latency (p50, p95), drift-to-corrected
//! latency, idle CPU over 60 s, and RSS. Figures, not assertions: timing tests flake here.

#[path = "../support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_iam::types::Tag;
use support::daemon::Daemon;
use support::moto::{Moto, client_for, get_role};
use support::process::{cpu_ticks, status_kb};

const ROLE: &str = "data-agent-task-role";

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn copy_agent(dir: &Path) {
    for entry in fs::read_dir(support::repo_root().join("manifests/agent")).expect("manifests") {
        let path = entry.expect("entry").path();
        fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
    }
}

async fn description(iam: &aws_sdk_iam::Client) -> String {
    let role = get_role(iam, ROLE).await;
    role.and_then(|r| r.description().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moto = Moto::start();
    let iam = client_for(&moto.endpoint).await;
    let dir = tempfile::tempdir().expect("temp dir");
    copy_agent(dir.path());
    let values = support::repo_root().join("deploy/values.example.yaml");
    let values = values.to_str().expect("utf-8 path");
    let role_file = dir.path().join("task-role.yaml");
    let original = fs::read_to_string(&role_file).expect("task-role.yaml");

    // 1. Save to converged, with the resync far away: only the watcher explains a change.
    let daemon = Daemon::start(
        &moto.endpoint,
        dir.path(),
        &["--values", values, "--resync-interval", "1h"],
    );
    daemon.wait_ready();
    let mut saves = Vec::new();
    for i in 0..20 {
        let want = format!("bench edit {i}");
        let text = original.replace(
            "description: The data agent's task role",
            &format!("description: {want}"),
        );
        let started = Instant::now();
        fs::write(&role_file, text).expect("write");
        while description(&iam).await != want {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        saves.push(started.elapsed());
    }
    let rss_busy = status_kb(daemon.pid(), "VmHWM:");
    drop(daemon);

    // 2. Drift to corrected, with a 2 s resync: the expected latency is about one interval.
    let daemon = Daemon::start(
        &moto.endpoint,
        dir.path(),
        &["--values", values, "--resync-interval", "2s"],
    );
    daemon.wait_ready();
    let mut drifts = Vec::new();
    for i in 0..8 {
        let tag = Tag::builder()
            .key("app")
            .value(format!("drift-{i}"))
            .build()
            .expect("tag");
        let started = Instant::now();
        iam.tag_role()
            .role_name(ROLE)
            .tags(tag)
            .send()
            .await
            .expect("tag role");
        loop {
            let tags = get_role(&iam, ROLE)
                .await
                .map(|r| r.tags().to_vec())
                .unwrap_or_default();
            if tags
                .iter()
                .any(|t| t.key() == "app" && t.value() == "data-agent")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drifts.push(started.elapsed());
    }
    drop(daemon);

    // 3. Idle: the default 60 s resync, nothing changing, for 60 s.
    let daemon = Daemon::start(&moto.endpoint, dir.path(), &["--values", values]);
    daemon.wait_ready();
    let pid = daemon.pid();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let ticks = cpu_ticks(pid) - before;
    let rss = status_kb(pid, "VmRSS:");
    let hwm = status_kb(pid, "VmHWM:");

    println!("iam-warden daemon, agent manifests, moto (one run):");
    println!(
        "  save -> converged (20 edits): p50 {:?}, p95 {:?}",
        percentile(&mut saves, 0.5),
        percentile(&mut saves, 0.95)
    );
    println!(
        "  drift -> corrected (8 drifts, --resync-interval 2s): p50 {:?}, p95 {:?}",
        percentile(&mut drifts, 0.5),
        percentile(&mut drifts, 0.95)
    );
    println!(
        "  idle CPU over 60 s: {} ticks = {:.3}% of one core",
        ticks,
        ticks as f64 / 100.0 / 60.0 * 100.0
    );
    println!(
        "  RSS idle: {} KiB (peak {} KiB; peak during the edit run {} KiB)",
        rss, hwm, rss_busy
    );
}
