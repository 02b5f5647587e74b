//! Liveness: evidence that the daemon is still doing its job, for `/healthz`.
//!
//! The trigger loop turns at least once per resync interval (its timer), a resync finishes
//! about once per interval, and the worker pool keeps its size. When any of these stops for a
//! few intervals the process is stuck, whatever it still answers on HTTP, and a restart is the
//! cure: `/healthz` says so with a reason.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Liveness {
    start: Instant,
    /// Milliseconds since `start`.
    last_turn: AtomicU64,
    last_resync: AtomicU64,
    workers: AtomicUsize,
    /// Workers ever started: until the pool has been full once, it is still starting.
    started: AtomicUsize,
    expected_workers: usize,
    /// How long without a loop turn or a finished resync means stuck.
    stale_after: Duration,
}

impl Liveness {
    pub fn new(interval: Duration, workers: usize) -> Liveness {
        Liveness {
            start: Instant::now(),
            last_turn: AtomicU64::new(0),
            last_resync: AtomicU64::new(0),
            workers: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            expected_workers: workers,
            // A few intervals, and some slack for a slow machine or a large account.
            stale_after: interval * 3 + Duration::from_secs(10),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn loop_turned(&self) {
        self.last_turn.store(self.now_ms(), Ordering::Relaxed);
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
        if ago(&self.last_turn) > stale {
            return Some(format!(
                "the trigger loop has not turned for {} s",
                ago(&self.last_turn) / 1000
            ));
        }
        if ago(&self.last_resync) > stale {
            return Some(format!(
                "no resync has finished for {} s",
                ago(&self.last_resync) / 1000
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
    fn alive_while_the_loop_turns_and_the_workers_stay() {
        let l = Liveness::new(Duration::from_secs(1), 2);
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
            ..Liveness::new(Duration::from_secs(1), 0)
        };
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.problem().unwrap().contains("trigger loop"));
        l.loop_turned();
        assert!(l.problem().unwrap().contains("no resync"));
        l.resync_finished();
        assert_eq!(l.problem(), None);
    }
}
