//! The daemon's HTTP endpoints: /healthz, /readyz, /metrics, /status.
//!
//! /healthz answers 503 with a reason when the daemon is stuck (see `liveness`); /readyz
//! answers 200 once the first full pass has finished, and its body names any condition that
//! holds the daemon back (AWS unreachable or refusing calls, DIR unreadable).

use std::sync::Arc;
use std::sync::atomic::Ordering;
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

use super::metrics::Metrics;
use super::slot::Slot;
use super::status::{ManyStatus, StatusBody, bounded_file_errors};

/// What the endpoints read: every account's slot, its controller attached once the account is
/// known; before that the account is alive but not ready.
#[derive(Clone)]
pub struct Health {
    metrics: Metrics,
    /// Grows as an organization's new accounts are found.
    slots: Arc<std::sync::RwLock<Vec<Arc<Slot>>>>,
    /// An accounts file's accounts: endpoints name them (else exactly one account, unnamed).
    many: bool,
}

impl Health {
    pub fn new(
        metrics: Metrics,
        slots: Arc<std::sync::RwLock<Vec<Arc<Slot>>>>,
        many: bool,
    ) -> Health {
        Health {
            metrics,
            slots,
            many,
        }
    }

    /// Every account's slot, as now.
    fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The only account's slot, without an accounts file.
    fn single(&self) -> Option<Arc<Slot>> {
        match self.many {
            true => None,
            false => self.slots().first().cloned(),
        }
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
        .route("/", get(page))
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
    // Before its controller exists an account waits for its identity: alive.
    let problems: Vec<String> = h
        .slots()
        .iter()
        .filter_map(|s| {
            let why = s.controller.get()?.liveness.problem()?;
            Some(match s.name() {
                Some(name) => format!("account {name}: {why}"),
                None => why,
            })
        })
        .collect();
    match problems.is_empty() {
        true => (StatusCode::OK, "ok\n").into_response(),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", problems.join("; ")),
        )
            .into_response(),
    }
}

async fn readyz(Extract(h): Extract<Health>) -> Response {
    let Some(slot) = h.single() else {
        return readyz_accounts(&h);
    };
    let controller = slot.controller.get();
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
    for c in conditions(&slot) {
        body.push_str(&format!("warning: {c}\n"));
    }
    (code, body).into_response()
}

/// What holds one account back: AWS's answers, DIR, values, invalid manifests.
fn conditions(slot: &Slot) -> Vec<String> {
    let controller = slot.controller.get();
    let mut conditions = slot.aws.describe();
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
    conditions
}

/// Many accounts: ready once every account that could be identified has finished its first
/// pass. One that cannot be reached (its role cannot be assumed) is a condition of its own,
/// not a reason to hold the others' readiness: it is retried meanwhile.
fn readyz_accounts(h: &Health) -> Response {
    let mut waiting = Vec::new();
    let mut unreachable = 0;
    let mut lines = Vec::new();
    let slots = h.slots();
    for slot in slots.iter() {
        let name = slot.name().unwrap_or("-");
        match slot.controller.get() {
            Some(c) if !c.ready.load(Ordering::SeqCst) => waiting.push(name),
            Some(_) => {}
            None => match super::lock(&slot.unreachable).clone() {
                Some(why) => {
                    unreachable += 1;
                    lines.push(format!("warning: account {name}: {why}\n"));
                }
                None => waiting.push(name),
            },
        }
        for c in conditions(slot) {
            lines.push(format!("warning: account {name}: {c}\n"));
        }
    }
    let (code, head) = match waiting.is_empty() {
        true => (
            StatusCode::OK,
            match unreachable {
                0 => format!("ready: {} of {} accounts\n", slots.len(), slots.len()),
                n => format!(
                    "ready: {} of {} accounts ({n} unreachable, retried)\n",
                    slots.len() - n,
                    slots.len()
                ),
            },
        ),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the first reconcile pass has not finished in account {}\n",
                waiting.join(", ")
            ),
        ),
    };
    (code, head + &lines.concat()).into_response()
}

/// OpenMetrics to a scraper that asks for it (Prometheus does), the 0.0.4 text format to
/// anything else; each under its own content type.
async fn metrics(Extract(h): Extract<Health>, headers: axum::http::HeaderMap) -> Response {
    for c in h.slots().iter().filter_map(|s| s.controller.get()) {
        let (depth, oldest) = c.queue.depth();
        c.metrics.queue(depth, oldest);
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
    Json(status_json(&h)).into_response()
}

/// The body of /status: one account's, or every account's with an accounts file.
fn status_json(h: &Health) -> serde_json::Value {
    let value = match h.single() {
        Some(slot) => serde_json::to_value(account_status(&slot)),
        None => {
            let accounts = h.slots().into_iter().map(|slot| {
                (
                    slot.name().unwrap_or_default().to_string(),
                    slot.spec.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
                    super::lock(&slot.unreachable).clone(),
                    account_status(&slot),
                )
            });
            serde_json::to_value(ManyStatus::new(accounts))
        }
    };
    // Serializing plain structs of strings and numbers cannot fail.
    value.unwrap_or_default()
}

/// `/`: the status page, read from the very JSON /status serves.
async fn page(Extract(h): Extract<Health>) -> Response {
    match crate::view::Status::from_json(status_json(&h)) {
        Ok(status) => (
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::view::page::render(&status, std::time::SystemTime::now()),
        )
            .into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn account_status(slot: &Slot) -> StatusBody {
    let aws = slot.aws.status();
    let Some(c) = slot.controller.get() else {
        return StatusBody::starting(aws);
    };
    StatusBody {
        ready: c.ready.load(Ordering::SeqCst),
        resources: super::lock(&c.acct.keys).statuses(),
        file_errors: bounded_file_errors(&c.generation().errors),
        aws,
        dir_error: c.dir.error(),
        values_error: c.values.error(),
        prune_refused: c.prune_refused_reason(),
    }
}
