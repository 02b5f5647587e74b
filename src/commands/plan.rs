//! `iam-warden plan DIR`: what apply would change. Exit 0 in sync, 2 changes pending, 1 error.
//! With `--accounts`, every account is planned (several at once) and reported in the file's
//! order, as `ACCOUNT/Kind/name`.

use futures::StreamExt;
use tracing::Instrument;

use super::accounts::Targets;
use super::findings::{Columns, Finding, Level};
use super::report::located_warnings;
use super::session::{Session, prepare, prepare_in, prune_plans};
use super::{EXIT_CHANGES, EXIT_FAILED, EXIT_OK};
use crate::cli::{OutputFormat, PlanArgs};
use crate::manifest::accounts::{AccountSpec, Accounts};
use crate::manifest::danger::Warning;
use crate::plan::markdown;
use crate::reconcile::{Failure, ResourcePlan, ResourceState, render};

/// One account's plan.
struct Outcome {
    plans: Vec<ResourcePlan>,
    failures: Vec<Failure>,
    warnings: Vec<Warning>,
    /// Declared resources the account holds in a way iam-warden may not change, at their
    /// manifests (for SARIF).
    conflicts: Vec<Finding>,
}

pub async fn run(args: &PlanArgs) -> anyhow::Result<u8> {
    let result = run_output(args).await;
    // A comment saying the plan failed, rather than none: the last one posted must not stand
    // for the current state.
    if let Err(e) = &result {
        let why = format!("{e:#}");
        match args.output {
            OutputFormat::Text => {}
            OutputFormat::Markdown => print!("{}", markdown::failed(&why)),
            OutputFormat::Json => println!("{}", serde_json::json!({"error": why})),
            OutputFormat::Sarif => println!(
                "{}",
                serde_json::to_string_pretty(&super::sarif::failed(&why))?
            ),
        }
    }
    result
}

async fn run_output(args: &PlanArgs) -> anyhow::Result<u8> {
    // Markdown and SARIF carry the manifests' own findings: checked first, without any AWS
    // call, so that invalid manifests are reported in the format asked for.
    let found = match args.output {
        OutputFormat::Markdown | OutputFormat::Sarif => {
            let report = super::validate::check(&args.manifests)?;
            if !report.errors.is_empty() {
                let mut all = report.errors;
                all.extend(report.warnings);
                match args.output {
                    OutputFormat::Sarif => print_sarif(&all)?,
                    _ => print!("{}", markdown::invalid(&callouts(&all))),
                }
                return Ok(EXIT_FAILED);
            }
            report.warnings
        }
        OutputFormat::Text | OutputFormat::Json => Vec::new(),
    };
    match super::accounts::targets(&args.manifests) {
        Targets::Caller => {}
        Targets::Invalid(diags) => {
            Targets::say_invalid(&diags);
            return Ok(EXIT_FAILED);
        }
        Targets::Many(accounts) => return run_accounts(args, *accounts, found).await,
    }
    let Some(session) = prepare(&args.manifests).await? else {
        if args.output == OutputFormat::Markdown {
            print!(
                "{}",
                markdown::failed("invalid manifests (the job's log lists the errors)")
            );
        }
        return Ok(EXIT_FAILED);
    };
    let outcome = plan_session(&session, args).await?;
    match args.output {
        OutputFormat::Markdown => {
            print!(
                "{}",
                markdown::comment(&[section(&outcome, None)], &callouts(&found))
            );
        }
        OutputFormat::Sarif => {
            let mut all = found;
            all.extend(outcome.conflicts.iter().cloned());
            print_sarif(&all)?;
        }
        OutputFormat::Text => {
            print!("{}", text(&outcome, None));
            println!(
                "Plan: {}.",
                render::totals(&outcome.plans, outcome.failures.len())
            );
        }
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&json(&outcome))?);
        }
    }
    session.log_requests();
    Ok(exit_code([&outcome]))
}

async fn plan_session(session: &Session, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let observed = session.observe(args.manifests.prune).await;
    let mut plans = observed.plans;
    plans.extend(prune_plans(session, &args.manifests, observed.snapshot.as_ref()).await?);
    let conflicts = conflicts(&plans, &session.desired);
    Ok(Outcome {
        plans,
        failures: observed.failures,
        // Dangerous grants are shown whether or not they change anything: in sync is not safe.
        warnings: located_warnings(&session.desired),
        conflicts,
    })
}

/// Each declared resource that is blocked (not owned, an immutable field, another partition),
/// as a finding at the start of its manifest.
fn conflicts(plans: &[ResourcePlan], desired: &crate::manifest::DesiredState) -> Vec<Finding> {
    use crate::plan::Finding as Why;
    let mut columns = Columns::default();
    let mut out = Vec::new();
    for p in plans {
        let Some(origin) = desired.origin(p.kind, &p.name) else {
            continue;
        };
        for why in p.findings.iter().filter(|f| f.blocks()) {
            let rule = match why {
                Why::NotOwned { .. } => super::sarif::conflict::NOT_OWNED,
                Why::Immutable { .. } => super::sarif::conflict::IMMUTABLE,
                Why::OtherPartition { .. } => super::sarif::conflict::OTHER_PARTITION,
                _ => continue,
            };
            let path = crate::fieldpath::FieldPath::default();
            out.push(Finding {
                rule,
                level: Level::Error,
                file: origin.file.clone(),
                line: Some(origin.line),
                column: columns.column(&origin.file, origin.line, &path),
                path: String::new(),
                message: format!("{} `{}` {why}", p.kind, p.name),
                accounts: None,
            });
        }
    }
    out
}

fn print_sarif(findings: &[Finding]) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&super::sarif::log(findings))?
    );
    Ok(())
}

/// Findings as the comment calls them out, at `file:line`.
fn callouts(findings: &[Finding]) -> Vec<markdown::Callout> {
    findings
        .iter()
        .map(|f| {
            let mut place = f.file.display().to_string();
            if let Some(line) = f.line {
                place.push_str(&format!(":{line}"));
            }
            markdown::Callout {
                error: f.level == Level::Error,
                place,
                message: f.described(),
            }
        })
        .collect()
}

/// One account's part of the comment.
fn section<'a>(o: &'a Outcome, account: Option<&'a AccountSpec>) -> markdown::Section<'a> {
    let name = account.map(|a| a.name.as_str());
    markdown::Section {
        account: account.map(|a| (a.name.as_str(), a.id.as_str())),
        plans: &o.plans,
        failures: crate::reconcile::group_failures_in(&o.failures, name)
            .into_iter()
            .map(|(who, error)| (who, error.to_string()))
            .collect(),
        error: None,
    }
}

/// The plan, its failures and its warnings; resources named `ACCOUNT/Kind/name` in `account`.
fn text(outcome: &Outcome, account: Option<&str>) -> String {
    let mut out = render::text_in(&outcome.plans, account);
    for (who, error) in crate::reconcile::group_failures_in(&outcome.failures, account) {
        out.push_str(&format!("{who}\n  ! {error}\n\n"));
    }
    out.push_str(&render::warnings(&outcome.warnings));
    out
}

fn json(outcome: &Outcome) -> serde_json::Value {
    let failures: Vec<_> = outcome
        .failures
        .iter()
        .map(|f| serde_json::json!({"kind": f.kind, "name": f.name, "error": f.error}))
        .collect();
    serde_json::json!({
        "resources": outcome.plans,
        "failures": failures,
        "warnings": outcome.warnings,
    })
}

fn exit_code<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> u8 {
    let mut code = EXIT_OK;
    for o in outcomes {
        // A prune waiting for its grace period is a change pending too.
        let pending = o
            .plans
            .iter()
            .any(|p| !p.changes.is_empty() || !p.findings.is_empty());
        // Conflicts change nothing but are not "in sync" either: CI should look.
        let conflict = o.plans.iter().any(|p| p.state() == ResourceState::Conflict);
        if !o.failures.is_empty() {
            return EXIT_FAILED;
        } else if pending || conflict {
            code = EXIT_CHANGES;
        }
    }
    code
}

/// Every account, `--account-concurrency` at once; an account that cannot be planned (its
/// role cannot be assumed) is reported and fails the run, the others are planned all the same.
async fn run_accounts(
    args: &PlanArgs,
    accounts: Accounts,
    found: Vec<Finding>,
) -> anyhow::Result<u8> {
    let m = &args.manifests;
    let Some(accounts) = super::accounts::expand_valid(m, accounts).await? else {
        return Ok(EXIT_FAILED);
    };
    let plan_one = |a: AccountSpec| async move {
        let planned = async {
            let Some(mut session) = prepare_in(m, Some(&a)).await? else {
                anyhow::bail!("invalid manifests for this account");
            };
            session.progress = super::progress::Bar::off();
            let outcome = plan_session(&session, args).await;
            session.log_requests();
            outcome
        }
        .instrument(tracing::info_span!("account", account = %a.name))
        .await;
        (a, planned)
    };
    let results: Vec<(AccountSpec, anyhow::Result<Outcome>)> =
        futures::stream::iter(accounts.accounts)
            .map(plan_one)
            .buffered(usize::from(m.account_concurrency))
            .collect()
            .await;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    match args.output {
        OutputFormat::Text => {
            let mut all = Vec::new();
            let mut failures = failed;
            for (a, result) in &results {
                println!("== account {} ({}) ==", a.name, a.id);
                match result {
                    Ok(o) => {
                        print!("{}", text(o, Some(&a.name)));
                        println!(
                            "Plan for {}: {}.\n",
                            a.name,
                            render::totals(&o.plans, o.failures.len())
                        );
                        all.extend(o.plans.iter().cloned());
                        failures += o.failures.len();
                    }
                    Err(e) => println!("  ! cannot plan account {}: {e:#}\n", a.name),
                }
            }
            println!(
                "Plan: {} in {}.",
                render::totals(&all, failures),
                super::report::plural(results.len(), "account", "accounts")
            );
        }
        OutputFormat::Markdown => {
            let sections: Vec<markdown::Section> = results
                .iter()
                .map(|(a, r)| match r {
                    Ok(o) => section(o, Some(a)),
                    Err(e) => markdown::Section {
                        account: Some((a.name.as_str(), a.id.as_str())),
                        plans: &[],
                        failures: Vec::new(),
                        error: Some(format!("{e:#}")),
                    },
                })
                .collect();
            print!("{}", markdown::comment(&sections, &callouts(&found)));
        }
        OutputFormat::Sarif => {
            let mut all = found;
            for (a, r) in &results {
                if let Ok(o) = r {
                    all.extend(
                        o.conflicts
                            .iter()
                            .map(|f| f.clone().in_accounts(Some(vec![a.name.clone()]))),
                    );
                }
            }
            print_sarif(&all)?;
        }
        OutputFormat::Json => {
            let accounts: Vec<_> = results
                .iter()
                .map(|(a, r)| {
                    let mut v = match r {
                        Ok(o) => json(o),
                        Err(e) => serde_json::json!({"error": format!("{e:#}")}),
                    };
                    v["account"] = serde_json::json!({"name": a.name, "id": a.id});
                    v
                })
                .collect();
            let out = serde_json::json!({ "accounts": accounts });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    let code = exit_code(results.iter().filter_map(|(_, r)| r.as_ref().ok()));
    Ok(if failed > 0 { EXIT_FAILED } else { code })
}
