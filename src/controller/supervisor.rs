//! `iam-warden run`, whole: the process (signals, the HTTP server, one file watcher) and one
//! account runtime per account, each started on its own: its client and pace, its identity
//! (retried with backoff: an account that cannot be assumed is its own condition), its
//! controller, workers, resync and retries. An account never waits for another.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch as signal_watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, info, warn};

use super::metrics::Metrics;
use super::slot::Slot;
use super::wiring::{
    account_with_retry, handle_signals, log_first_pass, reload_off_the_runtime, triggers, work,
};
use super::{Config, Controller, Liveness, http, lock, watch};
use crate::iam::Iam;
use crate::manifest::Variables;
use crate::manifest::accounts::AccountSpec;

/// One account to manage.
pub struct Target {
    /// `None`: the only account, the one of the process's credentials (no `--accounts`).
    pub spec: Option<AccountSpec>,
    pub iam: Iam,
    /// Its values, built-ins still placeholders.
    pub vars: Variables,
}

/// Lists the accounts to manage again (an organization's members, say): every account, those
/// already running included.
pub type ListAccounts = Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, anyhow::Result<Vec<AccountSpec>>> + Send + Sync,
>;

/// Makes the client and values of a new account.
pub type MakeTarget = Arc<
    dyn Fn(AccountSpec) -> futures::future::BoxFuture<'static, anyhow::Result<Target>>
        + Send
        + Sync,
>;

/// Looking for new accounts while running: every `every`, and at SIGHUP. Only an account not
/// running yet gets a client.
pub struct Discovery {
    pub every: Duration,
    pub list: ListAccounts,
    pub target: MakeTarget,
}

fn slot_of(target: &Target) -> Arc<Slot> {
    Slot::new(target.spec.clone())
}

/// The workers and tasks of one started account, stopped at shutdown.
struct Running {
    controller: Arc<Controller>,
    workers: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// File events for every started account: one watcher, many reload channels.
#[derive(Default)]
struct Fanout(Mutex<Vec<mpsc::UnboundedSender<()>>>);

impl Fanout {
    fn subscribe(&self) -> (mpsc::UnboundedSender<()>, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.0).push(tx.clone());
        (tx, rx)
    }

    fn send(&self) {
        lock(&self.0).retain(|tx| tx.send(()).is_ok());
    }
}

/// Runs the daemon until SIGTERM or SIGINT; returns when in-flight work has finished (or the
/// shutdown timeout passed).
/// `many`: the targets are an accounts file's (maybe none of them, on an idle shard);
/// `discovery` finds accounts that join later.
pub async fn run(
    config: Config,
    targets: Vec<Target>,
    many: bool,
    discovery: Option<Discovery>,
) -> anyhow::Result<()> {
    let metrics = match many {
        true => Metrics::of_accounts(),
        false => Metrics::default(),
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
    let slots: Vec<Arc<Slot>> = targets.iter().map(slot_of).collect();
    let all_slots = Arc::new(std::sync::RwLock::new(slots.clone()));
    let health = http::Health::new(metrics.clone(), all_slots.clone(), many);
    let server = tokio::spawn(http::serve(listener, health, stop_rx.clone()));

    // One watcher for every account: each reloads DIR with its own values.
    let fanout = Arc::new(Fanout::default());
    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(config.dir.clone(), reload_tx));
    let forward = {
        let fanout = fanout.clone();
        tokio::spawn(async move {
            while reload_rx.recv().await.is_some() {
                fanout.send();
            }
        })
    };

    let running = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(Start {
        config: config.clone(),
        metrics: metrics.clone(),
        fanout: fanout.clone(),
        running: running.clone(),
        stop: stop_rx.clone(),
    });
    let starting = Arc::new(Mutex::new(Vec::new()));
    for (target, slot) in targets.into_iter().zip(slots) {
        lock(&starting).push(start.spawn(target, slot));
    }
    let discovering = discovery.map(|d| {
        let (start, starting, all_slots) = (start.clone(), starting.clone(), all_slots.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hup = signal(SignalKind::hangup()).ok();
            loop {
                let hup_recv = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(d.every) => {}
                    _ = hup_recv => info!("SIGHUP: reading the accounts again"),
                }
                let accounts = match (d.list)().await {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("cannot list the accounts again; keeping those running: {e:#}");
                        continue;
                    }
                };
                for spec in accounts {
                    let running = |s: &Arc<Slot>| s.spec.as_ref().is_some_and(|a| a.id == spec.id);
                    if all_slots
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .any(running)
                    {
                        continue;
                    }
                    let (name, id) = (spec.name.clone(), spec.id.clone());
                    let target = match (d.target)(spec).await {
                        Ok(t) => t,
                        Err(e) => {
                            warn!(account = %name, "cannot start a new account: {e:#}");
                            continue;
                        }
                    };
                    info!(account = %name, %id, "a new account: starting it");
                    let slot = slot_of(&target);
                    all_slots
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(slot.clone());
                    lock(&starting).push(start.spawn(target, slot));
                }
            }
        })
    });

    let mut stop = stop_rx.clone();
    let _ = stop.wait_for(|s| *s).await;
    info!("stopping: no new work; waiting for in-flight reconciles");
    if let Some(d) = &discovering {
        d.abort();
    }
    for s in lock(&starting).iter() {
        s.abort();
    }
    watcher.abort();
    forward.abort();
    let running: Vec<Running> = std::mem::take(&mut *lock(&running));
    let mut workers = Vec::new();
    for r in running {
        r.controller.queue.close();
        for t in &r.tasks {
            t.abort();
        }
        workers.extend(r.workers);
    }
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

/// What starting one account shares with the process.
struct Start {
    config: Config,
    metrics: Metrics,
    fanout: Arc<Fanout>,
    running: Arc<Mutex<Vec<Running>>>,
    stop: signal_watch::Receiver<bool>,
}

impl Start {
    fn spawn(self: &Arc<Self>, target: Target, slot: Arc<Slot>) -> JoinHandle<()> {
        let span = match &target.spec {
            Some(a) => tracing::info_span!("account", account = %a.name),
            None => tracing::Span::none(),
        };
        let start = Arc::clone(self);
        tokio::spawn(async move { start.account(target, slot).await }.instrument(span))
    }

    /// Identifies the account (retried until it answers), then starts its controller: the
    /// first pass, workers, retries and triggers.
    async fn account(&self, target: Target, slot: Arc<Slot>) {
        let config = Config {
            account: target.spec.clone(),
            ..self.config.clone()
        };
        let metrics = match slot.name() {
            Some(name) => self.metrics.for_account(name),
            None => self.metrics.clone(),
        };
        let metrics = Arc::new(metrics);
        let liveness = Arc::new(Liveness::new(
            config.resync_interval,
            config.workers,
            config.call_timeout,
        ));
        let iam = {
            let m = metrics.clone();
            let l = liveness.clone();
            target.iam.requests().set_sink(Arc::new(move |op, outcome| {
                m.aws_request(op, outcome);
                l.progressed();
            }));
            let a = slot.aws.clone();
            let l = liveness.clone();
            // A call that ended, whatever its end (a timeout included), is a sign of life.
            target.iam.with_observer(Arc::new(move |op, error| {
                a.request(op, error);
                l.progressed();
            }))
        };
        let Some(account) = account_with_retry(&iam, self.stop.clone(), &slot).await else {
            return;
        };
        let vars = target
            .vars
            .with_builtins(crate::manifest::Builtins::new(&account, iam.region()));
        let workers_wanted = config.workers;
        let controller = Controller::new(
            config,
            iam,
            account,
            vars,
            metrics,
            slot.aws.clone(),
            liveness,
        );
        let _ = slot.controller.set(controller.clone());
        reload_off_the_runtime(&controller).await;
        controller.first_pass().await;

        let mut workers = Vec::new();
        for _ in 0..workers_wanted {
            workers.push(tokio::spawn(work(controller.clone()).in_current_span()));
        }
        let first_pass_log = tokio::spawn(log_first_pass(controller.clone()).in_current_span());
        let recovery = {
            let c = controller.clone();
            tokio::spawn(
                async move {
                    loop {
                        c.aws.recovered.notified().await;
                        c.retry_failed_now();
                    }
                }
                .in_current_span(),
            )
        };
        let (reload_tx, reload_rx) = self.fanout.subscribe();
        let triggers =
            tokio::spawn(triggers(controller.clone(), reload_rx, reload_tx).in_current_span());
        lock(&self.running).push(Running {
            controller,
            workers,
            tasks: vec![first_pass_log, recovery, triggers],
        });
    }
}
