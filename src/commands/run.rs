//! `iam-warden run DIR`: the daemon, until SIGTERM or SIGINT (exit 0).

use super::EXIT_OK;
use super::session::retry_policy;
use super::validate::check_owner;
use crate::cli::RunArgs;
use crate::controller::{self, Config};
use crate::manifest::Variables;

pub async fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let m = &args.manifests;
    check_owner(&m.owner)?;
    // Flags are configuration, not input: a values file that cannot be read at start-up is a
    // mistake to fix now. Later, a bad values file only keeps the previous values.
    let vars = Variables::load(&m.values, &m.vars)?;
    let config = Config {
        dir: m.dir.clone(),
        values: m.values.clone(),
        vars: m.vars.clone(),
        owner: m.owner.clone(),
        ignore_tag_prefixes: m.ignore_tag_prefixes.clone(),
        observe_only: args.observe_only,
        prune: m.prune,
        workers: usize::from(args.workers),
        resync_interval: args.resync_interval,
        shutdown_timeout: args.shutdown_timeout,
        listen: args.listen,
        retry: retry_policy(m),
        contest_threshold: usize::from(args.contest_threshold),
        contest_window: args.contest_window,
        prune_settings: m.prune_settings(),
        ignore_managed_policies: m.ignore_managed_policies.clone(),
        guardrails: m.guardrails()?,
        call_timeout: m.iam.operation_timeout,
    };
    let iam = m.iam.connect().await;
    controller::run(config, iam, vars).await?;
    Ok(EXIT_OK)
}
