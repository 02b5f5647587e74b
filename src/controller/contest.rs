//! Fights: a resource that someone keeps changing back is noticed, not fought forever.
//!
//! More than `threshold` drift corrections of one resource within `window` make it
//! *contested*: one warning names the fields that keep changing, and further corrections back
//! off exponentially (2, 4, 8, then 16 resync intervals apart) instead of writing at every
//! resync. After a whole `window` without drift it is calm again.
//!
//! Invariant: `corrections` holds only times within `window` of the latest event, oldest first.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// When a resource counts as contested, and how its corrections are spaced.
#[derive(Clone, Copy, Debug)]
pub struct ContestPolicy {
    pub threshold: usize,
    pub window: Duration,
    pub resync_interval: Duration,
}

/// The longest hold-off between corrections, in resync intervals.
const MAX_HOLD_OFF: u32 = 16;

#[derive(Debug, Default)]
pub struct Contest {
    corrections: VecDeque<Instant>,
    contested: bool,
    /// Corrections made while contested: the exponent of the hold-off.
    held: u32,
    next_allowed: Option<Instant>,
    last_drift: Option<Instant>,
    /// Each field that drifted within the window, with a summary of its last drifted value.
    fields: BTreeMap<&'static str, String>,
}

/// What a contested resource shows on /status.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContestReport {
    /// Field, and the last change that put it back.
    pub fields: BTreeMap<&'static str, String>,
    /// RFC 3339; `None` when a correction may be made at once.
    pub next_correction: Option<String>,
}

impl Contest {
    pub fn is_contested(&self) -> bool {
        self.contested
    }

    /// Drift was seen at `now` in these fields (field, summary): whether to correct it now.
    pub fn drift_seen(
        &mut self,
        now: Instant,
        fields: impl IntoIterator<Item = (&'static str, String)>,
        policy: &ContestPolicy,
    ) -> bool {
        // Fields that drifted before the window are not part of this fight.
        if !self.contested && self.last_drift.is_some_and(|t| now - t > policy.window) {
            self.fields.clear();
        }
        self.last_drift = Some(now);
        self.fields.extend(fields);
        !self.contested || self.next_allowed.is_none_or(|t| now >= t)
    }

    /// A drift correction was made at `now`. Returns true when this made it contested.
    pub fn corrected(&mut self, now: Instant, policy: &ContestPolicy) -> bool {
        self.corrections.push_back(now);
        while self
            .corrections
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            self.corrections.pop_front();
        }
        let became = !self.contested && self.corrections.len() > policy.threshold;
        if became {
            self.contested = true;
            self.held = 0;
        }
        if self.contested {
            self.held = (self.held + 1).min(MAX_HOLD_OFF.ilog2());
            let factor = 2u32.pow(self.held).min(MAX_HOLD_OFF);
            self.next_allowed = Some(now + policy.resync_interval * factor);
        }
        became
    }

    /// No drift was seen at `now`. Returns true when this ended a contest (a quiet window).
    pub fn quiet(&mut self, now: Instant, policy: &ContestPolicy) -> bool {
        if !self.contested {
            return false;
        }
        let quiet_since = self.last_drift.map_or(Duration::MAX, |t| now - t);
        if quiet_since < policy.window {
            return false;
        }
        *self = Contest::default();
        true
    }

    /// The fields that keep changing, for the warning and /status.
    pub fn report(&self, now: Instant) -> ContestReport {
        let next_correction = self.next_allowed.filter(|t| *t > now).map(|t| {
            let at = std::time::SystemTime::now() + (t - now);
            humantime::format_rfc3339_seconds(at).to_string()
        });
        ContestReport {
            fields: self.fields.clone(),
            next_correction,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> ContestPolicy {
        ContestPolicy {
            threshold: 3,
            window: S * 600,
            resync_interval: S,
        }
    }

    fn fight(c: &mut Contest, at: Instant) -> (bool, bool) {
        let correct = c.drift_seen(at, [("tags", "team other -> data".to_string())], &policy());
        let became = correct && c.corrected(at, &policy());
        (correct, became)
    }

    #[test]
    fn more_than_threshold_corrections_in_the_window_make_it_contested_once() {
        let t0 = Instant::now();
        let mut c = Contest::default();
        for i in 0..3 {
            assert_eq!(fight(&mut c, t0 + S * i), (true, false));
        }
        assert!(!c.is_contested());
        assert_eq!(fight(&mut c, t0 + S * 3), (true, true), "the fourth");
        assert!(c.is_contested());
        assert_eq!(c.report(t0).fields["tags"], "team other -> data");
    }

    #[test]
    fn corrections_spread_wider_than_the_window_never_contest() {
        let t0 = Instant::now();
        let mut c = Contest::default();
        for i in 0..10 {
            assert_eq!(fight(&mut c, t0 + S * 601 * i), (true, false));
        }
    }

    #[test]
    fn a_contested_resource_is_corrected_ever_less_often_up_to_16_intervals() {
        let t0 = Instant::now();
        let mut c = Contest::default();
        for i in 0..4 {
            fight(&mut c, t0 + S * i);
        }
        // Contested at t0+3: the next correction waits 2 intervals, then 4, 8, 16, 16.
        let mut t = t0 + S * 3;
        for gap in [2, 4, 8, 16, 16] {
            assert!(
                !c.drift_seen(t + S * (gap - 1), [], &policy()),
                "held before {gap}"
            );
            t += S * gap;
            assert_eq!(fight(&mut c, t), (true, false), "allowed after {gap}");
        }
    }

    #[test]
    fn fields_that_drifted_before_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut c = Contest::default();
        c.drift_seen(t0, [("description", "old".to_string())], &policy());
        c.drift_seen(t0 + S * 601, [("tags", "new".to_string())], &policy());
        assert_eq!(
            c.report(t0).fields.into_keys().collect::<Vec<_>>(),
            ["tags"]
        );
    }

    #[test]
    fn a_quiet_window_ends_the_contest() {
        let t0 = Instant::now();
        let mut c = Contest::default();
        for i in 0..4 {
            fight(&mut c, t0 + S * i);
        }
        assert!(!c.quiet(t0 + S * 300, &policy()), "not quiet long enough");
        assert!(c.quiet(t0 + S * 604, &policy()));
        assert!(!c.is_contested());
        assert!(c.report(t0).fields.is_empty());
    }
}
