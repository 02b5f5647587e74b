//! Prometheus metrics. Reconcile code calls one method per event; names live only here.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::manifest::Kind;
use crate::reconcile::ResourceState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    kind: &'static str,
    field: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    duration: Histogram,
    drift: Family<DriftLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    resources: Family<StateLabels, Gauge>,
    last_resync: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let drift = Family::<DriftLabels, Counter>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let resources = Family::<StateLabels, Gauge>::default();
        let last_resync = Gauge::<f64, AtomicU64>::default();
        // The client appends `_total` to counters.
        registry.register(
            "iam_warden_reconcile",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "iam_warden_reconcile_duration_seconds",
            "Time one reconcile took",
            duration.clone(),
        );
        registry.register(
            "iam_warden_drift_corrections",
            "Drifted fields put back",
            drift.clone(),
        );
        registry.register(
            "iam_warden_aws_requests",
            "IAM requests by operation and outcome",
            requests.clone(),
        );
        registry.register(
            "iam_warden_resources",
            "Declared resources by state",
            resources.clone(),
        );
        registry.register(
            "iam_warden_last_resync_timestamp_seconds",
            "When the last full resync started (Unix time)",
            last_resync.clone(),
        );
        Metrics {
            registry,
            reconciles,
            duration,
            drift,
            requests,
            resources,
            last_resync,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, kind: Kind, result: &'static str, seconds: f64) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.as_str(),
                result,
            })
            .inc();
        self.duration.observe(seconds);
    }

    pub fn drift_corrected(&self, kind: Kind, field: &'static str) {
        self.drift
            .get_or_create(&DriftLabels {
                kind: kind.as_str(),
                field,
            })
            .inc();
    }

    pub fn aws_request(&self, operation: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels { operation, outcome })
            .inc();
    }

    pub fn resources(&self, counts: impl IntoIterator<Item = (ResourceState, usize)>) {
        for (state, n) in counts {
            self.resources
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(n as i64);
        }
    }

    pub fn resync_started(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_resync.set(now);
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_metric_is_exported() {
        let m = Metrics::default();
        m.reconciled(Kind::Role, "success", 0.1);
        m.drift_corrected(Kind::Role, "tags");
        m.aws_request("GetRole", "ok");
        m.resources([(ResourceState::InSync, 2)]);
        m.resync_started();
        let text = m.encode();
        for needle in [
            "iam_warden_reconcile_total{kind=\"Role\",result=\"success\"} 1",
            "iam_warden_reconcile_duration_seconds_count 1",
            "iam_warden_drift_corrections_total{kind=\"Role\",field=\"tags\"} 1",
            "iam_warden_aws_requests_total{operation=\"GetRole\",outcome=\"ok\"} 1",
            "iam_warden_resources{state=\"in-sync\"} 2",
            "iam_warden_last_resync_timestamp_seconds ",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from\n{text}");
        }
    }
}
