//! Reconciling: observe what AWS has, plan the difference (pure, in `plan`), apply it in a safe
//! order (`execute`), and show it (`render`).

mod change;
mod execute;
mod observe;
mod order;
mod plan;
pub mod render;
mod retry;

#[cfg(test)]
mod tests;

use futures::stream::{self, StreamExt};

pub use change::{Change, Finding, ResourcePlan, ResourceState};
pub use execute::Executor;
pub use observe::{Observation, observe_and_plan, observe_one, plan_one};
pub use plan::{Context, plan_policy, plan_prune, plan_role, tag_value};
pub use retry::{Eventual, PROPAGATION, RetryPolicy, retrying};

use crate::iam::{Iam, IamError, Snapshot};
use crate::manifest::{DesiredState, Kind, OWNER_TAG, PolicyRef};

/// A resource that could not be observed or applied.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub name: String,
    pub error: String,
}

/// With `--prune`: deletes planned for owned resources that no manifest declares. Ownership
/// comes from the snapshot (roles) and ListPolicyTags (undeclared policies only); without a
/// snapshot, from listing everything.
pub async fn observe_prune(
    iam: &Iam,
    owner: &str,
    desired: &DesiredState,
    snapshot: Option<&Snapshot>,
    retry: &RetryPolicy,
) -> Result<Vec<ResourcePlan>, IamError> {
    let Some(snapshot) = snapshot else {
        let (roles, policies) = retrying(retry, Eventual::No, || iam.list_owned(owner)).await?;
        return Ok(plan_prune(desired, &roles, &policies));
    };
    let owns = |tags: &std::collections::BTreeMap<String, String>| {
        tag_value(tags, OWNER_TAG).is_some_and(|o| o == owner)
    };
    let roles: Vec<String> = snapshot
        .roles()
        .filter(|r| owns(&r.tags))
        .map(|r| r.name.clone())
        .collect();
    let undeclared: Vec<String> = snapshot
        .policies()
        .filter(|p| desired.policy(&p.name).is_none())
        .map(|p| p.arn.clone())
        .collect();
    let tagged: Vec<Result<(String, bool), IamError>> = stream::iter(undeclared)
        .map(|arn| async move {
            let tags = retrying(retry, Eventual::No, || iam.policy_tags(&arn)).await?;
            Ok((arn, owns(&tags)))
        })
        .buffered(8)
        .collect()
        .await;
    let mut policies = Vec::new();
    for t in tagged {
        let (arn, owned) = t?;
        if owned {
            policies.push(arn);
        }
    }
    Ok(plan_prune(desired, &roles, &policies))
}

/// The result of applying a whole plan.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<(ResourcePlan, usize)>,
    pub failures: Vec<Failure>,
}

/// Applies plans in a safe order: every policy before the roles (whose refs name them); roles
/// after the declared roles their trust policies name; a role that needs a policy which could
/// not be observed, failed, or is in conflict is not attempted; deletes (`prune`, from
/// [`plan_prune`], roles first) come last. One failure never stops the others. `failures`
/// are what observing already failed; the report carries them on.
pub async fn apply_all(
    executor: &Executor<'_>,
    desired: &DesiredState,
    plans: Vec<ResourcePlan>,
    prune: Vec<ResourcePlan>,
    failures: Vec<Failure>,
) -> ApplyReport {
    let mut report = ApplyReport {
        applied: Vec::new(),
        failures,
    };
    let (policies, roles): (Vec<_>, Vec<_>) =
        plans.into_iter().partition(|p| p.kind == Kind::Policy);
    for plan in policies {
        apply_one(executor, plan, &mut report).await;
    }
    for plan in order::roles_after_their_principals(desired, roles) {
        match blocking_policy(desired, &plan, &report) {
            Some(why) => report.failures.push(Failure {
                kind: Kind::Role,
                name: plan.name.clone(),
                error: format!("not attempted: {why}"),
            }),
            None => apply_one(executor, plan, &mut report).await,
        }
    }
    for plan in prune {
        apply_one(executor, plan, &mut report).await;
    }
    report
}

/// Why a role cannot be applied yet: a policy it refers to failed or is in conflict.
fn blocking_policy(
    desired: &DesiredState,
    plan: &ResourcePlan,
    report: &ApplyReport,
) -> Option<String> {
    let role = desired.role(&plan.name)?;
    role.managed_policies
        .iter()
        .chain(&role.permissions_boundary)
        .filter_map(|r| match r {
            PolicyRef::Ref(n) => Some(n),
            PolicyRef::Arn(_) => None,
        })
        .find_map(|n| {
            let same =
                |kind: Kind, name: &str| kind == Kind::Policy && name.eq_ignore_ascii_case(n);
            if report.failures.iter().any(|f| same(f.kind, &f.name)) {
                Some(format!("it needs Policy `{n}`, which failed"))
            } else if report
                .applied
                .iter()
                .any(|(p, _)| same(p.kind, &p.name) && !p.findings.is_empty())
            {
                Some(format!("it needs Policy `{n}`, which is in conflict"))
            } else {
                None
            }
        })
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
