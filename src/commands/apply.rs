//! `iam-warden apply DIR`: converge once. Exit 0 when everything converged, 1 otherwise (the
//! rest is still applied).

use super::session::{prepare, prune_plans};
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::AwsArgs;
use crate::reconcile::{self, Executor, ResourceState, render};

pub async fn run(args: &AwsArgs) -> anyhow::Result<u8> {
    let Some(session) = prepare(&args.manifests).await? else {
        return Ok(EXIT_FAILED);
    };
    let observed = session.observe(args.manifests.prune).await;
    let prune = prune_plans(&session, &args.manifests, observed.snapshot.as_ref()).await?;
    let plans = observed.plans;
    print!("{}{}", render::text(&plans), render::text(&prune));
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
    let failures = report.failures;
    let conflicts = report
        .applied
        .iter()
        .filter(|(p, _)| p.state() == ResourceState::Conflict)
        .count();
    let changed = report.applied.iter().filter(|(_, n)| *n > 0).count();
    let writes: usize = report.applied.iter().map(|(_, n)| n).sum();
    for (who, error) in reconcile::group_failures(&failures) {
        println!("{who}: FAILED: {error}");
    }
    println!(
        "Apply: {changed} resources changed ({writes} changes), {} failed, {conflicts} in conflict.",
        failures.len()
    );
    session.log_requests();
    Ok(if failures.is_empty() && conflicts == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
