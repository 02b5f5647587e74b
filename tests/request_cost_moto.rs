//! What a run costs in IAM requests, through the binary against moto behind a counting proxy:
//! every request is counted (retries and pages included) and the count matches what reached
//! the wire; a run chooses between one bulk read and per-resource reads from the account's
//! size; the daemon reads policy tags from its cache, in rotation, and still corrects them.

mod support;

use std::time::Duration;

use support::bed::Bed;
use support::daemon::{Daemon, wait_for};
use support::fixtures::{APP_POLICY_ARN, FULL, tag};
use support::moto::seed_roles;
use support::run;

/// The debug line that totals a run's requests: `(total, summary)`.
fn requests_logged(stderr: &str) -> (u64, String) {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            let fields = &v["fields"];
            let message = fields["message"].as_str()?;
            let summary = message.strip_prefix("IAM requests: ")?;
            Some((fields["requests"].as_u64()?, summary.to_string()))
        })
        .unwrap_or_else(|| panic!("no request count logged:\n{stderr}"))
}

fn debug_plan(bed: &Bed) -> (i32, String, String) {
    let mut cmd = bed.command("plan");
    cmd.args(["--log-level", "debug", "--log-format", "json"]);
    let (out, stdout, stderr) = run(&mut cmd);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test]
async fn every_request_is_counted_by_operation_and_outcome_retries_included() {
    let bed = Bed::full().await;
    bed.converge();
    // One throttled answer: the SDK retries, and both attempts are requests.
    bed.proxy
        .fail("ListRoles", 1, 400, "Throttling", "Rate exceeded");
    bed.proxy.reset_counts();
    let (code, stdout, stderr) = debug_plan(&bed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (total, summary) = requests_logged(&stderr);
    let wire = bed.proxy.actions();
    assert_eq!(total as usize, wire.len(), "{summary} vs {wire:?}");
    assert!(summary.contains("ListRoles 2 (throttled 1)"), "{summary}");
    assert_eq!(bed.proxy.count("ListRoles"), 2, "{wire:?}");
    // A small account is read in bulk, and the debug log says so with the counts it used.
    assert!(
        stderr.contains("observing 1 roles and 2 policies: Bulk"),
        "{stderr}"
    );
    assert_eq!(bed.proxy.count("GetAccountSummary"), 1, "{wire:?}");
    assert_eq!(bed.proxy.count("GetRole"), 0, "{wire:?}");
}

const ONE_ROLE: &str = r#"
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: the-one}
spec:
  description: One role among thousands
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}]
  tags: {team: data}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_role_in_a_large_account_is_read_on_its_own_not_in_bulk() {
    let bed = Bed::new(&[("one.yaml", ONE_ROLE)], &[]).await;
    // 2,001 roles: three pages of each bulk listing cost more than the one role's four reads.
    seed_roles(&bed.iam, "neighbour", 2001).await;
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    bed.proxy.reset_counts();
    let (code, stdout, stderr) = debug_plan(&bed);
    assert_eq!(code, 0, "not in sync: {stdout}{stderr}");
    let wire = bed.proxy.actions();
    assert!(
        stderr.contains("observing 1 roles and 0 policies: PerResource"),
        "{stderr}"
    );
    assert_eq!(
        bed.proxy.count("GetAccountAuthorizationDetails"),
        0,
        "{wire:?}"
    );
    assert_eq!(bed.proxy.count("GetRole"), 1, "{wire:?}");
    assert!(wire.len() <= 6, "{wire:?}");
    // Drift is still seen that way.
    bed.iam
        .tag_role()
        .role_name("the-one")
        .tags(tag("team", "other"))
        .send()
        .await
        .unwrap();
    let (code, stdout, _) = debug_plan(&bed);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("tags.team"), "{stdout}");

    // Renamed only in case: the same role, updated, never a second one (moto's GetRole
    // minds case; IAM's names do not).
    bed.write(
        "one.yaml",
        &ONE_ROLE.replace("name: the-one", "name: The-One"),
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        bed.proxy.count("CreateRole"),
        0,
        "{:?}",
        bed.proxy.actions()
    );
    bed.proxy.reset_counts();
    let (code, stdout, stderr) = debug_plan(&bed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("PerResource"), "{stderr}");
    // Found by one listing of the 2,002 roles: three pages, each one a request counted.
    let (total, summary) = requests_logged(&stderr);
    let wire = bed.proxy.actions();
    assert_eq!(total as usize, wire.len(), "{summary} vs {wire:?}");
    assert!(summary.contains("ListRoles 3"), "{summary}");
    assert_eq!(bed.proxy.count("ListRoles"), 3, "{wire:?}");
    let ones = bed
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(Result::ok)
        .filter(|r| r.role_name().eq_ignore_ascii_case("the-one"))
        .count();
    assert_eq!(ones, 1);
}

async fn policy_team(bed: &Bed) -> Option<String> {
    let out = bed
        .iam
        .list_policy_tags()
        .policy_arn(APP_POLICY_ARN)
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .find(|t| t.key() == "team")
        .map(|t| t.value().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reads_policy_tags_in_rotation_and_still_corrects_their_drift() {
    let bed = Bed::new(&[("app.yaml", FULL)], &[]).await;
    bed.converge();
    let d = Daemon::start(
        &bed.proxy.endpoint,
        bed.dir.path(),
        &["--resync-interval", "1s"],
    );
    d.wait_ready();
    bed.proxy.reset_counts();
    wait_for("four resyncs", Duration::from_secs(30), || {
        bed.proxy.count("GetAccountAuthorizationDetails") >= 4
    });
    let actions = bed.proxy.actions();
    let resyncs = bed.proxy.count("GetAccountAuthorizationDetails");
    // Two declared policies over a rotation of 20 resyncs: one read a resync, not two.
    assert!(
        bed.proxy.count("ListPolicyTags") <= resyncs + 1,
        "{actions:?}"
    );
    assert!(bed.proxy.writes().is_empty(), "{actions:?}");

    // Out-of-band tag drift on a policy is still found, in its turn, and corrected.
    bed.iam
        .tag_policy()
        .policy_arn(APP_POLICY_ARN)
        .tags(tag("team", "rogue"))
        .send()
        .await
        .unwrap();
    let mut corrected = false;
    for _ in 0..150 {
        if policy_team(&bed).await.as_deref() == Some("data") {
            corrected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(corrected, "policy tag drift never corrected:\n{}", d.log());

    // After the correction the cache holds the new tags: no reconcile at every resync.
    let reconciles = || -> f64 {
        let (_, text) = d.get("/metrics");
        text.lines()
            .filter(|l| l.starts_with("iam_warden_reconcile_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = reconciles();
    bed.proxy.reset_counts();
    wait_for("three resyncs", Duration::from_secs(30), || {
        bed.proxy.count("GetAccountAuthorizationDetails") >= 3
    });
    assert_eq!(
        reconciles(),
        before,
        "reconciles without drift:\n{}",
        d.log()
    );
    assert!(bed.proxy.writes().is_empty(), "{:?}", bed.proxy.actions());
}
