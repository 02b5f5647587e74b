//! The daemon, `iam-warden run`: a level-triggered operator over a directory of manifests.
//!
//! The story: a [`Controller`] carries everything a reconcile needs: IAM, the loaded
//! [`Generation`] of the desired state (swapped whole on reload), one record per key (`keys`:
//! status, backoff, converged spec, contest), metrics. Triggers (the file watcher, the resync
//! timer on a fixed schedule, SIGHUP) put keys on a work queue; workers take keys and
//! [`Controller::reconcile`] them, a panic included; a failed key comes back after its own
//! backoff (`Controller::error_policy`), after at most a short in-place retry. The resync
//! (`resync`) compares a bulk snapshot of the account; `prune` deletes what no manifest
//! declares when asked to; `contest` notices fights. `conditions` tracks what holds the whole
//! daemon back (AWS unreachable or refusing, DIR unreadable) and `liveness` whether it is
//! stuck. The HTTP server reads all of it.

mod account;
mod conditions;
mod contest;
mod decide;
pub mod desired;
mod faults;
mod first_pass;
mod generation;
mod http;
mod keys;
mod liveness;
pub mod metrics;
mod policy_tags;
mod prune;
pub mod queue;
mod reconcile_key;
mod resync;
mod retries;
mod slot;
pub mod status;
mod supervisor;
mod watch;
mod wiring;

#[cfg(test)]
mod tests;

pub use generation::Generation;
pub use supervisor::{Discovery, ListAccounts, MakeTarget, Target, run};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tracing::info;

use crate::guardrails::Guardrails;
use crate::iam::{Account, Iam};
use crate::manifest::Variables;
use crate::reconcile::ResourceState;
use crate::reconcile::prune::PruneSettings;
use crate::reconcile::{Context, RetryPolicy};
use conditions::{AwsHealth, InputHealth};
use contest::ContestPolicy;
use desired::{DesiredStore, Key};
use faults::TestFaults;
pub(crate) use liveness::Liveness;
use metrics::Metrics;
use queue::WorkQueue;

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
    /// More than this many drift corrections of one resource within `contest_window` make it
    /// contested.
    pub contest_threshold: usize,
    pub contest_window: Duration,
    /// `--prune-after` and `--max-prune`.
    pub prune_settings: PruneSettings,
    /// Managed policies whose attachments are left alone (`--ignore-managed-policy`).
    pub ignore_managed_policies: Vec<String>,
    /// Rules every manifest must follow; a violating file keeps its last good state.
    pub guardrails: Guardrails,
    /// The longest one IAM call may take (`--operation-timeout`): no sign of life for less
    /// than that is not a stuck daemon.
    pub call_timeout: Duration,
    /// The account of the accounts file this controller manages (its values, its name);
    /// `None`: the only one, the caller's.
    pub account: Option<crate::manifest::accounts::AccountSpec>,
}

/// The longest a change is retried in place, holding its worker. Past that, the key goes back
/// to the queue with its own backoff, and the worker serves other keys.
pub const IN_PLACE_RETRY: Duration = Duration::from_secs(5);

pub struct Controller {
    config: Config,
    /// The account: its client, what is known of it, its keys' records, its caches.
    pub(crate) acct: account::AccountRuntime,
    loader: Mutex<generation::Loader>,
    generation: RwLock<Arc<Generation>>,
    pub(crate) queue: Arc<WorkQueue<Key>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ready: AtomicBool,
    pub(crate) aws: Arc<AwsHealth>,
    /// DIR missing or unreadable.
    pub(crate) dir: InputHealth,
    /// A --values file unreadable or invalid.
    pub(crate) values: InputHealth,
    pub(crate) liveness: Arc<Liveness>,
    faults: TestFaults,
    contest: ContestPolicy,
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
        aws: Arc<AwsHealth>,
        liveness: Arc<Liveness>,
    ) -> Arc<Controller> {
        let ctx = Context::new(
            &config.owner,
            &config.ignore_tag_prefixes,
            &account,
            &Default::default(),
        );
        let contest = ContestPolicy {
            threshold: config.contest_threshold,
            window: config.contest_window,
            resync_interval: config.resync_interval,
        };
        Arc::new(Controller {
            liveness,
            config,
            acct: account::AccountRuntime::new(iam),
            loader: Mutex::new(generation::Loader {
                store: DesiredStore::default(),
                vars,
            }),
            generation: RwLock::new(Arc::new(Generation {
                state: Arc::default(),
                ctx,
                errors: Vec::new(),
                files: 0,
                elsewhere: 0,
            })),
            queue: WorkQueue::new(),
            metrics,
            ready: AtomicBool::new(false),
            aws,
            dir: InputHealth::new(
                "cannot read manifests; keeping the last desired state",
                "manifests readable again",
            ),
            values: InputHealth::new(
                "cannot read values; keeping the previous ones",
                "values readable again",
            ),
            faults: TestFaults::from_env(),
            contest,
        })
    }

    fn first_pass_done(&self, key: &Key) {
        if self.ready.load(Ordering::SeqCst) {
            return;
        }
        if lock(&self.acct.keys).first_pass_done(key) && !self.ready.swap(true, Ordering::SeqCst) {
            info!("first full reconcile pass finished: ready");
        }
    }

    fn update_resource_gauge(&self) {
        let keys = lock(&self.acct.keys);
        self.metrics
            .resources(ResourceState::ALL.iter().map(|s| (*s, keys.count(*s))));
    }

    /// How many keys have a record (the memory the daemon holds per key), for tests.
    #[cfg(test)]
    fn record_count(&self) -> usize {
        lock(&self.acct.keys).len()
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
