//! Logging: tracing to stderr as text or JSON, filtered by `--log-level` or RUST_LOG. Text has
//! colours only when stderr is a terminal: container logs and files get plain lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
