//! A token bucket shared by every IAM request (`--max-requests-per-second`): a large converge
//! paces itself instead of being throttled by IAM's per-account rate limit. It sits in the
//! SDK's HTTP client, so every attempt of every call, each page of a listing included, waits
//! for its token; the SDK's own retries stay on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
    http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

/// Up to `rate` requests a second, with bursts of up to `rate`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    /// Tokens available, and when they were counted (tokio's clock, which tests can pause).
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: u32) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Waits until a token is free, and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
                *s = ((s.0 + refill).min(self.rate), now);
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - s.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[derive(Debug)]
struct Paced {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
}

impl HttpConnector for Paced {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = self.bucket.clone();
        HttpConnectorFuture::new(async move {
            bucket.acquire().await;
            inner.call(request).await
        })
    }
}

/// `inner`, with every request waiting for a token of `bucket`.
pub fn paced(inner: SharedHttpClient, bucket: Arc<TokenBucket>) -> SharedHttpClient {
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Paced {
            inner: inner.http_connector(settings, components),
            bucket: bucket.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_lets_a_burst_through_then_paces_at_its_rate() {
        let bucket = TokenBucket::new(10);
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(5));
        for _ in 0..20 {
            bucket.acquire().await;
        }
        let paced = start.elapsed();
        assert!(
            paced >= Duration::from_millis(1900) && paced <= Duration::from_millis(2200),
            "{paced:?}"
        );
    }
}
