//! Liveness: evidence that the daemon is still doing its job, for `/healthz`.
//!
//! The trigger loop turns at least once per resync interval (its timer), a resync finishes
//! about once per interval, and the worker pool keeps its size. When any of these stops for a
//! few intervals the process is stuck, whatever it still answers on HTTP, and a restart is the
//! cure: `/healthz` says so with a reason.
//!
//! A long pass is not a stuck one: on a large or throttled account the first pass and a
//! resync can take many intervals, and a restart would only start them over. While IAM
//! requests keep ending (answered, refused or timed out), the daemon is working, slowly.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Liveness {
    start: Instant,
    /// Milliseconds since `start`.
    last_turn: AtomicU64,
    last_resync: AtomicU64,
    /// The last IAM request that ended, or reconcile that finished.
    last_progress: AtomicU64,
    /// The trigger loop has turned once: until then the daemon is starting (its first pass).
    looping: AtomicBool,
    workers: AtomicUsize,
    /// Workers ever started: until the pool has been full once, it is still starting.
    started: AtomicUsize,
    expected_workers: usize,
    /// How long without a loop turn or a finished resync means stuck.
    stale_after: Duration,
}

impl Liveness {
    /// `call_timeout`: the longest one IAM call may take; a pass waiting on one is not stuck.
    pub fn new(interval: Duration, workers: usize, call_timeout: Duration) -> Liveness {
        Liveness {
            start: Instant::now(),
            last_turn: AtomicU64::new(0),
            last_resync: AtomicU64::new(0),
            last_progress: AtomicU64::new(0),
            looping: AtomicBool::new(false),
            workers: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            expected_workers: workers,
            // A few intervals, and some slack for a slow machine or a large account; never
            // less than two calls that time out.
            stale_after: (interval * 3).max(call_timeout * 2) + Duration::from_secs(10),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn loop_turned(&self) {
        self.last_turn.store(self.now_ms(), Ordering::Relaxed);
        self.looping.store(true, Ordering::Relaxed);
    }

    /// Work moved: an IAM request ended, or a reconcile finished.
    pub fn progressed(&self) {
        self.last_progress.store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn resync_finished(&self) {
        self.last_resync.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A worker starts; the returned guard marks it gone when dropped (however it ends).
    pub fn worker(&self) -> WorkerAlive<'_> {
        self.workers.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        WorkerAlive(self)
    }

    /// Why the daemon is not alive, if it is not.
    pub fn problem(&self) -> Option<String> {
        let now = self.now_ms();
        let stale = u64::try_from(self.stale_after.as_millis()).unwrap_or(u64::MAX);
        let ago = |t: &AtomicU64| now.saturating_sub(t.load(Ordering::Relaxed));
        let workers = self.workers.load(Ordering::SeqCst);
        let starting = self.started.load(Ordering::SeqCst) < self.expected_workers;
        if !starting && workers < self.expected_workers {
            return Some(format!(
                "{} of {} workers are gone",
                self.expected_workers - workers,
                self.expected_workers
            ));
        }
        let working = ago(&self.last_progress) <= stale;
        if !self.looping.load(Ordering::Relaxed) {
            // Starting: the first pass, however long, while it makes progress.
            return (!working).then(|| {
                format!(
                    "starting, and no IAM request has ended for {} s",
                    ago(&self.last_progress) / 1000
                )
            });
        }
        if ago(&self.last_turn) > stale {
            return Some(format!(
                "the trigger loop has not turned for {} s",
                ago(&self.last_turn) / 1000
            ));
        }
        if ago(&self.last_resync) > stale && !working {
            return Some(format!(
                "no resync has finished for {} s, and no IAM request has ended for {} s",
                ago(&self.last_resync) / 1000,
                ago(&self.last_progress) / 1000
            ));
        }
        None
    }
}

pub struct WorkerAlive<'a>(&'a Liveness);

impl Drop for WorkerAlive<'_> {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_may_take_longer_than_the_intervals_sets_the_bound() {
        let short = Liveness::new(Duration::from_secs(2), 1, Duration::from_secs(40));
        assert_eq!(short.stale_after, Duration::from_secs(90));
        let long = Liveness::new(Duration::from_secs(60), 1, Duration::from_secs(40));
        assert_eq!(long.stale_after, Duration::from_secs(190));
    }

    #[test]
    fn alive_while_the_loop_turns_and_the_workers_stay() {
        let l = Liveness::new(Duration::from_secs(1), 2, Duration::from_secs(1));
        let a = l.worker();
        assert_eq!(l.problem(), None, "still starting");
        let b = l.worker();
        assert_eq!(l.problem(), None);
        drop(a);
        assert_eq!(l.problem().as_deref(), Some("1 of 2 workers are gone"));
        drop(b);
        assert!(l.problem().unwrap().contains("2 of 2"));
    }

    #[test]
    fn stuck_when_nothing_turned_for_a_few_intervals() {
        let l = Liveness {
            stale_after: Duration::ZERO,
            ..Liveness::new(Duration::from_secs(1), 0, Duration::from_secs(1))
        };
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.problem().unwrap().contains("starting"));
        l.loop_turned();
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.problem().unwrap().contains("trigger loop"));
        l.loop_turned();
        assert!(l.problem().unwrap().contains("no resync"));
        l.resync_finished();
        assert_eq!(l.problem(), None);
    }

    #[test]
    fn a_long_pass_that_makes_progress_is_alive() {
        let l = Liveness {
            stale_after: Duration::from_millis(200),
            ..Liveness::new(Duration::from_secs(1), 0, Duration::from_secs(1))
        };
        // The first pass: longer than stale, but requests keep ending.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(60));
            l.progressed();
        }
        assert_eq!(l.problem(), None, "a first pass that progresses");
        l.loop_turned();
        // A resync as long: the loop turns, requests end, no resync finishes.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(60));
            l.progressed();
            l.loop_turned();
        }
        assert_eq!(l.problem(), None, "a resync that progresses");
        std::thread::sleep(Duration::from_millis(250));
        l.loop_turned();
        assert!(l.problem().unwrap().contains("no IAM request has ended"));
    }
}
