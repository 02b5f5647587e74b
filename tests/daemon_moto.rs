//! `iam-warden run` against moto: drift corrected, edits applied without waiting for the
//! resync (however the files are replaced), bad files harmless, coalesced edits, clean shutdown,
//! and the endpoints.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use support::bed::Bed;
use support::daemon::{BusyWriter, Daemon, wait_for};
use support::fixtures::{APP_POLICY_ARN, BOUNDARY_ARN, FULL, OTHER_DOC, tag};
use support::moto::{Moto, get_role};
use support::proxy::{Proxy, dead_endpoint};
use support::{run, warden_on};

const WAIT: Duration = Duration::from_secs(60);

/// A role manifest with tag `team: data`.
fn tagged_role(name: &str) -> String {
    format!("{}  tags: {{team: data}}\n", role(name, "tagged"))
}

fn role(name: &str, description: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  description: {description}\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_corrects_every_kind_of_drift() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("manifests");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.yaml"), FULL).unwrap();
    fs::write(dir.join("plain.yaml"), role("plain", "no boundary")).unwrap();
    // The drifts of one round can land on both sides of a 1 s resync and be corrected in
    // several passes; this test is about each kind of drift, not about a fight, so the fight
    // threshold is out of reach (fights have their own test below).
    let daemon = bed.daemon(
        &dir,
        &["--resync-interval", "1s", "--contest-threshold", "1000"],
    );
    daemon.wait_ready();
    assert!(bed.in_sync(&dir), "not converged after the first pass");
    let iam = &bed.iam;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    // Round one: one drift of each kind that does not touch the same field twice.
    iam.update_assume_role_policy()
        .role_name("app-role")
        .policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.update_role()
        .role_name("app-role")
        .description("hacked")
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    iam.delete_role_permissions_boundary()
        .role_name("app-role")
        .send()
        .await
        .unwrap();
    iam.put_role_permissions_boundary()
        .role_name("plain")
        .permissions_boundary(BOUNDARY_ARN)
        .send()
        .await
        .unwrap();
    iam.tag_role()
        .role_name("app-role")
        .tags(tag("team", "other"))
        .tags(tag("extra", "x"))
        .send()
        .await
        .unwrap();
    iam.untag_role()
        .role_name("app-role")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app-role")
        .policy_name("backdoor")
        .policy_document(OTHER_DOC)
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("app-role")
        .policy_arn(APP_POLICY_ARN)
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("plain")
        .policy_arn(APP_POLICY_ARN)
        .send()
        .await
        .unwrap();
    for _ in 0..4 {
        iam.create_policy_version()
            .policy_arn(APP_POLICY_ARN)
            .policy_document(OTHER_DOC)
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }
    wait_for("round one corrected", WAIT, || bed.in_sync(&dir));

    // Round two: the inline policy changed, then removed.
    iam.put_role_policy()
        .role_name("app-role")
        .policy_name("logs")
        .policy_document(OTHER_DOC)
        .send()
        .await
        .unwrap();
    wait_for("changed inline policy corrected", WAIT, || {
        bed.in_sync(&dir)
    });
    iam.delete_role_policy()
        .role_name("app-role")
        .policy_name("logs")
        .send()
        .await
        .unwrap();
    wait_for("removed inline policy corrected", WAIT, || {
        bed.in_sync(&dir)
    });

    let app = daemon.resource("app-role");
    assert!(app["driftCorrections"].as_u64().unwrap_or(0) >= 8, "{app}");
    assert_eq!(app["state"], "in-sync", "{app}");
    let (_, metrics) = daemon.get("/metrics");
    for field in [
        "assumeRolePolicy",
        "descriptionOrMaxSession",
        "permissionsBoundary",
        "tags",
        "inlinePolicies",
        "managedPolicies",
        "document",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("iam_warden_drift_corrections_total")
                    && l.contains(&format!("field=\"{field}\""))),
            "no drift metric for {field}:\n{metrics}"
        );
    }
    assert!(
        daemon.log().contains("drift found"),
        "drift is logged at warn"
    );
}

/// Starts a daemon with a resync far away, so only the file watcher can explain a change.
fn watch_only(bed: &Bed, dir: &Path) -> Daemon {
    let d = bed.daemon(dir, &["--resync-interval", "1h", "--log-level", "debug"]);
    d.wait_ready();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_file_is_applied_without_waiting_for_the_resync() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("edited", "one")).unwrap();
    let d = watch_only(&bed, &dir);
    bed.wait_description("edited", "one").await;
    fs::write(dir.join("r.yaml"), role("edited", "two")).unwrap();
    bed.wait_description("edited", "two").await;
    // The watcher's reload is logged (what the busy-neighbour tests count).
    assert!(
        d.logged("files changed under DIR: reloading") >= 1,
        "{}",
        d.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomically_renamed_file_is_applied() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("renamed", "one")).unwrap();
    let _d = watch_only(&bed, &dir);
    bed.wait_description("renamed", "one").await;
    fs::write(dir.join(".r.yaml.tmp"), role("renamed", "two")).unwrap();
    fs::rename(dir.join(".r.yaml.tmp"), dir.join("r.yaml")).unwrap();
    bed.wait_description("renamed", "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_data_swap_is_applied() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("cm");
    fs::create_dir_all(dir.join("..2026_01_01_v1")).unwrap();
    fs::write(dir.join("..2026_01_01_v1/r.yaml"), role("configmap", "one")).unwrap();
    symlink("..2026_01_01_v1", dir.join("..data")).unwrap();
    symlink("..data/r.yaml", dir.join("r.yaml")).unwrap();
    let _d = watch_only(&bed, &dir);
    bed.wait_description("configmap", "one").await;
    // What the kubelet does: a new timestamped dir, a new link, renamed over ..data.
    fs::create_dir(dir.join("..2026_01_02_v2")).unwrap();
    fs::write(dir.join("..2026_01_02_v2/r.yaml"), role("configmap", "two")).unwrap();
    symlink("..2026_01_02_v2", dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    fs::remove_dir_all(dir.join("..2026_01_01_v1")).unwrap();
    bed.wait_description("configmap", "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_sync_root_symlink_flip_is_applied() {
    let bed = Bed::new(&[], &[]).await;
    let root = bed.path("git");
    fs::create_dir_all(root.join("rev-1")).unwrap();
    fs::write(root.join("rev-1/r.yaml"), role("gitsync", "one")).unwrap();
    symlink(root.join("rev-1"), root.join("repo")).unwrap();
    let _d = watch_only(&bed, &root.join("repo"));
    bed.wait_description("gitsync", "one").await;
    // What git-sync does: a new worktree, a new link renamed over the old one, the old removed.
    fs::create_dir_all(root.join("rev-2")).unwrap();
    fs::write(root.join("rev-2/r.yaml"), role("gitsync", "two")).unwrap();
    symlink(root.join("rev-2"), root.join("repo.tmp")).unwrap();
    fs::rename(root.join("repo.tmp"), root.join("repo")).unwrap();
    fs::remove_dir_all(root.join("rev-1")).unwrap();
    bed.wait_description("gitsync", "two").await;
    // And the watch follows the new target.
    fs::write(root.join("rev-2/r.yaml"), role("gitsync", "three")).unwrap();
    bed.wait_description("gitsync", "three").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_leaves_its_resources_alone_and_the_rest_keeps_reconciling() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a.yaml"), role("role-a", "a1")).unwrap();
    fs::write(dir.join("b.yaml"), role("role-b", "b1")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    bed.wait_description("role-a", "a1").await;

    fs::write(dir.join("a.yaml"), "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: role-a}\nspec: {maxSessionDuration: 1}\n").unwrap();
    wait_for("the file error in /status", WAIT, || {
        d.status()["fileErrors"].to_string().contains("a.yaml")
    });
    fs::write(dir.join("b.yaml"), role("role-b", "b2")).unwrap();
    bed.wait_description("role-b", "b2").await;
    // Several resyncs later role-a is still there, as last declared.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(bed.description_of("role-a").await.as_deref(), Some("a1"));
    assert!(d.get("/healthz").0 == 200);
    let logged = d
        .log()
        .lines()
        .filter(|l| l.contains("invalid manifest") && l.contains("spec.maxSessionDuration"))
        .count();
    assert_eq!(
        logged,
        1,
        "the error is logged once per change of the file:\n{}",
        d.log()
    );

    fs::write(dir.join("a.yaml"), role("role-a", "a2")).unwrap();
    bed.wait_description("role-a", "a2").await;
    wait_for("the file error to clear", WAIT, || {
        d.status()["fileErrors"] == serde_json::json!([])
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_edits_during_a_slow_reconcile_end_in_the_second() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("slow", "zero")).unwrap();
    let _d = watch_only(&bed, &dir);
    bed.wait_description("slow", "zero").await;
    bed.proxy.delay("GetRole", 2, Duration::from_secs(2));
    fs::write(dir.join("r.yaml"), role("slow", "one")).unwrap();
    wait_for("the slow reconcile to start", WAIT, || {
        bed.proxy.count("GetRole") > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    fs::write(dir.join("r.yaml"), role("slow", "two")).unwrap();
    bed.wait_description("slow", "two").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bed.description_of("slow").await.as_deref(), Some("two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_work_exits_0_within_the_timeout() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("busy", "x")).unwrap();
    bed.proxy.delay("GetRole", 1, Duration::from_secs(3));
    let d = bed.daemon(&dir, &["--shutdown-timeout", "10s"]);
    wait_for("a reconcile in flight", WAIT, || {
        bed.proxy.actions().iter().any(|a| a == "GetRole")
    });
    let code = d.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_report_health_readiness_metrics_and_status() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.yaml"), FULL).unwrap();
    let d = bed.daemon(&dir, &[]);
    assert_eq!(d.get("/healthz").0, 200);
    d.wait_ready();
    let status = d.status();
    let resources = status["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 3);
    let role = d.resource("app-role");
    assert_eq!(role["kind"], "Role");
    assert_eq!(role["state"], "in-sync");
    assert_eq!(role["arn"], "arn:aws:iam::123456789012:role/app/app-role");
    assert!(role["lastReconcile"].is_string());
    assert!(role["lastError"].is_null());
    assert_eq!(role["driftCorrections"], 0);
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    for name in [
        "iam_warden_reconcile_total{kind=\"Role\",result=\"success\"}",
        "iam_warden_reconcile_duration_seconds_bucket",
        "iam_warden_aws_requests_total{operation=\"CreateRole\",outcome=\"ok\"} 1",
        "iam_warden_resources{state=\"in-sync\"} 3",
        "iam_warden_last_resync_timestamp_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_only_reports_drift_and_writes_nothing() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("watched", "declared")).unwrap();
    let (out, _, err) = run(warden_on(&bed.proxy.endpoint).arg("apply").arg(&dir));
    assert_eq!(out.status.code(), Some(0), "{err}");
    bed.iam
        .update_role()
        .role_name("watched")
        .description("hand edit")
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    bed.proxy.reset_counts();
    let d = bed.daemon(&dir, &["--observe-only", "--resync-interval", "1s"]);
    d.wait_ready();
    assert_eq!(d.resource("watched")["state"], "drifted");
    std::thread::sleep(Duration::from_secs(2));
    let writes = bed.proxy.writes();
    assert_eq!(writes, Vec::<String>::new());
    assert_eq!(
        bed.description_of("watched").await.as_deref(),
        Some("hand edit")
    );
    // Said once, not at every resync while it stays the same.
    assert_eq!(d.logged("drift found"), 1, "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_directory_is_watched_again() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("replaced", "one")).unwrap();
    let _d = watch_only(&bed, &dir);
    bed.wait_description("replaced", "one").await;
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("replaced", "two")).unwrap();
    bed.wait_description("replaced", "two").await;
    // The new directory itself is watched, not just its parent.
    fs::write(dir.join("r.yaml"), role("replaced", "three")).unwrap();
    bed.wait_description("replaced", "three").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_resyncs_at_once() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("hup", "declared")).unwrap();
    let d = watch_only(&bed, &dir);
    bed.wait_description("hup", "declared").await;
    bed.iam
        .update_role()
        .role_name("hup")
        .description("hand edit")
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    d.signal("HUP");
    bed.wait_description("hup", "declared").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("logged", "x")).unwrap();
    let d = bed.daemon(&dir, &["--log-format", "json"]);
    d.wait_ready();
    let log = d.log();
    assert!(log.lines().count() >= 3, "{log}");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(
        log.contains("\"resource\":\"Role/logged\""),
        "writes name their resource:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_of_an_account_in_sync_reads_it_in_bulk_and_writes_nothing() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.yaml"), FULL).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    bed.proxy.reset_counts();
    wait_for("two resyncs", WAIT, || {
        bed.proxy.count("GetAccountAuthorizationDetails") >= 2
    });
    let actions = bed.proxy.actions();
    assert!(bed.proxy.writes().is_empty(), "{actions:?}");
    for per_resource in ["GetRole", "GetPolicy", "ListRolePolicies"] {
        assert!(
            !actions.iter().any(|a| a == per_resource),
            "{per_resource} in a quiet resync: {actions:?}"
        );
    }
    // Per resync: the snapshot and ListRoles; the two declared policies' tags come from the
    // cache, one of them read again in rotation.
    let per_resync = actions.len() as f64 / 2.0;
    assert!(per_resync <= 3.5, "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prune_the_daemon_deletes_what_is_no_longer_declared_but_never_on_bad_input() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep.yaml"), role("keep", "k")).unwrap();
    fs::write(dir.join("gone.yaml"), role("gone", "g")).unwrap();
    fs::write(dir.join("broken.yaml"), role("shaky", "s")).unwrap();
    let d = bed.daemon(
        &dir,
        &["--prune", "--prune-after", "2s", "--resync-interval", "1s"],
    );
    d.wait_ready();
    bed.wait_description("gone", "g").await;
    // A role nobody owns is never pruned.
    bed.iam
        .create_role()
        .role_name("unowned")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();

    // While any manifest is invalid, nothing is deleted, not even what was removed.
    fs::write(dir.join("broken.yaml"), "apiVersion: [broken\n").unwrap();
    fs::remove_file(dir.join("gone.yaml")).unwrap();
    wait_for("the file error", WAIT, || {
        d.status()["fileErrors"].to_string().contains("broken.yaml")
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        bed.description_of("gone").await.is_some(),
        "pruned while a manifest was invalid"
    );
    assert!(bed.description_of("shaky").await.is_some());

    // Once the manifests are valid again, the undeclared role goes; the rest stays.
    fs::write(dir.join("broken.yaml"), role("shaky", "s")).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while bed.description_of("gone").await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the undeclared role was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for kept in ["keep", "shaky", "unowned"] {
        assert!(
            bed.description_of(kept).await.is_some(),
            "{kept} was deleted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_resource_is_retried_with_backoff_and_never_delays_the_others() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    let with_inline = format!(
        "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}}}\n",
        role("failing", "f")
    );
    fs::write(dir.join("failing.yaml"), with_inline).unwrap();
    fs::write(dir.join("healthy.yaml"), role("healthy", "one")).unwrap();
    // Only the failing role writes an inline policy: it is refused three times, for good each
    // time (no retry inside the reconcile), so the queue must bring the key back by itself.
    bed.proxy
        .fail("PutRolePolicy", 3, 403, "AccessDenied", "not now");
    let d = watch_only(&bed, &dir);
    assert_eq!(d.resource("failing")["state"], "error", "{}", d.status());
    assert!(
        d.resource("failing")["lastError"]
            .to_string()
            .contains("AccessDenied")
    );
    // Meanwhile another resource's edit goes through at once.
    fs::write(dir.join("healthy.yaml"), role("healthy", "two")).unwrap();
    bed.wait_description("healthy", "two").await;
    // With no file change and no resync, backoff retries the failed key until it converges.
    wait_for("the failed role to converge", WAIT, || {
        d.resource("failing")["state"] == "in-sync"
    });
    assert_eq!(
        bed.proxy.count("PutRolePolicy"),
        4,
        "{:?}",
        bed.proxy.actions()
    );
}

// --- Triggers that cannot starve each other -------------------------------------------------

/// Drift injected out of band is corrected by the resync, within two intervals (2 s here; the
/// limit is generous because the machine is shared, and the old starvation never corrected it).
async fn drift_is_corrected_by_the_resync(bed: &Bed) {
    bed.set_tag("busy", "team", "hand-edit").await;
    bed.wait_tag("busy", "team", "data", Duration::from_secs(30))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_neighbour_of_dir_never_starves_the_resync() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), tagged_role("busy")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "2s", "--log-level", "debug"]);
    d.wait_ready();
    // Every reload the watcher asks for is logged at debug, whether or not it finds a change.
    let loads = d.logged("files changed under DIR: reloading");
    // About a write a second: each burst ends (300 ms of quiet) before the resync is due,
    // which used to restart the resync's wait for ever.
    let _log = BusyWriter::start(
        bed.path("app.log"),
        String::new(),
        Duration::from_millis(1000),
    );
    let _swap = BusyWriter::start(bed.path("m.tmp"), String::new(), Duration::from_millis(700));
    tokio::time::sleep(Duration::from_secs(3)).await;
    drift_is_corrected_by_the_resync(&bed).await;
    drift_is_corrected_by_the_resync(&bed).await;
    assert_eq!(
        d.logged("files changed under DIR: reloading"),
        loads,
        "the watcher reloaded for a neighbour's writes:\n{}",
        d.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_non_manifest_file_inside_dir_never_starves_the_resync() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir_all(dir.join(".git")).unwrap();
    fs::write(dir.join("r.yaml"), tagged_role("busy")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "2s", "--log-level", "debug"]);
    d.wait_ready();
    let loads = d.logged("files changed under DIR: reloading");
    let _readme = BusyWriter::start(
        dir.join("README.md"),
        String::new(),
        Duration::from_millis(1000),
    );
    let _git = BusyWriter::start(
        dir.join(".git/index"),
        String::new(),
        Duration::from_millis(700),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    drift_is_corrected_by_the_resync(&bed).await;
    drift_is_corrected_by_the_resync(&bed).await;
    assert_eq!(
        d.logged("files changed under DIR: reloading"),
        loads,
        "the watcher reloaded for README.md or .git/:\n{}",
        d.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_rewritten_every_second_never_starves_the_resync() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), tagged_role("busy")).unwrap();
    fs::write(dir.join("same.yaml"), role("same", "unchanged")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "2s"]);
    d.wait_ready();
    // A real manifest event (a tool touching files) every second: each one reloads, and none
    // may postpone the resync.
    let _touch = BusyWriter::start(
        dir.join("same.yaml"),
        role("same", "unchanged"),
        Duration::from_millis(1000),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    drift_is_corrected_by_the_resync(&bed).await;
    drift_is_corrected_by_the_resync(&bed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_saved_inside_a_burst_is_picked_up_within_the_maximum_wait() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("saved", "one")).unwrap();
    let _d = watch_only(&bed, &dir);
    bed.wait_description("saved", "one").await;
    // Another manifest rewritten every 100 ms: the debounce never sees 300 ms of quiet.
    let _burst = BusyWriter::start(
        dir.join("busy.yaml"),
        role("burst", "same"),
        Duration::from_millis(100),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    fs::write(dir.join("r.yaml"), role("saved", "two")).unwrap();
    bed.wait_description("saved", "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_interval_under_one_second_is_refused() {
    let (out, _, err) = run(warden_on("http://127.0.0.1:9").args([
        "run",
        "manifests",
        "--resync-interval",
        "500ms",
    ]));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("at most once a second"), "{err}");
}

// --- A relative DIR ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_dir_is_watched_like_an_absolute_one() {
    let bed = Bed::new(&[], &[]).await;
    let root = bed.path("git");
    fs::create_dir_all(root.join("rev-1")).unwrap();
    fs::write(root.join("rev-1/r.yaml"), role("relative", "one")).unwrap();
    symlink("rev-1", root.join("repo")).unwrap();
    // `run repo` from inside the git-sync root: DIR has no parent part.
    let mut cmd = warden_on(&bed.proxy.endpoint);
    cmd.current_dir(&root);
    let d = Daemon::start_cmd(cmd, Path::new("repo"), &["--resync-interval", "1h"]);
    d.wait_ready();
    bed.wait_description("relative", "one").await;
    fs::create_dir_all(root.join("rev-2")).unwrap();
    fs::write(root.join("rev-2/r.yaml"), role("relative", "two")).unwrap();
    symlink("rev-2", root.join("repo.tmp")).unwrap();
    fs::rename(root.join("repo.tmp"), root.join("repo")).unwrap();
    bed.wait_description("relative", "two").await;
}

// --- A failing key never holds the others up --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_throttled_roles_never_hold_up_an_edit_to_a_fifth_with_four_workers() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    for i in 0..4 {
        let with_inline = format!(
            "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}}}\n",
            role(&format!("throttled-{i}"), "t")
        );
        fs::write(dir.join(format!("t{i}.yaml")), with_inline).unwrap();
    }
    fs::write(dir.join("fifth.yaml"), role("fifth", "one")).unwrap();
    // Throttling is retried (unlike AccessDenied): without a cap on in-place retries, each
    // throttled role would hold its worker for the whole --retry-timeout.
    bed.proxy
        .fail("PutRolePolicy", 100_000, 400, "Throttling", "Rate exceeded");
    let d = bed.daemon(
        &dir,
        &[
            "--workers",
            "4",
            "--resync-interval",
            "1s",
            "--retry-timeout",
            "2m",
        ],
    );
    d.wait_ready();
    bed.wait_description("fifth", "one").await;
    // Let the throttled keys settle into their loop of retries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    fs::write(dir.join("fifth.yaml"), role("fifth", "two")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while bed.description_of("fifth").await.as_deref() != Some("two") {
        assert!(
            std::time::Instant::now() < deadline,
            "the edit waited behind the throttled roles:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(d.resource("throttled-0")["state"], "error");
    assert!(
        bed.proxy.count("PutRolePolicy") >= 8,
        "the throttled roles kept being retried"
    );
}

// --- Health that means something --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reconcile_neither_shrinks_the_pool_nor_sticks_its_key() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("boom.yaml"), role("boom", "one")).unwrap();
    fs::write(dir.join("fine.yaml"), role("fine", "one")).unwrap();
    // One worker: if the panic took it, nothing else would ever be reconciled.
    let d = bed.daemon_with_faults(
        &dir,
        "panic:reconcile:Role/boom*2",
        &["--workers", "1", "--resync-interval", "1h"],
    );
    d.wait_ready();
    bed.wait_description("fine", "one").await;
    // The key was not left marked running: its backoff brings it back until it converges.
    bed.wait_description("boom", "one").await;
    wait_for("boom in sync", WAIT, || {
        d.resource("boom")["state"] == "in-sync"
    });
    assert_eq!(d.logged("reconcile panicked"), 2, "{}", d.log());
    fs::write(dir.join("fine.yaml"), role("fine", "two")).unwrap();
    bed.wait_description("fine", "two").await;
    assert_eq!(d.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_resync_never_stops_the_next_ones() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), tagged_role("busy")).unwrap();
    let d = bed.daemon_with_faults(&dir, "panic:resync*2", &["--resync-interval", "1s"]);
    d.wait_ready();
    wait_for("two resyncs to panic", WAIT, || {
        d.logged("resync panicked") == 2
    });
    drift_is_corrected_by_the_resync(&bed).await;
    assert_eq!(d.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_with_a_reason_when_the_resync_is_stuck() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("stuck", "one")).unwrap();
    // Stale after 3 intervals or two timed-out calls (whichever is longer), + 10 s.
    let d = bed.daemon_with_faults(
        &dir,
        "stall:resync",
        &["--resync-interval", "1s", "--operation-timeout", "2s"],
    );
    d.wait_ready();
    assert_eq!(d.get("/healthz").0, 200, "alive at first");
    wait_for("/healthz to fail", WAIT, || d.get("/healthz").0 == 503);
    let (_, body) = d.get("/healthz");
    assert!(body.contains("no resync has finished"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_show_resyncs_and_the_queue() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    for n in ["q1", "q2", "q3"] {
        fs::write(dir.join(format!("{n}.yaml")), role(n, "x")).unwrap();
    }
    // One worker and a slow IAM: keys wait in the queue at first.
    bed.proxy.delay("GetRole", 3, Duration::from_secs(2));
    let d = bed.daemon(&dir, &["--workers", "1", "--resync-interval", "1s"]);
    wait_for("queued keys in the metrics", WAIT, || {
        d.metric("iam_warden_queue_depth").unwrap_or(0.0) >= 1.0
            && d.metric("iam_warden_queue_oldest_item_age_seconds")
                .unwrap_or(0.0)
                > 0.0
    });
    d.wait_ready();
    wait_for("a successful resync", WAIT, || {
        d.metric("iam_warden_last_successful_resync_timestamp_seconds")
            .unwrap_or(0.0)
            > 0.0
            && d.metric("iam_warden_resync_duration_seconds_count")
                .unwrap_or(0.0)
                >= 1.0
    });
    wait_for("an empty queue", WAIT, || {
        d.metric("iam_warden_queue_depth") == Some(0.0)
    });
}

// --- Fights are noticed, not fought forever ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_changed_back_again_and_again_becomes_contested_then_calms_down() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), tagged_role("fought")).unwrap();
    let d = bed.daemon(
        &dir,
        &[
            "--resync-interval",
            "1s",
            "--contest-threshold",
            "3",
            "--contest-window",
            "20s",
        ],
    );
    d.wait_ready();
    // Someone else's automation sets the tag back every couple of seconds.
    let fighting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fighter = {
        let iam = bed.iam.clone();
        let fighting = fighting.clone();
        tokio::spawn(async move {
            while fighting.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = iam
                    .tag_role()
                    .role_name("fought")
                    .tags(tag("team", "theirs"))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    wait_for("contested in /status", WAIT, || {
        d.resource("fought")["state"] == "contested"
    });
    let r = d.resource("fought");
    assert!(
        r["contested"]["fields"]["tags"]
            .to_string()
            .contains("theirs"),
        "{r}"
    );
    assert_eq!(
        d.metric("iam_warden_resources{state=\"contested\"}"),
        Some(1.0)
    );
    assert_eq!(d.logged("contested: something keeps changing it back"), 1);
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("contested:") && l.contains("tags")),
        "the warning names the field:\n{}",
        d.log()
    );
    // Corrections now back off (2, 4, 8, 16 intervals): far fewer than one per fight.
    bed.proxy.reset_counts();
    tokio::time::sleep(Duration::from_secs(16)).await;
    let corrections = bed.proxy.count("TagRole");
    assert!(
        corrections <= 4,
        "{corrections} corrections in 16 s of backing off"
    );
    assert_eq!(
        d.logged("contested: something keeps changing it back"),
        1,
        "said once"
    );

    fighting.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = fighter.await;
    // The next allowed correction puts it back, and a quiet window ends the contest.
    bed.wait_tag("fought", "team", "data", Duration::from_secs(60))
        .await;
    wait_for("in-sync again", Duration::from_secs(90), || {
        d.resource("fought")["state"] == "in-sync"
    });
    assert!(d.resource("fought")["contested"].is_null());
    assert_eq!(
        d.metric("iam_warden_resources{state=\"contested\"}"),
        Some(0.0)
    );
}

// --- Outages are survived and shown -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_at_start_is_shown_and_survived() {
    let moto = Moto::start();
    let proxy = Proxy::start(&dead_endpoint());
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("late", "one")).unwrap();
    let d = Daemon::start(&proxy.endpoint, &dir, &["--resync-interval", "1s"]);
    wait_for("AWS unreachable in /status", WAIT, || {
        d.status()["aws"]["reachable"] == false
    });
    assert!(d.status()["aws"]["lastError"].is_string(), "{}", d.status());
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 503);
    assert!(body.contains("AWS unreachable"), "{body}");
    assert_eq!(
        d.get("/healthz").0,
        200,
        "alive: waiting is not being stuck"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.logged("AWS unreachable"), 1, "said once:\n{}", d.log());

    proxy.set_upstream(&moto.endpoint);
    d.wait_ready();
    let iam = moto.client().await;
    let deadline = std::time::Instant::now() + WAIT;
    while get_role(&iam, "late").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "never created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        d.status()["aws"],
        serde_json::json!({"reachable": true, "lastError": null})
    );
    assert_eq!(d.logged("AWS reachable again"), 1);
    assert!(!d.get("/readyz").1.contains("warning"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_that_goes_away_and_comes_back_empty_gets_everything_recreated() {
    let first = Moto::start();
    let proxy = Proxy::start(&first.endpoint);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.yaml"), FULL).unwrap();
    fs::write(dir.join("plain.yaml"), role("plain", "p")).unwrap();
    let d = Daemon::start(&proxy.endpoint, &dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    let in_sync = || {
        let (out, _, _) = run(warden_on(&proxy.endpoint).arg("plan").arg(&dir));
        out.status.code() == Some(0)
    };
    assert!(in_sync());

    // IAM goes away: killed.
    drop(first);
    wait_for("AWS unreachable in /status", WAIT, || {
        d.status()["aws"]["reachable"] == false
    });
    // A change made meanwhile fails for now.
    fs::write(dir.join("plain.yaml"), role("plain", "while down")).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(d.get("/healthz").0, 200);
    assert!(d.get("/readyz").1.contains("AWS unreachable"));
    // It comes back empty, at the same address as far as the daemon knows.
    let second = Moto::start();
    proxy.set_upstream(&second.endpoint);
    wait_for("everything recreated", Duration::from_secs(90), || {
        in_sync()
    });
    let iam = second.client().await;
    let plain = get_role(&iam, "plain").await.expect("plain recreated");
    assert_eq!(plain.description(), Some("while down"));
    wait_for("AWS reachable in /status", WAIT, || {
        d.status()["aws"]["reachable"] == true
    });
    assert_eq!(d.logged("AWS unreachable"), 1, "{}", d.log());
    assert_eq!(d.logged("AWS reachable again"), 1, "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_shown_and_the_daemon_stays_up() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("nocreds", "x")).unwrap();
    let mut cmd = warden_on(&bed.proxy.endpoint);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", bed.path("none"))
        .env("AWS_CONFIG_FILE", bed.path("none"))
        .env("HOME", bed.path("home"));
    let d = Daemon::start_cmd(cmd, &dir, &["--resync-interval", "1s"]);
    wait_for("no credentials in /status", WAIT, || {
        d.status()["aws"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no AWS credentials"))
    });
    assert_eq!(d.status()["aws"]["reachable"], false);
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 503);
    assert!(body.contains("no AWS credentials"), "{body}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.logged("AWS unreachable"), 1, "said once:\n{}", d.log());
    assert!(bed.proxy.actions().is_empty(), "nothing reached IAM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_some_calls_is_shown_until_it_clears() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    let with_inline = format!(
        "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}}}\n",
        role("denied", "d")
    );
    fs::write(dir.join("denied.yaml"), with_inline).unwrap();
    fs::write(dir.join("allowed.yaml"), role("allowed", "a")).unwrap();
    bed.proxy.fail(
        "PutRolePolicy",
        100_000,
        403,
        "AccessDenied",
        "not allowed to PutRolePolicy",
    );
    let d = bed.daemon(&dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    bed.wait_description("allowed", "a").await;
    let aws = d.status()["aws"].clone();
    assert_eq!(aws["reachable"], true, "{aws}");
    assert!(
        aws["lastError"].to_string().contains("AccessDenied"),
        "{aws}"
    );
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 200);
    assert!(
        body.contains("AWS refuses") && body.contains("PutRolePolicy"),
        "{body}"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.logged("AWS refuses this call"), 1, "{}", d.log());

    bed.proxy.clear_faults();
    wait_for("the denied role to converge", WAIT, || {
        d.resource("denied")["state"] == "in-sync"
    });
    assert_eq!(d.status()["aws"]["lastError"], serde_json::Value::Null);
    assert_eq!(d.logged("AWS allows this call again"), 1);
    let inline = bed
        .iam
        .get_role_policy()
        .role_name("denied")
        .policy_name("p")
        .send()
        .await;
    assert!(inline.is_ok(), "the inline policy is in IAM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dir_is_shown_and_logged_once_until_it_is_back() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("kept", "one")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    fs::rename(&dir, bed.path("m.away")).unwrap();
    // A busy neighbour used to make the error repeat every 300 ms.
    let _busy = BusyWriter::start(
        bed.path("app.log"),
        String::new(),
        Duration::from_millis(200),
    );
    wait_for("dirError in /status", WAIT, || {
        d.status()["dirError"].is_string()
    });
    assert!(
        d.status()["dirError"].as_str().unwrap().contains("m"),
        "{}",
        d.status()
    );
    assert!(d.get("/readyz").1.contains("manifests unreadable"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.logged("cannot read manifests"), 1, "{}", d.log());
    // Its resources stay as they were.
    assert_eq!(d.resource("kept")["state"], "in-sync");
    assert_eq!(bed.description_of("kept").await.as_deref(), Some("one"));

    fs::rename(bed.path("m.away"), &dir).unwrap();
    fs::write(dir.join("r.yaml"), role("kept", "two")).unwrap();
    bed.wait_description("kept", "two").await;
    wait_for("dirError cleared", WAIT, || {
        d.status()["dirError"].is_null()
    });
    assert_eq!(d.logged("manifests readable again"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_errors_on_status_are_capped_per_file() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("ok.yaml"), role("fine", "x")).unwrap();
    let broken: Vec<String> = (0..30)
        .map(|i| format!("apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: bad-{i}}}\nspec: {{maxSessionDuration: 1}}\n"))
        .collect();
    fs::write(dir.join("broken.yaml"), broken.join("---\n")).unwrap();
    let d = bed.daemon(&dir, &[]);
    d.wait_ready();
    let errors = d.status()["fileErrors"].as_array().unwrap().clone();
    assert!(errors.len() <= 21, "{}", errors.len());
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("more errors")),
        "{errors:?}"
    );
}

/// An ECS container-credentials endpoint that refuses until `ready` is set: the task role's
/// credentials arriving late.
fn late_credentials_server(ready: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/creds", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = if ready.load(std::sync::atomic::Ordering::SeqCst) {
                (
                    "200 OK",
                    r#"{"AccessKeyId":"testing","SecretAccessKey":"testing","Token":"t","Expiration":"2099-01-01T00:00:00Z"}"#,
                )
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_arrive_late_are_picked_up_without_a_restart() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("latecreds", "x")).unwrap();
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = late_credentials_server(ready.clone());
    let mut cmd = warden_on(&bed.proxy.endpoint);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", bed.path("none"))
        .env("AWS_CONFIG_FILE", bed.path("none"))
        .env("HOME", bed.path("home"))
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url);
    let d = Daemon::start_cmd(cmd, &dir, &["--resync-interval", "1s"]);
    wait_for("AWS unreachable in /status", WAIT, || {
        d.status()["aws"]["reachable"] == false
    });
    assert_eq!(d.get("/healthz").0, 200);
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    d.wait_ready();
    bed.wait_description("latecreds", "x").await;
    assert_eq!(d.status()["aws"]["reachable"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_values_file_is_shown_and_logged_once_until_it_is_fixed() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("valued", "${var.desc}")).unwrap();
    let values = bed.path("values.yaml");
    fs::write(&values, "desc: one\n").unwrap();
    let d = bed.daemon(
        &dir,
        &[
            "--values",
            values.to_str().unwrap(),
            "--resync-interval",
            "1s",
        ],
    );
    d.wait_ready();
    bed.wait_description("valued", "one").await;
    fs::write(&values, "desc: [broken\n").unwrap();
    wait_for("valuesError in /status", WAIT, || {
        d.status()["valuesError"].is_string()
    });
    assert!(d.get("/readyz").1.contains("values unreadable"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.logged("cannot read values"), 1, "{}", d.log());
    assert_eq!(bed.description_of("valued").await.as_deref(), Some("one"));

    fs::write(&values, "desc: two\n").unwrap();
    bed.wait_description("valued", "two").await;
    wait_for("valuesError cleared", WAIT, || {
        d.status()["valuesError"].is_null()
    });
    assert_eq!(d.logged("values readable again"), 1);
}

fn copy_agent_manifests(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for entry in fs::read_dir(support::repo_root().join("manifests/agent")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prune_the_daemon_idles_over_several_resyncs_without_writing() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("agent");
    copy_agent_manifests(&dir);
    let values = support::repo_root().join("deploy/values.example.yaml");
    let d = bed.daemon(
        &dir,
        &[
            "--prune",
            "--resync-interval",
            "1s",
            "--values",
            values.to_str().unwrap(),
        ],
    );
    d.wait_ready();
    wait_for("in sync", WAIT, || {
        let (out, _, _) = run(warden_on(&bed.proxy.endpoint)
            .arg("plan")
            .arg(&dir)
            .args(["--values", values.to_str().unwrap()]));
        out.status.code() == Some(0)
    });
    bed.proxy.reset_counts();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{}", d.log());
    assert!(
        bed.proxy.count("GetAccountAuthorizationDetails") >= 3,
        "no resyncs ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_removed_and_restored_within_the_grace_period_keeps_its_role_in_the_daemon() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep.yaml"), role("keep", "k")).unwrap();
    fs::write(dir.join("back.yaml"), role("back", "b")).unwrap();
    let d = bed.daemon(
        &dir,
        &["--prune", "--prune-after", "10m", "--resync-interval", "1s"],
    );
    d.wait_ready();
    bed.wait_description("back", "b").await;
    let id = get_role(&bed.iam, "back")
        .await
        .unwrap()
        .role_id()
        .to_string();
    fs::rename(dir.join("back.yaml"), bed.path("back.yaml")).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while bed
        .tag_of("back", "iam-warden/undeclared-since")
        .await
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the grace period never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fs::rename(bed.path("back.yaml"), dir.join("back.yaml")).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while bed
        .tag_of("back", "iam-warden/undeclared-since")
        .await
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the mark was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let role = get_role(&bed.iam, "back")
        .await
        .expect("the role was deleted");
    assert_eq!(role.role_id(), id, "the role was recreated");
    assert!(!bed.proxy.actions().iter().any(|a| a == "DeleteRole"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_starts_breaking_a_guardrail_keeps_its_last_good_state() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    let with_action = |action: &str| {
        format!(
            "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"{action}\", Resource: \"*\"}}]}}\n",
            role("guarded", "g")
        )
    };
    fs::write(dir.join("r.yaml"), with_action("s3:GetObject")).unwrap();
    let d = bed.daemon(&dir, &["--deny-action", "iam:*", "--resync-interval", "1s"]);
    d.wait_ready();
    bed.wait_description("guarded", "g").await;
    fs::write(dir.join("r.yaml"), with_action("iam:PassRole")).unwrap();
    wait_for("the guardrail error", WAIT, || {
        d.status()["fileErrors"]
            .to_string()
            .contains("the guardrail --deny-action `iam:*` denies")
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let inline = bed
        .iam
        .get_role_policy()
        .role_name("guarded")
        .policy_name("p")
        .send()
        .await
        .unwrap();
    let doc = iam_warden::policy::PolicyDocument::from_iam(inline.policy_document()).unwrap();
    assert!(doc.to_json().contains("s3:GetObject"), "{}", doc.to_json());
    assert!(!doc.to_json().contains("iam:PassRole"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pass_reads_a_converged_account_in_bulk_not_one_resource_at_a_time() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("agent");
    copy_agent_manifests(&dir);
    let values = support::repo_root().join("deploy/values.example.yaml");
    let (out, stdout, stderr) = run(warden_on(&bed.proxy.endpoint)
        .arg("apply")
        .arg(&dir)
        .args(["--values", values.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    bed.proxy.reset_counts();
    let d = bed.daemon(&dir, &["--values", values.to_str().unwrap()]);
    d.wait_ready();
    for per_resource in [
        "GetRole",
        "GetPolicy",
        "ListRolePolicies",
        "ListAttachedRolePolicies",
    ] {
        assert_eq!(
            bed.proxy.count(per_resource),
            0,
            "{:?}",
            bed.proxy.actions()
        );
    }
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
    assert_eq!(d.resource("data-agent-task-role")["state"], "in-sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dir_flipped_to_files_that_declare_nothing_never_prunes() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a.yaml"), role("kept-a", "a")).unwrap();
    fs::write(dir.join("b.yaml"), role("kept-b", "b")).unwrap();
    let d = bed.daemon(
        &dir,
        &["--prune", "--prune-after", "1s", "--resync-interval", "1s"],
    );
    d.wait_ready();
    bed.wait_description("kept-b", "b").await;
    // A checkout caught empty: one file left, holding only a comment.
    fs::remove_file(dir.join("b.yaml")).unwrap();
    fs::write(dir.join("a.yaml"), "# emptied by a half-finished sync\n").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for kept in ["kept-a", "kept-b"] {
        assert!(
            bed.description_of(kept).await.is_some(),
            "{kept} was deleted\n{}",
            d.log()
        );
        assert!(
            bed.tag_of(kept, "iam-warden/undeclared-since")
                .await
                .is_none()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_undeclared_than_max_prune_are_kept_and_the_reason_is_shown() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep.yaml"), role("keep", "k")).unwrap();
    for i in 0..3 {
        fs::write(dir.join(format!("r{i}.yaml")), role(&format!("r{i}"), "r")).unwrap();
    }
    let d = bed.daemon(
        &dir,
        &[
            "--prune",
            "--prune-after",
            "0s",
            "--max-prune",
            "2",
            "--resync-interval",
            "1s",
        ],
    );
    d.wait_ready();
    for i in 0..3 {
        bed.wait_description(&format!("r{i}"), "r").await;
    }
    // Three files gone at once, one more than --max-prune: nothing is deleted, not even by
    // the reload that sees each file go.
    for i in 0..3 {
        fs::remove_file(dir.join(format!("r{i}.yaml"))).unwrap();
    }
    wait_for("pruneRefused on /status", WAIT, || {
        d.status()["pruneRefused"]
            .to_string()
            .contains("--max-prune 2")
    });
    assert_eq!(d.metric("iam_warden_prune_refused_deletions"), Some(3.0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..3 {
        assert!(
            bed.description_of(&format!("r{i}")).await.is_some(),
            "r{i} was deleted"
        );
    }
    assert!(!bed.proxy.actions().iter().any(|a| a == "DeleteRole"));
    // One back: two to delete, within the limit, and they go.
    fs::write(dir.join("r0.yaml"), role("r0", "r")).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while bed.description_of("r1").await.is_some() || bed.description_of("r2").await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "never pruned\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bed.description_of("r0").await.is_some());
    wait_for("pruneRefused cleared", WAIT, || {
        d.status()["pruneRefused"].is_null()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_renamed_only_in_case_is_updated_never_created_twice() {
    let bed = Bed::new(&[], &[]).await;
    let dir = bed.path("m");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("r.yaml"), role("cased", "one")).unwrap();
    let d = bed.daemon(&dir, &["--resync-interval", "1s"]);
    d.wait_ready();
    bed.wait_description("cased", "one").await;
    // moto's GetRole minds case: only the bulk read's names can tell it is the same role.
    fs::write(dir.join("r.yaml"), role("Cased", "two")).unwrap();
    bed.wait_description("cased", "two").await;
    wait_for("two resyncs", WAIT, || {
        bed.proxy.count("GetAccountAuthorizationDetails") >= 3
    });
    assert_eq!(
        bed.proxy.count("CreateRole"),
        1,
        "{:?}",
        bed.proxy.actions()
    );
    assert!(get_role(&bed.iam, "Cased").await.is_none(), "a second role");
}
