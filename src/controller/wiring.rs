//! The wiring of `iam-warden run`: the HTTP server, signals, the account, the first pass,
//! workers, the watcher and the triggers, started in that order and stopped in reverse.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, watch as signal_watch};
use tracing::{debug, error, info, warn};

use super::conditions::AwsHealth;
use super::desired::Key;
use super::metrics::Metrics;
use super::queue::WorkQueue;
use super::{Config, Controller, http, lock, panic_message, watch};
use crate::iam::{Account, Iam};
use crate::manifest::Variables;
use crate::reconcile::failure_delay;

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

/// One worker: takes keys until the queue closes. A panicking reconcile is caught, so the
/// pool never shrinks.
pub(super) async fn work(c: Arc<Controller>) {
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
    let liveness = Arc::new(super::Liveness::new(
        config.resync_interval,
        config.workers,
        config.call_timeout,
    ));
    let iam = {
        let m = metrics.clone();
        let l = liveness.clone();
        iam.requests().set_sink(Arc::new(move |op, outcome| {
            m.aws_request(op, outcome);
            l.progressed();
        }));
        let a = aws.clone();
        let l = liveness.clone();
        // A call that ended, whatever its end (a timeout included), is a sign of life.
        iam.with_observer(Arc::new(move |op, error| {
            a.request(op, error);
            l.progressed();
        }))
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
    let controller = Controller::new(
        config.clone(),
        iam,
        account,
        vars,
        metrics,
        aws.clone(),
        liveness,
    );
    health.attach(controller.clone());
    reload_off_the_runtime(&controller).await;
    if lock(&controller.acct.keys).start_first_pass() {
        controller.ready.store(true, Ordering::SeqCst);
    } else {
        controller.first_pass_from_snapshot().await;
    }
    // The first pass reconciles everything that reload() queued.
    controller.metrics.resync_started();
    controller.liveness.resync_finished();

    let mut workers = Vec::new();
    for _ in 0..config.workers {
        workers.push(tokio::spawn(work(controller.clone())));
    }
    let first_pass_log = tokio::spawn(log_first_pass(controller.clone()));
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
    first_pass_log.abort();
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

/// On a large account the first pass takes a while: every few seconds, how far it got, its
/// rate and what is left, until the daemon is ready.
async fn log_first_pass(c: Arc<Controller>) {
    const EVERY: Duration = Duration::from_secs(5);
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(EVERY).await;
        if c.ready.load(Ordering::SeqCst) {
            return;
        }
        let (done, total) = lock(&c.acct.keys).first_pass_progress();
        let per_second = done as f64 / started.elapsed().as_secs_f64();
        let eta = match per_second > 0.0 {
            true => format!("{:.0} s", (total - done) as f64 / per_second),
            false => "unknown".to_string(),
        };
        let pace = c.acct.iam.pace().map(|p| p.reading().rate);
        info!(
            done,
            total,
            per_second = format!("{per_second:.1}"),
            requests_per_second = pace.map(|r| format!("{r:.1}")),
            "first pass: {done} of {total} resources reconciled, about {eta} left"
        );
    }
}

/// The account, retried until it answers: the daemon does not die when AWS is unreachable.
async fn account_with_retry(iam: &Iam, mut stop: signal_watch::Receiver<bool>) -> Option<Account> {
    // Nothing else can start without it: try often enough to start soon after AWS is back.
    let mut failures = 0;
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
        failures += 1;
        let delay = failure_delay(failures, Duration::from_secs(1), Duration::from_secs(10));
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
            Some(()) = reload_rx.recv() => {
                debug!("files changed under DIR: reloading");
                reload_off_the_runtime(&controller).await;
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
