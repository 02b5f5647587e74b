//! The progress bar of `apply` and `plan`: counts, rate and an ETA from the current pace, on
//! a terminal only (never on a pipe, in JSON logs or in CI), and only for a run that has
//! taken a couple of seconds already (a short run shows nothing).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::LogFormat;
use crate::reconcile::Progress;

/// A run shorter than this shows no bar.
const SHOW_AFTER: Duration = Duration::from_secs(2);

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
    shown: Mutex<bool>,
    enabled: bool,
}

impl Bar {
    /// No bar: accounts worked on at once would draw over each other.
    pub fn off() -> Bar {
        Bar {
            bar: ProgressBar::hidden(),
            started: Instant::now(),
            shown: Mutex::new(false),
            enabled: false,
        }
    }

    /// A bar on stderr when it is a terminal, the logs are text and `CI` is unset.
    pub fn for_terminal(format: LogFormat) -> Bar {
        let enabled = std::io::stderr().is_terminal()
            && format == LogFormat::Text
            && std::env::var_os("CI").is_none();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:20} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar {
            bar,
            started: Instant::now(),
            shown: Mutex::new(false),
            enabled,
        }
    }

    fn show_if_long(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        if self.enabled && !*shown && self.started.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            crate::telemetry::share_stderr_with(Some(self.bar.clone()));
            *shown = true;
        }
    }

    /// Clears the bar before the run prints its results.
    /// A later stage draws it again.
    pub fn clear(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
        crate::telemetry::share_stderr_with(None);
        *shown = false;
    }
}

impl Progress for Bar {
    fn stage(&self, what: &'static str, total: usize) {
        self.bar.set_message(what);
        self.bar.set_length(total as u64);
        self.bar.reset();
        self.show_if_long();
    }

    fn step(&self) {
        self.bar.inc(1);
        self.show_if_long();
    }
}
