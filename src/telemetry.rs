//! Logging: tracing to stderr as text or JSON, filtered by `--log-level` or RUST_LOG. Text has
//! colours only when stderr is a terminal: container logs and files get plain lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{LogFormat, LogLevel};

/// Installs the global subscriber: `level` (`--log-level`) for iam-warden's own logs, else
/// RUST_LOG, else `default`. The SDK's own warnings are left out unless RUST_LOG asks: they
/// repeat, at length, what our errors already say.
pub fn init(format: LogFormat, default: &str, level: Option<LogLevel>) {
    let quiet_sdk = "aws_config=error,aws_smithy_runtime=error";
    let filter = match level {
        Some(level) => EnvFilter::new(format!(
            "{default},iam_warden={},{quiet_sdk}",
            level.as_str()
        )),
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("{default},{quiet_sdk}"))),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The progress bar on stderr, while one is drawn: a log line is written with the bar
/// lifted, never into it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Log lines from now on lift `bar` while they are written (`None`: no bar any more).
pub fn share_stderr_with(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// stderr, around the progress bar.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter
    }
}

/// Writes one formatted log line (tracing writes each event at once).
struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf).map(|()| buf.len())),
            None => std::io::stderr().write_all(buf).map(|()| buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
