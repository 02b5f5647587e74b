//! Conditions that hold the whole daemon back, not one resource: AWS unreachable (or no
//! credentials), AWS answering with server errors (IAM down: 5xx such as ServiceUnavailable),
//! AWS refusing some calls (AccessDenied), DIR or a values file unreadable.
//!
//! Each is logged once when it starts and once when it clears, shown on /status and in
//! /readyz's body, and cleared by the first evidence that it is over (an answered request,
//! the refused call allowed, DIR read). Per-resource errors during an outage are not logged
//! one by one: the condition says it once.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::iam::{ErrorKind, IamError};

#[derive(Default)]
pub struct AwsHealth {
    inner: Mutex<AwsInner>,
    /// Woken when AWS answers again after being unreachable: failed keys are retried at once.
    pub recovered: Notify,
}

#[derive(Default)]
struct AwsInner {
    /// No answer at all (connection refused, timeouts, 5xx), or no credentials to ask with.
    unreachable: Option<String>,
    /// AWS answers, but with server errors (5xx), since its last good answer.
    failing: Option<String>,
    /// Operations AWS refuses, with the last refusal.
    denied: BTreeMap<&'static str, String>,
}

/// The `aws` field of /status.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsStatus {
    pub reachable: bool,
    pub last_error: Option<String>,
}

/// No answer: a connection, timeout or dispatch failure (these carry no AWS error code; a 5xx
/// does, and is an answer).
fn is_unanswered(e: &IamError) -> bool {
    (e.kind == ErrorKind::Transient && e.code.is_none()) || is_missing_credentials(e)
}

fn is_missing_credentials(e: &IamError) -> bool {
    e.kind == ErrorKind::NoCredentials
}

impl AwsHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, AwsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One IAM request finished: `None` when it succeeded.
    pub fn request(&self, operation: &'static str, error: Option<&IamError>) {
        let mut s = self.lock();
        let unreachable = error.filter(|e| is_unanswered(e));
        match unreachable {
            Some(e) => {
                // A missing-credentials error says so itself, with where it looked.
                let text = e.to_string();
                if s.unreachable.is_none() {
                    warn!(error = %text, "AWS unreachable; retrying, and reporting it on /status");
                }
                s.unreachable = Some(text);
                return;
            }
            // Any answer, even an error, means AWS is reachable.
            None => {
                if s.unreachable.take().is_some() {
                    info!("AWS reachable again");
                    drop(s);
                    self.recovered.notify_one();
                    s = self.lock();
                }
            }
        }
        match error {
            Some(e) if e.kind == ErrorKind::AccessDenied => {
                if s.denied.insert(operation, e.to_string()).is_none() {
                    warn!(operation, error = %e, "AWS refuses this call; retrying, and reporting it on /status");
                }
            }
            // An answer, but a server error: IAM itself is down or failing.
            Some(e) if e.kind == ErrorKind::Transient => {
                if s.failing.is_none() {
                    warn!(operation, error = %e, "AWS answers with server errors; retrying, and reporting it on /status");
                }
                s.failing = Some(e.to_string());
            }
            None => {
                if s.denied.remove(operation).is_some() {
                    info!(operation, "AWS allows this call again");
                }
                if s.failing.take().is_some() {
                    info!("AWS answers without server errors again");
                }
            }
            Some(_) => {}
        }
    }

    /// Whether AWS as a whole is unreachable (a resource failing then says nothing new).
    pub fn is_unreachable(&self) -> bool {
        self.lock().unreachable.is_some()
    }

    pub fn status(&self) -> AwsStatus {
        let s = self.lock();
        AwsStatus {
            reachable: s.unreachable.is_none(),
            last_error: s
                .unreachable
                .clone()
                .or_else(|| s.failing.clone())
                .or_else(|| s.denied.values().next_back().cloned()),
        }
    }

    /// One line per active condition, for /readyz.
    pub fn describe(&self) -> Vec<String> {
        let s = self.lock();
        let mut out: Vec<String> = s
            .unreachable
            .iter()
            .map(|e| format!("AWS unreachable: {e}"))
            .collect();
        out.extend(s.failing.iter().map(|e| format!("AWS failing: {e}")));
        out.extend(s.denied.values().map(|e| format!("AWS refuses: {e}")));
        out
    }
}

/// A local input that cannot be read (DIR, a values file): what was read last is kept, and the
/// reason shown; said once when it starts and once when it clears.
pub struct InputHealth {
    /// Logged when it starts, e.g. "cannot read manifests; keeping the last desired state".
    failing: &'static str,
    /// Logged when it clears.
    cleared: &'static str,
    error: Mutex<Option<String>>,
}

impl InputHealth {
    pub const fn new(failing: &'static str, cleared: &'static str) -> InputHealth {
        InputHealth {
            failing,
            cleared,
            error: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.error.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn failed(&self, error: String) {
        let mut e = self.lock();
        if e.is_none() {
            warn!(error = %error, "{}", self.failing);
        }
        *e = Some(error);
    }

    pub fn read(&self) {
        if self.lock().take().is_some() {
            info!("{}", self.cleared);
        }
    }

    pub fn error(&self) -> Option<String> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, message: &str) -> IamError {
        IamError {
            operation: "GetRole",
            kind,
            code: None,
            message: message.into(),
        }
    }

    #[test]
    fn unreachable_until_any_answer() {
        let h = AwsHealth::default();
        h.request(
            "GetRole",
            Some(&err(ErrorKind::Transient, "connection refused")),
        );
        let s = h.status();
        assert!(!s.reachable);
        assert!(s.last_error.unwrap().contains("connection refused"));
        h.request("GetRole", Some(&err(ErrorKind::NotFound, "no such role")));
        assert_eq!(
            h.status(),
            AwsStatus {
                reachable: true,
                last_error: None
            }
        );
    }

    #[test]
    fn missing_credentials_count_as_unreachable() {
        let h = AwsHealth::default();
        let e = err(
            ErrorKind::NoCredentials,
            "no AWS credentials found. Tried, in order: the environment",
        );
        h.request("GetCallerIdentity", Some(&e));
        let status = h.status();
        assert!(!status.reachable);
        assert!(
            status
                .last_error
                .unwrap()
                .contains("no AWS credentials found")
        );
    }

    #[test]
    fn a_refused_call_is_shown_until_it_is_allowed() {
        let h = AwsHealth::default();
        h.request(
            "PutRolePolicy",
            Some(&err(ErrorKind::AccessDenied, "denied")),
        );
        h.request("GetRole", None);
        let s = h.status();
        assert!(s.reachable);
        assert!(s.last_error.unwrap().contains("denied"));
        assert_eq!(h.describe().len(), 1);
        h.request("PutRolePolicy", None);
        assert_eq!(h.status().last_error, None);
    }

    #[test]
    fn server_errors_are_a_condition_of_their_own_until_a_good_answer() {
        let h = AwsHealth::default();
        let down = IamError {
            code: Some("ServiceUnavailable".into()),
            ..err(ErrorKind::Transient, "IAM is down")
        };
        h.request("GetAccountAuthorizationDetails", Some(&down));
        let s = h.status();
        assert!(s.reachable, "an answer, even an error, is reachable");
        assert!(s.last_error.unwrap().contains("IAM is down"));
        let described = h.describe();
        assert_eq!(described.len(), 1, "{described:?}");
        assert!(described[0].starts_with("AWS failing: "), "{described:?}");
        assert!(!described[0].contains("refuses"), "{described:?}");
        h.request("GetRole", None);
        assert_eq!(h.describe(), Vec::<String>::new());
        assert_eq!(h.status().last_error, None);
    }

    #[test]
    fn an_input_error_is_kept_until_it_is_read_again() {
        let dir = InputHealth::new("cannot read", "readable again");
        dir.failed("gone".into());
        dir.failed("still gone".into());
        assert_eq!(dir.error().as_deref(), Some("still gone"));
        dir.read();
        assert_eq!(dir.error(), None);
    }
}
