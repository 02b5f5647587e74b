//! Reconciling, the effects: observe what AWS has (`observe`, in bulk or per resource), let the
//! pure `crate::plan` decide, execute the changes in its order (`execute`), and retry what IAM
//! answers with throttling or eventual consistency (`retry`).

mod execute;
mod listing;
mod observe;
pub mod progress;
mod retry;

use futures::stream::{self, StreamExt};

pub use crate::plan::{
    Change, Context, Finding, ResourcePlan, ResourceState, plan_instance_profile,
    plan_oidc_provider, plan_policy, plan_role, prune, render, tag_value,
};
pub use execute::Executor;
pub use listing::other_kinds;
pub use observe::{Observation, observe_and_plan, observe_one, plan_one};
pub use progress::{Progress, Silent};
pub use retry::{Eventual, RetryPolicy, failure_delay, retrying};

use crate::plan::{PolicyVerdict, order};

use std::collections::BTreeMap;

use crate::iam::{Iam, IamError, PolicyUser, Snapshot};
use crate::manifest::{DesiredState, Kind};
use prune::{Candidate, PruneDecision, PruneSettings};

/// A resource's tags.
type Tags = BTreeMap<String, String>;

/// A resource that could not be observed or applied.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub name: String,
    pub error: String,
}

/// Failures that share one error, for a report a person reads: 200 resources that could not
/// be observed because IAM was unreachable are one line, not 200.
pub fn group_failures(failures: &[Failure]) -> Vec<(String, &str)> {
    group_failures_in(failures, None)
}

/// [`group_failures`], each resource named `ACCOUNT/Kind/name` when it is one of many
/// accounts'.
pub fn group_failures_in<'f>(
    failures: &'f [Failure],
    account: Option<&str>,
) -> Vec<(String, &'f str)> {
    const NAMED: usize = 3;
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for f in failures {
        let name = match account {
            Some(a) => format!("{a}/{}/{}", f.kind, f.name),
            None => format!("{} {}", f.kind, f.name),
        };
        match groups.iter_mut().find(|(e, _)| *e == f.error) {
            Some((_, names)) => names.push(name),
            None => groups.push((&f.error, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(error, names)| {
            let who = match names.len() {
                n if n <= NAMED => names.join(", "),
                n => format!("{} and {} more", names[..NAMED].join(", "), n - NAMED),
            };
            (who, error)
        })
        .collect()
}

/// With `--prune`: what to do with each owned resource that no manifest declares, as
/// [`prune::decide_all`] decides it. Ownership comes from the snapshot (roles) and
/// ListPolicyTags (undeclared policies only); without a snapshot, from reading every
/// resource's tags. `allowed` is the path guardrail. Names are compared ignoring case, as IAM
/// does.
pub async fn observe_prune(
    iam: &Iam,
    owner: &str,
    desired: &DesiredState,
    snapshot: Option<&Snapshot>,
    retry: &RetryPolicy,
    settings: &PruneSettings,
    allowed: impl Fn(&str) -> bool,
) -> Result<PruneDecision, IamError> {
    let listed = match snapshot {
        Some(snapshot) => {
            // The snapshot lacks policy tags: read them for undeclared policies only.
            let undeclared: Vec<String> = snapshot
                .policies()
                .filter(|p| desired.policy(&p.name).is_none())
                .map(|p| p.arn.clone())
                .collect();
            let read: Vec<Result<(String, Tags), IamError>> = stream::iter(undeclared)
                .map(|arn| async move {
                    let tags = retrying(retry, Eventual::No, || iam.policy_tags(&arn)).await?;
                    Ok((arn, tags))
                })
                .buffered(8)
                .collect()
                .await;
            let tags = read.into_iter().collect::<Result<BTreeMap<_, _>, _>>()?;
            prune::listed_in(snapshot, desired, &tags)
        }
        None => {
            let mut all = Vec::new();
            for (arn, tags) in retrying(retry, Eventual::No, || iam.list_tagged()).await? {
                let Ok(parsed) = crate::arn::Arn::parse(&arn) else {
                    continue;
                };
                let (Some(name), true) = (parsed.name(), parsed.service == "iam") else {
                    continue;
                };
                let kind = match parsed.resource_type() {
                    "role" => Kind::Role,
                    "policy" => Kind::Policy,
                    _ => continue,
                };
                all.push(Candidate::listed(kind, name, &arn, tags));
            }
            all
        }
    };
    let mut listed = listed;
    listed.extend(other_kinds(iam, retry, desired, snapshot.is_some()).await?);
    let now = std::time::SystemTime::now();
    let mut owned = prune::undeclared_owned(desired, owner, listed, allowed);
    prune::fill_provider_users(snapshot, desired, &mut owned);
    let role_users = snapshot.map(Snapshot::role_users).unwrap_or_default();
    fill_policy_users(
        iam,
        retry,
        |arn| role_users.get(arn).cloned().unwrap_or_default(),
        &mut owned,
        |c| prune::users_matter(c, owner, now, settings),
    )
    .await?;
    Ok(prune::decide_all(&owned, owner, now, settings))
}

/// Fills in who uses the policies among `candidates` that `wanted` picks: what
/// ListEntitiesForPolicy answers, and the roles `role_users` (a snapshot's) shows using it,
/// which that call may leave out (moto leaves permissions boundaries out).
pub async fn fill_policy_users(
    iam: &Iam,
    retry: &RetryPolicy,
    role_users: impl Fn(&str) -> Vec<PolicyUser>,
    candidates: &mut [Candidate],
    wanted: impl Fn(&Candidate) -> bool,
) -> Result<(), IamError> {
    let policies: Vec<(usize, String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::Policy && wanted(c))
        .map(|(i, c)| (i, c.arn.clone()))
        .collect();
    let found: Vec<(usize, Result<Vec<PolicyUser>, IamError>)> = stream::iter(policies)
        .map(|(i, arn)| async move {
            let users = retrying(retry, Eventual::No, || iam.policy_users(&arn)).await;
            (i, users)
        })
        .buffered(8)
        .collect()
        .await;
    for (i, users) in found {
        let c = &mut candidates[i];
        c.used_by = users?;
        for user in role_users(&c.arn) {
            PolicyUser::add_to(&mut c.used_by, user);
        }
    }
    Ok(())
}

/// The result of applying a whole plan.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<(ResourcePlan, usize)>,
    pub failures: Vec<Failure>,
}

/// Applies plans in a safe order: every policy before the roles (whose refs name them); roles
/// after the declared roles their trust policies name; a role that needs a policy which could
/// not be observed, failed, or is in conflict is not attempted; prune plans (from
/// [`observe_prune`], roles first) come last. Observe-only resources are never written. One failure never stops the others. `failures`
/// are what observing already failed; the report carries them on.
pub async fn apply_all(
    executor: &Executor<'_>,
    desired: &DesiredState,
    plans: Vec<ResourcePlan>,
    prune: Vec<ResourcePlan>,
    failures: Vec<Failure>,
    progress: &dyn Progress,
) -> ApplyReport {
    let mut report = ApplyReport {
        applied: Vec::new(),
        failures,
    };
    let with_changes = |p: &ResourcePlan| !p.changes.is_empty();
    progress.stage(
        "applying",
        plans
            .iter()
            .chain(&prune)
            .filter(|p| with_changes(p))
            .count(),
    );
    let executor = &Reporting { executor, progress };
    let (profiles, plans): (Vec<_>, Vec<_>) = plans
        .into_iter()
        .partition(|p| p.kind == Kind::InstanceProfile);
    // Providers and policies first: roles trust and attach them.
    let (policies, roles): (Vec<_>, Vec<_>) = plans
        .into_iter()
        .partition(|p| matches!(p.kind, Kind::Policy | Kind::OpenIDConnectProvider));
    apply_together(executor, policies, &mut report).await;
    let mut roles = order::roles_after_their_principals(desired, roles);
    let follow_ups = order::defer_trust_of_roles_not_yet_created(&mut roles);
    for wave in order::waves(desired, roles) {
        let ready = not_blocked(desired, wave, &mut report);
        apply_together(executor, ready, &mut report).await;
    }
    // Completes trust policies that had to wait for the roles they name.
    let follow_ups: Vec<ResourcePlan> = follow_ups
        .into_iter()
        .filter(|p| {
            !report
                .failures
                .iter()
                .any(|f| f.kind == Kind::Role && f.name == p.name)
        })
        .collect();
    apply_together(executor, follow_ups, &mut report).await;
    // Instance profiles hold roles: after them, and not while the role they hold failed.
    let ready = not_blocked(desired, profiles, &mut report);
    apply_together(executor, ready, &mut report).await;
    // Deleting a role detaches what it uses: instance profiles (which hold roles) and roles go
    // first, then the policies and providers they used.
    let (roles, policies): (Vec<_>, Vec<_>) = prune
        .into_iter()
        .partition(|p| matches!(p.kind, Kind::Role | Kind::InstanceProfile));
    apply_together(executor, roles, &mut report).await;
    apply_together(executor, policies, &mut report).await;
    report
        .failures
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    report
}

/// Independent resources run at once (IAM's rate is kept by the client's token bucket).
const APPLY_CONCURRENCY: usize = 8;

/// The executor, and the progress it reports to.
struct Reporting<'a> {
    executor: &'a Executor<'a>,
    progress: &'a dyn Progress,
}

async fn apply_together(
    executor: &Reporting<'_>,
    plans: Vec<ResourcePlan>,
    report: &mut ApplyReport,
) {
    let results: Vec<Result<(ResourcePlan, usize), Failure>> = stream::iter(plans)
        .map(|plan| async move {
            let changes = !plan.changes.is_empty();
            let applied = apply_one(executor.executor, plan).await;
            if changes {
                executor.progress.step();
            }
            applied
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(applied) => report.applied.push(applied),
            Err(f) => report.failures.push(f),
        }
    }
}

/// The plans that may go ahead; each blocked one is a failure ("not attempted").
fn not_blocked(
    desired: &DesiredState,
    plans: Vec<ResourcePlan>,
    report: &mut ApplyReport,
) -> Vec<ResourcePlan> {
    let mut ready = Vec::new();
    for plan in plans {
        match blocking_policy(desired, &plan, report) {
            Some(why) => report.failures.push(Failure {
                kind: plan.kind,
                name: plan.name.clone(),
                error: format!("not attempted: {why}"),
            }),
            None => ready.push(plan),
        }
    }
    ready
}

/// Why a role cannot be applied yet (see `plan::blocking_policy`), from what this apply did
/// with the policies.
fn blocking_policy(
    desired: &DesiredState,
    plan: &ResourcePlan,
    report: &ApplyReport,
) -> Option<String> {
    let resource = match plan.kind {
        Kind::Role => crate::manifest::Resource::Role(desired.role(&plan.name)?.clone()),
        Kind::InstanceProfile => crate::manifest::Resource::InstanceProfile(
            desired.instance_profile(&plan.name)?.clone(),
        ),
        _ => return None,
    };
    crate::plan::blocking_policy(&resource, |needed, n| {
        let same = |kind: Kind, name: &str| kind == needed && name.eq_ignore_ascii_case(n);
        if report.failures.iter().any(|f| same(f.kind, &f.name)) {
            Some(PolicyVerdict::Failed)
        } else if report
            .applied
            .iter()
            .any(|(p, _)| same(p.kind, &p.name) && p.is_blocked())
        {
            Some(PolicyVerdict::Conflict)
        } else {
            None
        }
    })
}

async fn apply_one(
    executor: &Executor<'_>,
    plan: ResourcePlan,
) -> Result<(ResourcePlan, usize), Failure> {
    if plan.is_blocked() || plan.changes.is_empty() {
        return Ok((plan, 0));
    }
    // Observe mode writes one thing at most: its `prune: never` record.
    let record = match plan.observe_only {
        true => match plan.observe_mode_record() {
            Some(record) => Some(record),
            None => return Ok((plan, 0)),
        },
        false => None,
    };
    match executor.apply(record.as_ref().unwrap_or(&plan)).await {
        Ok(n) => Ok((plan, n)),
        Err(e) => Err(Failure {
            kind: plan.kind,
            name: plan.name.clone(),
            error: e.to_string(),
        }),
    }
}
