//! The daemon, `iam-warden run`: a level-triggered operator over a directory of manifests.
//!
//! The story: a [`Controller`] carries everything a reconcile needs (IAM, the desired state,
//! status, metrics). Triggers (the file watcher, the resync timer, SIGHUP) put keys on a work
//! queue; workers take keys and [`Controller::reconcile`] them; a failed key comes back after
//! its own backoff (`Controller::error_policy`). The resync (`resync`) compares a bulk
//! snapshot of the account; `prune` deletes what no manifest declares when asked to. The HTTP
//! server reads status and metrics.

pub mod desired;
mod http;
pub mod metrics;
mod prune;
pub mod queue;
mod resync;
pub mod status;
mod watch;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use tokio::sync::{mpsc, watch as signal_watch};
use tracing::{info, warn};

use crate::iam::{Account, Iam};
use crate::manifest::{Diagnostic, Kind, Resource, Variables};
use crate::reconcile::ResourceState;
use crate::reconcile::{self, Context, Executor, ResourcePlan, RetryPolicy};
use desired::{DesiredStore, Key};
use metrics::Metrics;
use queue::WorkQueue;
use status::StatusBoard;

/// Settings of the daemon, from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub values: Vec<PathBuf>,
    pub vars: Vec<String>,
    pub owner: String,
    pub ignore_tag_prefixes: Vec<String>,
    pub observe_only: bool,
    /// Delete owned resources no manifest declares (never while any manifest is invalid).
    pub prune: bool,
    pub workers: usize,
    pub resync_interval: Duration,
    pub shutdown_timeout: Duration,
    pub listen: SocketAddr,
    pub retry: RetryPolicy,
}

/// Per-key backoff after a failure: about 1 s at first, at most about 5 min.
fn new_backoff() -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(300),
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

pub struct Controller {
    config: Config,
    iam: Iam,
    vars: Mutex<Variables>,
    desired: Mutex<DesiredStore>,
    ctx: RwLock<Context>,
    pub(crate) queue: Arc<WorkQueue<Key>>,
    pub(crate) status: Mutex<StatusBoard>,
    pub(crate) metrics: Arc<Metrics>,
    backoffs: Mutex<HashMap<Key, ExponentialBackoff>>,
    /// The spec each key last converged to: a difference from it is a manifest edit being
    /// applied, not drift.
    converged: Mutex<HashMap<Key, Resource>>,
    first_pass: Mutex<HashSet<Key>>,
    pub(crate) ready: AtomicBool,
    resyncing: AtomicBool,
    /// ARNs of undeclared owned policies found for pruning, by name.
    prune_arns: Mutex<HashMap<String, String>>,
}

/// Locks a mutex, keeping going if a panicking thread poisoned it: every critical section
/// here leaves its data consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Controller {
    pub fn new(
        config: Config,
        iam: Iam,
        account: Account,
        vars: Variables,
        metrics: Arc<Metrics>,
    ) -> Arc<Controller> {
        let ctx = Context::new(
            &config.owner,
            &config.ignore_tag_prefixes,
            &account,
            &Default::default(),
        );
        Arc::new(Controller {
            config,
            iam,
            vars: Mutex::new(vars),
            desired: Mutex::new(DesiredStore::default()),
            ctx: RwLock::new(ctx),
            queue: WorkQueue::new(),
            status: Mutex::new(StatusBoard::default()),
            metrics,
            backoffs: Mutex::new(HashMap::new()),
            converged: Mutex::new(HashMap::new()),
            first_pass: Mutex::new(HashSet::new()),
            ready: AtomicBool::new(false),
            resyncing: AtomicBool::new(false),
            prune_arns: Mutex::new(HashMap::new()),
        })
    }

    /// Current manifest errors, for /status.
    pub fn file_errors(&self) -> Vec<Diagnostic> {
        lock(&self.desired).errors()
    }

    /// Reads DIR again and queues what changed. Bad files keep their last good state.
    pub fn reload(&self) {
        let vars = {
            let mut current = lock(&self.vars);
            match Variables::load(&self.config.values, &self.config.vars) {
                Ok(v) => *current = v.with_builtins(current.builtins().clone()),
                Err(e) => warn!(error = %e, "cannot read values; keeping the previous ones"),
            }
            current.clone()
        };
        let mut store = lock(&self.desired);
        let reloaded = match store.reload(&self.config.dir, &vars) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read manifests; keeping the last desired state");
                return;
            }
        };
        for d in &reloaded.new_errors {
            warn!(file = %d.file.display(), "invalid manifest, its resources keep their last good state: {d}");
        }
        let keys = store.keys();
        let declared: HashSet<&Key> = keys.iter().collect();
        let previous = self.ctx.read().unwrap_or_else(|p| p.into_inner()).clone();
        let ctx = Context::new(
            &self.config.owner,
            &self.config.ignore_tag_prefixes,
            &previous.account,
            store.state(),
        );
        drop(store);
        *self.ctx.write().unwrap_or_else(|p| p.into_inner()) = ctx;
        lock(&self.status).track(&keys);
        if !reloaded.changed.is_empty() {
            info!(changed = reloaded.changed.len(), "manifests changed");
        }
        let may_prune = self.may_prune();
        for key in reloaded.changed {
            if declared.contains(&key) {
                self.queue.add(key);
            } else if may_prune {
                // No longer declared: a prune candidate, checked again before any delete.
                if let Some(arn) = previous
                    .policy_arn(&key.1)
                    .filter(|_| key.0 == Kind::Policy)
                {
                    lock(&self.prune_arns).insert(key.1.clone(), arn.clone());
                }
                self.queue.add(key);
            }
        }
        self.update_resource_gauge();
    }

    /// One reconcile of one key: observe, plan, and (unless observe-only) apply.
    pub async fn reconcile(&self, key: &Key) {
        let started = Instant::now();
        let Some(resource) = lock(&self.desired).get(key) else {
            if self.may_prune() {
                self.prune(key).await;
            }
            self.first_pass_done(key);
            return;
        };
        let ctx = self.ctx.read().unwrap_or_else(|p| p.into_inner()).clone();
        let outcome =
            match reconcile::observe_one(&self.iam, &ctx, &resource, &self.config.retry).await {
                Ok(plan) => self.act(key, &resource, plan).await,
                Err(f) => Outcome {
                    state: ResourceState::Error,
                    arn: None,
                    error: Some(f.error),
                    corrections: 0,
                },
            };
        let result = match outcome.state {
            ResourceState::Error => "error",
            ResourceState::Conflict => "conflict",
            _ => "success",
        };
        self.metrics
            .reconciled(key.0, result, started.elapsed().as_secs_f64());
        let failed = outcome.state == ResourceState::Error;
        let mut status = lock(&self.status);
        let resource = format!("{}/{}", key.0, key.1);
        match (&outcome.error, outcome.state) {
            (Some(e), ResourceState::Error) => {
                warn!(resource = %resource, error = %e, "reconcile failed")
            }
            // A conflict repeats at every resync: say it when it starts, not every time.
            (Some(e), ResourceState::Conflict)
                if status.state_of(key) != Some(ResourceState::Conflict) =>
            {
                warn!(resource = %resource, "left alone: {e}")
            }
            _ => {}
        }
        status.record(
            key,
            outcome.state,
            outcome.arn,
            outcome.error,
            outcome.corrections,
        );
        drop(status);
        self.update_resource_gauge();
        self.error_policy(key, failed);
        self.first_pass_done(key);
    }

    async fn act(&self, key: &Key, spec: &Resource, plan: ResourcePlan) -> Outcome {
        let arn = plan.arn.clone();
        let resource = format!("{}/{}", key.0, key.1);
        let outcome = |state, error, corrections| Outcome {
            state,
            arn: arn.clone(),
            error,
            corrections,
        };
        if !plan.findings.is_empty() {
            let error = plan
                .findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return outcome(ResourceState::Conflict, Some(error), 0);
        }
        if plan.changes.is_empty() {
            lock(&self.converged).insert(key.clone(), spec.clone());
            return outcome(ResourceState::InSync, None, 0);
        }
        let edited = lock(&self.converged)
            .get(key)
            .is_some_and(|last| !desired::same_spec(last, spec));
        let is_drift = !edited && !plan.changes.iter().any(|c| c.is_create());
        // Each write is logged by the executor as it happens; here only why it happens.
        if is_drift {
            let fields: Vec<&str> = plan.changes.iter().map(|c| c.field()).collect();
            let summary: Vec<String> = plan
                .changes
                .iter()
                .map(reconcile::render::summary)
                .collect();
            warn!(resource = %resource, fields = ?fields, "drift found: {}", summary.join("; "));
        } else {
            info!(resource = %resource, changes = plan.changes.len(), "applying the manifest");
        }
        if self.config.observe_only {
            let state = if is_drift {
                ResourceState::Drifted
            } else {
                ResourceState::Pending
            };
            return outcome(state, None, 0);
        }
        let executor = Executor {
            iam: &self.iam,
            owner: &self.config.owner,
            retry: self.config.retry.clone(),
        };
        match executor.apply(&plan).await {
            Ok(n) => {
                lock(&self.converged).insert(key.clone(), spec.clone());
                if is_drift {
                    for change in &plan.changes {
                        self.metrics.drift_corrected(key.0, change.field());
                    }
                }
                outcome(
                    ResourceState::InSync,
                    None,
                    if is_drift { n as u64 } else { 0 },
                )
            }
            Err(e) => outcome(ResourceState::Error, Some(e.to_string()), 0),
        }
    }

    /// The retry policy, in one place: a failed key comes back after its own growing, jittered
    /// delay; a success resets it. Other keys are never held up.
    fn error_policy(&self, key: &Key, failed: bool) {
        let mut backoffs = lock(&self.backoffs);
        if !failed {
            backoffs.remove(key);
            return;
        }
        let delay = backoffs
            .entry(key.clone())
            .or_insert_with(new_backoff)
            .next_backoff()
            .unwrap_or(Duration::from_secs(300));
        drop(backoffs);
        self.queue.add_after(key.clone(), delay);
    }

    fn first_pass_done(&self, key: &Key) {
        let mut pending = lock(&self.first_pass);
        pending.remove(key);
        if pending.is_empty() && !self.ready.swap(true, Ordering::SeqCst) {
            info!("first full reconcile pass finished: ready");
        }
    }

    fn update_resource_gauge(&self) {
        let status = lock(&self.status);
        self.metrics
            .resources(ResourceState::ALL.iter().map(|s| (*s, status.count(*s))));
    }
}

struct Outcome {
    state: ResourceState,
    arn: Option<String>,
    error: Option<String>,
    corrections: u64,
}

/// Runs the daemon until SIGTERM or SIGINT; returns when in-flight work has finished (or the
/// shutdown timeout passed).
pub async fn run(config: Config, iam: Iam, vars: Variables) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let iam = {
        let m = metrics.clone();
        iam.with_observer(Arc::new(move |op, outcome| m.aws_request(op, outcome)))
    };
    let (stop_tx, stop_rx) = signal_watch::channel(false);
    let signals = tokio::spawn(handle_signals(stop_tx));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    info!(
        "serving /healthz /readyz /metrics /status on http://{}",
        listener.local_addr()?
    );
    let health = http::Health::new(metrics.clone());
    let server = tokio::spawn(http::serve(listener, health.clone(), stop_rx.clone()));

    let Some(account) = account_with_retry(&iam, stop_rx.clone()).await else {
        let _ = server.await;
        return Ok(());
    };
    let vars = vars.with_builtins(iam.builtins(&account));
    let controller = Controller::new(config.clone(), iam, account, vars, metrics);
    health.attach(controller.clone());
    controller.reload();
    *lock(&controller.first_pass) = lock(&controller.desired).keys().into_iter().collect();
    if lock(&controller.first_pass).is_empty() {
        controller.ready.store(true, Ordering::SeqCst);
    }
    // The first pass reconciles everything that reload() queued.
    controller.metrics.resync_started();

    let mut workers = Vec::new();
    for _ in 0..config.workers {
        let c = controller.clone();
        workers.push(tokio::spawn(async move {
            while let Some(key) = c.queue.next().await {
                c.reconcile(&key).await;
                c.queue.done(&key);
            }
        }));
    }
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(config.dir.clone(), reload_tx.clone()));
    let triggers = tokio::spawn(triggers(controller.clone(), reload_rx, reload_tx));

    let mut stop = stop_rx.clone();
    let _ = stop.wait_for(|s| *s).await;
    info!("stopping: no new work; waiting for in-flight reconciles");
    controller.queue.close();
    watcher.abort();
    triggers.abort();
    let drain = futures::future::join_all(workers);
    if tokio::time::timeout(config.shutdown_timeout, drain)
        .await
        .is_err()
    {
        warn!("in-flight reconciles did not finish within the shutdown timeout");
    }
    let _ = server.await;
    signals.abort();
    info!("stopped");
    Ok(())
}

/// The account, retried until it answers: the daemon does not die when AWS is unreachable.
async fn account_with_retry(iam: &Iam, mut stop: signal_watch::Receiver<bool>) -> Option<Account> {
    let mut backoff = new_backoff();
    loop {
        match iam.account().await {
            Ok(a) => return Some(a),
            Err(e) => warn!(error = %e, "cannot identify the AWS account yet"),
        }
        let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(300));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
}

/// File changes reload; the timer resyncs (a little jittered, so replicas do not align);
/// SIGHUP does both.
async fn triggers(
    controller: Arc<Controller>,
    mut reload_rx: mpsc::UnboundedReceiver<()>,
    reload_tx: mpsc::UnboundedSender<()>,
) {
    let interval = controller.config.resync_interval;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // A resync reads the whole account: it runs on its own, so file events are not held up.
    let resync = |c: &Arc<Controller>| {
        let c = Arc::clone(c);
        tokio::spawn(async move { c.resync().await });
    };
    loop {
        let jittered = interval.mul_f64(0.9 + 0.2 * fastrand::f64());
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(()) = reload_rx.recv() => controller.reload(),
            _ = tokio::time::sleep(jittered) => {
                // A missed file event must not outlive one interval either.
                controller.reload();
                resync(&controller);
            }
            _ = hup_recv => {
                info!("SIGHUP: reload and resync");
                let _ = reload_tx.send(());
                resync(&controller);
            }
        }
    }
}

async fn handle_signals(stop: signal_watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
    let _ = stop.send(true);
}
