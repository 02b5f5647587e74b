//! The daemon's HTTP endpoints: /healthz, /readyz, /metrics, /status.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::Controller;
use super::metrics::Metrics;

/// What the endpoints read. The controller is attached once the account is known; before that
/// the process is alive but not ready.
#[derive(Clone)]
pub struct Health {
    metrics: Arc<Metrics>,
    controller: Arc<OnceLock<Arc<Controller>>>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
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
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(health);
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn readyz(Extract(h): Extract<Health>) -> Response {
    match h.controller.get() {
        Some(c) if c.ready.load(Ordering::SeqCst) => (StatusCode::OK, "ready\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first reconcile pass has not finished\n",
        )
            .into_response(),
    }
}

async fn metrics(Extract(h): Extract<Health>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.metrics.encode(),
    )
        .into_response()
}

async fn status(Extract(h): Extract<Health>) -> Response {
    let Some(c) = h.controller.get() else {
        return Json(serde_json::json!({"ready": false, "resources": [], "fileErrors": []}))
            .into_response();
    };
    let resources = super::lock(&c.status).all();
    let file_errors: Vec<String> = c.file_errors().iter().map(ToString::to_string).collect();
    Json(serde_json::json!({
        "ready": c.ready.load(Ordering::SeqCst),
        "resources": resources,
        "fileErrors": file_errors,
    }))
    .into_response()
}
