//! Many accounts on one moto, through the counting proxy (which tells accounts apart by their
//! assumed credentials): 20 accounts of 100 roles + 100 policies each, as one process with
//! `--accounts` and default flags. Converge from empty with `apply`, the daemon's first pass to
//! ready, no-op resync requests per account (target: the 7 of one account), idle CPU and RSS
//! (target: under 100 MB), and drift in a healthy account corrected while another is
//! black-holed (target: within two resyncs).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::support::daemon::{Daemon, wait_for};
use super::support::moto::{Moto, client_in};
use super::support::process::{cpu_ticks, status_kb};
use super::support::proxy::Proxy;

pub const ACCOUNTS: usize = 20;
pub const PER_ACCOUNT: usize = 100;
const RESYNC: Duration = Duration::from_secs(15);

fn id(i: usize) -> String {
    format!("{:012}", 100_000_000_000 + i)
}

#[derive(Default)]
pub struct Figures {
    converge: Duration,
    converge_requests: usize,
    ready: Duration,
    /// Per account: requests per no-op resync, as (min, median, max).
    resync_requests: (f64, f64, f64),
    peak_kb: u64,
    idle_cpu: f64,
    idle_rss_kb: u64,
    /// Drift corrected in a healthy account while another hangs.
    drift_beside_black_hole: Duration,
}

/// Measures `ACCOUNTS` accounts of the manifests `write` puts into a directory.
pub async fn profile(moto: &Moto, idle: Duration, write: impl Fn(&Path, usize)) -> Figures {
    let proxy = Proxy::start(&moto.endpoint);
    let dir = tempfile::tempdir().expect("temp dir");
    let manifests = dir.path().join("m");
    fs::create_dir(&manifests).expect("mkdir");
    for i in 0..PER_ACCOUNT {
        write(&manifests, i);
    }
    let mut file = String::from("accounts:\n");
    for a in 0..ACCOUNTS {
        let _ = writeln!(
            file,
            "  - {{name: a{a}, id: \"{}\", roleArn: \"arn:aws:iam::{}:role/iam-warden\"}}",
            id(a),
            id(a)
        );
    }
    let accounts = dir.path().join("accounts.yaml");
    fs::write(&accounts, file).expect("accounts file");
    let mut f = Figures::default();

    proxy.reset_counts();
    let started = Instant::now();
    let mut apply = super::support::warden_on(&proxy.endpoint);
    apply
        .arg("apply")
        .arg(&manifests)
        .arg("--accounts")
        .arg(&accounts);
    let (out, stdout, stderr) = super::support::run(&mut apply);
    assert!(
        out.status.success(),
        "apply of {ACCOUNTS} accounts: {stdout}{stderr}"
    );
    f.converge = started.elapsed();
    f.converge_requests = proxy.actions().len();

    let started = Instant::now();
    let accounts_arg = accounts.to_str().unwrap_or_default().to_string();
    let resync = format!("{}s", RESYNC.as_secs());
    let daemon = Daemon::start(
        &proxy.endpoint,
        &manifests,
        &["--accounts", &accounts_arg, "--resync-interval", &resync],
    );
    daemon.wait_ready();
    f.ready = started.elapsed();

    // No-op resyncs: each account's requests over a window, per resync it finished in it.
    let resyncs = |d: &Daemon| -> Vec<f64> {
        let (_, text) = d.get("/metrics");
        (0..ACCOUNTS)
            .map(|a| {
                let series =
                    format!("iam_warden_resync_duration_seconds_count{{account=\"a{a}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
                    .unwrap_or(0.0)
            })
            .collect()
    };
    // Past the first pass's deferred policy-tag reads.
    wait_for("two resyncs everywhere", Duration::from_secs(120), || {
        resyncs(&daemon).iter().all(|n| *n >= 2.0)
    });
    let before = resyncs(&daemon);
    proxy.reset_counts();
    tokio::time::sleep(RESYNC * 4).await;
    let after = resyncs(&daemon);
    let mut per: Vec<f64> = (0..ACCOUNTS)
        .map(|a| {
            let done = after[a] - before[a];
            proxy.account_actions(&id(a)).len() as f64 / done.max(1.0)
        })
        .collect();
    per.sort_by(f64::total_cmp);
    f.resync_requests = (per[0], per[per.len() / 2], per[per.len() - 1]);
    f.peak_kb = status_kb(daemon.pid(), "VmHWM:");

    // Idle CPU over the window, after the first pass.
    let ticks = cpu_ticks(daemon.pid());
    tokio::time::sleep(idle).await;
    f.idle_cpu = (cpu_ticks(daemon.pid()) - ticks) as f64 / 100.0 * 60.0 / idle.as_secs_f64();
    f.idle_rss_kb = status_kb(daemon.pid(), "VmRSS:");

    // One account black-holed; drift in another.
    proxy.hold_account(&id(0));
    let iam = client_in(&moto.endpoint, &id(1)).await;
    let role = "scale-task-role-0";
    let want = super::description(&iam, role).await;
    iam.update_role()
        .role_name(role)
        .description("edited by hand")
        .send()
        .await
        .expect("UpdateRole");
    f.drift_beside_black_hole = super::until_description(&iam, role, &want).await;
    proxy.release_account(&id(0));
    daemon.kill();
    f
}

pub fn table(f: &Figures) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| {ACCOUNTS} accounts x ({PER_ACCOUNT} roles + {PER_ACCOUNT} policies), default flags | |"
    );
    let _ = writeln!(t, "|---|---|");
    let _ = writeln!(
        t,
        "| converge from empty (`apply --accounts`) | {:.1} s, {} requests |",
        f.converge.as_secs_f64(),
        f.converge_requests
    );
    let _ = writeln!(
        t,
        "| daemon start to ready | {:.2} s |",
        f.ready.as_secs_f64()
    );
    let (min, median, max) = f.resync_requests;
    let _ = writeln!(
        t,
        "| no-op resync, requests per account (min / median / max) | {min:.1} / {median:.1} / {max:.1} |"
    );
    let _ = writeln!(
        t,
        "| daemon peak RSS | {:.1} MB |",
        f.peak_kb as f64 / 1024.0
    );
    let _ = writeln!(
        t,
        "| idle: CPU per minute, RSS | {:.2} s, {:.1} MB |",
        f.idle_cpu,
        f.idle_rss_kb as f64 / 1024.0
    );
    let _ = writeln!(
        t,
        "| drift corrected in one account while another is black-holed ({}s resync) | {:.1} s |",
        RESYNC.as_secs(),
        f.drift_beside_black_hole.as_secs_f64()
    );
    t
}

/// The targets, judged.
pub fn targets(f: &Figures) -> String {
    let mut t = String::new();
    let met = super::pacing::met;
    let (_, median, max) = f.resync_requests;
    let _ = writeln!(
        t,
        "- no-op resync requests per account, the 7 of one account: median {median:.1}, max {max:.1}: {}",
        met(median <= 7.5)
    );
    let peak = f.peak_kb as f64 / 1024.0;
    let _ = writeln!(
        t,
        "- peak RSS under 100 MB: {peak:.1} MB: {}",
        met(peak < 100.0)
    );
    let drift = f.drift_beside_black_hole;
    let _ = writeln!(
        t,
        "- drift beside a black-holed account corrected within two resyncs ({} s): {:.1} s: {}",
        (RESYNC * 2).as_secs(),
        drift.as_secs_f64(),
        met(drift <= RESYNC * 2)
    );
    t
}
