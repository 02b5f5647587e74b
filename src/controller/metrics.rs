//! Prometheus metrics. Reconcile code calls one method per event; names live only here.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
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
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// A series' labels with the account's first (none without `--accounts`: the series are
/// exactly a single account's).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct In<L> {
    account: Option<Arc<str>>,
    labels: L,
}

impl<L: EncodeLabelSet> EncodeLabelSet for In<L> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        if let Some(account) = &self.account {
            ("account", account.as_ref()).encode(encoder.encode_label())?;
        }
        self.labels.encode(encoder)
    }
}

/// No labels of a metric's own.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Nothing;

impl EncodeLabelSet for Nothing {
    fn encode(&self, _: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

type Histograms = Family<In<Nothing>, Histogram, fn() -> Histogram>;
type Times = Family<In<Nothing>, Gauge<f64, AtomicU64>>;

/// Every series of the process, registered once.
struct Families {
    registry: Registry,
    reconciles: Family<In<ReconcileLabels>, Counter>,
    duration: Histograms,
    drift: Family<In<DriftLabels>, Counter>,
    requests: Family<In<RequestLabels>, Counter>,
    resources: Family<In<StateLabels>, Gauge>,
    last_resync: Times,
    last_good_resync: Times,
    resync_duration: Histograms,
    queue_depth: Family<In<Nothing>, Gauge>,
    queue_oldest: Times,
    prune_refused: Family<In<Nothing>, Gauge>,
}

/// The metrics of one account (of the only one without `--accounts`): every handle writes
/// into the same registry, its series labelled with its account.
#[derive(Clone)]
pub struct Metrics {
    families: Arc<Families>,
    account: Option<Arc<str>>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Default for Metrics {
    /// The metrics of the only account (no `--accounts`): no `account` label.
    fn default() -> Self {
        Metrics::with(Families::new(), None)
    }
}

impl Families {
    fn new() -> Arc<Families> {
        let mut registry = Registry::default();
        let reconciles = Family::default();
        let duration: Histograms =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        let drift = Family::default();
        let requests = Family::default();
        let resources = Family::default();
        let last_resync = Times::default();
        let last_good_resync = Times::default();
        let resync_duration: Histograms =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 14)));
        let queue_depth = Family::default();
        let queue_oldest = Times::default();
        let prune_refused = Family::default();
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
        registry.register(
            "iam_warden_last_successful_resync_timestamp_seconds",
            "When the last resync that read the account finished (Unix time)",
            last_good_resync.clone(),
        );
        registry.register(
            "iam_warden_resync_duration_seconds",
            "Time one resync took (reading the account and queueing what differs)",
            resync_duration.clone(),
        );
        registry.register(
            "iam_warden_queue_depth",
            "Resources waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "iam_warden_queue_oldest_item_age_seconds",
            "How long the longest-waiting queued resource has waited",
            queue_oldest.clone(),
        );
        registry.register(
            "iam_warden_prune_refused_deletions",
            "Deletions --max-prune holds back (0 when within the limit)",
            prune_refused.clone(),
        );
        Arc::new(Families {
            prune_refused,
            registry,
            reconciles,
            duration,
            drift,
            requests,
            resources,
            last_resync,
            last_good_resync,
            resync_duration,
            queue_depth,
            queue_oldest,
        })
    }
}

/// How one reconcile ended: the `result` label of `iam_warden_reconcile_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    Success,
    /// Left alone: not owned, immutable field, a needed policy failing.
    Conflict,
    Error,
    /// A bug: the reconcile panicked and was caught.
    Panic,
    /// An undeclared resource deleted.
    Pruned,
}

impl ReconcileResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Conflict => "conflict",
            ReconcileResult::Error => "error",
            ReconcileResult::Panic => "panic",
            ReconcileResult::Pruned => "pruned",
        }
    }
}

impl Metrics {
    fn with(families: Arc<Families>, account: Option<Arc<str>>) -> Metrics {
        let m = Metrics { families, account };
        // A series of its own exists from the start, at 0, as a plain gauge would.
        let f = &m.families;
        let _ = f.duration.get_or_create(&m.none());
        let _ = f.resync_duration.get_or_create(&m.none());
        let _ = f.last_resync.get_or_create(&m.none());
        let _ = f.last_good_resync.get_or_create(&m.none());
        let _ = f.queue_depth.get_or_create(&m.none());
        let _ = f.queue_oldest.get_or_create(&m.none());
        let _ = f.prune_refused.get_or_create(&m.none());
        m
    }

    /// The registry of many accounts, each with its handle from [`Metrics::for_account`] (this
    /// one holds no series of its own).
    pub fn of_accounts() -> Metrics {
        Metrics {
            families: Families::new(),
            account: None,
        }
    }

    /// The metrics of the account `name`, in the same registry.
    pub fn for_account(&self, name: &str) -> Metrics {
        Metrics::with(self.families.clone(), Some(Arc::from(name)))
    }

    fn labels<L>(&self, labels: L) -> In<L> {
        In {
            account: self.account.clone(),
            labels,
        }
    }

    fn none(&self) -> In<Nothing> {
        self.labels(Nothing)
    }

    pub fn prune_refused(&self, deletions: usize) {
        self.families
            .prune_refused
            .get_or_create(&self.none())
            .set(i64::try_from(deletions).unwrap_or(i64::MAX));
    }

    pub fn reconciled(&self, kind: Kind, result: ReconcileResult, seconds: f64) {
        self.families
            .reconciles
            .get_or_create(&self.labels(ReconcileLabels {
                kind: kind.as_str(),
                result: result.as_str(),
            }))
            .inc();
        self.families
            .duration
            .get_or_create(&self.none())
            .observe(seconds);
    }

    pub fn drift_corrected(&self, kind: Kind, field: &'static str) {
        self.families
            .drift
            .get_or_create(&self.labels(DriftLabels {
                kind: kind.as_str(),
                field,
            }))
            .inc();
    }

    /// One IAM request (an attempt, a page); `outcome` is `ok` or an error kind's name.
    pub fn aws_request(&self, operation: &str, outcome: &'static str) {
        self.families
            .requests
            .get_or_create(&self.labels(RequestLabels {
                operation: operation.to_string(),
                outcome,
            }))
            .inc();
    }

    pub fn resources(&self, counts: impl IntoIterator<Item = (ResourceState, usize)>) {
        for (state, n) in counts {
            self.families
                .resources
                .get_or_create(&self.labels(StateLabels {
                    state: state.as_str(),
                }))
                .set(n as i64);
        }
    }

    pub fn resync_started(&self) {
        self.families
            .last_resync
            .get_or_create(&self.none())
            .set(unix_now());
    }

    /// A resync finished; `read_account` is false when the account could not be read.
    pub fn resync_finished(&self, seconds: f64, read_account: bool) {
        self.families
            .resync_duration
            .get_or_create(&self.none())
            .observe(seconds);
        if read_account {
            self.families
                .last_good_resync
                .get_or_create(&self.none())
                .set(unix_now());
        }
    }

    /// The work queue, as seen at scrape time.
    pub fn queue(&self, depth: usize, oldest: std::time::Duration) {
        self.families
            .queue_depth
            .get_or_create(&self.none())
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.families
            .queue_oldest
            .get_or_create(&self.none())
            .set(oldest.as_secs_f64());
    }

    /// The Prometheus text format.
    /// The OpenMetrics text (`application/openmetrics-text; version=1.0.0`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.families.registry);
        out
    }

    /// The same series as Prometheus's text format 0.0.4, for a scraper that does not ask
    /// for OpenMetrics (see [`prometheus_text`]).
    pub fn encode_prometheus(&self) -> String {
        prometheus_text(&self.encode())
    }
}

/// OpenMetrics text turned into Prometheus text format 0.0.4: no `# EOF` or `# UNIT` lines,
/// and a counter's HELP and TYPE name its `_total` series, as 0.0.4 expects (OpenMetrics
/// names the family without the suffix).
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_series_and_has_no_eof() {
        let m = Metrics::default();
        m.reconciled(Kind::Role, ReconcileResult::Success, 0.1);
        let open = m.encode();
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(
            open.contains("# TYPE iam_warden_reconcile counter"),
            "{open}"
        );
        let text = m.encode_prometheus();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE iam_warden_reconcile_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# HELP iam_warden_reconcile_total "),
            "{text}"
        );
        assert!(text.contains("iam_warden_reconcile_total{kind=\"Role\",result=\"success\"} 1"));
        // Gauges and histograms keep their names.
        assert!(
            text.contains("# TYPE iam_warden_queue_depth gauge"),
            "{text}"
        );
    }

    #[test]
    fn every_documented_metric_is_exported() {
        let m = Metrics::default();
        m.reconciled(Kind::Role, ReconcileResult::Success, 0.1);
        m.drift_corrected(Kind::Role, "tags");
        m.aws_request("GetRole", "ok");
        m.resources([(ResourceState::InSync, 2)]);
        m.resync_started();
        m.resync_finished(0.5, true);
        m.queue(3, std::time::Duration::from_secs(2));
        m.prune_refused(4);
        let text = m.encode();
        for needle in [
            "iam_warden_reconcile_total{kind=\"Role\",result=\"success\"} 1",
            "iam_warden_reconcile_duration_seconds_count 1",
            "iam_warden_drift_corrections_total{kind=\"Role\",field=\"tags\"} 1",
            "iam_warden_aws_requests_total{operation=\"GetRole\",outcome=\"ok\"} 1",
            "iam_warden_resources{state=\"in-sync\"} 2",
            "iam_warden_last_resync_timestamp_seconds ",
            "iam_warden_last_successful_resync_timestamp_seconds ",
            "iam_warden_resync_duration_seconds_count 1",
            "iam_warden_queue_depth 3",
            "iam_warden_queue_oldest_item_age_seconds 2",
            "iam_warden_prune_refused_deletions 4",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from\n{text}");
        }
    }

    #[test]
    fn an_account_labels_its_series_and_a_single_account_has_none() {
        let single = Metrics::default();
        single.aws_request("GetRole", "ok");
        let text = single.encode();
        assert!(
            text.contains("iam_warden_aws_requests_total{operation=\"GetRole\",outcome=\"ok\"} 1")
        );
        assert!(text.contains("\niam_warden_queue_depth 0\n"), "{text}");
        assert!(!text.contains("account="), "{text}");

        let many = Metrics::of_accounts();
        let prod = many.for_account("prod");
        let dev = many.for_account("dev");
        prod.aws_request("GetRole", "ok");
        dev.queue(5, std::time::Duration::from_secs(1));
        prod.resources([(ResourceState::InSync, 3)]);
        let text = many.encode();
        assert!(!text.contains("\niam_warden_queue_depth 0"), "{text}");
        for needle in [
            "iam_warden_aws_requests_total{account=\"prod\",operation=\"GetRole\",outcome=\"ok\"} 1",
            "iam_warden_queue_depth{account=\"dev\"} 5",
            "iam_warden_queue_depth{account=\"prod\"} 0",
            "iam_warden_resources{account=\"prod\",state=\"in-sync\"} 3",
            "iam_warden_prune_refused_deletions{account=\"dev\"} 0",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from\n{text}");
        }
        // One HELP per family, whatever the accounts.
        assert_eq!(text.matches("# HELP iam_warden_queue_depth ").count(), 1);
    }
}
