//! Pruning through the binary against moto, made safe: a grace period recorded on the
//! resource, a file restored in time touches nothing, `--max-prune`, policies still used
//! elsewhere are kept, `iam-warden/prune: never` lets a resource go, `iam-warden/mode:
//! observe` writes nothing, and `--ignore-managed-policy` leaves the organisation's
//! attachments alone.

mod support;

use std::time::Duration;

use support::bed::Bed;
use support::fixtures::tag;
use support::moto::get_role;

fn role(name: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: {name}
{extra}spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
"#
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

/// Converged: one role `k` under `/agent/`.
async fn one_role_under_agent() -> Bed {
    let bed = Bed::new(
        &[(
            "k.yaml",
            &role("k", "").replace("spec:\n", "spec:\n  path: /agent/\n"),
        )],
        &[],
    )
    .await;
    bed.converge();
    bed
}

/// A role made by hand at `path`, carrying the default owner's tag as if iam-warden made it.
async fn owned_by_hand(bed: &Bed, name: &str, path: &str) {
    bed.iam
        .create_role()
        .role_name(name)
        .path(path)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .tags(tag("iam-warden/owner", "default"))
        .send()
        .await
        .unwrap();
}

async fn has_tag(bed: &Bed, role: &str, key: &str) -> bool {
    bed.role_tags(role).await.iter().any(|(k, _)| k == key)
}

#[tokio::test]
async fn an_undeclared_role_is_deleted_only_after_the_grace_period() {
    let bed = Bed::new(
        &[
            ("keep.yaml", &role("keep", "")),
            ("old.yaml", &role("old", "")),
        ],
        &[],
    )
    .await;
    bed.converge();
    std::fs::remove_file(bed.dir.path().join("old.yaml")).unwrap();
    let prune = ["--prune", "--prune-after", "4s"];

    // The first pass records when the grace period started, on the role itself.
    let (code, out) = bed.run_with("apply", &prune);
    assert_eq!(code, 0, "{out}");
    assert!(has_tag(&bed, "old", "iam-warden/undeclared-since").await);
    let (code, out) = bed.run_with("plan", &prune);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("Role old") && out.contains("deleted in"),
        "{out}"
    );
    let (code, out) = bed.run_with("apply", &prune);
    assert_eq!(code, 0, "{out}");
    assert!(
        get_role(&bed.iam, "old").await.is_some(),
        "deleted within the grace period"
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, out) = bed.run_with("apply", &prune);
    assert_eq!(code, 0, "{out}");
    assert!(
        get_role(&bed.iam, "old").await.is_none(),
        "not deleted after the grace period:\n{out}"
    );
    assert!(get_role(&bed.iam, "keep").await.is_some());
}

#[tokio::test]
async fn a_file_removed_and_restored_within_the_grace_period_keeps_its_role() {
    let bed = Bed::new(
        &[("old.yaml", &role("old", "")), ("k.yaml", &role("k", ""))],
        &[],
    )
    .await;
    bed.converge();
    let id = bed.role("old").await.role_id().to_string();
    let text = std::fs::read_to_string(bed.dir.path().join("old.yaml")).unwrap();
    std::fs::remove_file(bed.dir.path().join("old.yaml")).unwrap();
    let (code, out) = bed.run_with("apply", &["--prune"]);
    assert_eq!(code, 0, "{out}");
    std::fs::write(bed.dir.path().join("old.yaml"), text).unwrap();
    bed.proxy.reset_counts();
    let (code, out) = bed.run_with("apply", &["--prune"]);
    assert_eq!(code, 0, "{out}");
    let writes = bed.proxy.writes();
    assert!(
        !writes
            .iter()
            .any(|w| w == "DeleteRole" || w == "CreateRole"),
        "{writes:?}"
    );
    assert_eq!(bed.role("old").await.role_id(), id);
    assert!(
        !has_tag(&bed, "old", "iam-warden/undeclared-since").await,
        "the mark stayed"
    );
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn more_deletions_than_max_prune_delete_nothing() {
    let files: Vec<(String, String)> = (0..3)
        .map(|i| (format!("r{i}.yaml"), role(&format!("r{i}"), "")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut bed = Bed::new(&refs, &[]).await;
    bed.converge();
    bed.write("keep.yaml", &role("keep", ""));
    for (name, _) in &files {
        std::fs::remove_file(bed.dir.path().join(name)).unwrap();
    }
    bed.args
        .extend(["--prune", "--prune-after", "0s", "--max-prune", "2"].map(String::from));
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exceed --max-prune 2"), "{out}");
    for i in 0..3 {
        assert!(get_role(&bed.iam, &format!("r{i}")).await.is_some());
    }
    assert!(!bed.proxy.writes().iter().any(|w| w.starts_with("Delete")));
}

#[tokio::test]
async fn a_policy_still_used_by_others_is_not_deleted_and_they_are_named() {
    let bed = Bed::new(&[("p.yaml", &policy("shared"))], &[]).await;
    bed.converge();
    let arn = "arn:aws:iam::123456789012:policy/shared";
    bed.iam
        .create_user()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    bed.iam
        .attach_user_policy()
        .user_name("alice")
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    std::fs::write(bed.dir.path().join("p.yaml"), role("other", "")).unwrap();
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("still used by user/alice"), "{out}");
    bed.iam.get_policy().policy_arn(arn).send().await.unwrap();
    assert!(
        !bed.proxy
            .writes()
            .iter()
            .any(|w| w == "DeletePolicy" || w == "DetachUserPolicy")
    );
}

#[tokio::test]
async fn prune_never_lets_a_role_go_instead_of_deleting_it() {
    let never = "  annotations: {iam-warden/prune: \"never\"}\n";
    let bed = Bed::new(
        &[("r.yaml", &role("kept", never)), ("k.yaml", &role("k", ""))],
        &[],
    )
    .await;
    bed.converge();
    assert!(has_tag(&bed, "kept", "iam-warden/prune").await);
    std::fs::remove_file(bed.dir.path().join("r.yaml")).unwrap();
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 0, "{out}");
    let tags = bed.role_tags("kept").await;
    assert!(
        !tags.iter().any(|(k, _)| k.starts_with("iam-warden/")),
        "still tagged as managed: {tags:?}"
    );
    let (code, out) = bed.run_with("plan", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 0, "an unowned role is no business of prune:\n{out}");
}

#[tokio::test]
async fn an_observe_only_resource_shows_its_drift_and_is_never_written() {
    let observe = "  annotations: {iam-warden/mode: observe}\n";
    let bed = Bed::new(&[("r.yaml", &role("watched", observe))], &[]).await;
    // Created by hand first: observe-only never creates either.
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert!(
        get_role(&bed.iam, "watched").await.is_none(),
        "observe-only created a role"
    );
    bed.write("r.yaml", &role("watched", ""));
    bed.converge();
    bed.write("r.yaml", &role("watched", observe));
    bed.iam
        .tag_role()
        .role_name("watched")
        .tags(tag("drift", "yes"))
        .send()
        .await
        .unwrap();
    bed.proxy.reset_counts();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("tags.drift") && out.contains("observe-only"),
        "{out}"
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    // Its one write: `prune: never`, so that a prune never deletes what was only watched.
    assert_eq!(bed.proxy.writes(), ["TagRole"], "{out}");
    assert!(has_tag(&bed, "watched", "iam-warden/prune").await);
    assert!(has_tag(&bed, "watched", "drift").await);
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{out}");
}

#[tokio::test]
async fn ignored_managed_policies_are_neither_attached_nor_detached() {
    let bed = Bed::new(&[("r.yaml", &role("based", ""))], &[]).await;
    bed.converge();
    let guard = bed
        .iam
        .create_policy()
        .policy_name("guard")
        .path("/org-guard/")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let arn = guard.policy().unwrap().arn().unwrap().to_string();
    bed.iam
        .attach_role_policy()
        .role_name("based")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let ignore = [
        "--ignore-managed-policy",
        "arn:aws:iam::*:policy/org-guard/*",
    ];
    let (code, out) = bed.run_with("plan", &ignore);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bed.run_with("apply", &ignore);
    assert_eq!(code, 0, "{out}");
    let attached = bed
        .iam
        .list_attached_role_policies()
        .role_name("based")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    // Without the flag it is detached, as before.
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
}

#[tokio::test]
async fn an_unreadable_entry_under_dir_stops_the_prune_like_a_parse_error() {
    let bed = Bed::new(
        &[
            ("keep.yaml", &role("keep", "")),
            ("team.yaml", &role("team-role", "")),
        ],
        &[],
    )
    .await;
    bed.converge();
    // The file goes, and in its place comes an entry that cannot be read: a link to a file
    // that no longer exists (a checkout caught half-way).
    std::fs::remove_file(bed.dir.path().join("team.yaml")).unwrap();
    std::os::unix::fs::symlink(
        bed.dir.path().join("gone/team.yaml"),
        bed.dir.path().join("team.yaml"),
    )
    .unwrap();
    bed.proxy.reset_counts();
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("team.yaml"), "{out}");
    assert!(
        get_role(&bed.iam, "team-role").await.is_some(),
        "deleted on unreadable input"
    );
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_dir_whose_files_declare_nothing_never_prunes() {
    let bed = Bed::new(&[("a.yaml", &role("owned", ""))], &[]).await;
    bed.converge();
    for empty in ["", "# nothing here\n", "---\n---\n"] {
        bed.write("a.yaml", empty);
        let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
        assert_eq!(code, 1, "{empty:?}: {out}");
        assert!(out.contains("declares no resource"), "{out}");
        assert!(
            get_role(&bed.iam, "owned").await.is_some(),
            "deleted on {empty:?}"
        );
    }
}

#[tokio::test]
async fn a_policy_that_is_another_roles_permissions_boundary_is_kept() {
    let bed = Bed::new(
        &[("p.yaml", &policy("pb")), ("k.yaml", &role("k", ""))],
        &[],
    )
    .await;
    bed.converge();
    let arn = "arn:aws:iam::123456789012:policy/pb";
    bed.iam
        .create_role()
        .role_name("bounded")
        .permissions_boundary(arn)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    std::fs::remove_file(bed.dir.path().join("p.yaml")).unwrap();
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("still used by role/bounded (as its permissions boundary)"),
        "{out}"
    );
    bed.iam.get_policy().policy_arn(arn).send().await.unwrap();
}

#[tokio::test]
async fn nothing_outside_the_allowed_paths_is_pruned_whatever_its_tags() {
    let bed = one_role_under_agent().await;
    owned_by_hand(&bed, "victim", "/").await;
    let (code, out) = bed.run_with(
        "apply",
        &[
            "--prune",
            "--prune-after",
            "0s",
            "--allowed-path-prefix",
            "/agent/",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(get_role(&bed.iam, "victim").await.is_some(), "{out}");
}

#[tokio::test]
async fn max_prune_counts_only_what_the_path_guardrail_lets_prune_touch() {
    let bed = one_role_under_agent().await;
    for (name, path) in [("gone", "/agent/"), ("elsewhere", "/other/")] {
        owned_by_hand(&bed, name, path).await;
    }
    // One deletion allowed: the role outside the allowed paths is no candidate, so it does not
    // count, and the one inside goes.
    let (code, out) = bed.run_with(
        "apply",
        &[
            "--prune",
            "--prune-after",
            "0s",
            "--max-prune",
            "1",
            "--allowed-path-prefix",
            "/agent/",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(get_role(&bed.iam, "gone").await.is_none(), "{out}");
    assert!(get_role(&bed.iam, "elsewhere").await.is_some(), "{out}");
}
