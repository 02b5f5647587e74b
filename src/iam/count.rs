//! Every IAM and STS request counted by operation and outcome. An SDK interceptor sees each
//! attempt of each call, so each page of a listing and each SDK retry is one request, as IAM's
//! rate limit counts them (the `done` observer sees one call however many it took).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::ErrorKind;
use super::error::{classify, is_credentials_failure};
use super::pace::Pace;

/// Told of every request: its operation and outcome (`ok` or an [`ErrorKind`] name).
pub type RequestSink = Arc<dyn Fn(&str, &'static str) + Send + Sync>;

/// The requests one client made, by operation and outcome.
#[derive(Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
    sink: OnceLock<RequestSink>,
}

impl RequestCounts {
    pub(super) fn record(&self, operation: &str, outcome: &'static str) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            *counts.entry((operation.to_string(), outcome)).or_default() += 1;
        }
        if let Some(sink) = self.sink.get() {
            sink(operation, outcome);
        }
    }

    /// Every request from now on is also told to `sink` (the first sink set stays).
    pub fn set_sink(&self, sink: RequestSink) {
        let _ = self.sink.set(sink);
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// `(operation, outcome) -> requests`, so far.
    pub fn snapshot(&self) -> BTreeMap<(String, &'static str), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `GetRole 3, ListRoles 1 (throttled 1)`: for a log line.
    pub fn summary(&self) -> String {
        let mut by_op: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for ((op, outcome), n) in self.snapshot() {
            let entry = by_op.entry(op).or_default();
            entry.0 += n;
            if outcome != "ok" {
                entry.1.push(format!("{outcome} {n}"));
            }
        }
        by_op
            .into_iter()
            .map(|(op, (n, failed))| match failed.is_empty() {
                true => format!("{op} {n}"),
                false => format!("{op} {n} ({})", failed.join(", ")),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The interceptor that feeds a [`RequestCounts`], and tells the pace of every answer.
pub struct Counting {
    pub counts: Arc<RequestCounts>,
    pub pace: Option<Arc<Pace>>,
}

impl fmt::Debug for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Counting")
    }
}

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "iam-warden request counting"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A first attempt waited for its turn; the SDK's retries did not.
        let retry = cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1);
        if let (true, Some(pace)) = (retry, &self.pace) {
            pace.charge();
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        let outcome = match context.response() {
            // For an operation like IAM's, the body is read into memory before it is parsed.
            Some(response) => response_outcome(response.status().as_u16(), response.body().bytes()),
            None => {
                let failure = match context.output_or_error() {
                    Some(Err(e)) => format!("{e:?}"),
                    _ => String::new(),
                };
                unanswered_outcome(&failure)
            }
        };
        if let (Some(pace), Some(_)) = (&self.pace, context.response()) {
            pace.answered(outcome == ErrorKind::Throttled.as_str());
        }
        self.counts.record(operation, outcome);
        Ok(())
    }
}

/// The outcome of a request that got an answer.
pub fn response_outcome(status: u16, body: Option<&[u8]>) -> &'static str {
    if (200..300).contains(&status) {
        return "ok";
    }
    let code = body.and_then(error_code);
    classify(code, status).as_str()
}

/// The outcome of a request that got no answer: no credentials to sign it, or the network.
pub fn unanswered_outcome(failure: &str) -> &'static str {
    match is_credentials_failure(failure) {
        true => ErrorKind::NoCredentials.as_str(),
        false => ErrorKind::Transient.as_str(),
    }
}

/// `<Code>…</Code>` of an AWS query-protocol error body.
fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_classified_by_its_status_and_error_code() {
        assert_eq!(response_outcome(200, Some(b"<ok/>")), "ok");
        let throttled = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
            <Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(response_outcome(400, Some(throttled)), "throttled");
        let missing = b"<ErrorResponse><Error><Code>NoSuchEntity</Code></Error></ErrorResponse>";
        assert_eq!(response_outcome(404, Some(missing)), "not_found");
        assert_eq!(response_outcome(503, None), "transient");
        assert_eq!(response_outcome(400, Some(b"not xml")), "other");
        assert_eq!(response_outcome(400, Some(b"<Code>unterminated")), "other");
    }

    #[test]
    fn no_answer_is_transient_unless_no_credentials_were_found() {
        assert_eq!(
            unanswered_outcome("io error: connection refused"),
            "transient"
        );
        assert_eq!(
            unanswered_outcome("failed to load credentials from the provider chain"),
            "no_credentials"
        );
    }

    #[test]
    fn counts_add_up_by_operation_and_outcome_and_reach_the_sink() {
        let counts = RequestCounts::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        counts.set_sink(Arc::new(move |op, outcome| {
            s.lock().unwrap().push(format!("{op}/{outcome}"))
        }));
        counts.record("ListRoles", "ok");
        counts.record("ListRoles", "ok");
        counts.record("ListRoles", "throttled");
        counts.record("GetRole", "ok");
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.summary(), "GetRole 1, ListRoles 3 (throttled 1)");
        assert_eq!(seen.lock().unwrap().len(), 4);
        assert_eq!(counts.snapshot()[&("ListRoles".to_string(), "ok")], 2);
    }
}
