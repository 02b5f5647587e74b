//! `iam-warden plan DIR`: what apply would change. Exit 0 in sync, 2 changes pending, 1 error.

use super::session::{prepare, prune_plans};
use super::validate::located_warnings;
use super::{EXIT_CHANGES, EXIT_FAILED, EXIT_OK};
use crate::cli::{OutputFormat, PlanArgs};
use crate::reconcile::{ResourceState, render};

pub async fn run(args: &PlanArgs) -> anyhow::Result<u8> {
    let Some(session) = prepare(&args.manifests).await? else {
        return Ok(EXIT_FAILED);
    };
    let observed = session.observe(args.manifests.prune).await;
    let mut plans = observed.plans;
    let failures = observed.failures;
    plans.extend(prune_plans(&session, &args.manifests, observed.snapshot.as_ref()).await?);
    // Dangerous grants are shown whether or not they change anything: in sync is not safe.
    let warnings = located_warnings(&session.desired);
    match args.output {
        OutputFormat::Text => {
            print!("{}", render::text(&plans));
            for (who, error) in crate::reconcile::group_failures(&failures) {
                println!("{who}\n  ! {error}\n");
            }
            print!("{}", render::warnings(&warnings));
            println!("Plan: {}.", render::totals(&plans, failures.len()));
        }
        OutputFormat::Json => {
            let failures: Vec<_> = failures
                .iter()
                .map(|f| serde_json::json!({"kind": f.kind, "name": f.name, "error": f.error}))
                .collect();
            let out = serde_json::json!({
                "resources": plans,
                "failures": failures,
                "warnings": warnings,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    session.log_requests();
    // A prune waiting for its grace period is a change pending too.
    let pending = plans
        .iter()
        .any(|p| !p.changes.is_empty() || !p.findings.is_empty());
    Ok(if !failures.is_empty() {
        EXIT_FAILED
    } else if pending {
        EXIT_CHANGES
    } else if plans.iter().any(|p| p.state() == ResourceState::Conflict) {
        // Conflicts change nothing but are not "in sync" either: CI should look.
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
