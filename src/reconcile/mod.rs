//! Reconciling: observe what AWS has, plan the difference (pure, in `plan`), apply it in a safe
//! order (`execute`), and show it (`render`).

mod change;
mod execute;
mod plan;
pub mod render;

#[cfg(test)]
mod tests;

use futures::stream::{self, StreamExt};

pub use change::{Change, Finding, ResourcePlan, ResourceState};
pub use execute::{Executor, RetryPolicy};
pub use plan::{Context, plan_policy, plan_prune, plan_role};

use crate::iam::{Iam, IamError};
use crate::manifest::{DesiredState, Kind, PolicyRef, Resource};

/// Observations run this many at a time.
const OBSERVE_CONCURRENCY: usize = 8;

/// A resource that could not be observed or applied.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub name: String,
    pub error: String,
}

/// Observes every declared resource and plans it: policies first, then roles, each in name
/// order. Resources whose observation failed are returned as failures.
pub async fn observe_and_plan(
    iam: &Iam,
    ctx: &Context,
    desired: &DesiredState,
) -> (Vec<ResourcePlan>, Vec<Failure>) {
    let resources: Vec<Resource> = desired
        .policies
        .values()
        .cloned()
        .map(Resource::Policy)
        .chain(desired.roles.values().cloned().map(Resource::Role))
        .collect();
    let results: Vec<Result<ResourcePlan, Failure>> = stream::iter(resources)
        .map(|r| async move { observe_one(iam, ctx, &r).await })
        .buffered(OBSERVE_CONCURRENCY)
        .collect()
        .await;
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(p) => plans.push(p),
            Err(f) => failures.push(f),
        }
    }
    (plans, failures)
}

/// Observes one resource and plans it.
pub async fn observe_one(
    iam: &Iam,
    ctx: &Context,
    resource: &Resource,
) -> Result<ResourcePlan, Failure> {
    let fail = |e: IamError| Failure {
        kind: resource.kind(),
        name: resource.name().to_string(),
        error: e.to_string(),
    };
    match resource {
        Resource::Policy(p) => {
            let arn = ctx.resolve(&PolicyRef::Ref(p.name.clone()));
            let observed = iam.observe_policy(&arn).await.map_err(fail)?;
            Ok(plan_policy(ctx, p, observed.as_ref()))
        }
        Resource::Role(r) => {
            let observed = iam.observe_role(&r.name).await.map_err(fail)?;
            Ok(plan_role(ctx, r, observed.as_ref()))
        }
    }
}

/// With `--prune`: deletes planned for owned resources that no manifest declares.
pub async fn observe_prune(
    iam: &Iam,
    owner: &str,
    desired: &DesiredState,
) -> Result<Vec<ResourcePlan>, IamError> {
    let (roles, policies) = iam.list_owned(owner).await?;
    Ok(plan_prune(desired, &roles, &policies))
}

/// The result of applying a whole plan.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<(ResourcePlan, usize)>,
    pub failures: Vec<Failure>,
}

/// Applies plans in a safe order: every policy before the roles (whose refs name them); a role
/// that needs a policy which failed is not attempted; deletes (`prune`, from [`plan_prune`],
/// roles first) come last. One failure never stops the others.
pub async fn apply_all(
    executor: &Executor<'_>,
    desired: &DesiredState,
    plans: Vec<ResourcePlan>,
    prune: Vec<ResourcePlan>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let (policies, roles): (Vec<_>, Vec<_>) =
        plans.into_iter().partition(|p| p.kind == Kind::Policy);
    for plan in policies {
        apply_one(executor, plan, &mut report).await;
    }
    for plan in roles {
        let failed_dependency = desired.roles.get(&plan.name).and_then(|role| {
            role.managed_policies
                .iter()
                .chain(&role.permissions_boundary)
                .filter_map(|r| match r {
                    PolicyRef::Ref(n) => Some(n),
                    PolicyRef::Arn(_) => None,
                })
                .find(|n| {
                    report
                        .failures
                        .iter()
                        .any(|f| f.kind == Kind::Policy && &f.name == *n)
                })
                .cloned()
        });
        match failed_dependency {
            Some(policy) => report.failures.push(Failure {
                kind: Kind::Role,
                name: plan.name.clone(),
                error: format!("not attempted: it needs Policy `{policy}`, which failed"),
            }),
            None => apply_one(executor, plan, &mut report).await,
        }
    }
    for plan in prune {
        apply_one(executor, plan, &mut report).await;
    }
    report
}

async fn apply_one(executor: &Executor<'_>, plan: ResourcePlan, report: &mut ApplyReport) {
    if !plan.findings.is_empty() || plan.changes.is_empty() {
        report.applied.push((plan, 0));
        return;
    }
    match executor.apply(&plan).await {
        Ok(n) => report.applied.push((plan, n)),
        Err(e) => report.failures.push(Failure {
            kind: plan.kind,
            name: plan.name.clone(),
            error: e.to_string(),
        }),
    }
}
