//! The prune that users can trust, against moto, in the CLI and in the daemon alike: one
//! decision (`reconcile::prune::decide_all`) that both only carry out. Each test is a
//! reproduction of data lost on an earlier main:
//! - a policy still attached to an unowned role whose name starts with a pruned role's name;
//! - a policy that is an unowned role's permissions boundary (the daemon deleted it);
//! - a grace mark (`iam-warden/undeclared-since`) set by hand, which skipped the grace period;
//! - a policy used by a role that is itself only in its grace period;
//! - `mode: observe` (with or without `prune: never`), whose resource was deleted once its
//!   manifest was gone.

mod support;

use std::time::{Duration, SystemTime};

use support::bed::Bed;
use support::daemon::{Daemon, wait_for};
use support::eventually;
use support::fixtures::tag;
use support::moto::get_role;

const WAIT: Duration = Duration::from_secs(60);
const ACCOUNT: &str = "123456789012";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn role(name: &str, annotations: &str, policies: &[&str]) -> String {
    let refs: Vec<String> = policies.iter().map(|p| format!("{{ref: {p}}}")).collect();
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
  managedPolicies: [{}]
"#,
        refs.join(", ")
    )
}

fn policy(name: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {{name: {name}}}
spec:
  document: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "s3:GetObject", Resource: "*"}}]}}
"#
    )
}

fn policy_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/{name}")
}

fn daemon(bed: &Bed, args: &[&str]) -> Daemon {
    let mut all = vec!["--resync-interval", "1s"];
    all.extend(args);
    bed.daemon(bed.dir.path(), &all)
}

fn remove(bed: &Bed, file: &str) {
    std::fs::remove_file(bed.dir.path().join(file)).unwrap();
}

async fn policy_exists(bed: &Bed, name: &str) -> bool {
    bed.iam
        .get_policy()
        .policy_arn(policy_arn(name))
        .send()
        .await
        .is_ok()
}

async fn attached(bed: &Bed, role: &str) -> Vec<String> {
    let out = bed
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    out.attached_policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_string))
        .collect()
}

async fn unowned_role(bed: &Bed, name: &str) {
    bed.iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
}

async fn role_tag(bed: &Bed, role: &str, key: &str) -> Option<String> {
    let tags = bed.role_tags(role).await;
    tags.into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

async fn policy_tag(bed: &Bed, name: &str, key: &str) -> Option<String> {
    let out = bed
        .iam
        .list_policy_tags()
        .policy_arn(policy_arn(name))
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .find(|t| t.key().eq_ignore_ascii_case(key))
        .map(|t| t.value().to_string())
}

/// Converged: role `app` attached to policy `pa`, and an unrelated role `other`.
async fn app_attached_to_pa() -> Bed {
    let bed = Bed::new(
        &[
            ("app.yaml", &role("app", "", &["pa"])),
            ("pa.yaml", &policy("pa")),
            ("other.yaml", &role("other", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    bed
}

/// Role `app` attached to policy `pa`, an unrelated role `other`; out of band, an unowned
/// role `app-2` gets `pa` attached; then the manifests of `app` and `pa` go.
async fn app_pa_and_unowned_app_2() -> Bed {
    let bed = app_attached_to_pa().await;
    unowned_role(&bed, "app-2").await;
    bed.iam
        .attach_role_policy()
        .role_name("app-2")
        .policy_arn(policy_arn("pa"))
        .send()
        .await
        .unwrap();
    remove(&bed, "app.yaml");
    remove(&bed, "pa.yaml");
    bed
}

#[tokio::test]
async fn apply_prune_keeps_a_policy_that_an_unowned_role_named_like_a_pruned_one_uses() {
    let bed = app_pa_and_unowned_app_2().await;
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 1, "a kept policy is reported as not pruned:\n{out}");
    assert!(out.contains("still used by role/app-2"), "{out}");
    assert!(get_role(&bed.iam, "app").await.is_none(), "{out}");
    assert!(policy_exists(&bed, "pa").await, "pa deleted:\n{out}");
    assert_eq!(attached(&bed, "app-2").await, ["pa"], "{out}");
    assert!(get_role(&bed.iam, "other").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_a_policy_that_an_unowned_role_named_like_a_pruned_one_uses() {
    let bed = app_pa_and_unowned_app_2().await;
    let d = daemon(&bed, &["--prune", "--prune-after", "0s"]);
    eventually("app pruned", || async {
        get_role(&bed.iam, "app").await.is_none()
    })
    .await;
    wait_for("pa reported as kept", WAIT, || {
        d.logged("still used by role/app-2") > 0
    });
    // Several resyncs later, still there and still attached; said once, not every resync.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(policy_exists(&bed, "pa").await, "{}", d.log());
    assert_eq!(attached(&bed, "app-2").await, ["pa"], "{}", d.log());
    assert_eq!(
        d.logged("still used by role/app-2: not deleted"),
        1,
        "{}",
        d.log()
    );
}

/// Owned policies `pc` (the permissions boundary of an unowned role) and `pz` (unused), both
/// undeclared now.
async fn boundary_of_an_unowned_role() -> Bed {
    let bed = Bed::new(
        &[
            ("pc.yaml", &policy("pc")),
            ("pz.yaml", &policy("pz")),
            ("other.yaml", &role("other", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    bed.iam
        .create_role()
        .role_name("bounded")
        .permissions_boundary(policy_arn("pc"))
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    remove(&bed, "pc.yaml");
    remove(&bed, "pz.yaml");
    bed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_a_policy_that_is_an_unowned_roles_permissions_boundary() {
    let bed = boundary_of_an_unowned_role().await;
    let d = daemon(&bed, &["--prune", "--prune-after", "0s"]);
    // The unused one goes: the daemon does prune...
    eventually("pz pruned", || async { !policy_exists(&bed, "pz").await }).await;
    wait_for("pc reported as kept", WAIT, || {
        d.logged("still used by role/bounded (as its permissions boundary)") > 0
    });
    // ...but never what a role still uses as its boundary, resync after resync.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(policy_exists(&bed, "pc").await, "{}", d.log());
}

#[tokio::test]
async fn apply_prune_keeps_a_policy_that_is_an_unowned_roles_permissions_boundary() {
    let bed = boundary_of_an_unowned_role().await;
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 1, "{out}");
    assert!(!policy_exists(&bed, "pz").await, "{out}");
    assert!(policy_exists(&bed, "pc").await, "{out}");
}

const HAND_SET: &str = "2001-01-01T00:00:00Z";

/// A declared owned role `old` and policy `pold`, each tagged by hand with a back-dated grace
/// mark (in another key case), then their manifests removed.
async fn hand_set_marks() -> Bed {
    let bed = Bed::new(
        &[
            ("old.yaml", &role("old", "", &[])),
            ("pold.yaml", &policy("pold")),
            ("keep.yaml", &role("keep", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    let mark = tag("IAM-Warden/Undeclared-Since", HAND_SET);
    bed.iam
        .tag_role()
        .role_name("old")
        .tags(mark.clone())
        .send()
        .await
        .unwrap();
    bed.iam
        .tag_policy()
        .policy_arn(policy_arn("pold"))
        .tags(mark)
        .send()
        .await
        .unwrap();
    remove(&bed, "old.yaml");
    remove(&bed, "pold.yaml");
    bed
}

fn restarted(mark: Option<String>) -> bool {
    mark.is_some_and(|m| !m.starts_with(HAND_SET))
}

#[tokio::test]
async fn apply_prune_never_honours_a_hand_set_grace_mark() {
    let bed = hand_set_marks().await;
    let (code, out) = bed.run_with("apply", &["--prune"]);
    assert_eq!(code, 0, "{out}");
    assert!(get_role(&bed.iam, "old").await.is_some(), "deleted:\n{out}");
    assert!(policy_exists(&bed, "pold").await, "deleted:\n{out}");
    // The grace period started at this pass instead, and says so.
    assert!(out.contains("deleted in 10m"), "{out}");
    let role_mark = role_tag(&bed, "old", "iam-warden/undeclared-since").await;
    assert!(restarted(role_mark.clone()), "{role_mark:?}");
    let policy_mark = policy_tag(&bed, "pold", "iam-warden/undeclared-since").await;
    assert!(restarted(policy_mark.clone()), "{policy_mark:?}");
    // A second pass honours the mark it wrote: still waiting, nothing deleted.
    let (code, out) = bed.run_with("apply", &["--prune"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deleted in"), "{out}");
    assert!(get_role(&bed.iam, "old").await.is_some());
    assert_eq!(
        role_tag(&bed, "old", "iam-warden/undeclared-since").await,
        role_mark
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_honours_a_hand_set_grace_mark() {
    let bed = hand_set_marks().await;
    let d = daemon(&bed, &["--prune"]);
    d.wait_ready();
    eventually("the role's mark restarted", || async {
        restarted(role_tag(&bed, "old", "iam-warden/undeclared-since").await)
    })
    .await;
    eventually("the policy's mark restarted", || async {
        restarted(policy_tag(&bed, "pold", "iam-warden/undeclared-since").await)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(get_role(&bed.iam, "old").await.is_some(), "{}", d.log());
    assert!(policy_exists(&bed, "pold").await, "{}", d.log());
}

/// Role `app` attached to `pa`, both undeclared; `pa` carries a genuine mark an hour old (so
/// it is due), `app` none (so its grace period starts now).
async fn policy_of_a_role_in_its_grace_period() -> Bed {
    let bed = app_attached_to_pa().await;
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let mark =
        iam_warden::reconcile::prune::write_mark(None, "default", &policy_arn("pa"), an_hour_ago);
    bed.iam
        .tag_policy()
        .policy_arn(policy_arn("pa"))
        .tags(tag("iam-warden/undeclared-since", &mark))
        .send()
        .await
        .unwrap();
    remove(&bed, "app.yaml");
    remove(&bed, "pa.yaml");
    bed
}

#[tokio::test]
async fn apply_prune_keeps_a_policy_used_by_a_role_still_in_its_grace_period() {
    let bed = policy_of_a_role_in_its_grace_period().await;
    let (code, out) = bed.run_with("apply", &["--prune"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("still used by role/app"), "{out}");
    assert!(get_role(&bed.iam, "app").await.is_some(), "{out}");
    assert!(policy_exists(&bed, "pa").await, "{out}");
    assert_eq!(attached(&bed, "app").await, ["pa"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_a_policy_used_by_a_role_still_in_its_grace_period() {
    let bed = policy_of_a_role_in_its_grace_period().await;
    let d = daemon(&bed, &["--prune"]);
    wait_for("pa reported as kept", WAIT, || {
        d.logged("still used by role/app") > 0
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(policy_exists(&bed, "pa").await, "{}", d.log());
    assert_eq!(attached(&bed, "app").await, ["pa"], "{}", d.log());
}

/// Roles created and owned in enforce mode, then switched to `mode: observe` (one also
/// `prune: never`), and a policy likewise.
async fn observed_resources() -> Bed {
    let bed = Bed::new(
        &[
            ("watched.yaml", &role("watched", "", &[])),
            ("never.yaml", &role("never", "", &[])),
            ("pw.yaml", &policy("pw")),
            ("keep.yaml", &role("keep", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    let observe = "iam-warden/mode: observe";
    bed.write("watched.yaml", &role("watched", observe, &[]));
    bed.write(
        "never.yaml",
        &role(
            "never",
            &format!("{observe}, iam-warden/prune: \"never\""),
            &[],
        ),
    );
    bed.write(
        "pw.yaml",
        &policy("pw").replace(
            "metadata: {name: pw}",
            "metadata: {name: pw, annotations: {iam-warden/mode: observe}}",
        ),
    );
    bed
}

async fn assert_let_go(bed: &Bed, out: &str) {
    for name in ["watched", "never"] {
        assert!(get_role(&bed.iam, name).await.is_some(), "{name}:\n{out}");
        let tags = bed.role_tags(name).await;
        assert!(
            !tags.iter().any(|(k, _)| k.starts_with("iam-warden/")),
            "{name} still managed: {tags:?}"
        );
    }
    assert!(policy_exists(bed, "pw").await, "{out}");
}

#[tokio::test]
async fn apply_prune_never_deletes_what_was_only_observed() {
    let bed = observed_resources().await;
    // Observe mode records `prune: never`, its one write, and nothing else.
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let mut writes = bed.proxy.writes();
    writes.sort();
    assert_eq!(writes, ["TagPolicy", "TagRole", "TagRole"], "{out}");
    assert_eq!(
        role_tag(&bed, "watched", "iam-warden/prune")
            .await
            .as_deref(),
        Some("never")
    );
    for f in ["watched.yaml", "never.yaml", "pw.yaml"] {
        remove(&bed, f);
    }
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 0, "{out}");
    assert_let_go(&bed, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_deletes_what_was_only_observed() {
    let bed = observed_resources().await;
    let d = daemon(&bed, &["--prune", "--prune-after", "0s"]);
    d.wait_ready();
    eventually("prune: never recorded", || async {
        role_tag(&bed, "watched", "iam-warden/prune")
            .await
            .as_deref()
            == Some("never")
            && policy_tag(&bed, "pw", "iam-warden/prune").await.as_deref() == Some("never")
    })
    .await;
    for f in ["watched.yaml", "never.yaml", "pw.yaml"] {
        remove(&bed, f);
    }
    eventually("let go", || async {
        role_tag(&bed, "watched", "iam-warden/owner")
            .await
            .is_none()
            && role_tag(&bed, "never", "iam-warden/owner").await.is_none()
            && policy_tag(&bed, "pw", "iam-warden/owner").await.is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_let_go(&bed, &d.log()).await;
}

#[tokio::test]
async fn a_role_whose_owner_tag_goes_between_the_decision_and_the_delete_is_kept() {
    let bed = Bed::new(
        &[
            ("gone.yaml", &role("gone", "", &[])),
            ("keep.yaml", &role("keep", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    remove(&bed, "gone.yaml");
    // The delete reads the role again first; hold that read while someone takes it over.
    bed.proxy.delay("GetRole", 1, Duration::from_secs(3));
    let apply = {
        let mut cmd = bed.command("apply");
        cmd.args(["--prune", "--prune-after", "0s"]);
        std::thread::spawn(move || support::run(&mut cmd))
    };
    // Once the proxy holds that read (not after a guessed time: a slow start would untag
    // before the decision, and the test would prove nothing).
    eventually("the delete's read of the role held", || async {
        bed.proxy.count("GetRole") >= 1
    })
    .await;
    bed.iam
        .untag_role()
        .role_name("gone")
        .tag_keys("iam-warden/owner")
        .send()
        .await
        .unwrap();
    let (out, stdout, stderr) = apply.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("no longer owned"),
        "{stdout}{stderr}"
    );
    assert!(
        get_role(&bed.iam, "gone").await.is_some(),
        "deleted after it was taken over"
    );
    assert_eq!(
        bed.proxy.count("DeleteRole"),
        0,
        "{:?}",
        bed.proxy.actions()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_honours_a_replayed_genuine_mark_older_than_what_it_saw() {
    let bed = Bed::new(
        &[
            ("payments.yaml", &role("payments", "", &[])),
            ("keep.yaml", &role("keep", "", &[])),
        ],
        &[],
    )
    .await;
    bed.converge();
    let d = daemon(&bed, &["--prune"]);
    d.wait_ready();
    remove(&bed, "payments.yaml");
    eventually("the daemon's own mark", || async {
        role_tag(&bed, "payments", "iam-warden/undeclared-since")
            .await
            .is_some()
    })
    .await;
    // A mark iam-warden really wrote, in an earlier episode an hour ago, put back.
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/payments");
    let replayed = iam_warden::reconcile::prune::write_mark(
        None,
        "default",
        &arn,
        SystemTime::now() - Duration::from_secs(3600),
    );
    bed.iam
        .tag_role()
        .role_name("payments")
        .tags(tag("iam-warden/undeclared-since", &replayed))
        .send()
        .await
        .unwrap();
    // Several resyncs: this daemon saw the manifest go seconds ago, so its grace runs from then.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        get_role(&bed.iam, "payments").await.is_some(),
        "{}",
        d.log()
    );
}

/// Requests of each kind in `actions`, as `Name ×N`, for messages.
fn tally(actions: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in actions {
        *counts.entry(a.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(a, n)| format!("{a} ×{n}")).collect();
    parts.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_waiting_out_their_grace_cost_the_resync_nothing_per_resource() {
    let mut files: Vec<(String, String)> = vec![("keep.yaml".into(), role("keep", "", &[]))];
    for i in 0..5 {
        files.push((format!("r{i}.yaml"), role(&format!("r{i}"), "", &[])));
        files.push((format!("p{i}.yaml"), policy(&format!("p{i}"))));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let bed = Bed::new(&refs, &[]).await;
    bed.converge();
    for i in 0..5 {
        remove(&bed, &format!("r{i}.yaml"));
        remove(&bed, &format!("p{i}.yaml"));
    }
    // Default grace (10m): all ten wait it out.
    let d = daemon(&bed, &["--prune"]);
    d.wait_ready();
    eventually("every grace mark written", || async {
        let mut all = true;
        for i in 0..5 {
            all &= role_tag(&bed, &format!("r{i}"), "iam-warden/undeclared-since")
                .await
                .is_some();
            all &= policy_tag(&bed, &format!("p{i}"), "iam-warden/undeclared-since")
                .await
                .is_some();
        }
        all
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    bed.proxy.reset_counts();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let actions = bed.proxy.actions();
    let resyncs = bed.proxy.count("GetAccountAuthorizationDetails");
    assert!(resyncs >= 3, "no resyncs ran: {}", tally(&actions));
    assert_eq!(
        bed.proxy.writes(),
        Vec::<String>::new(),
        "{}",
        tally(&actions)
    );
    // Each resync: the snapshot, ListRoles, and the policy tags due in rotation; nothing per
    // waiting resource (no GetRole, GetPolicy, ListEntitiesForPolicy).
    for per_resource in [
        "GetRole",
        "GetPolicy",
        "ListEntitiesForPolicy",
        "ListRoleTags",
    ] {
        assert_eq!(
            bed.proxy.count(per_resource),
            0,
            "{per_resource} while resources wait out their grace, over {resyncs} resyncs: {}",
            tally(&actions)
        );
    }
    println!("over {resyncs} resyncs: {}", tally(&actions));
}
