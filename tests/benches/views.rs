//! `cargo bench --bench views`: what a person's look costs at scale, in-process: the status
//! page and the `status` table of a daemon with 10,000 resources (rendered from /status's
//! JSON, as the daemon and the client do), and the pull-request comment of a 3,000-resource
//! plan (kept under GitHub's limit). Prints medians and sizes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use iam_warden::manifest::Kind;
use iam_warden::plan::markdown;
use iam_warden::plan::{Change, ResourcePlan};
use iam_warden::view::{Status, page, table};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut last = None;
    let samples = (0..runs)
        .map(|_| {
            let t = Instant::now();
            last = Some(f());
            t.elapsed()
        })
        .collect();
    (median(samples), last.expect("at least one run"))
}

fn main() {
    let states = [
        "in-sync", "in-sync", "in-sync", "drifted", "error", "pending",
    ];
    let resources: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "kind": if i % 2 == 0 { "Role" } else { "Policy" },
                "name": format!("resource-{i:05}"),
                "arn": format!("arn:aws:iam::123456789012:role/resource-{i:05}"),
                "state": states[i % states.len()],
                "lastReconcile": "2026-12-02T10:00:00Z",
                "lastError": (i % 6 == 4).then(|| format!("AccessDenied: not authorized on resource-{i:05}")),
                "driftCorrections": i % 3,
                "recentCorrections": if i % 3 == 0 { serde_json::json!([]) } else {
                    serde_json::json!([{"at": "2026-12-02T09:59:00Z", "changes": ["set tags team=data (was x)"]}])
                },
            })
        })
        .collect();
    let body = serde_json::json!({
        "ready": true, "resources": resources, "fileErrors": [],
        "aws": {"reachable": true, "lastError": null},
    });
    let now = SystemTime::now();
    let (parse, status) = time(15, || Status::from_json(body.clone()).expect("status"));
    let (render_page, html) = time(15, || page::render(&status, now));
    let (render_table, text) = time(15, || table::overview(&status, now));
    println!("views of a daemon with 10,000 resources (median of 15 runs):");
    println!("  read /status JSON      {parse:>10.2?}");
    println!(
        "  page at /              {render_page:>10.2?}  {} KB",
        html.len() / 1024
    );
    println!(
        "  status table           {render_table:>10.2?}  {} KB",
        text.len() / 1024
    );

    let plans: Vec<ResourcePlan> = (0..3000)
        .map(|i| {
            let mut p = ResourcePlan::new(Kind::Role, &format!("role-{i:04}"), None);
            p.changes.push(Change::SetTags {
                tags: BTreeMap::from([("team".to_string(), format!("team-{i}"))]),
                before: BTreeMap::from([("team".to_string(), "old".to_string())]),
            });
            p
        })
        .collect();
    let section = || markdown::Section {
        account: None,
        plans: &plans,
        failures: Vec::new(),
        error: None,
    };
    let (render_comment, comment) = time(15, || markdown::comment(&[section()], &[]));
    println!("plan comment of 3,000 changed roles (median of 15 runs):");
    println!(
        "  markdown               {render_comment:>10.2?}  {} KB (GitHub's limit: 64 KB), truncated: {}",
        comment.len() / 1024,
        comment.contains("Truncated")
    );
}
