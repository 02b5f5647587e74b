//! Instance profiles and OIDC providers against moto's IAM server (with the operations moto
//! lacks added by tests/support/moto_ext.py): created from empty together with the roles that
//! use them, every field's drift corrected, adopted, pruned, lost answers, and the daemon.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use iam_warden::policy::PolicyDocument;
use support::bed::Bed;
use support::daemon::wait_for;
use support::repo_root;

const ACCOUNT: &str = "123456789012";
const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
const THUMB_A: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";
const THUMB_B: &str = "0123456789abcdef0123456789abcdef01234567";

fn provider_arn(host_path: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host_path}")
}

const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A role, and an instance profile holding it.
const PROFILE: &str = r#"
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: web-role}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]
---
apiVersion: iamwarden/v1alpha1
kind: InstanceProfile
metadata: {name: web}
spec:
  path: /web/
  role: {ref: web-role}
  tags: {team: web}
"#;

/// A provider listing its thumbprints, and a role trusting it by ref.
const PROVIDER: &str = r#"
apiVersion: iamwarden/v1alpha1
kind: OpenIDConnectProvider
metadata: {name: ci}
spec:
  url: https://token.actions.example.com
  clientIDs: [sts.amazonaws.com, ci-audience]
  thumbprints: [9E99A48A9960B14926BB7F3B02E22DA2B0AB7280]
  tags: {team: ci}
---
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: ci-deploy}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal: {Federated: {ref: ci}}
        Action: sts:AssumeRoleWithWebIdentity
        Condition:
          StringEquals: {"token.actions.example.com:aud": sts.amazonaws.com}
"#;

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn profile(iam: &Client, name: &str) -> Option<aws_sdk_iam::types::InstanceProfile> {
    match iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => out.instance_profile().cloned(),
        Err(e) if format!("{e:?}").contains("NoSuchEntity") => None,
        Err(e) => panic!("GetInstanceProfile {name}: {e:?}"),
    }
}

async fn profile_roles(iam: &Client, name: &str) -> Vec<String> {
    let p = profile(iam, name)
        .await
        .expect("the instance profile exists");
    p.roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect()
}

/// (client ids, thumbprints, tags) of a provider; `None` when it does not exist.
async fn provider(
    iam: &Client,
    arn: &str,
) -> Option<(BTreeSet<String>, BTreeSet<String>, BTreeMap<String, String>)> {
    match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(out) => Some((
            out.client_id_list().iter().cloned().collect(),
            out.thumbprint_list().iter().cloned().collect(),
            tags(out.tags()),
        )),
        Err(e) if format!("{e:?}").contains("NoSuchEntity") => None,
        Err(e) => panic!("GetOpenIDConnectProvider {arn}: {e:?}"),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn owned(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.insert("iam-warden/owner".into(), "default".into());
    t
}

#[tokio::test]
async fn an_ec2_role_with_its_profile_and_an_irsa_role_with_its_provider_converge_from_empty_in_one_apply()
 {
    let bed = Bed::new(&[], &["--values", "deploy/values.example.yaml"]).await;
    for dir in ["manifests/ec2", "manifests/irsa"] {
        for entry in fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, bed.dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        profile_roles(&bed.iam, "data-agent-ec2").await,
        ["data-agent-ec2-role"]
    );
    let p = profile(&bed.iam, "data-agent-ec2").await.unwrap();
    assert_eq!(p.path(), "/agent/");
    assert_eq!(tags(p.tags()), owned(&[("team", "data")]));

    let arn = provider_arn(ISSUER);
    let (ids, _, provider_tags) = provider(&bed.iam, &arn).await.expect("provider created");
    assert_eq!(ids, set(&["sts.amazonaws.com"]));
    assert_eq!(provider_tags, owned(&[("team", "data")]));
    let role = bed.role("data-agent-irsa-role").await;
    let trust = PolicyDocument::from_iam(role.assume_role_policy_document().unwrap()).unwrap();
    let statement = &trust.value()["Statement"][0];
    assert_eq!(statement["Principal"]["Federated"], arn.as_str());
    assert_eq!(
        statement["Condition"]["StringEquals"][format!("{ISSUER}:sub")],
        "system:serviceaccount:data-agent:agent"
    );
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "a second plan must find nothing to do:\n{out}");
}

#[tokio::test]
async fn every_field_of_an_instance_profile_that_drifts_is_put_back() {
    let bed = Bed::new(&[("app.yaml", PROFILE)], &[]).await;
    bed.converge();
    // Someone swaps the role for another, and edits the tags.
    bed.iam
        .create_role()
        .role_name("intruder")
        .assume_role_policy_document(TRUST_EC2)
        .send()
        .await
        .unwrap();
    bed.iam
        .remove_role_from_instance_profile()
        .instance_profile_name("web")
        .role_name("web-role")
        .send()
        .await
        .unwrap();
    bed.iam
        .add_role_to_instance_profile()
        .instance_profile_name("web")
        .role_name("intruder")
        .send()
        .await
        .unwrap();
    bed.iam
        .tag_instance_profile()
        .instance_profile_name("web")
        .tags(Tag::builder().key("team").value("evil").build().unwrap())
        .tags(Tag::builder().key("extra").value("1").build().unwrap())
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("- role: intruder") && out.contains("+ role: web-role"),
        "{out}"
    );
    bed.converge();
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"]);
    let p = profile(&bed.iam, "web").await.unwrap();
    assert_eq!(tags(p.tags()), owned(&[("team", "web")]));
    // The role removed altogether comes back too; swaps remove before they add, as IAM holds
    // one role per profile.
    bed.iam
        .remove_role_from_instance_profile()
        .instance_profile_name("web")
        .role_name("web-role")
        .send()
        .await
        .unwrap();
    bed.converge();
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"]);
}

#[tokio::test]
async fn a_profile_at_another_path_is_reported_and_left_alone() {
    let bed = Bed::new(&[("app.yaml", PROFILE)], &[]).await;
    bed.iam
        .create_instance_profile()
        .instance_profile_name("web")
        .path("/elsewhere/")
        .tags(
            Tag::builder()
                .key("iam-warden/owner")
                .value("default")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("path"), "{out}");
    let _ = bed.apply();
    let p = profile(&bed.iam, "web").await.unwrap();
    assert_eq!(p.path(), "/elsewhere/");
    assert!(
        p.roles().is_empty(),
        "a profile in conflict must not be written"
    );
}

#[tokio::test]
async fn every_field_of_a_provider_that_drifts_is_put_back_and_the_role_trusts_it_by_arn() {
    let bed = Bed::new(&[("ci.yaml", PROVIDER)], &[]).await;
    bed.converge();
    let arn = provider_arn("token.actions.example.com");
    let (ids, thumbs, t) = provider(&bed.iam, &arn).await.unwrap();
    assert_eq!(ids, set(&["sts.amazonaws.com", "ci-audience"]));
    assert_eq!(
        thumbs,
        set(&[THUMB_A]),
        "thumbprints reach IAM as hex, lowercase"
    );
    assert_eq!(t, owned(&[("team", "ci")]));
    let role = bed.role("ci-deploy").await;
    let trust = PolicyDocument::from_iam(role.assume_role_policy_document().unwrap()).unwrap();
    assert_eq!(
        trust.value()["Statement"][0]["Principal"]["Federated"],
        arn.as_str(),
        "the trust names the provider's ARN"
    );

    bed.iam
        .remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("ci-audience")
        .send()
        .await
        .unwrap();
    bed.iam
        .add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("someone-else")
        .send()
        .await
        .unwrap();
    bed.iam
        .update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&arn)
        .thumbprint_list(THUMB_B)
        .send()
        .await
        .unwrap();
    bed.iam
        .untag_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    bed.converge();
    let (ids, thumbs, t) = provider(&bed.iam, &arn).await.unwrap();
    assert_eq!(ids, set(&["sts.amazonaws.com", "ci-audience"]));
    assert_eq!(thumbs, set(&[THUMB_A]));
    assert_eq!(t, owned(&[("team", "ci")]));
}

#[tokio::test]
async fn thumbprints_a_manifest_leaves_out_are_never_drift() {
    let manifest = PROVIDER.replace(
        "  thumbprints: [9E99A48A9960B14926BB7F3B02E22DA2B0AB7280]\n",
        "",
    );
    let bed = Bed::new(&[("ci.yaml", &manifest)], &[]).await;
    bed.converge();
    let arn = provider_arn("token.actions.example.com");
    // What IAM fills in (or someone rotates) is the provider's business.
    bed.iam
        .update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&arn)
        .thumbprint_list(THUMB_B)
        .send()
        .await
        .unwrap();
    let (code, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
    assert_eq!(provider(&bed.iam, &arn).await.unwrap().1, set(&[THUMB_B]));
}

#[tokio::test]
async fn a_profile_and_a_provider_nobody_owns_are_left_alone_until_a_manifest_adopts_them() {
    let bed = Bed::new(&[("app.yaml", PROFILE), ("ci.yaml", PROVIDER)], &[]).await;
    bed.iam
        .create_instance_profile()
        .instance_profile_name("web")
        .path("/web/")
        .send()
        .await
        .unwrap();
    bed.iam
        .create_open_id_connect_provider()
        .url("https://token.actions.example.com")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .unwrap();
    let (code, out) = bed.apply();
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("conflict"), "{out}");
    assert!(profile_roles(&bed.iam, "web").await.is_empty());
    let arn = provider_arn("token.actions.example.com");
    assert!(provider(&bed.iam, &arn).await.unwrap().2.is_empty());

    let adopt = |text: &str, name: &str| {
        text.replace(
            &format!("metadata: {{name: {name}}}"),
            &format!("metadata: {{name: {name}, annotations: {{iam-warden/adopt: \"true\"}}}}"),
        )
    };
    bed.write("app.yaml", &adopt(PROFILE, "web"));
    bed.write("ci.yaml", &adopt(PROVIDER, "ci"));
    bed.converge();
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"]);
    let p = profile(&bed.iam, "web").await.unwrap();
    assert_eq!(tags(p.tags()), owned(&[("team", "web")]));
    let (ids, _, t) = provider(&bed.iam, &arn).await.unwrap();
    assert_eq!(ids, set(&["sts.amazonaws.com", "ci-audience"]));
    assert_eq!(t, owned(&[("team", "ci")]));
}

#[tokio::test]
async fn prune_deletes_an_undeclared_profile_and_provider_but_keeps_a_provider_a_role_still_trusts()
{
    let bed = Bed::new(&[("app.yaml", PROFILE), ("ci.yaml", PROVIDER)], &[]).await;
    bed.converge();
    // A second provider, trusted only by a role iam-warden does not manage.
    let extra = r#"
apiVersion: iamwarden/v1alpha1
kind: OpenIDConnectProvider
metadata: {name: other}
spec:
  url: https://other.example.com
  clientIDs: [sts.amazonaws.com]
"#;
    bed.write("other.yaml", extra);
    bed.converge();
    let other = provider_arn("other.example.com");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{other}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}]}}"#
    );
    bed.iam
        .create_role()
        .role_name("someone-elses")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    // An unowned profile that no manifest declares is never a candidate.
    bed.iam
        .create_instance_profile()
        .instance_profile_name("not-ours")
        .send()
        .await
        .unwrap();

    // Everything but the policy-free role goes from the manifests.
    bed.write("app.yaml", "");
    bed.write("ci.yaml", "");
    bed.write("other.yaml", "");
    bed.write(
        "keep.yaml",
        &PROFILE
            .split("---")
            .next()
            .unwrap()
            .replace("web-role", "keeper"),
    );
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    // A resource kept because it is still used fails the apply, as a policy's does.
    assert_eq!(code, 1, "{out}");
    assert!(profile(&bed.iam, "web").await.is_none(), "{out}");
    assert!(
        provider(&bed.iam, &provider_arn("token.actions.example.com"))
            .await
            .is_none(),
        "{out}"
    );
    assert!(
        provider(&bed.iam, &other).await.is_some(),
        "a provider a role still trusts must stay:\n{out}"
    );
    assert!(
        out.contains("still used by role/someone-elses"),
        "says who still uses it:\n{out}"
    );
    assert!(profile(&bed.iam, "not-ours").await.is_some());
}

#[tokio::test]
async fn a_role_a_declared_profile_holds_is_not_pruned() {
    let bed = Bed::new(&[("app.yaml", PROFILE)], &[]).await;
    bed.converge();
    // The role's manifest goes; the profile still names it (by name now, not by ref).
    let profile_only = PROFILE
        .split("---")
        .nth(1)
        .unwrap()
        .replace("{ref: web-role}", "web-role");
    bed.write("app.yaml", &profile_only);
    let (code, out) = bed.run_with("apply", &["--prune", "--prune-after", "0s"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"], "{out}");
}

/// Each write of the new kinds, its answer lost once: the apply still ends in the declared
/// state, and a second plan finds nothing to do.
#[tokio::test]
async fn a_lost_answer_to_any_write_of_the_new_kinds_ends_in_the_declared_state() {
    for (action, before, after) in [
        ("CreateInstanceProfile", None, PROFILE.to_string()),
        ("AddRoleToInstanceProfile", None, PROFILE.to_string()),
        ("CreateOpenIDConnectProvider", None, PROVIDER.to_string()),
        (
            "TagInstanceProfile",
            Some(PROFILE),
            PROFILE.replace("{team: web}", "{team: web2}"),
        ),
        (
            "AddClientIDToOpenIDConnectProvider",
            Some(PROVIDER),
            PROVIDER.replace("ci-audience]", "ci-audience, third]"),
        ),
        (
            "RemoveClientIDFromOpenIDConnectProvider",
            Some(PROVIDER),
            PROVIDER.replace(", ci-audience]", "]"),
        ),
        (
            "UpdateOpenIDConnectProviderThumbprint",
            Some(PROVIDER),
            PROVIDER.replace("9E99A48A9960B14926BB7F3B02E22DA2B0AB7280", THUMB_B),
        ),
    ] {
        let bed = Bed::new(&[("app.yaml", before.unwrap_or(""))], &[]).await;
        if before.is_some() {
            bed.converge();
        }
        bed.write("app.yaml", &after);
        bed.proxy.lose_answer(action);
        let (code, out) = bed.apply();
        assert_eq!(code, 0, "{action}: {out}");
        assert!(bed.proxy.count(action) >= 1, "{action} was never sent");
        let (code, out) = bed.plan();
        assert_eq!(code, 0, "{action}: not in sync after a lost answer:\n{out}");
    }
}

#[tokio::test]
async fn the_daemon_corrects_drift_of_a_profile_and_a_provider() {
    let bed = Bed::new(&[("app.yaml", PROFILE), ("ci.yaml", PROVIDER)], &[]).await;
    let d = bed.daemon(bed.dir.path(), &["--resync-interval", "1s"]);
    wait_for("converged", Duration::from_secs(60), || bed.plan().0 == 0);
    let arn = provider_arn("token.actions.example.com");
    bed.iam
        .remove_role_from_instance_profile()
        .instance_profile_name("web")
        .role_name("web-role")
        .send()
        .await
        .unwrap();
    bed.iam
        .remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("ci-audience")
        .send()
        .await
        .unwrap();
    wait_for("drift corrected", Duration::from_secs(60), || {
        bed.plan().0 == 0
    });
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"]);
    let (_, status) = d.get("/status");
    assert!(
        status.contains("\"kind\":\"InstanceProfile\"")
            && status.contains("\"kind\":\"OpenIDConnectProvider\""),
        "{status}"
    );
    let (_, metrics) = d.get("/metrics");
    assert!(
        metrics.contains(r#"iam_warden_drift_corrections_total{kind="InstanceProfile",field="role"}"#)
            && metrics.contains(
                r#"iam_warden_drift_corrections_total{kind="OpenIDConnectProvider",field="clientIDs"}"#
            ),
        "{metrics}"
    );
    assert!(d.terminate(Duration::from_secs(10)) == Some(0));
}

#[test]
fn a_federated_ref_to_a_provider_nobody_declares_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let role = PROVIDER.split("---").nth(1).unwrap();
    fs::write(dir.path().join("role.yaml"), role).unwrap();
    let (out, stdout, _) = support::run(support::warden().arg("validate").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("spec.assumeRolePolicy")
            && stdout
                .contains("{ref: ci} names an OpenIDConnectProvider that no manifest declares"),
        "{stdout}"
    );
}

/// Role `ec2-r{i}`, instance profile `ec2-p{i}` holding it, and provider `https://idp{i}.example.com`.
fn trio(i: usize) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: ec2-r{i}}}
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: "sts:AssumeRole"}}]
---
apiVersion: iamwarden/v1alpha1
kind: InstanceProfile
metadata: {{name: ec2-p{i}}}
spec:
  role: {{ref: ec2-r{i}}}
  tags: {{index: "{i}"}}
---
apiVersion: iamwarden/v1alpha1
kind: OpenIDConnectProvider
metadata: {{name: idp{i}}}
spec:
  url: https://idp{i}.example.com
  clientIDs: [sts.amazonaws.com, app-{i}]
  tags: {{index: "{i}"}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_creating_profiles_and_providers_loses_nothing() {
    const TRIOS: usize = 8;
    let bed = Bed::new(&[], &[]).await;
    for i in 0..TRIOS {
        bed.write(&format!("trio-{i}.yaml"), &trio(i));
    }
    // Every write is held on its way (and still carried out when the daemon dies meanwhile),
    // so each kill falls in the middle of the work.
    for action in [
        "CreateRole",
        "CreateInstanceProfile",
        "AddRoleToInstanceProfile",
        "CreateOpenIDConnectProvider",
    ] {
        bed.proxy
            .delay(action, usize::MAX, Duration::from_millis(150));
    }
    let args = ["--resync-interval", "1s"];
    let mut interrupted = 0;
    for moment in [350, 700, 1100] {
        let d = bed.daemon(bed.dir.path(), &args);
        std::thread::sleep(Duration::from_millis(moment));
        d.kill();
        std::thread::sleep(Duration::from_millis(200));
        if bed.plan().0 != 0 {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kills interrupted work"
    );
    let d = bed.daemon(bed.dir.path(), &args);
    wait_for(
        "in sync after the last restart",
        Duration::from_secs(90),
        || bed.plan().0 == 0,
    );
    for i in 0..TRIOS {
        let name = format!("ec2-p{i}");
        assert_eq!(
            profile_roles(&bed.iam, &name).await,
            [format!("ec2-r{i}")],
            "{name} holds its role once"
        );
        let p = profile(&bed.iam, &name).await.unwrap();
        let index = i.to_string();
        assert_eq!(tags(p.tags()), owned(&[("index", &index)]), "{name}");
        let arn = provider_arn(&format!("idp{i}.example.com"));
        let (ids, _, t) = provider(&bed.iam, &arn).await.expect("provider created");
        assert_eq!(
            ids,
            set(&["sts.amazonaws.com", &format!("app-{i}")]),
            "{arn}"
        );
        assert_eq!(t, owned(&[("index", &index)]), "{arn}");
    }
    let listed = bed.iam.list_instance_profiles().send().await.unwrap();
    assert_eq!(
        listed.instance_profiles().len(),
        TRIOS,
        "no profile made twice"
    );
    let providers = bed
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap();
    assert_eq!(providers.open_id_connect_provider_list().len(), TRIOS);
    assert!(d.terminate(Duration::from_secs(10)) == Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_resync_reads_each_profile_and_provider_once_and_writes_nothing() {
    const TRIOS: usize = 3;
    let bed = Bed::new(&[], &[]).await;
    for i in 0..TRIOS {
        bed.write(&format!("trio-{i}.yaml"), &trio(i));
    }
    bed.converge();
    let d = bed.daemon(bed.dir.path(), &["--resync-interval", "1s"]);
    wait_for("ready", Duration::from_secs(60), || {
        d.get("/readyz").0 == 200
    });
    std::thread::sleep(Duration::from_secs(2));
    bed.proxy.reset_counts();
    std::thread::sleep(Duration::from_millis(4500));
    let wire = bed.proxy.actions();
    assert_eq!(bed.proxy.writes(), Vec::<String>::new(), "{}", d.log());
    // One bulk read per resync for the roles; the kinds it does not hold, one read each.
    let resyncs = bed.proxy.count("GetAccountAuthorizationDetails");
    assert!(resyncs >= 2, "{wire:?}");
    for action in ["GetInstanceProfile", "GetOpenIDConnectProvider"] {
        let reads = bed.proxy.count(action);
        assert!(
            reads <= TRIOS * (resyncs + 1),
            "{action}: {reads} reads in {resyncs} resyncs: {wire:?}"
        );
    }
    // Without --prune nothing is listed.
    assert_eq!(bed.proxy.count("ListInstanceProfiles"), 0, "{wire:?}");
    assert_eq!(bed.proxy.count("ListOpenIDConnectProviders"), 0, "{wire:?}");
    assert!(d.terminate(Duration::from_secs(10)) == Some(0));
}

#[tokio::test]
async fn apply_holds_back_a_profile_whose_role_failed() {
    let manifest = PROFILE.replace(
        "    Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: \"sts:AssumeRole\"}]\n",
        "    Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: \"sts:AssumeRole\"}]\n  inlinePolicies:\n    s3: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"*\"}]}\n",
    );
    let bed = Bed::new(&[("app.yaml", &manifest)], &[]).await;
    bed.proxy.fail(
        "PutRolePolicy",
        usize::MAX,
        403,
        "AccessDenied",
        "not allowed",
    );
    let (code, out) = bed.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "InstanceProfile web: FAILED: not attempted: it needs Role `web-role`, which failed"
        ),
        "{out}"
    );
    assert!(profile(&bed.iam, "web").await.is_none(), "{out}");
    bed.proxy.clear_faults();
    bed.converge();
    assert_eq!(profile_roles(&bed.iam, "web").await, ["web-role"]);
}

#[tokio::test]
async fn import_writes_manifests_that_adopt_a_hand_made_profile_and_provider() {
    let bed = Bed::new(&[], &[]).await;
    let url = "https://token.hand.example.com";
    let arn = provider_arn("token.hand.example.com");
    bed.iam
        .create_open_id_connect_provider()
        .url(url)
        .client_id_list("sts.amazonaws.com")
        .tags(Tag::builder().key("team").value("ci").build().unwrap())
        .send()
        .await
        .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{arn}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}]}}"#
    );
    bed.iam
        .create_role()
        .role_name("hand-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    bed.iam
        .create_instance_profile()
        .instance_profile_name("hand-profile")
        .send()
        .await
        .unwrap();
    bed.iam
        .add_role_to_instance_profile()
        .instance_profile_name("hand-profile")
        .role_name("hand-role")
        .send()
        .await
        .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = support::run(
        support::warden_on(&bed.proxy.endpoint)
            .args(["import", "hand-role", "--instance-profile", "hand-profile"])
            .args(["--oidc-provider", &arn, "--out"])
            .arg(out_dir.path()),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let all: String = fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    // The profile holds the imported role by ref, the role trusts the provider by ref.
    assert!(all.contains("ref: hand-role"), "{all}");
    assert!(
        all.contains("Federated:\n") && all.contains("ref: token.hand.example.com"),
        "{all}"
    );
    let plan = |dir: &std::path::Path| {
        support::run(support::warden_on(&bed.proxy.endpoint).arg("plan").arg(dir))
    };
    let (out, stdout, _) = plan(out_dir.path());
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    // Adopting writes only the owner tags.
    assert!(!stdout.contains("+ create"), "{stdout}");
    let (out, stdout, stderr) = support::run(
        support::warden_on(&bed.proxy.endpoint)
            .arg("apply")
            .arg(out_dir.path()),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let (out, stdout, _) = plan(out_dir.path());
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        provider(&bed.iam, &arn).await.unwrap().2,
        owned(&[("team", "ci")])
    );
}

#[tokio::test]
async fn observe_mode_reports_a_drifted_profile_and_provider_and_writes_only_the_prune_record() {
    let bed = Bed::new(&[("app.yaml", PROFILE), ("ci.yaml", PROVIDER)], &[]).await;
    bed.converge();
    let arn = provider_arn("token.actions.example.com");
    bed.iam
        .remove_role_from_instance_profile()
        .instance_profile_name("web")
        .role_name("web-role")
        .send()
        .await
        .unwrap();
    bed.iam
        .remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("ci-audience")
        .send()
        .await
        .unwrap();
    let observe = |text: &str, name: &str| {
        text.replace(
            &format!("metadata: {{name: {name}}}"),
            &format!("metadata: {{name: {name}, annotations: {{iam-warden/mode: observe}}}}"),
        )
    };
    bed.write("app.yaml", &observe(PROFILE, "web"));
    bed.write("ci.yaml", &observe(PROVIDER, "ci"));
    let (code, out) = bed.plan();
    assert_eq!(code, 2, "the drift is reported:\n{out}");
    bed.proxy.reset_counts();
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    let writes = bed.proxy.writes();
    assert!(
        writes
            .iter()
            .all(|w| w == "TagInstanceProfile" || w == "TagOpenIDConnectProvider"),
        "observe mode writes only its prune record: {writes:?}"
    );
    assert!(
        profile_roles(&bed.iam, "web").await.is_empty(),
        "not corrected"
    );
    let (ids, _, t) = provider(&bed.iam, &arn).await.unwrap();
    assert_eq!(ids, set(&["sts.amazonaws.com"]), "not corrected");
    assert_eq!(t.get("iam-warden/prune").map(String::as_str), Some("never"));
    let p = profile(&bed.iam, "web").await.unwrap();
    assert_eq!(
        tags(p.tags()).get("iam-warden/prune").map(String::as_str),
        Some("never")
    );
}
