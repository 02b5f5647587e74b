//! `iam-warden apply DIR`: converge once. Exit 0 when everything converged, 1 otherwise (the
//! rest is still applied). With `--accounts`, every account converges (several at once), each
//! reported in the file's order; one that fails never stops the others.

use std::fmt::Write as _;

use futures::StreamExt;
use tracing::Instrument;

use super::accounts::Targets;
use super::session::{Session, prepare, prepare_in, prune_plans};
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::AwsArgs;
use crate::manifest::accounts::{AccountSpec, Accounts};
use crate::reconcile::{self, Executor, ResourceState, render};

/// What converging one account did.
struct Outcome {
    /// The plan, then each failure.
    text: String,
    changed: usize,
    writes: usize,
    failed: usize,
    conflicts: usize,
}

pub async fn run(args: &AwsArgs) -> anyhow::Result<u8> {
    match super::accounts::targets(&args.manifests) {
        Targets::Caller => {}
        Targets::Invalid(diags) => {
            Targets::say_invalid(&diags);
            return Ok(EXIT_FAILED);
        }
        Targets::Many(accounts) => return run_accounts(args, *accounts).await,
    }
    let Some(session) = prepare(&args.manifests).await? else {
        return Ok(EXIT_FAILED);
    };
    let o = apply_session(&session, args, None, |plan| print!("{plan}")).await?;
    print!("{}", o.text);
    println!(
        "Apply: {} resources changed ({} changes), {} failed, {} in conflict.",
        o.changed, o.writes, o.failed, o.conflicts
    );
    session.log_requests();
    Ok(if o.failed == 0 && o.conflicts == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Plans and converges `session`'s account; `show_plan` gets the plan before any change.
async fn apply_session(
    session: &Session,
    args: &AwsArgs,
    account: Option<&str>,
    show_plan: impl FnOnce(String),
) -> anyhow::Result<Outcome> {
    let observed = session.observe(args.manifests.prune).await;
    let prune = prune_plans(session, &args.manifests, observed.snapshot.as_ref()).await?;
    let plans = observed.plans;
    show_plan(format!(
        "{}{}",
        render::text_in(&plans, account),
        render::text_in(&prune, account)
    ));
    let executor = Executor {
        iam: &session.iam,
        owner: &args.manifests.owner,
        retry: session.retry.clone(),
    };
    let report = reconcile::apply_all(
        &executor,
        &session.desired,
        plans,
        prune,
        observed.failures,
        &session.progress,
    )
    .await;
    session.progress.clear();
    let mut text = String::new();
    for (who, error) in reconcile::group_failures_in(&report.failures, account) {
        let _ = writeln!(text, "{who}: FAILED: {error}");
    }
    Ok(Outcome {
        text,
        changed: report.applied.iter().filter(|(_, n)| *n > 0).count(),
        writes: report.applied.iter().map(|(_, n)| n).sum(),
        failed: report.failures.len(),
        conflicts: report
            .applied
            .iter()
            .filter(|(p, _)| p.state() == ResourceState::Conflict)
            .count(),
    })
}

/// Every account, `--account-concurrency` at once.
async fn run_accounts(args: &AwsArgs, accounts: Accounts) -> anyhow::Result<u8> {
    let m = &args.manifests;
    let Some(accounts) = super::accounts::expand_valid(m, accounts).await? else {
        return Ok(EXIT_FAILED);
    };
    let apply_one = |a: AccountSpec| async move {
        let applied = async {
            let Some(mut session) = prepare_in(m, Some(&a)).await? else {
                anyhow::bail!("invalid manifests for this account");
            };
            session.progress = super::progress::Bar::off();
            let mut plan = String::new();
            let mut o = apply_session(&session, args, Some(&a.name), |p| plan = p).await?;
            o.text = plan + &o.text;
            session.log_requests();
            Ok(o)
        }
        .instrument(tracing::info_span!("account", account = %a.name))
        .await;
        (a, applied)
    };
    let mut results = futures::stream::iter(accounts.accounts)
        .map(apply_one)
        .buffered(usize::from(m.account_concurrency));
    let (mut changed, mut writes, mut failed, mut conflicts, mut accounts_failed) = (0, 0, 0, 0, 0);
    let mut count = 0;
    // Each account is reported as soon as it and those before it are done.
    while let Some((a, result)) = results.next().await {
        count += 1;
        println!("== account {} ({}) ==", a.name, a.id);
        match result {
            Ok(o) => {
                print!("{}", o.text);
                println!(
                    "Apply for {}: {} resources changed ({} changes), {} failed, {} in conflict.\n",
                    a.name, o.changed, o.writes, o.failed, o.conflicts
                );
                changed += o.changed;
                writes += o.writes;
                failed += o.failed;
                conflicts += o.conflicts;
            }
            Err(e) => {
                accounts_failed += 1;
                println!("  ! cannot apply account {}: {e:#}\n", a.name);
            }
        }
    }
    println!(
        "Apply: {changed} resources changed ({writes} changes), {failed} failed, {conflicts} in conflict, in {} ({accounts_failed} not applied: see above).",
        super::report::plural(count, "account", "accounts")
    );
    Ok(if failed == 0 && conflicts == 0 && accounts_failed == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
