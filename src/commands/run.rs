//! `iam-warden run DIR`: the daemon, until SIGTERM or SIGINT (exit 0).

use std::sync::Arc;

use super::accounts::Targets;
use super::session::retry_policy;
use super::validate::check_owner;
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ManifestArgs;
use crate::cli::RunArgs;
use crate::controller::{self, Config, Discovery, ListAccounts, MakeTarget, Target};
use crate::manifest::Variables;
use crate::manifest::accounts::{AccountSpec, Accounts, DEFAULT_REFRESH_EVERY};

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
    if args.shard.is_some() && !many {
        // N replicas on one account, each thinking it holds a shard, would all write and prune.
        anyhow::bail!("--shard splits the accounts of --accounts FILE; give the accounts file too");
    }
    let mut discovery = None;
    let targets = match super::accounts::targets(m) {
        Targets::Caller => vec![Target {
            spec: None,
            iam: m.iam.connect().await,
            vars,
        }],
        Targets::Invalid(diags) => {
            Targets::say_invalid(&diags);
            return Ok(EXIT_FAILED);
        }
        Targets::Many(file) => {
            let shard = args.shard;
            let members = match super::accounts::members(m, &file).await {
                Ok(found) => found,
                Err(e) => {
                    // Listed again at the next refresh; the file's own accounts start now.
                    tracing::warn!("{e:#}; starting with the accounts the file lists");
                    Vec::new()
                }
            };
            let accounts = file.with_members(&members).sharded(shard);
            if accounts.accounts.is_empty() {
                // A shard may well hold none of few accounts: it idles, healthy and ready.
                tracing::warn!("no account of the accounts file belongs to this shard");
            }
            // The file (and its organization) is read again every few resyncs and at SIGHUP:
            // a new account starts without a restart.
            let every = file
                .organization
                .as_ref()
                .map_or(DEFAULT_REFRESH_EVERY, |o| o.refresh_every);
            let (m2, path) = (m.clone(), m.accounts.clone().unwrap_or_default());
            let list: ListAccounts = Arc::new(move || {
                let (m, path) = (m2.clone(), path.clone());
                Box::pin(async move {
                    let file = Accounts::load(&path).map_err(|diags| {
                        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
                        anyhow::anyhow!("invalid accounts file: {}", lines.join("; "))
                    })?;
                    let members = super::accounts::members(&m, &file).await?;
                    Ok(file.with_members(&members).sharded(shard).accounts)
                })
            });
            let m3 = m.clone();
            let target: MakeTarget = Arc::new(move |a| {
                let m = m3.clone();
                Box::pin(async move { target_of(&m, a).await })
            });
            discovery = Some(Discovery {
                every: args.resync_interval * every,
                list,
                target,
            });
            let mut targets = Vec::new();
            for a in accounts.accounts {
                targets.push(target_of(m, a).await?);
            }
            targets
        }
    };
    controller::run(config, targets, many, discovery).await?;
    Ok(EXIT_OK)
}

/// An account's client and values. At start-up an account's values file that cannot be read
/// is a mistake to fix now (flags are configuration); later, that account does not start.
async fn target_of(m: &ManifestArgs, a: AccountSpec) -> anyhow::Result<Target> {
    let vars = super::accounts::variables(m, &a)?;
    let iam = crate::iam::connect(&super::accounts::reach(m, &a)).await;
    Ok(Target {
        spec: Some(a),
        iam,
        vars,
    })
}
