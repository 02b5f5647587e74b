//! How far a long run has got, told to whoever shows it (`apply` and `plan` draw a progress
//! bar on a terminal). The reconcile core only counts; showing is the caller's business.

/// Told of each stage of a run and each step of it.
pub trait Progress: Sync {
    /// A stage of `total` steps begins (`observing`, `applying`, …).
    fn stage(&self, what: &'static str, total: usize);
    /// One step of the current stage is done.
    fn step(&self);
}

/// Shows nothing: the daemon, and runs whose output is not a terminal.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &'static str, _: usize) {}
    fn step(&self) {}
}
