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

mod conditions;
mod contest;
pub mod desired;
mod faults;
mod first_pass;
mod http;
mod keys;
mod liveness;
pub mod metrics;
mod policy_tags;
mod prune;
pub mod queue;
mod resync;
pub mod status;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use futures::FutureExt;
use tokio::sync::{mpsc, watch as signal_watch};
use tracing::{debug, error, info, warn};

use crate::guardrails::Guardrails;
use crate::iam::{Account, Iam};
use crate::manifest::{DesiredState, Diagnostic, Kind, Resource, Variables};
use crate::reconcile::ResourceState;
use crate::reconcile::prune::PruneSettings;
use crate::reconcile::{self, Context, Executor, ResourcePlan, RetryPolicy};
use conditions::{AwsHealth, InputHealth};
use contest::ContestPolicy;
use desired::{DesiredStore, Key};
use faults::TestFaults;
use keys::KeyTable;
use liveness::Liveness;
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
}

/// The longest a change is retried in place, holding its worker. Past that, the key goes back
/// to the queue with its own backoff, and the worker serves other keys.
pub const IN_PLACE_RETRY: Duration = Duration::from_secs(5);

/// Per-key backoff after a failure: about 1 s at first, at most about 5 min.
fn new_backoff() -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(300),
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

/// One load of DIR: the desired state, the planning context built from it, and the file
/// errors. Swapped whole, so a reconcile never mixes two generations.
pub struct Generation {
    pub state: Arc<DesiredState>,
    pub ctx: Context,
    pub errors: Vec<Diagnostic>,
    /// Manifest files read.
    pub files: usize,
}

impl Generation {
    pub fn get(&self, key: &Key) -> Option<Resource> {
        desired::get(&self.state, key)
    }

    /// Declared keys, policies first (roles attach them).
    pub fn keys(&self) -> Vec<Key> {
        desired::keys(&self.state)
    }

    pub fn declares(&self, key: &Key) -> bool {
        match key.0 {
            Kind::Role => self.state.roles.contains_key(&key.1),
            Kind::Policy => self.state.policies.contains_key(&key.1),
        }
    }
}

/// What the loader keeps between reloads (only `reload` touches it).
struct Loader {
    store: DesiredStore,
    vars: Variables,
}

pub struct Controller {
    config: Config,
    iam: Iam,
    loader: Mutex<Loader>,
    generation: RwLock<Arc<Generation>>,
    pub(crate) queue: Arc<WorkQueue<Key>>,
    /// Everything remembered per key (status, backoff, converged spec, prune, contest).
    pub(crate) keys: Mutex<KeyTable>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ready: AtomicBool,
    resyncing: AtomicBool,
    /// The last resync could not read the account in bulk (said once, not every interval).
    bulk_failing: AtomicBool,
    pub(crate) aws: Arc<AwsHealth>,
    /// DIR missing or unreadable.
    pub(crate) dir: InputHealth,
    /// A --values file unreadable or invalid.
    pub(crate) values: InputHealth,
    pub(crate) liveness: Liveness,
    faults: TestFaults,
    contest: ContestPolicy,
    /// Where IAM has each declared policy, by lowercased name, as last observed: roles' refs
    /// resolve to it.
    policy_arns: Mutex<BTreeMap<String, String>>,
    /// The name IAM has for each role, by lowercased name, as last read in bulk (and as the
    /// daemon created them since).
    role_names: Mutex<BTreeMap<String, String>>,
    /// The roles using each managed policy (attached or as boundary), by ARN, as last read in
    /// bulk: a policy still used so is never pruned (ListEntitiesForPolicy may leave
    /// boundaries out).
    role_users: Mutex<BTreeMap<String, Vec<crate::iam::PolicyUser>>>,
    /// Managed policies' tags, which the snapshot lacks, as last read.
    policy_tags: policy_tags::PolicyTagCache,
    /// Resources the last resync found due for deletion, within `--max-prune` (empty when it
    /// refused): the only ones a prune may delete.
    prune_due: Mutex<std::collections::HashSet<Key>>,
    /// `--max-prune` holds deletions back: how many the last pass counted.
    pub(crate) prune_refused: Mutex<Option<usize>>,
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
            liveness: Liveness::new(config.resync_interval, config.workers),
            config,
            iam,
            loader: Mutex::new(Loader {
                store: DesiredStore::default(),
                vars,
            }),
            generation: RwLock::new(Arc::new(Generation {
                state: Arc::default(),
                ctx,
                errors: Vec::new(),
                files: 0,
            })),
            queue: WorkQueue::new(),
            keys: Mutex::new(KeyTable::default()),
            metrics,
            ready: AtomicBool::new(false),
            resyncing: AtomicBool::new(false),
            bulk_failing: AtomicBool::new(false),
            aws,
            dir: InputHealth::new(
                "cannot read manifests; keeping the last desired state",
                "manifests readable again",
            ),
            values: InputHealth::new(
                "cannot read values; keeping the previous ones",
                "values readable again",
            ),
            policy_arns: Mutex::new(BTreeMap::new()),
            role_names: Mutex::new(BTreeMap::new()),
            prune_refused: Mutex::new(None),
            prune_due: Mutex::new(Default::default()),
            role_users: Mutex::new(BTreeMap::new()),
            policy_tags: Default::default(),
            faults: TestFaults::from_env(),
            contest,
        })
    }

    /// The current generation of the desired state.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads DIR again and queues what changed. Bad files keep their last good state; an
    /// unreadable DIR keeps the whole desired state (and is shown on /status).
    pub fn reload(&self) {
        let mut loader = lock(&self.loader);
        match Variables::load(&self.config.values, &self.config.vars) {
            Ok(v) => {
                self.values.read();
                loader.vars = v.with_builtins(loader.vars.builtins().clone());
            }
            Err(e) => self.values.failed(e.to_string()),
        }
        let vars = loader.vars.clone();
        let reloaded = match loader
            .store
            .reload(&self.config.dir, &vars, &self.config.guardrails)
        {
            Ok(r) => {
                self.dir.read();
                r
            }
            Err(e) => {
                self.dir.failed(e.to_string());
                return;
            }
        };
        for d in &reloaded.new_errors {
            warn!(file = %d.file.display(), "invalid manifest, its resources keep their last good state: {d}");
        }
        let previous = self.generation();
        let store = &loader.store;
        let generation = Arc::new(Generation {
            ctx: Context::new(
                &self.config.owner,
                &self.config.ignore_tag_prefixes,
                &previous.ctx.account,
                store.state(),
            )
            .with_ignored_managed_policies(&self.config.ignore_managed_policies),
            state: store.shared_state(),
            errors: store.errors(),
            files: store.file_count(),
        });
        *self.generation.write().unwrap_or_else(|p| p.into_inner()) = generation.clone();
        drop(loader);
        lock(&self.keys).track(&generation.keys());
        if !reloaded.changed.is_empty() {
            info!(changed = reloaded.changed.len(), "manifests changed");
        }
        let may_prune = self.may_prune();
        for key in reloaded.changed {
            if generation.declares(&key) {
                self.queue.add(key);
            } else if may_prune {
                // No longer declared: a prune candidate, checked again before any delete.
                if let Some(arn) = previous
                    .ctx
                    .policy_arn(&key.1)
                    .filter(|_| key.0 == Kind::Policy)
                {
                    lock(&self.keys).entry(&key).prune_arn = Some(arn.clone());
                }
                self.queue.add(key);
            }
        }
        self.update_resource_gauge();
    }

    /// One reconcile of one key: observe, plan, and (unless observe-only) apply.
    pub async fn reconcile(&self, key: &Key) {
        if self
            .faults
            .fires(&format!("panic:reconcile:{}/{}", key.0, key.1))
        {
            panic!("test fault: the reconcile of {}/{} panics", key.0, key.1);
        }
        let started = Instant::now();
        let _forget = ForgetPolicyTags(self, key);
        let generation = self.generation();
        let Some(resource) = generation.get(key) else {
            if self.may_prune() {
                self.prune(key).await;
            }
            lock(&self.keys).forget_if_done(key);
            self.first_pass_done(key);
            return;
        };
        // Refs resolve to where IAM has the policies (a moved or case-renamed policy).
        let mut ctx = generation.ctx.clone().with_observed_policy_arns(
            lock(&self.policy_arns)
                .iter()
                .map(|(n, a)| (n.as_str(), a.as_str())),
        );
        // Only the one name this reconcile may need, not a copy of every role's.
        let actual = match key.0 {
            Kind::Role => lock(&self.role_names).get(&key.1.to_lowercase()).cloned(),
            Kind::Policy => None,
        };
        if let Some(actual) = actual {
            ctx = ctx.with_observed_role_names(BTreeMap::from([(key.1.to_lowercase(), actual)]));
        }
        let outcome = match reconcile::observe_one(
            &self.iam,
            &ctx,
            &resource,
            &self.in_place_retry(),
        )
        .await
        {
            Ok(plan) => self.act(key, &resource, plan).await,
            Err(f) => Outcome {
                state: ResourceState::Error,
                arn: None,
                error: Some(f.error),
                corrections: 0,
            },
        };
        // A role just created or found: a later rename only in case finds it before the
        // next bulk read.
        if let (Kind::Role, Some((name, _))) = (
            key.0,
            outcome.arn.as_deref().and_then(crate::arn::name_and_path),
        ) {
            lock(&self.role_names).insert(name.to_lowercase(), name.to_string());
        }
        let result = match outcome.state {
            ResourceState::Error => "error",
            ResourceState::Conflict => "conflict",
            _ => "success",
        };
        self.metrics
            .reconciled(key.0, result, started.elapsed().as_secs_f64());
        let failed = outcome.state == ResourceState::Error;
        let mut keys = lock(&self.keys);
        let resource = format!("{}/{}", key.0, key.1);
        match (&outcome.error, outcome.state) {
            // While AWS is unreachable, that condition is said once; not again per resource.
            (Some(e), ResourceState::Error) if self.aws.is_unreachable() => {
                debug!(resource = %resource, error = %e, "reconcile failed")
            }
            (Some(e), ResourceState::Error) => {
                warn!(resource = %resource, error = %e, "reconcile failed")
            }
            // A conflict repeats at every resync: say it when it starts, not every time.
            (Some(e), ResourceState::Conflict)
                if keys.state_of(key) != Some(ResourceState::Conflict) =>
            {
                warn!(resource = %resource, "left alone: {e}")
            }
            _ => {}
        }
        keys.record(
            key,
            outcome.state,
            outcome.arn,
            outcome.error,
            outcome.corrections,
        );
        drop(keys);
        self.update_resource_gauge();
        self.error_policy(key, failed);
        self.first_pass_done(key);
    }

    /// Runs `f` on the record of `key` (created if missing).
    fn with_record<T>(&self, key: &Key, f: impl FnOnce(&mut keys::KeyRecord) -> T) -> T {
        f(lock(&self.keys).entry(key))
    }

    /// A role waits while a policy it refers to is in conflict or failing: attaching the ARN
    /// its manifest implies could only fail, or detach the one IAM has.
    fn blocking_policy(&self, spec: &Resource) -> Option<String> {
        let Resource::Role(role) = spec else {
            return None;
        };
        let generation = self.generation();
        let keys = lock(&self.keys);
        role.managed_policies
            .iter()
            .chain(&role.permissions_boundary)
            .filter_map(|r| match r {
                crate::manifest::PolicyRef::Ref(n) => generation.state.policy(n),
                crate::manifest::PolicyRef::Arn(_) => None,
            })
            .find_map(|p| match keys.state_of(&(Kind::Policy, p.name.clone())) {
                Some(ResourceState::Conflict) => Some(format!(
                    "it needs Policy `{}`, which is in conflict",
                    p.name
                )),
                Some(ResourceState::Error) => {
                    Some(format!("it needs Policy `{}`, which failed", p.name))
                }
                _ => None,
            })
    }

    async fn act(&self, key: &Key, spec: &Resource, plan: ResourcePlan) -> Outcome {
        let arn = plan.arn.clone();
        if let (Kind::Policy, Some(found)) = (key.0, &arn) {
            lock(&self.policy_arns).insert(key.1.to_lowercase(), found.clone());
        }
        let resource = format!("{}/{}", key.0, key.1);
        let outcome = |state, error, corrections| Outcome {
            state,
            arn: arn.clone(),
            error,
            corrections,
        };
        if let Some(why) = self.blocking_policy(spec) {
            return outcome(
                ResourceState::Conflict,
                Some(format!("not attempted: {why}")),
                0,
            );
        }
        if !plan.findings.is_empty() {
            let error = plan
                .findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return outcome(ResourceState::Conflict, Some(error), 0);
        }
        let policy = self.contest;
        if plan.changes.is_empty() {
            let (ended, contested) = self.with_record(key, |r| {
                r.converged = Some(desired::fingerprint(spec));
                let ended = r.contest.quiet(Instant::now(), &policy);
                (ended, r.contest.is_contested())
            });
            if ended {
                info!(resource = %resource, "no longer contested: no drift for {}", humantime::format_duration(policy.window));
            }
            let state = if contested {
                ResourceState::Contested
            } else {
                ResourceState::InSync
            };
            return outcome(state, None, 0);
        }
        let now = desired::fingerprint(spec);
        let edited = self.with_record(key, |r| r.converged.is_some_and(|last| last != now));
        let is_drift = !edited && !plan.changes.iter().any(|c| c.is_create());
        // `--observe-only`, or `iam-warden/mode: observe` on this resource.
        let observe_only = self.config.observe_only || plan.observe_only;
        if is_drift && !observe_only {
            let fields = plan
                .changes
                .iter()
                .map(|c| (c.field(), reconcile::render::summary(c)));
            let now = self.with_record(key, |r| {
                r.contest.drift_seen(Instant::now(), fields, &policy)
            });
            if !now {
                debug!(resource = %resource, "contested: correction held back");
                return outcome(ResourceState::Contested, None, 0);
            }
        }
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
        if observe_only {
            // The one write of observe mode (not of `--observe-only`): its `prune: never`.
            if let Some(record) = plan
                .observe_mode_record()
                .filter(|_| !self.config.observe_only)
            {
                let executor = Executor {
                    iam: &self.iam,
                    owner: &self.config.owner,
                    retry: self.in_place_retry(),
                };
                if let Err(e) = executor.apply(&record).await {
                    return outcome(ResourceState::Error, Some(e.to_string()), 0);
                }
            }
            let state = if is_drift {
                ResourceState::Drifted
            } else {
                ResourceState::Pending
            };
            return outcome(state, None, 0);
        }
        // Shown while the correction is in flight, not only once it is done; a key retrying
        // after a failure keeps showing that failure until it succeeds.
        let in_flight = if is_drift {
            ResourceState::Drifted
        } else {
            ResourceState::Pending
        };
        {
            let mut keys = lock(&self.keys);
            if keys.state_of(key) != Some(ResourceState::Error) {
                keys.record(key, in_flight, arn.clone(), None, 0);
            }
        }
        let executor = Executor {
            iam: &self.iam,
            owner: &self.config.owner,
            retry: self.in_place_retry(),
        };
        match executor.apply(&plan).await {
            Ok(n) => {
                let (became, contested) = self.with_record(key, |r| {
                    r.converged = Some(desired::fingerprint(spec));
                    let became = is_drift && r.contest.corrected(Instant::now(), &policy);
                    (
                        became.then(|| r.contest.report(Instant::now())),
                        r.contest.is_contested(),
                    )
                });
                if is_drift {
                    for change in &plan.changes {
                        self.metrics.drift_corrected(key.0, change.field());
                    }
                }
                if let Some(report) = became {
                    let fields: Vec<String> = report
                        .fields
                        .iter()
                        .map(|(f, last)| format!("{f} ({last})"))
                        .collect();
                    warn!(
                        resource = %resource,
                        fields = %fields.join("; "),
                        "contested: something keeps changing it back (more than {} corrections within {}); corrections now back off up to 16 resync intervals",
                        policy.threshold,
                        humantime::format_duration(policy.window)
                    );
                }
                let state = if contested {
                    ResourceState::Contested
                } else {
                    ResourceState::InSync
                };
                outcome(state, None, if is_drift { n as u64 } else { 0 })
            }
            Err(e) => outcome(ResourceState::Error, Some(e.to_string()), 0),
        }
    }

    /// In the daemon a change is retried in place only briefly (see [`IN_PLACE_RETRY`]).
    fn in_place_retry(&self) -> RetryPolicy {
        let r = &self.config.retry;
        RetryPolicy {
            initial: r.initial.min(Duration::from_millis(500)),
            max_interval: r.max_interval.min(Duration::from_secs(2)),
            max_elapsed: r.max_elapsed.min(IN_PLACE_RETRY),
        }
    }

    /// The retry policy, in one place: a failed key comes back after its own growing, jittered
    /// delay; a success resets it. Other keys are never held up.
    fn error_policy(&self, key: &Key, failed: bool) {
        let mut keys = lock(&self.keys);
        if !failed {
            if keys.get(key).is_some() {
                let r = keys.entry(key);
                r.backoff = None;
                r.retry_at = None;
            }
            return;
        }
        let r = keys.entry(key);
        let delay = r
            .backoff
            .get_or_insert_with(new_backoff)
            .next_backoff()
            .unwrap_or(Duration::from_secs(300));
        r.retry_at = Some(Instant::now() + delay);
        drop(keys);
        self.queue.add_after(key.clone(), delay);
    }

    /// Whether `key` failed and waits for its retry, or is being retried right now: a resync
    /// leaves it to its backoff (queueing a running key would run it again the moment it fails).
    fn backing_off(&self, key: &Key) -> bool {
        if self.queue.is_running(key) {
            return true;
        }
        lock(&self.keys)
            .get(key)
            .and_then(|r| r.retry_at)
            .is_some_and(|t| t > Instant::now())
    }

    /// AWS answers again after an outage: every failed key is retried now, not after its
    /// (by now long) backoff.
    fn retry_failed_now(&self) {
        let keys: Vec<Key> = lock(&self.keys)
            .iter_mut()
            .filter(|(_, r)| r.retry_at.is_some())
            .map(|(k, r)| {
                r.backoff = None;
                r.retry_at = None;
                k.clone()
            })
            .collect();
        for key in keys {
            self.queue.add(key);
        }
    }

    /// A reconcile panicked (a bug): the key is marked failed and retried with backoff, the
    /// worker goes on.
    fn panicked(&self, key: &Key, message: &str) {
        let resource = format!("{}/{}", key.0, key.1);
        error!(resource = %resource, "reconcile panicked: {message}; retrying with backoff");
        self.metrics.reconciled(key.0, "panic", 0.0);
        lock(&self.keys).record(
            key,
            ResourceState::Error,
            None,
            Some(format!("reconcile panicked: {message}")),
            0,
        );
        self.update_resource_gauge();
        self.error_policy(key, true);
        self.first_pass_done(key);
    }

    fn first_pass_done(&self, key: &Key) {
        if self.ready.load(Ordering::SeqCst) {
            return;
        }
        if lock(&self.keys).first_pass_done(key) && !self.ready.swap(true, Ordering::SeqCst) {
            info!("first full reconcile pass finished: ready");
        }
    }

    fn update_resource_gauge(&self) {
        let keys = lock(&self.keys);
        self.metrics
            .resources(ResourceState::ALL.iter().map(|s| (*s, keys.count(*s))));
    }

    /// How many keys have a record (the memory the daemon holds per key), for tests.
    #[cfg(test)]
    fn record_count(&self) -> usize {
        lock(&self.keys).len()
    }
}

struct Outcome {
    state: ResourceState,
    arn: Option<String>,
    error: Option<String>,
    corrections: u64,
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Marks a key done in the queue however its reconcile ends (a panic included), so that no key
/// stays marked running.
struct Done<'a> {
    queue: &'a WorkQueue<Key>,
    key: &'a Key,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.queue.done(self.key);
    }
}

impl Controller {
    /// Remembers, from a bulk read, the name IAM has for every role, by lowercased name: a
    /// manifest renamed only in case finds its role by it.
    fn remember_role_names(&self, snapshot: &crate::iam::Snapshot) {
        let names = snapshot
            .roles()
            .map(|r| (r.name.to_lowercase(), r.name.clone()))
            .collect();
        *lock(&self.role_names) = names;
    }
}

/// After a reconcile of a policy, however it ended: the resync reads its tags again, which the
/// reconcile may have written.
struct ForgetPolicyTags<'a>(&'a Controller, &'a Key);

impl Drop for ForgetPolicyTags<'_> {
    fn drop(&mut self) {
        if self.1.0 == Kind::Policy {
            self.0.policy_tags.forget(&self.1.1);
        }
    }
}

/// One worker: takes keys until the queue closes. A panicking reconcile is caught, so the
/// pool never shrinks.
async fn work(c: Arc<Controller>) {
    let _alive = c.liveness.worker();
    while let Some(key) = c.queue.next().await {
        let _done = Done {
            queue: &c.queue,
            key: &key,
        };
        if let Err(panic) = AssertUnwindSafe(c.reconcile(&key)).catch_unwind().await {
            c.panicked(&key, &panic_message(&*panic));
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT; returns when in-flight work has finished (or the
/// shutdown timeout passed).
pub async fn run(config: Config, iam: Iam, vars: Variables) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let aws = Arc::new(AwsHealth::default());
    let iam = {
        let m = metrics.clone();
        iam.requests()
            .set_sink(Arc::new(move |op, outcome| m.aws_request(op, outcome)));
        let a = aws.clone();
        iam.with_observer(Arc::new(move |op, error| a.request(op, error)))
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
    let health = http::Health::new(metrics.clone(), aws.clone());
    let server = tokio::spawn(http::serve(listener, health.clone(), stop_rx.clone()));

    let Some(account) = account_with_retry(&iam, stop_rx.clone()).await else {
        let _ = server.await;
        return Ok(());
    };
    let vars = vars.with_builtins(crate::manifest::Builtins::new(&account, iam.region()));
    let controller = Controller::new(config.clone(), iam, account, vars, metrics, aws.clone());
    health.attach(controller.clone());
    reload_off_the_runtime(&controller).await;
    if lock(&controller.keys).start_first_pass() {
        controller.ready.store(true, Ordering::SeqCst);
    } else {
        controller.first_pass_from_snapshot().await;
    }
    // The first pass reconciles everything that reload() queued.
    controller.metrics.resync_started();
    controller.liveness.loop_turned();
    controller.liveness.resync_finished();

    let mut workers = Vec::new();
    for _ in 0..config.workers {
        workers.push(tokio::spawn(work(controller.clone())));
    }
    let recovery = {
        let c = controller.clone();
        tokio::spawn(async move {
            loop {
                c.aws.recovered.notified().await;
                c.retry_failed_now();
            }
        })
    };
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(config.dir.clone(), reload_tx.clone()));
    let triggers = tokio::spawn(triggers(controller.clone(), reload_rx, reload_tx));

    let mut stop = stop_rx.clone();
    let _ = stop.wait_for(|s| *s).await;
    info!("stopping: no new work; waiting for in-flight reconciles");
    controller.queue.close();
    watcher.abort();
    triggers.abort();
    recovery.abort();
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
    // Nothing else can start without it: try often enough to start soon after AWS is back.
    let mut backoff = ExponentialBackoff {
        max_interval: Duration::from_secs(10),
        ..new_backoff()
    };
    // Unreachable or refused is said once by the AWS conditions; other failures once here.
    let mut said = false;
    loop {
        match iam.account().await {
            Ok(a) => {
                if said {
                    info!("AWS account identified");
                }
                return Some(a);
            }
            Err(e) if !said => {
                warn!(error = %e, "cannot identify the AWS account yet; retrying");
                said = true;
            }
            Err(e) => debug!(error = %e, "cannot identify the AWS account yet"),
        }
        let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(300));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
}

/// Reads and parses DIR on a blocking thread: every file is read, which must not hold up the
/// async workers (reconciles, the HTTP endpoints) on a large or slow volume.
async fn reload_off_the_runtime(controller: &Arc<Controller>) {
    let c = Arc::clone(controller);
    if let Err(e) = tokio::task::spawn_blocking(move || c.reload()).await {
        match e.try_into_panic() {
            Ok(panic) => error!("reload panicked: {}", panic_message(&*panic)),
            Err(e) => error!(error = %e, "reload did not finish"),
        }
    }
}

/// File changes reload; the timer resyncs (a little jittered, so replicas do not align);
/// SIGHUP does both.
///
/// The resync runs on a fixed schedule: its deadline is set when it fires, never when some
/// other trigger wakes the loop, so no amount of file events can postpone it.
async fn triggers(
    controller: Arc<Controller>,
    mut reload_rx: mpsc::UnboundedReceiver<()>,
    reload_tx: mpsc::UnboundedSender<()>,
) {
    let interval = controller.config.resync_interval;
    let jittered = || interval.mul_f64(0.9 + 0.2 * fastrand::f64());
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // A resync reads the whole account: it runs on its own, so file events are not held up.
    let resync = |c: &Arc<Controller>| {
        let c = Arc::clone(c);
        tokio::spawn(async move {
            if let Err(panic) = AssertUnwindSafe(c.resync()).catch_unwind().await {
                error!("resync panicked: {}", panic_message(&*panic));
            }
        });
    };
    let timer = tokio::time::sleep(jittered());
    tokio::pin!(timer);
    loop {
        controller.liveness.loop_turned();
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // The timer first: it is never starved by a stream of file events.
            biased;
            () = &mut timer => {
                // Whatever it did, a burst of work never shifts the schedule by more than one
                // interval: the next deadline counts from now.
                timer.as_mut().reset(tokio::time::Instant::now() + jittered());
                // A missed file event must not outlive one interval either.
                reload_off_the_runtime(&controller).await;
                resync(&controller);
            }
            Some(()) = reload_rx.recv() => reload_off_the_runtime(&controller).await,
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
