//! The wiring of one account's runtime: workers, the triggers (file events, the resync timer,
//! SIGHUP), identifying the account, and the process's signals. `supervisor` starts them.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, watch as signal_watch};
use tracing::{Instrument, debug, error, info, warn};

use super::desired::Key;
use super::queue::WorkQueue;
use super::slot::Slot;
use super::{Controller, lock, panic_message};
use crate::iam::{Account, Iam};
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

/// On a large account the first pass takes a while: every few seconds, how far it got, its
/// rate and what is left, until the daemon is ready.
pub(super) async fn log_first_pass(c: Arc<Controller>) {
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

/// The account, retried until it answers: the daemon does not die when AWS is unreachable, nor
/// when an account's role cannot be assumed (`slot` shows why, meanwhile).
pub(super) async fn account_with_retry(
    iam: &Iam,
    mut stop: signal_watch::Receiver<bool>,
    slot: &Slot,
) -> Option<Account> {
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
                *lock(&slot.unreachable) = None;
                return Some(a);
            }
            Err(e) => {
                *lock(&slot.unreachable) = Some(format!("cannot identify the account: {e}"));
                if !said {
                    warn!(error = %e, "cannot identify the AWS account yet; retrying");
                    said = true;
                } else {
                    debug!(error = %e, "cannot identify the AWS account yet");
                }
            }
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
pub(super) async fn reload_off_the_runtime(controller: &Arc<Controller>) {
    let c = Arc::clone(controller);
    // The account's span goes along: its reload logs name it.
    let span = tracing::Span::current();
    if let Err(e) = tokio::task::spawn_blocking(move || span.in_scope(|| c.reload())).await {
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
pub(super) async fn triggers(
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
        tokio::spawn(
            async move {
                if let Err(panic) = AssertUnwindSafe(c.resync()).catch_unwind().await {
                    error!("resync panicked: {}", panic_message(&*panic));
                }
            }
            .in_current_span(),
        );
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

pub(super) async fn handle_signals(stop: signal_watch::Sender<bool>) {
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
