//! The request pace of one account: how fast its IAM may be asked. IAM does not publish an
//! account's rate limit, and other tools share it, so the pace finds it: it starts at the
//! ceiling (`--max-requests-per-second`), rises while answers succeed and falls when IAM
//! answers Throttling (additive increase, multiplicative decrease, as TCP finds a link's
//! capacity).
//!
//! A request waits for its turn *before* it is handed to the SDK ([`Pace::turn`]), never inside
//! the HTTP connection, where the SDK's stalled-stream check would count the wait as a stalled
//! upload. The SDK's own retries are not turned away: they are charged as debt
//! ([`Pace::charge`]), so the next request waits for them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The slowest pace: a throttled account is still asked something every two seconds.
const FLOOR: f64 = 0.5;

/// After a decrease, throttled answers to requests sent before it are not counted again
/// (a few round trips of IAM from a pod).
const CALM: Duration = Duration::from_millis(300);

/// On Throttling the rate falls to this share of what the account accepted in the last
/// second (its limit, as far as we can tell), and at most to this share of the rate.
const BELOW_ACCEPTED: f64 = 0.9;
const DECREASE: f64 = 0.7;

/// Each success adds `INCREASE / rate`: about INCREASE requests a second more per second at
/// full use, a slow probe for headroom once the limit is found.
const INCREASE: f64 = 1.0;

/// How far the pace has found the account's limit: for `/status` and the metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaceReading {
    pub rate: f64,
    pub ceiling: f64,
    pub throttled: u64,
}

#[derive(Debug)]
pub struct Pace {
    ceiling: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    /// Tokens available (negative: requests already promised a later turn), and when counted.
    tokens: f64,
    counted_at: Instant,
    calm_until: Instant,
    /// When each success of the last second was answered.
    accepted: VecDeque<Instant>,
    throttled: u64,
}

impl Pace {
    /// A pace starting at `ceiling` requests a second, never above it.
    pub fn new(ceiling: u32) -> Pace {
        let ceiling = f64::from(ceiling.max(1));
        let now = Instant::now();
        Pace {
            ceiling,
            state: Mutex::new(State {
                rate: ceiling,
                tokens: burst(ceiling),
                counted_at: now,
                calm_until: now,
                accepted: VecDeque::new(),
                throttled: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state whole: a poisoned lock is safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a turn and says how long to wait for it: turns are handed out in order, each
    /// `1 / rate` after the last, after a small burst.
    fn reserve(&self) -> Duration {
        let mut s = self.lock();
        s.refill(Instant::now());
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / s.rate)
        }
    }

    /// Waits for this request's turn.
    pub async fn turn(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// A request that went without a turn (an SDK retry): the next ones wait for it.
    pub fn charge(&self) {
        let mut s = self.lock();
        s.refill(Instant::now());
        s.tokens -= 1.0;
    }

    /// IAM answered a request: `throttled` when it said Throttling.
    pub fn answered(&self, throttled: bool) {
        let now = Instant::now();
        let mut s = self.lock();
        s.refill(now);
        while s
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            s.accepted.pop_front();
        }
        if !throttled {
            s.accepted.push_back(now);
            s.rate = (s.rate + INCREASE / s.rate).min(self.ceiling);
            return;
        }
        s.throttled += 1;
        if now < s.calm_until {
            return;
        }
        let accepted = s.accepted.len() as f64 * BELOW_ACCEPTED;
        s.rate = (s.rate * DECREASE).min(accepted).max(FLOOR);
        // Tokens saved up at the old rate would be spent at once: start from none.
        s.tokens = s.tokens.min(0.0);
        s.calm_until = now + CALM;
    }

    pub fn reading(&self) -> PaceReading {
        let s = self.lock();
        PaceReading {
            rate: s.rate,
            ceiling: self.ceiling,
            throttled: s.throttled,
        }
    }
}

/// A twentieth of a second's worth of requests may go at once (at least one): a burst above
/// the account's limit is answered with Throttling before the pace can learn of it.
fn burst(rate: f64) -> f64 {
    (rate / 20.0).max(1.0)
}

impl State {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.counted_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(burst(self.rate));
        self.counted_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` turns one after another; how long they took.
    async fn turns(pace: &Pace, n: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            pace.turn().await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn turns_come_at_the_ceiling_after_a_small_burst() {
        let pace = Pace::new(10);
        let burst = turns(&pace, 1).await;
        assert_eq!(burst, Duration::ZERO);
        let paced = turns(&pace, 20).await;
        assert!(
            paced >= Duration::from_millis(1950) && paced <= Duration::from_millis(2050),
            "{paced:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_rises_above_the_ceiling() {
        let pace = Pace::new(20);
        for _ in 0..1000 {
            pace.answered(false);
        }
        assert_eq!(pace.reading().rate, 20.0);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_brings_the_rate_under_what_the_account_accepted() {
        let pace = Pace::new(50);
        // The account accepted 20 in the last second, then throttled.
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(50)).await;
            pace.answered(false);
        }
        pace.answered(true);
        let rate = pace.reading().rate;
        assert!((rate - 18.0).abs() < 0.01, "{rate}");
        assert_eq!(pace.reading().throttled, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_answers_in_one_burst_lower_the_rate_once() {
        let pace = Pace::new(50);
        for _ in 0..40 {
            pace.answered(false);
        }
        pace.answered(true);
        let once = pace.reading().rate;
        for _ in 0..10 {
            pace.answered(true);
        }
        assert_eq!(pace.reading().rate, once);
        tokio::time::advance(CALM + Duration::from_millis(1)).await;
        pace.answered(true);
        assert!(pace.reading().rate < once);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_pace_never_stops() {
        let pace = Pace::new(50);
        for _ in 0..50 {
            tokio::time::advance(CALM * 2).await;
            pace.answered(true);
        }
        assert_eq!(pace.reading().rate, FLOOR);
        let waited = turns(&pace, 2).await;
        assert!(waited <= Duration::from_secs(4), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_raise_the_rate_again_slowly() {
        let pace = Pace::new(50);
        for _ in 0..10 {
            pace.answered(false);
        }
        pace.answered(true);
        let low = pace.reading().rate;
        for _ in 0..(low as usize) {
            pace.answered(false);
        }
        let after = pace.reading().rate;
        assert!(after > low && after < low + 1.5, "{low} -> {after}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_charged_retry_delays_the_next_turn() {
        let pace = Pace::new(10);
        turns(&pace, 1).await;
        pace.charge();
        pace.charge();
        let waited = turns(&pace, 1).await;
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
    }
}
