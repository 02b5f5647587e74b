//! Shared test support: a real IAM API (moto's server) per test, and helpers to run the binary.
#![allow(dead_code)] // Each test crate uses a different part of this module.

pub mod bed;
pub mod daemon;
pub mod fixtures;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod tools;

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The iam-warden binary under test, with the environment cleared of IAM_WARDEN_* and AWS
/// settings that could leak in from the developer's shell.
pub fn warden() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iam-warden"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IAM_WARDEN_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

/// Runs a command and returns its output, stdout and stderr as text.
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run iam-warden");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The binary, pointed at an IAM endpoint with moto's dummy credentials.
pub fn warden_on(endpoint: &str) -> Command {
    let mut cmd = warden();
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IAM_WARDEN_ENDPOINT_URL", endpoint)
        // Faults in these tests clear within seconds; a failing test should not wait 2 minutes.
        .env("IAM_WARDEN_RETRY_TIMEOUT", "20s");
    cmd
}

/// Waits, polling every 100 ms, until `check` holds; panics naming `what` after a minute.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, std::time::Duration::from_secs(60), check).await
}

/// [`eventually`] with its own limit.
pub async fn eventually_within<F, Fut>(what: &str, limit: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
