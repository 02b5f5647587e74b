//! The daemon's HTTP endpoints: /healthz, /readyz, /metrics, /status.
//!
//! /healthz answers 503 with a reason when the daemon is stuck (see `liveness`); /readyz
//! answers 200 once the first full pass has finished, and its body names any condition that
//! holds the daemon back (AWS unreachable or refusing calls, DIR unreadable).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

/// A client that has not sent a whole request head by then is dropped: half-sent requests
/// cannot pile up open connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

use super::Controller;
use super::conditions::AwsHealth;
use super::metrics::Metrics;
use super::status::{StatusBody, bounded_file_errors};

/// What the endpoints read. The controller is attached once the account is known; before that
/// the process is alive but not ready.
#[derive(Clone)]
pub struct Health {
    metrics: Arc<Metrics>,
    aws: Arc<AwsHealth>,
    controller: Arc<OnceLock<Arc<Controller>>>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>, aws: Arc<AwsHealth>) -> Health {
        Health {
            metrics,
            aws,
            controller: Arc::new(OnceLock::new()),
        }
    }

    pub fn attach(&self, controller: Arc<Controller>) {
        let _ = self.controller.set(controller);
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(health);
    let graceful = GracefulShutdown::new();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: try again shortly, never spin.
                    tracing::debug!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    // Answers being written finish; idle connections close.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

async fn healthz(Extract(h): Extract<Health>) -> Response {
    // Before the controller exists the daemon waits for the AWS account: alive.
    match h.controller.get().and_then(|c| c.liveness.problem()) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {why}\n"),
        )
            .into_response(),
    }
}

async fn readyz(Extract(h): Extract<Health>) -> Response {
    let controller = h.controller.get();
    let (code, mut body) = match controller {
        Some(c) if c.ready.load(Ordering::SeqCst) => (StatusCode::OK, "ready\n".to_string()),
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first reconcile pass has not finished\n".to_string(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: waiting to identify the AWS account\n".to_string(),
        ),
    };
    let mut conditions = h.aws.describe();
    if let Some(e) = controller.and_then(|c| c.dir.error()) {
        conditions.push(format!("manifests unreadable: {e}"));
    }
    if let Some(e) = controller.and_then(|c| c.values.error()) {
        conditions.push(format!("values unreadable: {e}"));
    }
    if let Some(n) = controller
        .map(|c| c.generation().errors.len())
        .filter(|n| *n > 0)
    {
        conditions.push(format!(
            "invalid manifests: {n} errors; their resources keep their last good state (fileErrors on /status)"
        ));
    }
    for c in conditions {
        body.push_str(&format!("warning: {c}\n"));
    }
    (code, body).into_response()
}

/// OpenMetrics to a scraper that asks for it (Prometheus does), the 0.0.4 text format to
/// anything else; each under its own content type.
async fn metrics(Extract(h): Extract<Health>, headers: axum::http::HeaderMap) -> Response {
    if let Some(c) = h.controller.get() {
        let (depth, oldest) = c.queue.depth();
        h.metrics.queue(depth, oldest);
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            h.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.metrics.encode_prometheus(),
        )
            .into_response()
    }
}

async fn status(Extract(h): Extract<Health>) -> Response {
    let aws = h.aws.status();
    let Some(c) = h.controller.get() else {
        return Json(StatusBody::starting(aws)).into_response();
    };
    Json(StatusBody {
        ready: c.ready.load(Ordering::SeqCst),
        resources: super::lock(&c.acct.keys).statuses(),
        file_errors: bounded_file_errors(&c.generation().errors),
        aws,
        dir_error: c.dir.error(),
        values_error: c.values.error(),
        prune_refused: c.prune_refused_reason(),
    })
    .into_response()
}
