//! Crashes lose nothing (#8, item 6): an answer lost after IAM carried out a write, and a daemon
//! killed with SIGKILL in the middle of its work, end in exactly the declared state: every
//! resource once, with its content and the owner tag, no surplus policy version, and a next
//! pass that writes nothing.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use iam_warden::policy::PolicyDocument;
use support::bed::Bed;
use support::daemon::{Daemon, wait_for};
use support::fixtures::{APP_POLICY_ARN, BOUNDARY_ARN, FULL};

const ACCOUNT: &str = "123456789012";
const OWNER: (&str, &str) = ("iam-warden/owner", "default");
const WAIT: Duration = Duration::from_secs(60);

/// What FULL (tests/support/fixtures.rs) declares, with the parts a test changes.
#[derive(Clone, Copy)]
struct Want {
    /// The one action of app-policy's statement.
    action: &'static str,
    /// The name of app-role's one inline policy.
    inline: &'static str,
    /// The value of app-role's tag `env`.
    env: &'static str,
    /// How many versions app-policy has: one per distinct document it was given.
    versions: usize,
}

const CREATED: Want = Want {
    action: "s3:GetObject",
    inline: "logs",
    env: "test",
    versions: 1,
};

/// The second state the update tests move to: a new policy document (CreatePolicyVersion), an
/// inline policy renamed (DeleteRolePolicy, PutRolePolicy), a tag changed (TagRole).
const UPDATED: Want = Want {
    action: "s3:PutObject",
    inline: "audit",
    env: "prod",
    versions: 2,
};

impl Want {
    fn manifest(&self) -> String {
        let text = FULL
            .replace(
                "Action: [s3:GetObject]",
                &format!("Action: [{}]", self.action),
            )
            .replace("    logs:\n", &format!("    {}:\n", self.inline))
            .replace("env: test", &format!("env: {}", self.env));
        assert!(
            text.contains(self.action) && text.contains(self.env),
            "FULL changed: update the fixture rewrites here"
        );
        text
    }

    fn policy_document(&self) -> PolicyDocument {
        doc(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Read","Effect":"Allow","Action":["{}"],"Resource":"arn:aws:s3:::app-bucket/*"}}]}}"#,
            self.action
        ))
    }
}

fn doc(json: &str) -> PolicyDocument {
    PolicyDocument::parse_json(json).unwrap()
}

fn boundary_document() -> PolicyDocument {
    doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
    )
}

fn trust_document() -> PolicyDocument {
    doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    )
}

fn inline_document() -> PolicyDocument {
    doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    )
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tag_map(tags: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Every role's name in the account.
async fn role_names(iam: &Client) -> Vec<String> {
    let roles = iam.list_roles().into_paginator().items().send();
    let roles: Vec<_> = roles.collect::<Result<Vec<_>, _>>().await.unwrap();
    let mut names: Vec<String> = roles.iter().map(|r| r.role_name().to_string()).collect();
    names.sort();
    names
}

/// Every customer-managed policy's ARN in the account.
async fn policy_arns(iam: &Client) -> Vec<String> {
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .into_paginator()
        .items()
        .send();
    let policies: Vec<_> = policies.collect::<Result<Vec<_>, _>>().await.unwrap();
    let mut arns: Vec<String> = policies
        .iter()
        .filter_map(|p| p.arn().map(str::to_string))
        .collect();
    arns.sort();
    arns
}

/// A managed policy as IAM has it: its tags, its default document, and every version's document
/// (default first).
struct Managed {
    tags: BTreeMap<String, String>,
    default: PolicyDocument,
    versions: Vec<(String, bool, PolicyDocument)>,
}

async fn managed(iam: &Client, arn: &str) -> Managed {
    let policy = iam.get_policy().policy_arn(arn).send().await.unwrap();
    let policy = policy.policy().unwrap();
    let tags = iam.list_policy_tags().policy_arn(arn).send().await.unwrap();
    let listed = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    let mut versions = Vec::new();
    for v in listed.versions() {
        let id = v.version_id().unwrap().to_string();
        let got = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(&id)
            .send()
            .await
            .unwrap();
        let text = got.policy_version().and_then(|v| v.document()).unwrap();
        versions.push((
            id,
            v.is_default_version(),
            PolicyDocument::from_iam(text).unwrap(),
        ));
    }
    versions.sort_by_key(|(_, default, _)| !default);
    let default_id = policy.default_version_id().unwrap();
    let default = versions
        .iter()
        .find(|(id, ..)| id == default_id)
        .map(|(.., d)| d.clone())
        .unwrap_or_else(|| panic!("{arn}: default version {default_id} not listed"));
    Managed {
        tags: tag_map(tags.tags()),
        default,
        versions,
    }
}

/// The account holds exactly what FULL (as `want` changes it) declares: each resource once,
/// its content, its tags with the owner tag, and no surplus policy version.
async fn assert_end_state(iam: &Client, want: Want) {
    assert_eq!(role_names(iam).await, ["app-role"]);
    assert_eq!(policy_arns(iam).await, [BOUNDARY_ARN, APP_POLICY_ARN]);

    let policy = managed(iam, APP_POLICY_ARN).await;
    assert_eq!(policy.tags, tags(&[OWNER, ("team", "data")]));
    assert!(
        policy.default.is_equivalent(&want.policy_document()),
        "app-policy's default document: {:?}",
        policy.default
    );
    let summary: Vec<_> = policy
        .versions
        .iter()
        .map(|(id, default, d)| format!("{id} default={default} {}", d.to_json()))
        .collect();
    assert_eq!(
        policy.versions.len(),
        want.versions,
        "app-policy's versions: {summary:#?}"
    );
    // No version repeats another: each one was created once.
    for (i, (_, _, a)) in policy.versions.iter().enumerate() {
        for (_, _, b) in &policy.versions[i + 1..] {
            assert!(!a.is_equivalent(b), "a duplicate version: {summary:#?}");
        }
    }
    let boundary = managed(iam, BOUNDARY_ARN).await;
    assert_eq!(boundary.tags, tags(&[OWNER]));
    assert_eq!(boundary.versions.len(), 1);
    assert!(boundary.default.is_equivalent(&boundary_document()));

    let role = iam.get_role().role_name("app-role").send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.path(), "/app/");
    assert_eq!(role.description(), Some("App role"));
    assert_eq!(role.max_session_duration(), Some(7200));
    assert_eq!(
        role.permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(BOUNDARY_ARN)
    );
    let trust = PolicyDocument::from_iam(role.assume_role_policy_document().unwrap()).unwrap();
    assert!(trust.is_equivalent(&trust_document()), "{trust:?}");
    assert_eq!(
        tag_map(role.tags()),
        tags(&[OWNER, ("team", "data"), ("env", want.env)])
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("app-role")
        .send()
        .await
        .unwrap();
    let attached: Vec<_> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(attached, [APP_POLICY_ARN]);
    let inline = iam
        .list_role_policies()
        .role_name("app-role")
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), [want.inline]);
    let got = iam
        .get_role_policy()
        .role_name("app-role")
        .policy_name(want.inline)
        .send()
        .await
        .unwrap();
    let got = PolicyDocument::from_iam(got.policy_document()).unwrap();
    assert!(got.is_equivalent(&inline_document()), "{got:?}");
}

/// A second `apply` writes nothing, and `plan` finds nothing to do.
fn assert_nothing_left_to_do(bed: &Bed) {
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{out}");
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

/// `apply` with the answer to the next `action` lost (IAM carried it out; the caller never
/// heard): it succeeds, the call was sent again, and the account ends exactly as declared.
async fn apply_losing(bed: &Bed, action: &str, want: Want) {
    bed.write("app.yaml", &want.manifest());
    bed.proxy.reset_counts();
    bed.proxy.lose_answer(action);
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let actions = bed.proxy.actions();
    if action == "CreatePolicyVersion" {
        // Not idempotent: sent once, then the policy read to find the new version is there.
        assert_eq!(bed.proxy.count(action), 1, "{actions:?}");
        let sent = actions.iter().position(|a| a == action).unwrap();
        assert!(
            actions[sent..].iter().any(|a| a == "GetPolicy"),
            "the lost {action} was not checked: {actions:?}"
        );
    } else {
        // Idempotent, or EntityAlreadyExists / NoSuchEntity on the second try says it is done.
        assert!(
            bed.proxy.count(action) >= 2,
            "the lost {action} was not sent again: {actions:?}"
        );
    }
    assert_end_state(&bed.iam, want).await;
    assert_nothing_left_to_do(bed);
}

/// A lost answer to a call that creates `CREATED` from an empty account.
async fn lost_on_create(action: &str) {
    let bed = Bed::new(&[("app.yaml", &CREATED.manifest())], &[]).await;
    apply_losing(&bed, action, CREATED).await;
}

/// A lost answer to a call that moves a converged account from `CREATED` to `UPDATED`.
async fn lost_on_update(action: &str) {
    let bed = Bed::new(&[("app.yaml", &CREATED.manifest())], &[]).await;
    bed.converge();
    apply_losing(&bed, action, UPDATED).await;
}

#[tokio::test]
async fn a_lost_create_role_answer_leaves_one_owned_role() {
    lost_on_create("CreateRole").await;
}

#[tokio::test]
async fn a_lost_create_policy_answer_leaves_one_owned_policy() {
    lost_on_create("CreatePolicy").await;
}

#[tokio::test]
async fn a_lost_attach_role_policy_answer_leaves_it_attached_once() {
    lost_on_create("AttachRolePolicy").await;
}

#[tokio::test]
async fn a_lost_put_role_policy_answer_leaves_the_inline_policy_as_declared() {
    lost_on_create("PutRolePolicy").await;
}

#[tokio::test]
async fn a_lost_create_policy_version_answer_leaves_no_surplus_version() {
    lost_on_update("CreatePolicyVersion").await;
}

#[tokio::test]
async fn a_lost_delete_role_policy_answer_leaves_it_deleted() {
    lost_on_update("DeleteRolePolicy").await;
}

#[tokio::test]
async fn a_lost_tag_role_answer_leaves_the_tags_as_declared() {
    lost_on_update("TagRole").await;
}

/// At IAM's 5 versions a version rollover deletes the oldest first; a lost answer to its
/// CreatePolicyVersion, sent again, must neither fail on the limit nor leave a duplicate.
#[tokio::test]
async fn a_lost_create_policy_version_answer_at_five_versions_fails_nothing() {
    let actions = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetObjectTagging",
    ];
    let mut want = CREATED;
    let bed = Bed::new(&[("app.yaml", &want.manifest())], &[]).await;
    for (n, action) in actions.into_iter().enumerate() {
        want.action = action;
        want.versions = n + 1;
        bed.write("app.yaml", &want.manifest());
        bed.converge();
    }
    assert_end_state(&bed.iam, want).await;
    want.action = "s3:PutObjectTagging";
    apply_losing(&bed, "CreatePolicyVersion", want).await;
}

/// The check before sending CreatePolicyVersion again never stops a retry that is needed: a
/// refused attempt changed nothing, so the call goes out again, and one version results.
#[tokio::test]
async fn a_throttled_create_policy_version_is_sent_again_and_adds_one_version() {
    let bed = Bed::new(&[("app.yaml", &CREATED.manifest())], &[]).await;
    bed.converge();
    bed.write("app.yaml", &UPDATED.manifest());
    bed.proxy.reset_counts();
    bed.proxy
        .fail("CreatePolicyVersion", 2, 400, "Throttling", "Rate exceeded");
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        bed.proxy.count("CreatePolicyVersion"),
        3,
        "{:?}",
        bed.proxy.actions()
    );
    assert_end_state(&bed.iam, UPDATED).await;
    assert_nothing_left_to_do(&bed);
}

/// The daemon, every write's answer lost once: the creates, then an edit that needs a new
/// policy version, an inline policy deleted and a tag changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_survives_a_lost_answer_to_every_kind_of_write() {
    let bed = Bed::new(&[("app.yaml", &CREATED.manifest())], &[]).await;
    for action in [
        "CreatePolicy",
        "CreateRole",
        "PutRolePolicy",
        "AttachRolePolicy",
    ] {
        bed.proxy.lose_answer(action);
    }
    let d = Daemon::start(
        &bed.proxy.endpoint,
        bed.dir.path(),
        &["--resync-interval", "1s"],
    );
    wait_for("in sync after the creates", WAIT, || bed.plan().0 == 0);
    assert_end_state(&bed.iam, CREATED).await;

    for action in ["CreatePolicyVersion", "DeleteRolePolicy", "TagRole"] {
        bed.proxy.lose_answer(action);
    }
    bed.write("app.yaml", &UPDATED.manifest());
    wait_for("in sync after the edit", WAIT, || bed.plan().0 == 0);
    assert_end_state(&bed.iam, UPDATED).await;

    assert_idle(&bed, &d, 3).await;
    assert!(d.terminate(Duration::from_secs(10)) == Some(0));
}

/// Over `resyncs` resyncs (1 s apart), the daemon writes nothing.
async fn assert_idle(bed: &Bed, d: &Daemon, resyncs: usize) {
    bed.proxy.reset_counts();
    wait_for("idle resyncs", WAIT, || {
        bed.proxy.count("GetAccountAuthorizationDetails") > resyncs
    });
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{}", d.log());
}

// --- SIGKILL at random moments ----------------------------------------------------------------

const PAIRS: usize = 25;

/// Policy `crash-p{i}` and role `crash-r{i}`, which attaches it, holds an inline policy and
/// carries tags.
fn pair(i: usize) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {{name: crash-p{i}}}
spec:
  document:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::bucket-{i}/*"}}]
  tags: {{index: "{i}"}}
---
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: crash-r{i}}}
spec:
  description: Role {i}
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}]
  managedPolicies: [{{ref: crash-p{i}}}]
  inlinePolicies:
    logs:
      Version: "2012-10-17"
      Statement: [{{Effect: Allow, Action: logs:PutLogEvents, Resource: "arn:aws:logs:*:*:log-group:g{i}:*"}}]
  tags: {{index: "{i}", team: crash}}
"#
    )
}

/// A tiny LCG (Knuth's MMIX constants): the same moments on every run, no dependency.
fn moments(seed: u64, n: usize, below: Duration) -> Vec<Duration> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            below.mul_f64((state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_while_creating_50_resources_loses_nothing() {
    let started = Instant::now();
    let bed = Bed::new(&[], &[]).await;
    for i in 0..PAIRS {
        bed.write(&format!("pair-{i:02}.yaml"), &pair(i));
    }
    let args = ["--resync-interval", "1s"];
    // moto creates in milliseconds: every write is held 150 ms on its way (and still carried
    // out when the daemon is killed meanwhile), so the 100 writes take about 4 s with 4
    // workers and each moment falls in the middle of the work.
    for action in [
        "CreatePolicy",
        "CreateRole",
        "PutRolePolicy",
        "AttachRolePolicy",
    ] {
        bed.proxy
            .delay(action, usize::MAX, Duration::from_millis(150));
    }
    let mut interrupted = 0;
    for moment in moments(0x1a3_5eed, 5, Duration::from_millis(1400)) {
        let moment = Duration::from_millis(100) + moment;
        let d = Daemon::start(&bed.proxy.endpoint, bed.dir.path(), &args);
        std::thread::sleep(moment);
        d.kill();
        // Let the writes already on their way land.
        std::thread::sleep(Duration::from_millis(200));
        let roles = role_names(&bed.iam).await.len();
        let policies = policy_arns(&bed.iam).await.len();
        let writes = bed.proxy.writes().len();
        eprintln!(
            "killed after {moment:?}: {policies} policies and {roles} roles exist, {writes} writes sent so far"
        );
        if bed.plan().0 != 0 {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kills interrupted work: the test proves little"
    );
    let d = Daemon::start(&bed.proxy.endpoint, bed.dir.path(), &args);
    wait_for("in sync after the last restart", WAIT, || bed.plan().0 == 0);
    eprintln!("converged after {:?}", started.elapsed());

    let want_roles: Vec<String> = {
        let mut v: Vec<_> = (0..PAIRS).map(|i| format!("crash-r{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(role_names(&bed.iam).await, want_roles);
    let want_policies: Vec<String> = {
        let mut v: Vec<_> = (0..PAIRS)
            .map(|i| format!("arn:aws:iam::{ACCOUNT}:policy/crash-p{i}"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(policy_arns(&bed.iam).await, want_policies);
    for i in 0..PAIRS {
        let arn = format!("arn:aws:iam::{ACCOUNT}:policy/crash-p{i}");
        let policy = managed(&bed.iam, &arn).await;
        let index = i.to_string();
        assert_eq!(policy.tags, tags(&[OWNER, ("index", &index)]), "{arn}");
        assert_eq!(policy.versions.len(), 1, "{arn} was created more than once");
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-{i}/*"}}]}}"#
        );
        assert!(policy.default.is_equivalent(&doc(&document)), "{arn}");

        let name = format!("crash-r{i}");
        let role = bed.iam.get_role().role_name(&name).send().await.unwrap();
        let role = role.role().unwrap();
        assert_eq!(role.description(), Some(format!("Role {i}").as_str()));
        assert_eq!(
            tag_map(role.tags()),
            tags(&[OWNER, ("index", &index), ("team", "crash")]),
            "{name}"
        );
        let attached = bed
            .iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        let attached: Vec<_> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        assert_eq!(attached, [arn.as_str()], "{name}");
        let inline = bed
            .iam
            .list_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        assert_eq!(inline.policy_names(), ["logs"], "{name}");
    }

    assert_idle(&bed, &d, 3).await;
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
    let wall = started.elapsed();
    eprintln!("wall time {wall:?}");
    assert!(wall < Duration::from_secs(90), "{wall:?}");
}
