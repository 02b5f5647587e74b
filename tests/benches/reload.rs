//! `cargo bench --bench reload`: the daemon's desired-state store over 10,000 reload cycles
//! (a file added, edited, broken, removed, in turn, beside 50 steady ones), to show that memory
//! stays flat: prints RSS at the start, after 1,000 cycles and at the end, and the time a
//! reload takes (median).

use std::time::{Duration, Instant};

use iam_warden::controller::desired::DesiredStore;
use iam_warden::guardrails::Guardrails;
use iam_warden::manifest::Variables;

fn role(name: &str, description: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  description: {description}\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n  tags: {{team: data}}\n"
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for i in 0..50 {
        std::fs::write(
            dir.path().join(format!("steady-{i}.yaml")),
            role(&format!("steady-{i}"), "s"),
        )
        .expect("write a manifest");
    }
    let vars = Variables::default();
    let guardrails = Guardrails::default();
    let mut store = DesiredStore::default();
    store
        .reload(dir.path(), &vars, &guardrails)
        .expect("a first load");
    let start = rss_kib();
    let mut after_1000 = 0;
    let mut times = Vec::with_capacity(10_000);
    let moving = dir.path().join("moving.yaml");
    for cycle in 0..10_000usize {
        match cycle % 4 {
            0 => std::fs::write(&moving, role(&format!("moving-{cycle}"), "a")),
            1 => std::fs::write(&moving, role(&format!("moving-{}", cycle - 1), "b")),
            2 => std::fs::write(&moving, "apiVersion: [broken\n"),
            _ => std::fs::remove_file(&moving),
        }
        .expect("change the moving manifest");
        let t = Instant::now();
        store
            .reload(dir.path(), &vars, &guardrails)
            .expect("a reload");
        times.push(t.elapsed());
        if cycle == 999 {
            after_1000 = rss_kib();
        }
    }
    let end = rss_kib();
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!("reload cycles: 10000 over 51 files");
    println!("  RSS: start {start} KiB, after 1000 cycles {after_1000} KiB, after 10000 {end} KiB");
    println!("  one reload: median {median:?}");
}
