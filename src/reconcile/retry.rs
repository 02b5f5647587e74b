//! Retrying IAM calls, reads and writes alike: throttling, 5xx and concurrent modification
//! are retried with exponential backoff until the retry timeout; the two faces of IAM's
//! eventual consistency (NoSuchEntity, "Invalid principal") only within a propagation window;
//! everything else fails at once. The policy lives here, in one place.

use std::future::Future;
use std::time::{Duration, Instant};

use backoff::ExponentialBackoffBuilder;

use crate::iam::{ErrorKind, IamError};

/// How retries are paced: about two minutes in all by default.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max_interval: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// The delay before the next try of something that failed `failures` times in a row (1 for
/// the first): exponential from `initial` by 1.5, capped at `max`, jittered by ±50 % so that
/// keys failing together do not retry together. The one place that paces retries over time
/// (the `backoff` crate stays behind this module).
pub fn failure_delay(failures: u32, initial: Duration, max: Duration) -> Duration {
    let exponent = i32::try_from(failures.saturating_sub(1).min(64)).unwrap_or(64);
    let base = initial.as_secs_f64() * 1.5f64.powi(exponent);
    let capped = base.min(max.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + fastrand::f64()))
}

/// How long IAM's eventual consistency can explain a missing entity or an unknown principal.
/// AWS documents propagation in seconds; past this, the entity is really missing.
pub const PROPAGATION: Duration = Duration::from_secs(30);

/// Which errors of a call IAM's eventual consistency may explain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eventual {
    /// Nothing: NoSuchEntity is an answer (a read), or a fact.
    No,
    /// NoSuchEntity of a resource this process just created or just saw, and "Invalid
    /// principal" of a principal that may have just been created.
    Propagating,
}

/// The verdict on one failed attempt, `elapsed` after the first.
pub fn is_transient(e: &IamError, eventual: Eventual, elapsed: Duration) -> bool {
    let propagating = eventual == Eventual::Propagating && elapsed < PROPAGATION;
    match e.kind {
        ErrorKind::Throttled | ErrorKind::Transient => true,
        ErrorKind::Conflict => matches!(
            e.code.as_deref(),
            Some("ConcurrentModification" | "ConcurrentModificationException")
                | Some("EntityTemporarilyUnmodifiable")
        ),
        ErrorKind::NotFound => propagating,
        ErrorKind::InvalidInput => e.is_invalid_principal() && propagating,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or the policy's time is up. A missing
/// entity or unknown principal that outlives the propagation window says so.
pub async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    eventual: Eventual,
    call: F,
) -> Result<T, IamError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, IamError>>,
{
    let backoff = ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.initial)
        .with_max_interval(policy.max_interval)
        .with_max_elapsed_time(Some(policy.max_elapsed))
        .build();
    let started = Instant::now();
    backoff::future::retry(backoff, || async {
        call().await.map_err(|e| {
            if is_transient(&e, eventual, started.elapsed()) {
                tracing::debug!(error = %e, "retrying");
                backoff::Error::transient(e)
            } else {
                backoff::Error::permanent(e)
            }
        })
    })
    .await
    .map_err(|e| explain(e, eventual, started.elapsed()))
}

/// Says why an eventual-consistency error is final once retrying has given up on it.
fn explain(mut e: IamError, eventual: Eventual, elapsed: Duration) -> IamError {
    if eventual != Eventual::Propagating {
        return e;
    }
    if e.is_invalid_principal() {
        e.message = format!(
            "{} (still refused after {}s: the principal does not exist; a role that was deleted \
             shows in IAM as its unique id, AROA…)",
            e.message,
            elapsed.as_secs()
        );
    } else if e.kind == ErrorKind::NotFound {
        e.message = format!("{} (still missing after {}s)", e.message, elapsed.as_secs());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failures_delay_grows_by_half_is_capped_and_jittered() {
        let (first, last) = (Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..200 {
            let d1 = failure_delay(1, first, last).as_secs_f64();
            assert!((0.5..=1.5).contains(&d1), "{d1}");
            let d3 = failure_delay(3, first, last).as_secs_f64();
            assert!((1.125..=3.375).contains(&d3), "{d3}");
            let d99 = failure_delay(99, first, last).as_secs_f64();
            assert!((150.0..=450.0).contains(&d99), "{d99}");
        }
        // Never more than the cap allows, however many failures.
        assert!(failure_delay(u32::MAX, first, last) <= Duration::from_secs(450));
        // Jittered: keys failing together spread out.
        let spread: std::collections::BTreeSet<u128> = (0..50)
            .map(|_| failure_delay(5, first, last).as_millis())
            .collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

    fn err(kind: ErrorKind, code: &str, message: &str) -> IamError {
        IamError::for_test(kind, code, message)
    }

    #[test]
    fn what_is_retried_and_for_how_long() {
        let early = Duration::from_secs(1);
        let late = PROPAGATION + Duration::from_secs(1);
        let p = Eventual::Propagating;
        let throttled = err(ErrorKind::Throttled, "Throttling", "slow down");
        let concurrent = err(ErrorKind::Conflict, "ConcurrentModification", "busy");
        let unmodifiable = err(ErrorKind::Conflict, "EntityTemporarilyUnmodifiable", "busy");
        let delete_conflict = err(ErrorKind::Conflict, "DeleteConflict", "attached");
        let missing = err(ErrorKind::NotFound, "NoSuchEntity", "role x");
        let principal = err(
            ErrorKind::InvalidInput,
            "MalformedPolicyDocument",
            "Invalid principal in policy: \"AWS\":\"arn:aws:iam::1:role/b\"",
        );
        let malformed = err(ErrorKind::InvalidInput, "MalformedPolicyDocument", "bad");
        let limit = err(ErrorKind::InvalidInput, "LimitExceeded", "too many");
        for (e, eventual, elapsed, expected) in [
            (&throttled, Eventual::No, late, true),
            (&concurrent, Eventual::No, late, true),
            (&unmodifiable, Eventual::No, late, true),
            (&delete_conflict, p, early, false),
            (&missing, p, early, true),
            (&missing, p, late, false),
            (&missing, Eventual::No, early, false),
            (&principal, p, early, true),
            (&principal, p, late, false),
            (&principal, Eventual::No, early, false),
            (&malformed, p, early, false),
            (&limit, p, early, false),
        ] {
            assert_eq!(
                is_transient(e, eventual, elapsed),
                expected,
                "{e} {eventual:?} {elapsed:?}"
            );
        }
    }

    #[test]
    fn a_principal_still_refused_after_the_window_is_named() {
        let e = err(
            ErrorKind::InvalidInput,
            "MalformedPolicyDocument",
            "Invalid principal in policy: \"AWS\":\"AROAEXAMPLE\"",
        );
        let explained = explain(e, Eventual::Propagating, PROPAGATION);
        assert!(explained.message.contains("AROAEXAMPLE"));
        assert!(explained.message.contains("does not exist"));
    }
}
