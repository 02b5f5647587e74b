//! The keyed work queue: at most one reconcile per key at a time, duplicate requests coalesced,
//! and a request that arrives while its key is running is kept (the key runs once more after).
//!
//! Invariant: a key is in at most one of `queued` and `running`; `again` holds only running keys.
//! Each queued key carries the time it was (first) requested, for the queue-age metric.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    wake: Notify,
}

struct State<K> {
    queued: VecDeque<(K, Instant)>,
    running: HashSet<K>,
    again: HashSet<K>,
    /// Of `again`: those to run ahead of the queue when they come back.
    urgent: HashSet<K>,
    closed: bool,
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queued: VecDeque::new(),
                running: HashSet::new(),
                again: HashSet::new(),
                urgent: HashSet::new(),
                closed: false,
            }),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A panic while holding this lock leaves the state consistent (every method is one
        // short critical section), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests a reconcile of `key`. Coalesced with a request already queued; remembered if
    /// the key is running.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if s.running.contains(&key) {
            s.again.insert(key);
        } else if !s.queued.iter().any(|(k, _)| *k == key) {
            s.queued.push_back((key, Instant::now()));
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Requests `key` ahead of every queued key: an edit just saved (a revocation may be
    /// urgent) does not wait behind a first pass of thousands or a resync's drift work.
    pub fn add_first(&self, key: K) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if s.running.contains(&key) {
            s.urgent.insert(key.clone());
            s.again.insert(key);
            return;
        }
        let since = s
            .queued
            .iter()
            .position(|(k, _)| *k == key)
            .and_then(|i| s.queued.remove(i))
            .map_or_else(Instant::now, |(_, at)| at);
        s.queued.push_front((key, since));
        drop(s);
        self.wake.notify_one();
    }

    /// Requests `key` after `delay` (a failed key's backoff), without holding up other keys;
    /// then ahead of the queue: a failed key waits for its backoff, not for a backlog too.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add_first(key);
        });
    }

    /// The next key to reconcile, now marked running; `None` once the queue is closed.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.wake.notified();
            {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                if let Some((key, _)) = s.queued.pop_front() {
                    s.running.insert(key.clone());
                    let more = !s.queued.is_empty();
                    drop(s);
                    if more {
                        // Pass the wake-up on: another worker may take the next key.
                        self.wake.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` finished; if it was requested while running, it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.running.remove(key);
        let urgent = s.urgent.remove(key);
        if s.again.remove(key) && !s.closed {
            match urgent {
                true => s.queued.push_front((key.clone(), Instant::now())),
                false => s.queued.push_back((key.clone(), Instant::now())),
            }
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Whether `key` is being worked on now.
    pub fn is_running(&self, key: &K) -> bool {
        self.lock().running.contains(key)
    }

    /// Drops queued keys that `keep` refuses (work found unnecessary before it started).
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.lock().queued.retain(|(k, _)| keep(k));
    }

    /// Stops handing out work; keys already running finish.
    /// Whether the daemon is stopping: no new work is handed out.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    /// How many keys wait, and how long the oldest has waited.
    pub fn depth(&self) -> (usize, Duration) {
        let s = self.lock();
        let oldest = s.queued.iter().map(|(_, at)| at.elapsed()).max();
        (s.queued.len(), oldest.unwrap_or_default())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().queued.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(q: &WorkQueue<&'static str>) -> Option<&'static str> {
        let mut s = q.lock();
        let (k, _) = s.queued.pop_front()?;
        s.running.insert(k);
        Some(k)
    }

    #[test]
    fn an_urgent_key_runs_ahead_of_the_backlog_once() {
        let q = WorkQueue::new();
        for k in ["a", "b", "c", "edit"] {
            q.add(k);
        }
        q.add_first("edit");
        q.add_first("new");
        assert_eq!(ready(&q), Some("new"));
        assert_eq!(ready(&q), Some("edit"));
        assert_eq!(ready(&q), Some("a"));
        assert_eq!(q.len(), 2, "each key queued once");
        // Requested urgently while running: back at the front when it finishes.
        q.add_first("a");
        q.done(&"a");
        assert_eq!(ready(&q), Some("a"));
        // Requested as usual while running: at the back.
        q.add("a");
        q.done(&"a");
        assert_eq!(ready(&q), Some("b"));
    }

    #[test]
    fn duplicate_requests_are_coalesced() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.depth().0, 2);
        assert_eq!(ready(&q), Some("a"));
        assert_eq!(ready(&q), Some("b"));
        assert_eq!(ready(&q), None);
    }

    #[test]
    fn a_running_key_is_not_handed_out_twice_but_runs_again_after() {
        let q = WorkQueue::new();
        q.add("a");
        assert_eq!(ready(&q), Some("a"));
        q.add("a");
        q.add("a");
        assert_eq!(ready(&q), None, "a is running: not handed out again");
        q.done(&"a");
        assert_eq!(
            ready(&q),
            Some("a"),
            "the request made while running is kept"
        );
        q.done(&"a");
        assert_eq!(ready(&q), None, "and only once");
    }

    #[test]
    fn other_keys_are_not_held_up_by_a_running_one() {
        let q = WorkQueue::new();
        q.add("a");
        assert_eq!(ready(&q), Some("a"));
        q.add("b");
        assert_eq!(ready(&q), Some("b"));
    }

    #[tokio::test]
    async fn next_waits_for_work_and_close_ends_it() {
        let q: Arc<WorkQueue<&'static str>> = WorkQueue::new();
        let worker = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.add("x");
        assert_eq!(worker.await.unwrap(), Some("x"));
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.close();
        assert_eq!(waiting.await.unwrap(), None);
        q.add("y");
        assert!(q.is_empty(), "a closed queue takes no work");
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_delays_the_request() {
        let q: Arc<WorkQueue<&'static str>> = WorkQueue::new();
        q.add_after("late", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(q.len(), 1);
    }
}
