//! The command line: every command and flag, with its documentation, in one place.
//!
//! Every flag can also come from `IAM_WARDEN_<FLAG>` (sidecars are configured by env).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::guardrails::{Guardrails, GuardrailsError, Rules};
use crate::reconcile::prune::PruneSettings;

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
    Validate(ValidateArgs),
    /// Show what apply would change. Exit 0 in sync, 2 changes pending, 1 error.
    Plan(PlanArgs),
    /// Converge once and exit. Exit 0 all converged, 1 anything failed.
    Apply(AwsArgs),
    /// The daemon: watch DIR, reconcile, correct drift until SIGTERM.
    Run(RunArgs),
    /// Write manifests for roles and policies that already exist in AWS.
    Import(ImportArgs),
    /// Print the JSON Schema of the manifest kinds (Role, Policy) for editors and CI.
    Schema(SchemaArgs),
    /// Print every manifest of DIR in iam-warden's own shape (ACK's objects rewritten).
    Convert(ConvertArgs),
    /// What a running daemon is doing (its /status), as a table. Exit 0 all in sync, 2 drift
    /// or pending, 1 errors or conflicts (or the daemon cannot be reached).
    Status(StatusArgs),
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

    /// With --prune: how long a resource must stay undeclared before it is deleted (recorded on
    /// it as the tag iam-warden/undeclared-since; a manifest that returns in time keeps it).
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_PRUNE_AFTER", default_value = "10m", value_parser = humantime::parse_duration)]
    pub prune_after: Duration,

    /// With --prune: more deletions than this in one pass and none is made.
    #[arg(
        long,
        value_name = "N",
        env = "IAM_WARDEN_MAX_PRUNE",
        default_value_t = 10
    )]
    pub max_prune: usize,

    /// With --prune: a secret that signs the grace mark (iam-warden/undeclared-since), so that
    /// only a holder of it can write a mark iam-warden honours. Without it the mark is still
    /// bound to the resource and the owner, so a mark set by hand or copied from another
    /// resource starts the grace period again instead of shortening it. Give the same value to
    /// every process of one owner.
    #[arg(
        long,
        value_name = "SECRET",
        env = "IAM_WARDEN_PRUNE_MARK_KEY",
        hide_env_values = true
    )]
    pub prune_mark_key: Option<String>,

    /// Managed policies (ARN, IAM wildcards) never attached nor detached: your organisation's
    /// own baseline. Repeatable.
    #[arg(
        long = "ignore-managed-policy",
        value_name = "PATTERN",
        env = "IAM_WARDEN_IGNORE_MANAGED_POLICY",
        value_delimiter = ','
    )]
    pub ignore_managed_policies: Vec<String>,

    /// Tag keys under this prefix are never touched (tags your organisation adds). Repeatable.
    #[arg(
        long = "ignore-tag-prefix",
        value_name = "PREFIX",
        env = "IAM_WARDEN_IGNORE_TAG_PREFIX",
        value_delimiter = ','
    )]
    pub ignore_tag_prefixes: Vec<String>,

    #[command(flatten)]
    pub iam: IamArgs,

    /// Many accounts: a YAML file of the accounts to manage, how to reach each (a role to
    /// assume, with an optional external id) and each one's values. Without it, the account
    /// of the process's credentials. See docs/accounts.md.
    #[arg(long, value_name = "FILE", env = "IAM_WARDEN_ACCOUNTS")]
    pub accounts: Option<PathBuf>,

    /// With --accounts: how many accounts plan and apply work on at once (each at its own
    /// pace).
    #[arg(long, value_name = "N", env = "IAM_WARDEN_ACCOUNT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub account_concurrency: u16,

    /// How long one change may be retried (throttling, IAM's eventual consistency). `run`
    /// retries in place for at most 5 s, then retries the resource with its own backoff.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_RETRY_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub retry_timeout: Duration,

    /// Guardrail: every role must carry exactly this permissions boundary.
    #[arg(
        long,
        value_name = "ARN",
        env = "IAM_WARDEN_REQUIRE_PERMISSIONS_BOUNDARY"
    )]
    pub require_permissions_boundary: Option<String>,

    /// Guardrail: roles and policies must live under one of these paths. Repeatable.
    #[arg(
        long = "allowed-path-prefix",
        value_name = "PREFIX",
        env = "IAM_WARDEN_ALLOWED_PATH_PREFIX",
        value_delimiter = ','
    )]
    pub allowed_path_prefixes: Vec<String>,

    /// Guardrail: no Allow statement may grant an action matching PATTERN (IAM wildcards;
    /// `*` alone denies granting every action). Repeatable.
    #[arg(
        long = "deny-action",
        value_name = "PATTERN",
        env = "IAM_WARDEN_DENY_ACTION",
        value_delimiter = ','
    )]
    pub deny_actions: Vec<String>,

    /// Guardrail: no trust policy may allow a principal matching PATTERN (`*` alone denies
    /// trusting anyone; `arn:aws:iam::*:root` any account). Repeatable.
    #[arg(
        long = "deny-trust-principal",
        value_name = "PATTERN",
        env = "IAM_WARDEN_DENY_TRUST_PRINCIPAL",
        value_delimiter = ','
    )]
    pub deny_trust_principals: Vec<String>,

    /// Guardrail: trust policies may name only these accounts. Repeatable.
    #[arg(
        long = "allowed-trust-account",
        value_name = "ID",
        env = "IAM_WARDEN_ALLOWED_TRUST_ACCOUNT",
        value_delimiter = ','
    )]
    pub allowed_trust_accounts: Vec<String>,

    /// Guardrail: OpenIDConnectProvider urls must match one of these (IAM wildcards, e.g.
    /// `https://oidc.eks.*.amazonaws.com/id/*`). Repeatable.
    #[arg(
        long = "allowed-oidc-provider-url",
        value_name = "URL",
        env = "IAM_WARDEN_ALLOWED_OIDC_PROVIDER_URL",
        value_delimiter = ','
    )]
    pub allowed_oidc_provider_urls: Vec<String>,

    /// Guardrails as a YAML file (the same rules, camelCase), applied with the flags: the
    /// stricter wins.
    #[arg(
        long = "guardrails",
        value_name = "FILE",
        env = "IAM_WARDEN_GUARDRAILS"
    )]
    pub guardrails_file: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(
        long,
        value_enum,
        env = "IAM_WARDEN_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// iam-warden's own log level (overrides RUST_LOG); `debug` also tells how each run
    /// observes the account and what IAM requests it made.
    #[arg(long, value_enum, env = "IAM_WARDEN_LOG_LEVEL")]
    pub log_level: Option<LogLevel>,
}

impl ManifestArgs {
    pub fn prune_settings(&self) -> PruneSettings {
        PruneSettings {
            grace: self.prune_after,
            max: self.max_prune,
            mark_key: self.prune_mark_key.clone(),
        }
    }

    /// The guardrails of the flags and of `--guardrails FILE`.
    pub fn guardrails(&self) -> Result<Guardrails, GuardrailsError> {
        let flags = Rules {
            require_permissions_boundary: self.require_permissions_boundary.clone(),
            allowed_path_prefixes: self.allowed_path_prefixes.clone(),
            deny_actions: self.deny_actions.clone(),
            deny_trust_principals: self.deny_trust_principals.clone(),
            allowed_trust_accounts: self.allowed_trust_accounts.clone(),
            allowed_oidc_provider_urls: self.allowed_oidc_provider_urls.clone(),
        };
        Guardrails::load(flags, self.guardrails_file.as_deref())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A diff per resource.
    Text,
    /// Every resource's changes, failures and warnings.
    Json,
    /// A pull-request comment: summary, table, a diff per resource, findings first.
    Markdown,
    /// SARIF 2.1.0 for code scanning: errors, guardrails, dangerous grants and conflicts.
    Sarif,
}

/// What `validate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// One line per error and warning, then a summary.
    Text,
    /// `{valid, errors, warnings, summary}`, each finding with file, line, column and rule.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
}

#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// Print the findings as text, JSON or SARIF.
    #[arg(long, value_enum, env = "IAM_WARDEN_OUTPUT", default_value = "text")]
    pub output: ValidateFormat,
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

    /// Print the plan as text (a diff), JSON, Markdown (a pull-request comment) or SARIF.
    #[arg(long, value_enum, env = "IAM_WARDEN_OUTPUT", default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args, Clone)]
pub struct ConvertArgs {
    /// Directory of manifests, read recursively (*.yaml, *.yml; dot-entries skipped).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Write each file to the same path below this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// One resource, `KIND/NAME` (`ACCOUNT/KIND/NAME` with several accounts), with its history
    /// of drift corrections.
    #[arg(value_name = "KIND/NAME")]
    pub resource: Option<String>,

    /// Address of the daemon's HTTP endpoints, HOST:PORT (its --listen; `localhost:9090` after
    /// a port-forward, a Service's name in the cluster).
    #[arg(
        long,
        value_name = "ADDR",
        env = "IAM_WARDEN_LISTEN",
        default_value = "127.0.0.1:9090",
        value_parser = host_port
    )]
    pub listen: String,

    /// Print a table, or /status's JSON as the daemon answers it.
    #[arg(long, value_enum, env = "IAM_WARDEN_OUTPUT", default_value = "text")]
    pub output: StatusFormat,

    /// Show it again every --interval until interrupted.
    #[arg(long)]
    pub watch: bool,

    /// With --watch: how often (at least 100ms).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = watch_interval, requires = "watch")]
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct SchemaArgs {
    /// The schema of the accounts file (--accounts FILE) instead.
    #[arg(long)]
    pub accounts: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// How often to compare AWS with the manifests (e.g. 30s, 5m; at least 1s), a little
    /// jittered.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_RESYNC_INTERVAL", default_value = "60s", value_parser = resync_interval)]
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

    /// A resource corrected more than N times within --contest-window is "contested"
    /// (someone keeps changing it back): reported once, its corrections back off.
    #[arg(long, value_name = "N", env = "IAM_WARDEN_CONTEST_THRESHOLD", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub contest_threshold: u16,

    /// See --contest-threshold; also the quiet time after which a contested resource is calm.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_CONTEST_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub contest_window: Duration,

    /// On SIGTERM, how long in-flight reconciles may take to finish. The default ends the
    /// process before Kubernetes' 30 s termination grace period kills it.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// With --accounts: manage only this shard's accounts, INDEX of COUNT (`0/3`, or a
    /// StatefulSet pod name ending in its ordinal, `iam-warden-0/3`). Each account belongs to
    /// exactly one shard (rendezvous hashing of its id); changing COUNT moves only the accounts
    /// it must.
    #[arg(long, value_name = "INDEX/COUNT", env = "IAM_WARDEN_SHARD", value_parser = crate::manifest::accounts::Shard::parse)]
    pub shard: Option<crate::manifest::accounts::Shard>,
}

/// HOST:PORT; `http://HOST:PORT/` as a browser has it is read as that too.
fn host_port(text: &str) -> Result<String, String> {
    let bare = text
        .strip_prefix("http://")
        .unwrap_or(text)
        .trim_end_matches('/');
    if bare.contains('/') || !bare.contains(':') {
        return Err(format!("`{text}` is not HOST:PORT (e.g. localhost:9090)"));
    }
    Ok(bare.to_string())
}

/// `--watch` more often than ten times a second only burns CPU: the daemon's state moves at
/// the pace of IAM.
fn watch_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err(format!("{text} is too short: at least 100ms"));
    }
    Ok(d)
}

/// A resync reads the whole account: more often than once a second is a mistake (and an
/// IAM throttling storm), not a setting.
fn resync_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{text} is too short: the resync reads the whole account, at most once a second (use 1s or more)"
        ));
    }
    Ok(d)
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

    /// Name of an instance profile to import too (repeatable); one holding an imported role
    /// gets `{ref: ROLE}`.
    #[arg(long = "instance-profile", value_name = "NAME")]
    pub instance_profiles: Vec<String>,

    /// ARN of an OIDC provider to import too (repeatable); imported roles that trust it get
    /// `Federated: {ref: NAME}`.
    #[arg(long = "oidc-provider", value_name = "ARN")]
    pub oidc_providers: Vec<String>,

    /// Write one file per resource into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub iam: IamArgs,
}

/// How to reach IAM, for every command that talks to it.
#[derive(Debug, Args, Clone)]
pub struct IamArgs {
    /// IAM endpoint (AWS_ENDPOINT_URL works as well); credentials come from the standard chain.
    #[arg(long, value_name = "URL", env = "IAM_WARDEN_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// The ceiling of the account's request pace: IAM requests a second at most, shared by
    /// every call. Below it the pace finds the account's limit: it rises while IAM answers
    /// and falls when IAM answers Throttling. 0: unpaced.
    #[arg(
        long,
        value_name = "N",
        env = "IAM_WARDEN_MAX_REQUESTS_PER_SECOND",
        default_value_t = 100
    )]
    pub max_requests_per_second: u32,

    /// How long connecting to IAM may take.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_CONNECT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// How long one attempt of an IAM request may take, its answer read in full.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_ATTEMPT_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub attempt_timeout: Duration,

    /// How long one IAM request may take with its retries: a black-holed endpoint fails a
    /// call within this, so a resync (every 60 s by default) never stalls for good.
    #[arg(long, value_name = "DURATION", env = "IAM_WARDEN_OPERATION_TIMEOUT", default_value = "40s", value_parser = humantime::parse_duration)]
    pub operation_timeout: Duration,
}

impl IamArgs {
    /// How to reach the account these flags describe.
    pub fn reach(&self) -> crate::iam::Reach {
        crate::iam::Reach {
            endpoint_url: self.endpoint_url.clone(),
            max_rps: self.max_requests_per_second,
            timeouts: crate::iam::Timeouts {
                connect: self.connect_timeout,
                attempt: self.attempt_timeout,
                operation: self.operation_timeout,
            },
            assume: None,
            account_id: None,
        }
    }

    /// The IAM client these flags describe.
    pub async fn connect(&self) -> crate::iam::Iam {
        crate::iam::connect(&self.reach()).await
    }
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
    fn import_is_paced_like_every_command() {
        let cli = Cli::try_parse_from([
            "iam-warden",
            "import",
            "r",
            "--max-requests-per-second",
            "3",
        ])
        .unwrap();
        let Command::Import(args) = cli.command else {
            panic!("not import")
        };
        assert_eq!(args.iam.max_requests_per_second, 3);
        let cli = Cli::try_parse_from(["iam-warden", "import", "r"]).unwrap();
        let Command::Import(args) = cli.command else {
            panic!("not import")
        };
        assert_eq!(args.iam.max_requests_per_second, 100);
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

    #[test]
    fn a_resync_interval_under_one_second_is_refused() {
        let err = Cli::try_parse_from(["iam-warden", "run", "d", "--resync-interval", "500ms"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most once a second"), "{err}");
        assert!(Cli::try_parse_from(["iam-warden", "run", "d", "--resync-interval", "1s"]).is_ok());
    }
}
