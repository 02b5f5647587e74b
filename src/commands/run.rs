//! `iam-warden run DIR`: the daemon, until SIGTERM or SIGINT (exit 0).

use super::accounts::Targets;
use super::session::retry_policy;
use super::validate::check_owner;
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::RunArgs;
use crate::controller::{self, Config, Target};
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
        account: None,
    };
    let many = m.accounts.is_some();
    let targets = match super::accounts::targets(m) {
        Targets::Caller => vec![Target {
            spec: None,
            iam: m.iam.connect().await,
            vars,
        }],
        Targets::Invalid => return Ok(EXIT_FAILED),
        Targets::Many(accounts) => {
            let accounts = accounts.sharded(args.shard);
            if accounts.accounts.is_empty() {
                // A shard may well hold none of few accounts: it idles, healthy and ready.
                tracing::warn!("no account of the accounts file belongs to this shard");
            }
            let mut targets = Vec::new();
            for a in accounts.accounts {
                // Flags are configuration: an account's values file that cannot be read at
                // start-up is a mistake to fix now.
                let vars = super::accounts::variables(m, &a)?;
                let iam = crate::iam::connect(&super::accounts::reach(m, &a)).await;
                targets.push(Target {
                    spec: Some(a),
                    iam,
                    vars,
                });
            }
            targets
        }
    };
    controller::run(config, targets, many).await?;
    Ok(EXIT_OK)
}
