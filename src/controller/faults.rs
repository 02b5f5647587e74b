//! Faults injected by tests into the real binary, to prove the daemon survives its own bugs.
//!
//! Read from `IAM_WARDEN_TEST_FAULTS` in debug builds only (a release build ignores it): a
//! comma-separated list of fault points, each optionally followed by `*N` (fire N times, then
//! never again; without it, every time):
//!
//! - `panic:reconcile:KIND/NAME`: the reconcile of that key panics (`panic:reconcile:Role/x`);
//! - `panic:resync`: the resync panics;
//! - `stall:resync`: the resync never finishes.

use std::sync::Mutex;

pub const ENV: &str = "IAM_WARDEN_TEST_FAULTS";

#[derive(Debug, Default)]
pub struct TestFaults {
    /// Point, and how many more times it fires (`None`: always).
    points: Mutex<Vec<(String, Option<u32>)>>,
}

impl TestFaults {
    /// The faults the environment asks for; none in a release build.
    pub fn from_env() -> TestFaults {
        if !cfg!(debug_assertions) {
            return TestFaults::default();
        }
        let spec = std::env::var(ENV).unwrap_or_default();
        let faults = TestFaults::parse(&spec);
        if !spec.is_empty() {
            tracing::warn!(faults = %spec, "test faults injected ({ENV})");
        }
        faults
    }

    fn parse(spec: &str) -> TestFaults {
        let points = spec
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.rsplit_once('*') {
                Some((point, n)) => (point.to_string(), n.parse().ok()),
                None => (p.to_string(), None),
            })
            .collect();
        TestFaults {
            points: Mutex::new(points),
        }
    }

    /// Whether the fault at `point` fires now (counting it).
    pub fn fires(&self, point: &str) -> bool {
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        for (p, left) in points.iter_mut() {
            if p == point {
                match left {
                    None => return true,
                    Some(0) => {}
                    Some(n) => {
                        *n -= 1;
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_fires_that_many_times_and_others_always() {
        let f = TestFaults::parse("panic:reconcile:Role/x*2, stall:resync");
        assert!(f.fires("panic:reconcile:Role/x"));
        assert!(f.fires("panic:reconcile:Role/x"));
        assert!(!f.fires("panic:reconcile:Role/x"));
        assert!(!f.fires("panic:reconcile:Role/y"));
        for _ in 0..5 {
            assert!(f.fires("stall:resync"));
        }
    }
}
