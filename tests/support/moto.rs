//! moto's IAM server on a free loopback port, started for one test and stopped when dropped.
//!
//! moto comes from the repository's virtual environment (`scripts/test-env` creates it). A test
//! that needs it fails with that instruction when it is missing: it never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::repo_root;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

pub fn moto_server_path() -> PathBuf {
    repo_root().join(".venv/bin/moto_server")
}

/// moto's server with the IAM operations it lacks added (ours: tests/support/moto_ext.py).
pub fn moto_ext_path() -> PathBuf {
    repo_root().join("tests/support/moto_ext.py")
}

impl Moto {
    pub fn start() -> Moto {
        let bin = moto_server_path();
        assert!(
            bin.exists(),
            "moto is not installed: run `scripts/test-env` first (expected {})",
            bin.display()
        );
        let python = repo_root().join(".venv/bin/python");
        let mut child = Command::new(&python)
            .arg(moto_ext_path())
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // moto logs every request on stderr: keep draining it so the pipe never fills.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port.trim().to_string());
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("moto_server did not start within 60 s");
            }
        };
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// An SDK client for this server, with dummy credentials.
    pub async fn client(&self) -> aws_sdk_iam::Client {
        client_for(&self.endpoint).await
    }
}

pub async fn client_for(endpoint: &str) -> aws_sdk_iam::Client {
    // Set-up and checks must not fail a test on moto's occasional 500 under load.
    client_with(endpoint, patient())
}

/// A client of `endpoint` with test credentials and the given retries.
pub fn client_with(
    endpoint: &str,
    retry: aws_sdk_iam::config::retry::RetryConfig,
) -> aws_sdk_iam::Client {
    let creds = aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "tests");
    client_as(endpoint, creds, retry)
}

/// A client of `endpoint` with `creds` and the given retries.
fn client_as(
    endpoint: &str,
    creds: aws_sdk_iam::config::Credentials,
    retry: aws_sdk_iam::config::retry::RetryConfig,
) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .http_client(iam_warden::iam::http_client())
        .retry_config(retry)
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// Retries that ride out moto's occasional 500 under load.
fn patient() -> aws_sdk_iam::config::retry::RetryConfig {
    aws_sdk_iam::config::retry::RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(std::time::Duration::from_millis(50))
}

/// Makes `name`, trusting EC2, tagged as owned by `owner`: a role another writer made.
pub async fn role_owned_by(iam: &aws_sdk_iam::Client, name: &str, owner: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .tags(super::fixtures::tag("iam-warden/owner", owner))
        .send()
        .await
        .unwrap_or_else(|e| panic!("role {name} by hand: {e:?}"));
}

/// Creates `count` roles `PREFIX-0`, `PREFIX-1`, … trusting EC2, a few at a time, as set-up:
/// an answer lost after the role was made (EntityAlreadyExists on a retry) counts as made.
pub async fn seed_roles(iam: &aws_sdk_iam::Client, prefix: &str, count: usize) {
    use futures::stream::{self, StreamExt};
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    stream::iter(0..count)
        .map(|i| {
            let iam = iam.clone();
            async move {
                let name = format!("{prefix}-{i}");
                let out = iam
                    .create_role()
                    .role_name(&name)
                    .assume_role_policy_document(trust)
                    .send()
                    .await;
                if let Err(e) = out {
                    let exists = e
                        .as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception());
                    assert!(exists, "seeding role {name}: {e:?}");
                }
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// The role as IAM has it now; `None` when it does not exist.
pub async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> Option<aws_sdk_iam::types::Role> {
    iam.get_role()
        .role_name(name)
        .send()
        .await
        .ok()?
        .role()
        .cloned()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials of account `account` of this moto (key, secret, session token): moto serves
/// any account a role is assumed into, and keys the answers' account on the credentials.
pub async fn assumed_credentials(endpoint: &str, account: &str) -> (String, String, String) {
    let creds = aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "tests");
    let sts_config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .http_client(iam_warden::iam::http_client())
        .build();
    let out = aws_sdk_sts::Client::from_conf(sts_config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/tests"))
        .role_session_name("tests")
        .send()
        .await
        .expect("assume a role in the test account");
    let c = out.credentials().expect("assumed credentials");
    (
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        c.session_token().to_string(),
    )
}

/// A client acting in account `account` of this moto.
pub async fn client_in(endpoint: &str, account: &str) -> aws_sdk_iam::Client {
    let (key, secret, token) = assumed_credentials(endpoint, account).await;
    let assumed = aws_sdk_iam::config::Credentials::new(key, secret, Some(token), None, "assumed");
    client_as(endpoint, assumed, patient())
}
