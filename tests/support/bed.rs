//! A test bed for the one-shot commands: moto, a counting fault proxy in front of it, a
//! manifest directory, and an SDK client that talks to moto directly.

use std::fs;
use std::process::Command;

use aws_sdk_iam::Client;
use tempfile::TempDir;

use super::daemon::Daemon;
use super::fixtures::FULL;
use super::moto::{Moto, client_for, get_role};
use super::proxy::Proxy;
use super::{eventually, eventually_within, repo_root, run, warden_on};

/// A moto server, a counting proxy in front of it, a manifest directory, and an SDK client that
/// talks to moto directly (for out-of-band changes and checks).
pub struct Bed {
    pub moto: Moto,
    pub proxy: Proxy,
    pub dir: TempDir,
    pub args: Vec<String>,
    pub iam: Client,
}

impl Bed {
    pub async fn new(files: &[(&str, &str)], args: &[&str]) -> Bed {
        let moto = Moto::start();
        let proxy = Proxy::start(&moto.endpoint);
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        let iam = client_for(&moto.endpoint).await;
        Bed {
            moto,
            proxy,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            iam,
        }
    }

    /// The example manifests with the example values.
    pub async fn agent() -> Bed {
        let mut bed = Bed::new(&[], &["--values", "deploy/values.example.yaml"]).await;
        for entry in fs::read_dir(repo_root().join("manifests/agent")).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, bed.dir.path().join(path.file_name().unwrap())).unwrap();
        }
        bed.args.push("--owner".into());
        bed.args.push("default".into());
        bed
    }

    pub async fn full() -> Bed {
        Bed::new(&[("app.yaml", FULL)], &[]).await
    }

    pub fn write(&self, name: &str, text: &str) {
        fs::write(self.dir.path().join(name), text).unwrap();
    }

    pub fn command(&self, verb: &str) -> Command {
        let mut cmd = warden_on(&self.proxy.endpoint);
        cmd.arg(verb).arg(self.dir.path()).args(&self.args);
        cmd
    }

    /// `VERB DIR ARGS… EXTRA…`: exit code and everything printed.
    pub fn run_with(&self, verb: &str, extra: &[&str]) -> (i32, String) {
        let mut cmd = self.command(verb);
        cmd.args(extra);
        let (out, stdout, stderr) = run(&mut cmd);
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    /// A path inside the bed's directory (for tests that lay out DIR and its neighbours).
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// `run DIR ARGS` against the bed's proxy.
    pub fn daemon(&self, dir: &std::path::Path, args: &[&str]) -> Daemon {
        Daemon::start(&self.proxy.endpoint, dir, args)
    }

    /// A daemon with test faults injected (`IAM_WARDEN_TEST_FAULTS`, debug builds only).
    pub fn daemon_with_faults(&self, dir: &std::path::Path, faults: &str, args: &[&str]) -> Daemon {
        let mut cmd = warden_on(&self.proxy.endpoint);
        cmd.env("IAM_WARDEN_TEST_FAULTS", faults);
        Daemon::start_cmd(cmd, dir, args)
    }

    /// `plan DIR` exits 0: AWS equals the manifests in `dir`.
    pub fn in_sync(&self, dir: &std::path::Path) -> bool {
        let (out, _, _) = run(warden_on(&self.proxy.endpoint).arg("plan").arg(dir));
        out.status.code() == Some(0)
    }

    pub fn plan(&self) -> (i32, String) {
        let (out, stdout, stderr) = run(&mut self.command("plan"));
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    pub fn apply(&self) -> (i32, String) {
        let (out, stdout, stderr) = run(&mut self.command("apply"));
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    pub fn converge(&self) {
        let (code, out) = self.apply();
        assert_eq!(code, 0, "apply failed:\n{out}");
        let (code, out) = self.plan();
        assert_eq!(code, 0, "not in sync after apply:\n{out}");
    }

    /// The role as IAM has it now; it must exist.
    pub async fn role(&self, name: &str) -> aws_sdk_iam::types::Role {
        get_role(&self.iam, name)
            .await
            .unwrap_or_else(|| panic!("role {name} does not exist"))
    }

    pub async fn role_tags(&self, name: &str) -> Vec<(String, String)> {
        let role = self.role(name).await;
        role.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }

    /// The role's description; `None` when the role does not exist.
    pub async fn description_of(&self, role: &str) -> Option<String> {
        let role = get_role(&self.iam, role).await?;
        Some(role.description().unwrap_or_default().to_string())
    }

    /// Polls until the role's description is `want`; panics after a minute.
    pub async fn wait_description(&self, role: &str, want: &str) {
        let what = format!("role {role} to get description {want:?}");
        eventually(&what, || async {
            self.description_of(role).await.as_deref() == Some(want)
        })
        .await;
    }

    /// Sets one tag on a role behind the daemon's back (straight to moto).
    pub async fn set_tag(&self, role: &str, key: &str, value: &str) {
        self.iam
            .tag_role()
            .role_name(role)
            .tags(super::fixtures::tag(key, value))
            .send()
            .await
            .unwrap();
    }

    pub async fn tag_of(&self, role: &str, key: &str) -> Option<String> {
        let role = get_role(&self.iam, role).await?;
        role.tags()
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_string())
    }

    /// Polls until the role's tag `key` is `want`; panics after `limit`.
    pub async fn wait_tag(&self, role: &str, key: &str, want: &str, limit: std::time::Duration) {
        let what = format!("role {role} to get tag {key}={want}");
        eventually_within(&what, limit, || async {
            self.tag_of(role, key).await.as_deref() == Some(want)
        })
        .await;
    }

    pub async fn description(&self, name: &str) -> String {
        self.role(name)
            .await
            .description()
            .unwrap_or_default()
            .to_string()
    }
}
