//! Many accounts on one moto (it serves any account a role is assumed into), through the test
//! proxy, which checks ExternalIds, refuses a spoke role, and throttles or black-holes one
//! account by the credentials its requests carry. The end state is read back from IAM in each
//! account.

mod support;

use std::path::Path;
use std::time::Duration;

use support::daemon::{Daemon, wait_for};
use support::moto::{Moto, assumed_credentials, client_in, get_role, role_owned_by};
use support::proxy::Proxy;
use support::{run, warden_on};

const HOME: &str = "123456789012";
const PROD: &str = "111111111111";
const DEV: &str = "222222222222";
const BROKEN: &str = "333333333333";

fn spoke(id: &str) -> String {
    format!("arn:aws:iam::{id}:role/iam-warden")
}

/// Every account gets `app-${account.name}` tagged with its own `env`; `prod-only` goes to
/// prod alone.
const MANIFESTS: &str = r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: app-${account.name}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}]
  tags: {env: "${var.env}", account: "${account.id}"}
---
apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: prod-only
  annotations: {iam-warden/accounts: "prod*,!prod-legacy"}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}]
"#;

/// home by the process's own credentials, prod by a role with an ExternalId, dev by a role.
fn accounts(prod_external_id: &str, extra: &str) -> String {
    format!(
        r#"accounts:
  - name: home
    id: "{HOME}"
    values: {{env: home}}
  - name: prod
    id: "{PROD}"
    roleArn: {prod}
    externalId: {prod_external_id}
    values: {{env: production}}
  - name: dev
    id: "{DEV}"
    roleArn: {dev}
    sessionName: warden-dev
    values: {{env: development}}
{extra}"#,
        prod = spoke(PROD),
        dev = spoke(DEV),
    )
}

struct Bed {
    moto: Moto,
    proxy: Proxy,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new(accounts_file: &str) -> Bed {
        let moto = Moto::start();
        let proxy = Proxy::start(&moto.endpoint);
        proxy.require_external_id(&spoke(PROD), "hub-7f3a");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("m")).expect("manifests dir");
        std::fs::write(dir.path().join("m/app.yaml"), MANIFESTS).expect("manifests");
        std::fs::write(dir.path().join("accounts.yaml"), accounts_file).expect("accounts");
        Bed { moto, proxy, dir }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self, verb: &str, extra: &[&str]) -> (i32, String, String) {
        let mut cmd = warden_on(&self.proxy.endpoint);
        cmd.arg(verb)
            .arg(self.path("m"))
            .arg("--accounts")
            .arg(self.path("accounts.yaml"))
            .args(extra);
        let (out, stdout, stderr) = run(&mut cmd);
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    async fn iam(&self, account: &str) -> aws_sdk_iam::Client {
        client_in(&self.moto.endpoint, account).await
    }

    async fn roles(&self, account: &str) -> Vec<String> {
        let iam = self.iam(account).await;
        let out = iam.list_roles().send().await.expect("list roles");
        let mut names: Vec<String> = out
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            // The test's own reader, and the role Organizations makes in a new member.
            .filter(|n| n != "tests" && n != "OrganizationAccountAccessRole")
            .collect();
        names.sort();
        names
    }

    async fn tag(&self, account: &str, role: &str, key: &str) -> Option<String> {
        let role = get_role(&self.iam(account).await, role).await?;
        role.tags()
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_string())
    }

    async fn set_tag(&self, account: &str, role: &str, key: &str, value: &str) {
        self.iam(account)
            .await
            .tag_role()
            .role_name(role)
            .tags(support::fixtures::tag(key, value))
            .send()
            .await
            .expect("tag role by hand");
    }

    fn daemon(&self, extra: &[&str]) -> Daemon {
        let file = self.path("accounts.yaml");
        let mut args = vec!["--accounts", file.to_str().unwrap_or("")];
        args.extend_from_slice(extra);
        Daemon::start(&self.proxy.endpoint, &self.path("m"), &args)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_every_account_with_its_own_manifests_and_values() {
    let bed = Bed::new(&accounts("hub-7f3a", ""));
    let (code, out, err) = bed.cmd("plan", &[]);
    assert_eq!(code, 2, "{out}{err}");
    for line in [
        "prod/Role/app-prod",
        "prod/Role/prod-only",
        "dev/Role/app-dev",
        "home/Role/app-home",
    ] {
        assert!(out.contains(line), "`{line}` missing from\n{out}");
    }
    assert!(!out.contains("dev/Role/prod-only"), "{out}");

    let (code, out, err) = bed.cmd("apply", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(bed.roles(HOME).await, ["app-home"]);
    assert_eq!(bed.roles(PROD).await, ["app-prod", "prod-only"]);
    assert_eq!(bed.roles(DEV).await, ["app-dev"]);
    // Values and built-ins are the account's own, as written.
    assert_eq!(
        bed.tag(PROD, "app-prod", "env").await.as_deref(),
        Some("production")
    );
    assert_eq!(
        bed.tag(DEV, "app-dev", "env").await.as_deref(),
        Some("development")
    );
    assert_eq!(
        bed.tag(DEV, "app-dev", "account").await.as_deref(),
        Some(DEV)
    );
    assert_eq!(
        bed.tag(HOME, "app-home", "account").await.as_deref(),
        Some(HOME)
    );
    // prod was reached with its ExternalId (the proxy refuses it otherwise).
    assert!(bed.proxy.count("AssumeRole") >= 2);

    let (code, out, err) = bed.cmd("plan", &["--output", "json"]);
    assert_eq!(code, 0, "in sync everywhere: {out}{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("plan JSON");
    let names: Vec<&str> = plan["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["account"]["name"].as_str())
        .collect();
    assert_eq!(names, ["home", "prod", "dev"]);
    assert_eq!(
        plan["accounts"][1]["resources"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_cannot_be_assumed_fails_alone() {
    // `stray` claims an id that the process's own credentials do not reach.
    let bed = Bed::new(&accounts(
        "wrong-id",
        "  - {name: stray, id: \"999999999999\", values: {env: s}}\n",
    ));
    let (code, out, err) = bed.cmd("apply", &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("cannot apply account prod")
            && out.contains(&format!("cannot assume role {}", spoke(PROD))),
        "{out}"
    );
    assert!(
        out.contains("AccessDenied") || out.contains("not authorized"),
        "{out}"
    );
    assert!(
        out.contains("cannot apply account stray")
            && out.contains(&format!("reach account {HOME}, not 999999999999")),
        "{out}"
    );
    assert_eq!(bed.roles(PROD).await, Vec::<String>::new());
    assert_eq!(bed.roles("999999999999").await, Vec::<String>::new());
    assert_eq!(bed.roles(DEV).await, ["app-dev"]);
    assert_eq!(bed.roles(HOME).await, ["app-home"], "not app-stray");
}

/// The pull-request comment of many accounts: a line per account (one cannot be assumed), and
/// each resource named with its account; applying it leaves nothing in the next comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_comment_has_a_line_per_account_and_names_resources_with_theirs() {
    let bed = Bed::new(&accounts("wrong-id", ""));
    let (code, out, err) = bed.cmd("plan", &["--output", "markdown"]);
    assert_eq!(code, 1, "prod cannot be assumed: {out}{err}");
    assert!(out.starts_with("<!-- iam-warden:plan -->\n"), "{out}");
    assert!(out.contains("| Account | Plan |"), "{out}");
    assert!(
        out.contains(&format!("| **home** `{HOME}` | 1 to create, 0 to update, 0 to delete, 0 in sync, 0 in conflict |")),
        "{out}"
    );
    assert!(
        out.contains(&format!("| **prod** `{PROD}` | ❗ cannot plan: "))
            && out.contains(&format!("cannot assume role {}", spoke(PROD))),
        "{out}"
    );
    assert!(
        out.contains("| ➕ | `dev/Role/app-dev` | create |"),
        "{out}"
    );
    assert!(
        out.contains("<summary><code>home/Role/app-home</code>"),
        "{out}"
    );
    assert!(!out.contains("prod-only"), "prod was not planned: {out}");
    assert!(
        out.contains("**Plan: 2 to create, 0 to update, 0 to delete, 0 in sync, 0 in conflict in 3 accounts (1 could not be planned).**"),
        "{out}"
    );
    assert_eq!(
        bed.roles(HOME).await,
        Vec::<String>::new(),
        "plan changes nothing"
    );

    let bed = Bed::new(&accounts("hub-7f3a", ""));
    let (code, out, err) = bed.cmd("apply", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = bed.cmd("plan", &["--output", "markdown"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Everything is in sync"), "{out}");
    assert!(
        out.contains(&format!("| **prod** `{PROD}` | 0 to create, 0 to update, 0 to delete, 2 in sync, 0 in conflict |")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_in_one_account_never_touches_another() {
    let bed = Bed::new(&accounts("hub-7f3a", ""));
    let (code, out, err) = bed.cmd("apply", &[]);
    assert_eq!(code, 0, "{out}{err}");
    // prod-only now belongs to no account; the same name made by hand in dev stays owned by
    // nobody there, and home's is owned by someone else.
    role_owned_by(&bed.iam(DEV).await, "prod-only", "someone-else").await;
    let text = std::fs::read_to_string(bed.path("m/app.yaml")).expect("read");
    std::fs::write(
        bed.path("m/app.yaml"),
        text.replace("\"prod*,!prod-legacy\"", "\"staging\""),
    )
    .expect("write");
    for _ in 0..2 {
        let (code, out, err) = bed.cmd("apply", &["--prune", "--prune-after", "0s"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    assert_eq!(bed.roles(PROD).await, ["app-prod"], "pruned in prod");
    assert_eq!(
        bed.roles(DEV).await,
        ["app-dev", "prod-only"],
        "dev's own is kept"
    );
    assert_eq!(bed.roles(HOME).await, ["app-home"]);

    // Every manifest for prod alone: dev and home hold nothing declared, which is no empty
    // DIR: what iam-warden owns there goes; what another owner holds stays.
    let prod_only = MANIFESTS.replace(
        "  name: app-${account.name}\n",
        "  name: app-${account.name}\n  annotations: {iam-warden/accounts: prod}\n",
    );
    std::fs::write(bed.path("m/app.yaml"), prod_only).expect("write");
    for _ in 0..2 {
        let (code, out, err) = bed.cmd("apply", &["--prune", "--prune-after", "0s"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    assert_eq!(bed.roles(PROD).await, ["app-prod", "prod-only"]);
    assert_eq!(bed.roles(DEV).await, ["prod-only"], "someone else's stays");
    assert_eq!(bed.roles(HOME).await, Vec::<String>::new());
}

#[test]
fn validate_checks_every_account_and_names_the_one_that_fails() {
    let bed_dir = tempfile::tempdir().expect("tempdir");
    let dir = bed_dir.path();
    std::fs::create_dir(dir.join("m")).expect("dir");
    std::fs::write(dir.join("m/app.yaml"), MANIFESTS).expect("manifests");
    let file = accounts(
        "hub-x",
        "  - name: qa\n    id: \"444444444444\"\n    roleArn: arn:aws:iam::444444444444:role/w\n",
    );
    std::fs::write(dir.join("accounts.yaml"), &file).expect("accounts");
    let validate = |accounts: &Path| {
        let mut cmd = support::warden();
        cmd.arg("validate")
            .arg(dir.join("m"))
            .arg("--accounts")
            .arg(accounts);
        let (out, stdout, stderr) = run(&mut cmd);
        (out.status.code(), stdout, stderr)
    };
    let (code, out, err) = validate(&dir.join("accounts.yaml"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("spec.tags.env: variable `env` is not defined")
            && out.contains("(in account qa)"),
        "{out}"
    );
    assert_eq!(
        out.matches("is not defined").count(),
        1,
        "one line per error: {out}"
    );

    // A selector that no account matches is worth a warning: `--prune` would delete what it
    // held.
    let typo = MANIFESTS.replace("\"prod*,!prod-legacy\"", "\"prdo\"");
    std::fs::write(dir.join("m/app.yaml"), typo).expect("manifests");
    let (code, out, err) = validate(&dir.join("accounts.yaml"));
    assert!(
        out.contains("warning: ") && out.contains("app.yaml:15: metadata.annotations.iam-warden/accounts: `prdo` selects none of the accounts (home, prod, dev, qa); did you mean `prod`?"),
        "{out}"
    );
    assert_eq!(code, Some(1), "still invalid for qa: {out}{err}");
    std::fs::write(dir.join("m/app.yaml"), MANIFESTS).expect("manifests");

    std::fs::write(dir.join("bad.yaml"), "accounts:\n  - name: prod\n    id: 1111\n    roleArn: arn:aws:iam::111111111111:role/x\n    externalID: x\n").expect("write");
    let (code, out, err) = validate(&dir.join("bad.yaml"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("bad.yaml:3: accounts[0].id: `1111` is not an account id"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:5: accounts[0].externalID: unknown field `externalID`; did you mean `externalId`?"), "{err}");
}

/// The daemon on three reachable accounts and one whose role is refused: each is reconciled on
/// its own; a throttled or black-holed account never delays a correction in another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_corrects_each_account_whatever_another_suffers() {
    let broken = format!(
        "  - name: broken\n    id: \"{BROKEN}\"\n    roleArn: {}\n    values: {{env: b}}\n",
        spoke(BROKEN)
    );
    let bed = Bed::new(&accounts("hub-7f3a", &broken));
    bed.proxy.deny_assume(&spoke(BROKEN));
    let d = bed.daemon(&[
        "--resync-interval",
        "2s",
        "--operation-timeout",
        "3s",
        "--attempt-timeout",
        "2s",
    ]);
    wait_for("ready", Duration::from_secs(60), || {
        d.get("/readyz").0 == 200
    });
    let (_, ready) = d.get("/readyz");
    assert!(
        ready.contains("account broken") && ready.contains("cannot assume role"),
        "{ready}"
    );
    assert_eq!(bed.roles(DEV).await, ["app-dev"]);
    assert_eq!(bed.roles(PROD).await, ["app-prod", "prod-only"]);

    let status = d.status();
    let broken_status = status["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "broken"))
        .cloned()
        .expect("broken on /status");
    assert!(
        broken_status["unreachable"]
            .as_str()
            .is_some_and(|u| u.contains("AccessDenied") || u.contains("not authorized")),
        "{broken_status}"
    );
    let owners: Vec<&str> = status["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["account"].as_str())
        .collect();
    assert_eq!(
        owners.iter().filter(|a| **a == "prod").count(),
        2,
        "{status}"
    );
    let metrics = d.get("/metrics").1;
    assert!(
        metrics.contains("iam_warden_resources{account=\"prod\",state=\"in-sync\"} 2"),
        "{metrics}"
    );

    // prod is throttled to one request a second: dev's drift is put back within two resyncs.
    bed.proxy.limit_account_rate(PROD, 1);
    bed.set_tag(PROD, "app-prod", "env", "edited").await;
    bed.set_tag(DEV, "app-dev", "env", "edited").await;
    let started = std::time::Instant::now();
    support::eventually_within("dev's drift corrected", Duration::from_secs(20), || async {
        bed.tag(DEV, "app-dev", "env").await.as_deref() == Some("development")
    })
    .await;
    let dev_took = started.elapsed();
    support::eventually_within(
        "prod's drift corrected, slowly",
        Duration::from_secs(60),
        || async { bed.tag(PROD, "app-prod", "env").await.as_deref() == Some("production") },
    )
    .await;
    assert!(bed.proxy.throttled_in(PROD) > 0, "prod was throttled");
    assert_eq!(bed.proxy.throttled_in(DEV), 0);

    // prod is black-holed: dev still corrects, the daemon stays healthy.
    bed.proxy.hold_account(PROD);
    bed.set_tag(DEV, "app-dev", "env", "again").await;
    support::eventually_within(
        "dev corrected while prod hangs",
        Duration::from_secs(20),
        || async { bed.tag(DEV, "app-dev", "env").await.as_deref() == Some("development") },
    )
    .await;
    assert_eq!(d.get("/healthz").0, 200, "{}", d.get("/healthz").1);
    bed.proxy.release_account(PROD);
    eprintln!("dev corrected in {dev_took:?} while prod was throttled");

    // The spoke role trusts the hub at last: the account, retried with backoff, comes up.
    bed.proxy.allow_assume(&spoke(BROKEN));
    support::eventually_within("broken's role", Duration::from_secs(60), || async {
        bed.roles(BROKEN).await == ["app-broken"]
    })
    .await;
    support::eventually_within("all ready", Duration::from_secs(30), || async {
        d.get("/readyz").1.starts_with("ready: 4 of 4 accounts")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_accounts_with_no_overlap_and_no_gap() {
    let bed = Bed::new(&accounts(
        "hub-7f3a",
        "  - {name: qa, id: \"444444444444\", roleArn: \"arn:aws:iam::444444444444:role/iam-warden\", values: {env: qa}}\n  - {name: ops, id: \"555555555555\", roleArn: \"arn:aws:iam::555555555555:role/iam-warden\", values: {env: ops}}\n",
    ));
    let shards: Vec<Daemon> = ["iam-warden-0/2", "iam-warden-1/2"]
        .iter()
        .map(|s| bed.daemon(&["--shard", s]))
        .collect();
    let mut seen = Vec::new();
    for d in &shards {
        wait_for("shard ready", Duration::from_secs(60), || {
            d.get("/readyz").0 == 200
        });
        let status = d.status();
        seen.extend(
            status["accounts"]
                .as_array()
                .expect("accounts")
                .iter()
                .filter_map(|a| a["name"].as_str().map(str::to_string)),
        );
    }
    seen.sort();
    assert_eq!(seen, ["dev", "home", "ops", "prod", "qa"]);
    // Each account's role was made by exactly the shard that owns it.
    for (id, name) in [(PROD, "prod"), (DEV, "dev"), ("444444444444", "qa")] {
        assert!(bed.roles(id).await.contains(&format!("app-{name}")));
    }
}

/// deploy/iam/bootstrap-spoke.sh, run with the AWS CLI as a member account's administrator,
/// makes a spoke role the hub can then manage the account through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spoke_bootstrap_makes_an_account_manageable_by_the_hub() {
    let tools = support::repo_root().join(".venv-tools/bin");
    assert!(
        tools.join("aws").exists(),
        "the AWS CLI is missing from .venv-tools/: run scripts/test-env"
    );
    let bed = Bed::new("accounts: []\n");
    const QA: &str = "444444444444";
    let (key, secret, token) = assumed_credentials(&bed.moto.endpoint, QA).await;
    let bootstrap = || {
        let mut cmd =
            std::process::Command::new(support::repo_root().join("deploy/iam/bootstrap-spoke.sh"));
        cmd.env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", tools.display()))
            .env("HOME", bed.dir.path())
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &bed.moto.endpoint)
            .env(
                "HUB_ROLE_ARN",
                format!("arn:aws:iam::{HOME}:role/platform/iam-warden-hub"),
            )
            .env("EXTERNAL_ID", "hub-7f3a");
        run(&mut cmd)
    };
    let (out, entry, err) = bootstrap();
    assert!(out.status.success(), "{entry}{err}");
    let (again, _, err) = bootstrap();
    assert!(
        again.status.success(),
        "a second run updates in place: {err}"
    );

    let iam = bed.iam(QA).await;
    let role = get_role(&iam, "iam-warden").await.expect("the spoke role");
    assert_eq!(role.path(), "/platform/");
    let trust = percent_encoding::percent_decode_str(
        role.assume_role_policy_document().unwrap_or_default(),
    )
    .decode_utf8_lossy()
    .into_owned();
    assert!(
        trust.contains(&format!("arn:aws:iam::{HOME}:role/platform/iam-warden-hub"))
            && trust.contains("hub-7f3a"),
        "{trust}"
    );
    let inline = iam
        .get_role_policy()
        .role_name("iam-warden")
        .policy_name("iam-warden-operator")
        .send()
        .await
        .expect("the operator's permissions");
    assert!(
        inline
            .policy_document()
            .contains("ChangeOnlyOwnedRolesUnderThePath")
    );

    // The printed entry, named, is all the hub needs.
    let file = format!("accounts:\n{}", entry.replace("CHANGE-ME", "qa"));
    std::fs::write(bed.path("accounts.yaml"), &file).expect("accounts");
    bed.proxy.require_external_id(
        &format!("arn:aws:iam::{QA}:role/platform/iam-warden"),
        "hub-7f3a",
    );
    std::fs::write(bed.path("values.yaml"), "env: qa\n").expect("values");
    let values = bed.path("values.yaml");
    let (code, out, err) = bed.cmd("plan", &["--values", values.to_str().unwrap_or("")]);
    assert_eq!(code, 2, "{file}\n{out}{err}");
    assert!(out.contains("qa/Role/app-qa"), "{out}");
}

/// An organization's members are found through Organizations (moto's), selected by name, and
/// a member created while the daemon runs is picked up without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_s_members_are_discovered_and_a_new_one_is_picked_up() {
    let bed = Bed::new(
        "organization:\n  roleName: OrganizationAccountAccessRole\n  include: [\"team-*\"]\n  exclude: [team-legacy]\n  refreshEvery: 1\n  values: {env: member}\n",
    );
    let org = organizations(&bed.moto.endpoint);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create the organization");
    let mut ids = Vec::new();
    for name in ["team-a", "team-b", "team-legacy", "sandbox"] {
        ids.push(create_account(&org, name).await);
    }
    let (code, out, err) = bed.cmd("plan", &[]);
    assert_eq!(code, 2, "{out}{err}");
    for want in ["team-a/Role/app-team-a", "team-b/Role/app-team-b"] {
        assert!(out.contains(want), "`{want}` missing from\n{out}");
    }
    assert!(
        !out.contains("team-legacy/") && !out.contains("sandbox/"),
        "{out}"
    );

    let d = bed.daemon(&["--resync-interval", "1s"]);
    d.wait_ready();
    assert_eq!(bed.roles(&ids[0]).await, ["app-team-a"]);
    assert_eq!(bed.roles(&ids[2]).await, Vec::<String>::new(), "excluded");
    let late = create_account(&org, "team-c").await;
    support::eventually_within("the new member's role", Duration::from_secs(60), || async {
        bed.roles(&late).await == ["app-team-c"]
    })
    .await;
    let status = d.status();
    let names: Vec<&str> = status["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["team-a", "team-b", "team-c"], "{status}");
    assert!(d.log().contains("a new account: starting it"));
}

fn organizations(endpoint: &str) -> aws_sdk_organizations::Client {
    let creds =
        aws_sdk_organizations::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_sdk_organizations::Config::builder()
        .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
        .region(aws_sdk_organizations::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .http_client(iam_warden::iam::http_client())
        .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// A member account named `name`: its id.
async fn create_account(org: &aws_sdk_organizations::Client, name: &str) -> String {
    let out = org
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .expect("create an account");
    let status = out.create_account_status().expect("status");
    match status.account_id() {
        Some(id) => id.to_string(),
        None => {
            let request = status.id().expect("request id");
            let described = org
                .describe_create_account_status()
                .create_account_request_id(request)
                .send()
                .await
                .expect("describe");
            described
                .create_account_status()
                .and_then(|s| s.account_id())
                .expect("the new account's id")
                .to_string()
        }
    }
}

#[test]
fn a_shard_without_an_accounts_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = warden_on("http://127.0.0.1:9");
    cmd.arg("run")
        .arg(dir.path())
        .args(["--shard", "0/2", "--listen", "127.0.0.1:0"]);
    let (out, stdout, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("--shard splits the accounts of --accounts FILE"),
        "{stderr}"
    );
}

/// An account added to the file while the daemon runs starts at SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_added_to_the_file_starts_at_sighup() {
    let bed = Bed::new(&accounts("hub-7f3a", ""));
    let d = bed.daemon(&["--resync-interval", "60s"]);
    d.wait_ready();
    let qa = "444444444444";
    let file = accounts(
        "hub-7f3a",
        &format!(
            "  - {{name: qa, id: \"{qa}\", roleArn: \"arn:aws:iam::{qa}:role/w\", values: {{env: qa}}}}\n"
        ),
    );
    std::fs::write(bed.path("accounts.yaml"), file).expect("accounts");
    d.signal("HUP");
    support::eventually_within("qa's role", Duration::from_secs(30), || async {
        bed.roles(qa).await == ["app-qa"]
    })
    .await;
    assert_eq!(bed.tag(qa, "app-qa", "env").await.as_deref(), Some("qa"));

    // A broken accounts file at the next SIGHUP: every account keeps running.
    std::fs::write(bed.path("accounts.yaml"), "accounts: [\n").expect("accounts");
    d.signal("HUP");
    support::eventually_within("the warning", Duration::from_secs(30), || async {
        d.log()
            .contains("cannot list the accounts again; keeping those running")
    })
    .await;
    bed.set_tag(qa, "app-qa", "env", "edited").await;
    d.signal("HUP");
    support::eventually_within("qa still corrected", Duration::from_secs(30), || async {
        bed.tag(qa, "app-qa", "env").await.as_deref() == Some("qa")
    })
    .await;
    assert_eq!(d.get("/readyz").0, 200);
}

/// Credentials that come to reach another account than the one they were identified as (moto
/// replaced by one that does not know the assumed keys, which then act in its default account)
/// must not make iam-warden prune there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_another_account_than_identified_changes_nothing() {
    let file = format!(
        "accounts:\n  - {{name: prod, id: \"{PROD}\", roleArn: \"{}\", externalId: hub-7f3a, values: {{env: p}}}}\n",
        spoke(PROD)
    );
    let bed = Bed::new(&file);
    let d = bed.daemon(&["--resync-interval", "1s", "--prune", "--prune-after", "0s"]);
    d.wait_ready();
    assert_eq!(bed.roles(PROD).await, ["app-prod", "prod-only"]);
    // Another IAM behind the same endpoint: it maps the daemon's assumed keys to its default
    // account, which holds a role owned by this owner that no manifest declares.
    let other = Moto::start();
    let home = support::moto::client_for(&other.endpoint).await;
    role_owned_by(&home, "bystander", "default").await;
    bed.proxy.set_upstream(&other.endpoint);
    support::eventually_within("the refusal", Duration::from_secs(30), || async {
        d.log()
            .contains("IAM answered with a resource of another account")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(get_role(&home, "bystander").await.is_some(), "{}", d.log());
}
