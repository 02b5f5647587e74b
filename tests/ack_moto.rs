//! ACK's own test manifests (aws-controllers-k8s/iam-controller, read from
//! ../shared/ack-samples/, never copied here), their `$NAME` placeholders filled as ACK's e2e
//! tests fill them: validated, planned exactly like their `convert`ed twin, applied to moto,
//! and mixed with native manifests in one directory.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::bed::Bed;
use support::{repo_root, run, warden};

/// Where ACK's samples are: `IAM_WARDEN_ACK_SAMPLES`, or `../shared/ack-samples` beside the
/// repository (or beside /work/main, for a clone elsewhere). Missing samples fail the test.
fn samples() -> PathBuf {
    let candidates = [
        std::env::var_os("IAM_WARDEN_ACK_SAMPLES").map(PathBuf::from),
        Some(repo_root().join("../shared/ack-samples")),
        Some(PathBuf::from("/work/shared/ack-samples")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("role_simple.yaml").exists())
        .expect("ACK's samples not found: set IAM_WARDEN_ACK_SAMPLES to ../shared/ack-samples")
}

/// ACK's sample `file` with its placeholders filled.
fn sample(file: &str, values: &[(&str, &str)]) -> String {
    let mut text = fs::read_to_string(samples().join(file))
        .unwrap_or_else(|e| panic!("read ACK sample {file}: {e}"));
    // Longest names first: `$POLICY_NAME` must not eat `$POLICY_NAME_SUFFIX`-like names.
    let mut values = values.to_vec();
    values.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in values {
        text = text.replace(&format!("${k}"), v);
    }
    assert!(
        !text.contains('$'),
        "{file}: a placeholder is left:\n{text}"
    );
    text
}

/// A sample, the file it is written to, and its placeholders' values.
type Filled = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// A directory of ACK's samples as its e2e tests fill them.
fn ack_directory(dir: &Path) {
    let files: [Filled; 7] = [
        (
            "policy_simple.yaml",
            "policy.yaml",
            vec![
                ("POLICY_NAME", "ack-policy"),
                ("POLICY_DESCRIPTION", "a policy from ACK"),
            ],
        ),
        (
            "role_simple.yaml",
            "role-simple.yaml",
            vec![
                ("ROLE_NAME", "ack-simple"),
                ("ROLE_DESCRIPTION", "a simple role"),
                ("MAX_SESSION_DURATION", "7200"),
            ],
        ),
        (
            "role_referring.yaml",
            "role-referring.yaml",
            vec![
                ("ROLE_NAME", "ack-referring"),
                ("POLICY_NAME", "ack-policy"),
            ],
        ),
        (
            "role_no_description.yaml",
            "role-plain.yaml",
            vec![("ROLE_NAME", "ack-plain")],
        ),
        (
            "instance_profile_simple.yaml",
            "profile.yaml",
            vec![
                ("INSTANCE_PROFILE_NAME", "ack-profile"),
                ("TAG_KEY", "team"),
                ("TAG_VALUE", "ack"),
            ],
        ),
        (
            "open_id_connect_provider_simple.yaml",
            "provider.yaml",
            vec![
                ("OPEN_ID_CONNECT_PROVIDER_NAME", "ack-provider"),
                ("URL", "https://oidc.ack.example.com"),
                ("CLIENT_ID", "sts.amazonaws.com"),
                ("THUMBPRINT", "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"),
                ("TAG_KEY", "team"),
                ("TAG_VALUE", "ack"),
            ],
        ),
        (
            "open_id_connect_provider_no_thumbprint.yaml",
            "provider-plain.yaml",
            vec![
                ("OPEN_ID_CONNECT_PROVIDER_NAME", "ack-provider-plain"),
                ("URL", "https://oidc2.ack.example.com"),
                ("CLIENT_ID", "sts.amazonaws.com"),
                ("TAG_KEY", "team"),
                ("TAG_VALUE", "ack"),
            ],
        ),
    ];
    for (sample_file, name, values) in files {
        fs::write(dir.join(name), sample(sample_file, &values)).unwrap();
    }
}

fn converted(dir: &Path) -> tempfile::TempDir {
    let twin = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(warden()
        .arg("convert")
        .arg(dir)
        .arg("--out")
        .arg(twin.path()));
    assert!(out.status.success(), "{stdout}{stderr}");
    twin
}

#[test]
fn acks_samples_are_valid_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    ack_directory(dir.path());
    let (out, stdout, _) = run(warden().arg("validate").arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("valid: 3 roles, 1 policy, 1 instance profile, 2 OIDC providers"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_ack_directory_plans_exactly_like_its_converted_twin_and_applies() {
    let bed = Bed::new(&[], &[]).await;
    ack_directory(bed.dir.path());
    let twin = converted(bed.dir.path());
    // The twin is native: no ACK object is left in it.
    for entry in fs::read_dir(twin.path()).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("services.k8s.aws"), "{text}");
        assert!(text.contains("apiVersion: iamwarden/v1alpha1"), "{text}");
    }
    for format in ["text", "json"] {
        let (code, ack) = bed.run_with("plan", &["--output", format]);
        assert_eq!(code, 2, "{ack}");
        let (out, twin_plan, err) = run(support::warden_on(&bed.proxy.endpoint)
            .arg("plan")
            .arg(twin.path())
            .args(["--output", format]));
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(ack, twin_plan, "the {format} plans differ");
    }
    let (code, out) = bed.apply();
    assert_eq!(code, 0, "{out}");
    // What ACK's samples describe is what IAM holds now.
    let role = bed.role("ack-simple").await;
    assert_eq!(
        (role.description(), role.max_session_duration()),
        (Some("a simple role"), Some(7200))
    );
    let attached = bed
        .iam
        .list_attached_role_policies()
        .role_name("ack-referring")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, ["arn:aws:iam::123456789012:policy/ack-policy"]);
    let profile = bed
        .iam
        .get_instance_profile()
        .instance_profile_name("ack-profile")
        .send()
        .await
        .unwrap();
    let tags = profile.instance_profile().unwrap().tags();
    assert!(tags.iter().any(|t| t.key() == "team" && t.value() == "ack"));
    let provider = bed
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(
            "arn:aws:iam::123456789012:oidc-provider/oidc.ack.example.com",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        provider.thumbprint_list(),
        ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
    );
    // The twin says the same: nothing to do.
    let (out, stdout, _) = run(support::warden_on(&bed.proxy.endpoint)
        .arg("plan")
        .arg(twin.path()));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}

#[tokio::test]
async fn a_directory_mixing_ack_and_native_manifests_plans_as_one_desired_state() {
    let bed = Bed::new(&[], &[]).await;
    fs::write(
        bed.dir.path().join("policy.yaml"),
        sample(
            "policy_simple.yaml",
            &[("POLICY_NAME", "shared"), ("POLICY_DESCRIPTION", "d")],
        ),
    )
    .unwrap();
    // A native role refers to the ACK policy by its IAM name.
    bed.write(
        "native.yaml",
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {name: native}\nspec:\n  assumeRolePolicy: '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}'\n  managedPolicies: [{ref: shared}]\n",
    );
    bed.converge();
    let attached = bed
        .iam
        .list_attached_role_policies()
        .role_name("native")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
}

#[test]
fn acks_spec_less_adoption_samples_are_refused_with_the_way_forward() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("adopt.yaml"),
        sample(
            "role_adoption.yaml",
            &[
                ("ROLE_ADOPTION_NAME", "clicked"),
                ("ADOPTION_POLICY", "adopt"),
                ("ADOPTION_FIELDS", r#"{\"name\": \"clicked\"}"#),
            ],
        ),
    )
    .unwrap();
    let (out, stdout, _) = run(warden().arg("validate").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("iam-warden import"), "{stdout}");
    let (out, _, stderr) = run(warden().arg("convert").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("adopt.yaml:"), "{stderr}");
}
