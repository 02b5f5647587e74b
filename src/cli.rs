//! The command line: every command and flag, with its documentation, in one place.
//!
//! Every flag can also come from `IAM_WARDEN_<FLAG>` (sidecars are configured by env).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "iam-warden",
    version,
    about = "Keeps AWS IAM roles and customer-managed policies equal to YAML manifests",
    long_about = "Keeps AWS IAM roles and customer-managed policies equal to YAML manifests.\n\n\
                  validate and plan are safe for CI; apply converges once; run is the daemon."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, validate and resolve variables; no AWS call. Exit 0 valid, 1 invalid.
    Validate(ManifestArgs),
    /// Show what apply would change. Exit 0 in sync, 2 changes pending, 1 error.
    Plan(PlanArgs),
    /// Converge once and exit. Exit 0 all converged, 1 anything failed.
    Apply(AwsArgs),
    /// The daemon: watch DIR, reconcile, correct drift until SIGTERM.
    Run(RunArgs),
    /// Write manifests for roles and policies that already exist in AWS.
    Import(ImportArgs),
}

/// Flags of every command that reads manifests.
#[derive(Debug, Args, Clone)]
pub struct ManifestArgs {
    /// Directory of manifests, read recursively (*.yaml, *.yml; dot-entries skipped).
    #[arg(env = "IAM_WARDEN_DIR", value_name = "DIR")]
    pub dir: PathBuf,

    /// YAML file of values for ${var.NAME} (repeatable; later files win).
    #[arg(
        long = "values",
        value_name = "FILE",
        env = "IAM_WARDEN_VALUES",
        value_delimiter = ','
    )]
    pub values: Vec<PathBuf>,

    /// A value for ${var.NAME} (repeatable; beats --values).
    #[arg(long = "var", value_name = "NAME=VALUE", env = "IAM_WARDEN_VAR")]
    pub vars: Vec<String>,

    /// Ownership tag value: iam-warden changes only resources tagged iam-warden/owner=OWNER.
    #[arg(
        long,
        value_name = "ID",
        env = "IAM_WARDEN_OWNER",
        default_value = "default"
    )]
    pub owner: String,

    /// Delete owned resources that no manifest declares any more. Refused when DIR holds no
    /// manifest; `run` also holds off while any manifest is invalid.
    #[arg(long, env = "IAM_WARDEN_PRUNE", value_parser = BoolishValueParser::new())]
    pub prune: bool,

    /// Tag keys under this prefix are never touched (tags your organisation adds). Repeatable.
    #[arg(
        long = "ignore-tag-prefix",
        value_name = "PREFIX",
        env = "IAM_WARDEN_IGNORE_TAG_PREFIX",
        value_delimiter = ','
    )]
    pub ignore_tag_prefixes: Vec<String>,

    /// IAM endpoint (AWS_ENDPOINT_URL works as well); credentials come from the standard chain.
    #[arg(long, value_name = "URL", env = "IAM_WARDEN_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// How long one change may be retried (throttling, IAM's eventual consistency).
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_RETRY_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub retry_timeout: Duration,

    /// Log format on stderr.
    #[arg(
        long,
        value_enum,
        env = "IAM_WARDEN_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct AwsArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
}

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// Print the plan as text (a diff) or JSON.
    #[arg(long, value_enum, env = "IAM_WARDEN_OUTPUT", default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// How often to compare AWS with the manifests (e.g. 30s, 5m), a little jittered.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_RESYNC_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,

    /// Address of /healthz, /readyz, /metrics and /status.
    #[arg(
        long,
        value_name = "ADDR",
        env = "IAM_WARDEN_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub listen: SocketAddr,

    /// Report drift, change nothing.
    #[arg(long, env = "IAM_WARDEN_OBSERVE_ONLY", value_parser = BoolishValueParser::new())]
    pub observe_only: bool,

    /// Reconciles running at once.
    #[arg(long, value_name = "N", env = "IAM_WARDEN_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,

    /// On SIGTERM, how long in-flight reconciles may take to finish. The default ends the
    /// process before Kubernetes' 30 s termination grace period kills it.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Names of the roles to import.
    #[arg(value_name = "ROLE")]
    pub names: Vec<String>,

    /// ARN of a customer-managed policy to import too (repeatable); roles that attach it get
    /// `{ref: NAME}`.
    #[arg(long = "policy", value_name = "ARN")]
    pub policies: Vec<String>,

    /// Write one file per resource into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// IAM endpoint (AWS_ENDPOINT_URL works as well).
    #[arg(long, value_name = "URL", env = "IAM_WARDEN_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repeatable_flags_keep_their_order() {
        let cli = Cli::try_parse_from([
            "iam-warden",
            "plan",
            "dir",
            "--values",
            "a.yaml",
            "--values",
            "b.yaml",
            "--var",
            "x=1",
            "--var",
            "y=2",
            "--owner",
            "team-a",
            "--prune",
        ])
        .unwrap();
        let Command::Plan(args) = cli.command else {
            panic!("not plan")
        };
        assert_eq!(
            args.manifests.values,
            [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(args.manifests.vars, ["x=1", "y=2"]);
        assert_eq!(args.manifests.owner, "team-a");
        assert!(args.manifests.prune);
    }

    #[test]
    fn durations_are_human() {
        let cli =
            Cli::try_parse_from(["iam-warden", "run", "d", "--resync-interval", "2s"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.resync_interval, Duration::from_secs(2));
        // Shorter than Kubernetes' default terminationGracePeriodSeconds (30).
        assert_eq!(args.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(args.listen.to_string(), "127.0.0.1:9090");
    }
}
