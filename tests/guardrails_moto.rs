//! Guardrails through the binary: a manifest that breaks one is refused by `validate`, `plan`
//! and `apply` before any AWS call (one built from `${aws.*}` once the caller's account is
//! known), naming file, line and field; compliant manifests apply.
//! (The daemon's side, keeping a newly violating file's last good state, is in daemon_moto.)

mod support;

use support::bed::Bed;
use support::{repo_root, run, warden};

fn role(name: &str, extra: &str, principal: &str) -> String {
    format!(
        r#"apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {{name: {name}}}
spec:
{extra}  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal: {principal}
        Action: sts:AssumeRole
"#
    )
}

const ECS: &str = "{Service: ecs-tasks.amazonaws.com}";

/// (guardrail flags, a violating manifest, the field and words its error must name, a
/// compliant manifest).
fn cases() -> Vec<(Vec<&'static str>, String, &'static str, String)> {
    vec![
        (
            vec![
                "--require-permissions-boundary",
                "arn:aws:iam::aws:policy/PowerUserAccess",
            ],
            role("r", "", ECS),
            "m.yaml:5: spec.permissionsBoundary: every role must carry the permissions boundary arn:aws:iam::aws:policy/PowerUserAccess",
            role(
                "r",
                "  permissionsBoundary: arn:aws:iam::aws:policy/PowerUserAccess\n",
                ECS,
            ),
        ),
        (
            vec!["--allowed-path-prefix", "/agent/"],
            role("r", "  path: /other/\n", ECS),
            "m.yaml:5: spec.path: `/other/` is outside the allowed paths (/agent/)",
            role("r", "  path: /agent/\n", ECS),
        ),
        (
            vec!["--deny-action", "iam:*"],
            format!(
                "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: [s3:GetObject, \"iam:Pass*\"], Resource: \"*\"}}]}}\n",
                role("r", "", ECS)
            ),
            "m.yaml:12: spec.inlinePolicies.p.Statement[0].Action[1]: allows `iam:Pass*`, which the guardrail --deny-action `iam:*` denies",
            format!(
                "{}  inlinePolicies:\n    p: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: [s3:GetObject], Resource: \"*\"}}]}}\n",
                role("r", "", ECS)
            ),
        ),
        (
            vec!["--deny-trust-principal", "*"],
            role("r", "", "\"*\""),
            "m.yaml:9: spec.assumeRolePolicy.Statement[0].Principal: trusts `*`, which the guardrail --deny-trust-principal `*` denies",
            role("r", "", "{AWS: \"arn:aws:iam::123456789012:role/ci\"}"),
        ),
        (
            vec!["--allowed-trust-account", "111111111111"],
            role("r", "", "{AWS: \"arn:aws:iam::222222222222:root\"}"),
            "spec.assumeRolePolicy.Statement[0].Principal.AWS: trusts account `222222222222`, outside the allowed trust accounts (111111111111)",
            role("r", "", "{AWS: \"arn:aws:iam::111111111111:root\"}"),
        ),
    ]
}

#[tokio::test]
async fn each_guardrail_refuses_a_violating_manifest_before_any_aws_call_and_passes_a_compliant_one()
 {
    for (flags, bad, expected, good) in cases() {
        let mut bed = Bed::new(&[("m.yaml", &bad)], &[]).await;
        bed.args.extend(flags.iter().map(|f| f.to_string()));
        for verb in ["plan", "apply"] {
            let (out, stdout, stderr) = run(&mut bed.command(verb));
            assert_eq!(
                out.status.code(),
                Some(1),
                "{verb} {flags:?}:\n{stdout}{stderr}"
            );
            assert!(
                stderr.contains(expected),
                "{verb} {flags:?}: `{expected}` missing:\n{stderr}"
            );
            assert!(stderr.contains("(guardrail from flags)"), "{stderr}");
        }
        assert_eq!(
            bed.proxy.actions(),
            Vec::<String>::new(),
            "{flags:?}: AWS was called"
        );
        let mut validate = warden();
        validate.arg("validate").arg(bed.dir.path()).args(&flags);
        let (out, stdout, _) = run(&mut validate);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains(expected), "{stdout}");

        bed.write("m.yaml", &good);
        let (code, out) = bed.apply();
        assert_eq!(
            code, 0,
            "{flags:?}: a compliant manifest was refused:\n{out}"
        );
    }
}

#[test]
fn the_example_guardrails_pass_the_agent_manifests_and_refuse_a_role_trusting_anyone() {
    let root = repo_root();
    let mut validate = warden();
    validate
        .arg("validate")
        .arg(root.join("manifests/agent"))
        .args(["--values", "deploy/values.example.yaml"])
        .args(["--guardrails", "deploy/guardrails.example.yaml"]);
    let (out, stdout, stderr) = run(&mut validate);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("anyone.yaml"),
        role("anyone", "  path: /agent/\n", "{AWS: \"*\"}"),
    )
    .unwrap();
    let mut validate = warden();
    validate
        .arg("validate")
        .arg(dir.path())
        .args(["--guardrails", "deploy/guardrails.example.yaml"]);
    let (out, stdout, _) = run(&mut validate);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("spec.assumeRolePolicy.Statement[0].Principal.AWS: trusts `*`")
            && stdout.contains("guardrail from deploy/guardrails.example.yaml"),
        "{stdout}"
    );
}

#[test]
fn a_broken_guardrails_file_is_an_error_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.yaml");
    std::fs::write(&file, "denyActions: [\"*\"]\nallowedPathPrefix: [/x/]\n").unwrap();
    let mut validate = warden();
    validate
        .arg("validate")
        .arg(repo_root().join("manifests/agent"))
        .args(["--values", "deploy/values.example.yaml", "--guardrails"])
        .arg(&file);
    let (out, stdout, stderr) = run(&mut validate);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("allowedPathPrefix") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_guardrail_judges_built_ins_with_the_callers_account_not_placeholders() {
    let boundary =
        "  permissionsBoundary: \"arn:${aws.partition}:iam::${aws.account_id}:policy/b\"\n";
    let bed = Bed::new(&[("m.yaml", &role("r", boundary, ECS))], &[]).await;
    let plan = |required: &str| {
        let mut cmd = bed.command("plan");
        cmd.args(["--require-permissions-boundary", required]);
        let (out, stdout, stderr) = run(&mut cmd);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    // moto's account: the boundary the manifest builds is the required one.
    let (code, out) = plan("arn:aws:iam::123456789012:policy/b");
    assert_eq!(code, Some(2), "{out}");
    assert!(!out.contains("000000000000"), "{out}");
    // Another account's: refused, naming what the manifest really builds, and nothing written.
    let (code, out) = plan("arn:aws:iam::999999999999:policy/b");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("not arn:aws:iam::123456789012:policy/b") && out.contains("invalid manifests"),
        "{out}"
    );
    assert_eq!(bed.proxy.writes(), Vec::<String>::new());
}
