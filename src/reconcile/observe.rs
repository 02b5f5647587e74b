//! Observing: what AWS has for the declared resources, planned against the manifests.
//!
//! One bulk snapshot of the account (GetAccountAuthorizationDetails and ListRoles, a few pages
//! whatever the number of resources) plus the tags of the declared policies that exist, which
//! the snapshot lacks; or, when the account is large and the declared resources few (counted
//! with GetAccountSummary), each resource on its own. Resources are found by name, ignoring
//! case, wherever their path is, as IAM finds them. When the account denies the bulk call,
//! each resource is read on its own.
//! Reads are retried like writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};
use tracing::{debug, warn};

use super::progress::Progress;
use super::retry::{Eventual, RetryPolicy, retrying};
use super::{Change, Failure, ResourcePlan};
use crate::iam::{AccountCounts, ErrorKind, Iam, IamError, PAGE_SIZE, Snapshot};
use crate::manifest::{DesiredState, PolicyRef, Resource};
use crate::plan::{Context, plan_instance_profile, plan_oidc_provider, plan_policy, plan_role};

/// Observations run this many at a time.
const OBSERVE_CONCURRENCY: usize = 8;

/// Said once per process: the account denies the bulk read.
static BULK_DENIED_SAID: AtomicBool = AtomicBool::new(false);

/// What one pass observed, planned.
#[derive(Debug, Default)]
pub struct Observation {
    /// Policies first, then roles, each in name order.
    pub plans: Vec<ResourcePlan>,
    /// Resources that could not be observed.
    pub failures: Vec<Failure>,
    /// The bulk snapshot, when the account allows it (prune reads ownership from it).
    pub snapshot: Option<Snapshot>,
}

/// How a run observes the declared resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// One snapshot of the whole account: a few pages, whatever the number of resources.
    Bulk,
    /// Each declared resource on its own: a few reads each, whatever the account's size.
    PerResource,
}

/// The cheaper way to observe, and the requests each is expected to take: `(choice, bulk,
/// per resource)`. The snapshot costs its pages (GetAccountAuthorizationDetails over roles and
/// policies, ListRoles over roles) plus the declared policies' tags; each declared role costs
/// about four reads (GetRole, ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies), each
/// declared policy three (GetPolicy, GetPolicyVersion, ListPolicyVersions). Unknown counts:
/// bulk, which is never far off.
pub fn choose(
    account: AccountCounts,
    declared_roles: usize,
    declared_policies: usize,
) -> (Strategy, u64, u64) {
    let (roles, policies) = (declared_roles as u64, declared_policies as u64);
    let per_resource = 4 * roles + 3 * policies;
    let (Some(in_roles), Some(in_policies)) = (account.roles, account.policies) else {
        return (Strategy::Bulk, 0, per_resource);
    };
    let pages = |n: u64| n.div_ceil(PAGE_SIZE as u64).max(1);
    let bulk = pages(in_roles + in_policies) + pages(in_roles) + policies;
    let strategy = match per_resource < bulk {
        true => Strategy::PerResource,
        false => Strategy::Bulk,
    };
    (strategy, bulk, per_resource)
}

/// Observes every declared resource and plans it. `need_snapshot` (for `--prune`, which reads
/// ownership from it) always reads the account in bulk; otherwise the account's counts choose.
pub async fn observe_and_plan(
    iam: &Iam,
    ctx: &Context,
    desired: &DesiredState,
    retry: &RetryPolicy,
    need_snapshot: bool,
    progress: &dyn Progress,
) -> Observation {
    if !need_snapshot && per_resource_is_cheaper(iam, desired).await {
        let (plans, failures) = per_resource(iam, ctx, desired, retry, progress).await;
        return Observation {
            plans,
            failures,
            snapshot: None,
        };
    }
    match retrying(retry, Eventual::No, || iam.snapshot()).await {
        Ok(snapshot) => {
            debug!("observing from one bulk snapshot of the account");
            let (plans, failures) =
                plan_from_snapshot(iam, ctx, desired, &snapshot, retry, progress).await;
            Observation {
                plans,
                failures,
                snapshot: Some(snapshot),
            }
        }
        Err(e) if e.kind == ErrorKind::AccessDenied => {
            if !BULK_DENIED_SAID.swap(true, Ordering::Relaxed) {
                warn!(error = %e, "the account denies reading it in bulk; reading each resource on its own (slower)");
            }
            let (plans, failures) = per_resource(iam, ctx, desired, retry, progress).await;
            Observation {
                plans,
                failures,
                snapshot: None,
            }
        }
        Err(e) => Observation {
            plans: Vec::new(),
            failures: resources(desired).map(|r| failure(&r, &e)).collect(),
            snapshot: None,
        },
    }
}

/// Asks the account's counts (one request) and says at debug which way was chosen.
async fn per_resource_is_cheaper(iam: &Iam, desired: &DesiredState) -> bool {
    let (roles, policies) = (desired.roles.len(), desired.policies.len());
    match iam.account_counts().await {
        Ok(counts) => {
            let (strategy, bulk, per_resource) = choose(counts, roles, policies);
            debug!(
                ?strategy,
                account_roles = counts.roles,
                account_policies = counts.policies,
                bulk_requests = bulk,
                per_resource_requests = per_resource,
                "observing {roles} roles and {policies} policies: {strategy:?}"
            );
            strategy == Strategy::PerResource
        }
        Err(e) => {
            debug!(error = %e, "no account summary; observing in bulk");
            false
        }
    }
}

fn resources(desired: &DesiredState) -> impl Iterator<Item = Resource> + '_ {
    desired
        .oidc_providers
        .values()
        .cloned()
        .map(Resource::OpenIDConnectProvider)
        .chain(desired.policies.values().cloned().map(Resource::Policy))
        .chain(desired.roles.values().cloned().map(Resource::Role))
        .chain(
            desired
                .instance_profiles
                .values()
                .cloned()
                .map(Resource::InstanceProfile),
        )
}

fn failure(resource: &Resource, e: &IamError) -> Failure {
    Failure {
        kind: resource.kind(),
        name: resource.name().to_string(),
        error: format!("cannot observe: {e}"),
    }
}

fn split(results: Vec<Result<ResourcePlan, Failure>>) -> (Vec<ResourcePlan>, Vec<Failure>) {
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

async fn plan_from_snapshot(
    iam: &Iam,
    ctx: &Context,
    desired: &DesiredState,
    snapshot: &Snapshot,
    retry: &RetryPolicy,
    progress: &dyn Progress,
) -> (Vec<ResourcePlan>, Vec<Failure>) {
    // Each existing declared policy costs a read of its tags; nothing else does.
    progress.stage(
        "reading policy tags",
        desired
            .policies
            .values()
            .filter(|p| snapshot.policy(&p.name).is_some())
            .count(),
    );
    let ctx = &ctx.clone().with_observed_policy_arns(
        snapshot
            .policies()
            .map(|p| (p.name.as_str(), p.arn.as_str())),
    );
    let results: Vec<Result<ResourcePlan, Failure>> = stream::iter(resources(desired))
        .map(|r| async move {
            let tags = match (&r, snapshot_policy_arn(snapshot, &r)) {
                (Resource::Policy(_), Some(arn)) => {
                    let tags = retrying(retry, Eventual::No, || iam.policy_tags(&arn)).await;
                    progress.step();
                    Some(tags.map_err(|e| failure(&r, &e))?)
                }
                _ => None,
            };
            match plan_one(ctx, &r, snapshot, tags) {
                Some(plan) => Ok(plan),
                None => observe_one(iam, ctx, &r, retry).await,
            }
        })
        .buffered(OBSERVE_CONCURRENCY)
        .collect()
        .await;
    split(results)
}

fn snapshot_policy_arn(snapshot: &Snapshot, resource: &Resource) -> Option<String> {
    match resource {
        Resource::Policy(p) => snapshot.policy(&p.name).map(|o| o.arn.clone()),
        _ => None,
    }
}

/// Plans one resource from a snapshot; a policy's tags, which the snapshot lacks, are given.
/// `None` for an instance profile, which the snapshot does not hold: observe it on its own
/// ([`observe_one`], one GetInstanceProfile, which also answers its tags).
pub fn plan_one(
    ctx: &Context,
    resource: &Resource,
    snapshot: &Snapshot,
    policy_tags: Option<BTreeMap<String, String>>,
) -> Option<ResourcePlan> {
    Some(match resource {
        Resource::Role(role) => plan_role(ctx, role, snapshot.role(&role.name)),
        Resource::Policy(policy) => {
            let observed = snapshot.policy(&policy.name).cloned().map(|mut o| {
                o.tags = policy_tags.unwrap_or_default();
                o
            });
            plan_policy(ctx, policy, observed.as_ref())
        }
        Resource::InstanceProfile(_) | Resource::OpenIDConnectProvider(_) => return None,
    })
}

async fn per_resource(
    iam: &Iam,
    ctx: &Context,
    desired: &DesiredState,
    retry: &RetryPolicy,
    progress: &dyn Progress,
) -> (Vec<ResourcePlan>, Vec<Failure>) {
    progress.stage("observing", desired.len());
    let observe = |resources: Vec<Resource>, ctx: Context| async move {
        let results: Vec<Result<ResourcePlan, Failure>> = stream::iter(resources)
            .map(|r| {
                let ctx = ctx.clone();
                async move {
                    let plan = observe_one(iam, &ctx, &r, retry).await;
                    progress.step();
                    plan
                }
            })
            .buffered(OBSERVE_CONCURRENCY)
            .collect()
            .await;
        split(results)
    };
    // Providers and policies first: roles' refs resolve to the ARNs they were found at.
    let policies: Vec<Resource> = desired
        .oidc_providers
        .values()
        .cloned()
        .map(Resource::OpenIDConnectProvider)
        .chain(desired.policies.values().cloned().map(Resource::Policy))
        .collect();
    let (mut plans, mut failures) = observe(policies, ctx.clone()).await;
    let found: Vec<(String, String)> = plans
        .iter()
        .filter_map(|p| p.arn.clone().map(|arn| (p.name.clone(), arn)))
        .collect();
    let ctx = ctx
        .clone()
        .with_observed_policy_arns(found.iter().map(|(n, a)| (n.as_str(), a.as_str())));
    let roles: Vec<Resource> = desired
        .roles
        .values()
        .cloned()
        .map(Resource::Role)
        .collect();
    let (mut role_plans, mut role_failures) = observe(roles, ctx.clone()).await;
    let profile_ctx = ctx.clone();
    // A role that GetRole did not find may be there under a name differing in case (an
    // endpoint's GetRole may mind case; moto's does): one listing for all of them.
    let missing: Vec<Resource> = role_plans
        .iter()
        .filter(|p| p.changes.iter().any(Change::is_create))
        .filter_map(|p| desired.roles.get(&p.name).cloned().map(Resource::Role))
        .collect();
    if !missing.is_empty() {
        match retrying(retry, Eventual::No, || iam.list_roles()).await {
            Ok(listed) => {
                let names = listed
                    .iter()
                    .map(|r| (r.role_name().to_lowercase(), r.role_name().to_string()))
                    .collect();
                let again = missing
                    .iter()
                    .map(|r| r.name().to_string())
                    .collect::<Vec<_>>();
                role_plans.retain(|p| !again.contains(&p.name));
                let (found, failed) = observe(missing, ctx.with_observed_role_names(names)).await;
                role_plans.extend(found);
                role_failures.extend(failed);
            }
            Err(e) => role_failures.extend(missing.iter().map(|r| failure(r, &e))),
        }
    }
    plans.extend(role_plans);
    failures.extend(role_failures);
    let profiles: Vec<Resource> = desired
        .instance_profiles
        .values()
        .cloned()
        .map(Resource::InstanceProfile)
        .collect();
    let (profile_plans, profile_failures) = observe(profiles, profile_ctx).await;
    plans.extend(profile_plans);
    failures.extend(profile_failures);
    (plans, failures)
}

/// Observes one resource on its own (a few calls) and plans it. A policy is found by name:
/// at the ARN its manifest's path gives, or failing that wherever it lives.
pub async fn observe_one(
    iam: &Iam,
    ctx: &Context,
    resource: &Resource,
    retry: &RetryPolicy,
) -> Result<ResourcePlan, Failure> {
    let fail = |e: IamError| failure(resource, &e);
    match resource {
        Resource::Policy(p) => {
            let arn = ctx.resolve(&PolicyRef::Ref(p.name.clone()));
            let mut observed = retrying(retry, Eventual::No, || iam.observe_policy(&arn))
                .await
                .map_err(fail)?;
            if observed.is_none() {
                let elsewhere = retrying(retry, Eventual::No, || iam.find_policy_arn(&p.name))
                    .await
                    .map_err(fail)?;
                if let Some(other) = elsewhere {
                    observed = retrying(retry, Eventual::No, || iam.observe_policy(&other))
                        .await
                        .map_err(fail)?;
                }
            }
            Ok(plan_policy(ctx, p, observed.as_ref()))
        }
        Resource::Role(r) => {
            let mut observed = retrying(retry, Eventual::No, || iam.observe_role(&r.name))
                .await
                .map_err(fail)?;
            // IAM names ignore case, but an endpoint's GetRole may not (moto's does not): a
            // role renamed only in case must be found, never created twice.
            if observed.is_none() {
                let actual = ctx.role_names.get(&r.name.to_lowercase());
                if let Some(actual) = actual.filter(|a| **a != r.name) {
                    observed = retrying(retry, Eventual::No, || iam.observe_role(actual))
                        .await
                        .map_err(fail)?;
                }
            }
            Ok(plan_role(ctx, r, observed.as_ref()))
        }
        Resource::InstanceProfile(p) => {
            let observed = retrying(retry, Eventual::No, || {
                iam.observe_instance_profile(&p.name)
            })
            .await
            .map_err(fail)?;
            Ok(plan_instance_profile(ctx, p, observed.as_ref()))
        }
        Resource::OpenIDConnectProvider(p) => {
            let arn = ctx.account.oidc_provider_arn(&p.url);
            let observed = retrying(retry, Eventual::No, || iam.observe_oidc_provider(&arn))
                .await
                .map_err(fail)?;
            Ok(plan_oidc_provider(ctx, p, observed.as_ref()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(roles: u64, policies: u64) -> AccountCounts {
        AccountCounts {
            roles: Some(roles),
            policies: Some(policies),
        }
    }

    #[test]
    fn a_small_account_is_read_in_bulk() {
        // 30 roles, 5 policies: one page of each listing beats 2 roles read one by one.
        assert_eq!(choose(counts(30, 5), 2, 0), (Strategy::Bulk, 2, 8));
        // The directory declares the whole account: bulk, by far.
        assert_eq!(choose(counts(1000, 1000), 1000, 1000).0, Strategy::Bulk);
    }

    #[test]
    fn a_few_resources_in_a_large_account_are_read_one_by_one() {
        // 5,000 roles and 900 policies: 6 + 5 pages against 2 roles' 8 reads.
        assert_eq!(
            choose(counts(5000, 900), 2, 0),
            (Strategy::PerResource, 11, 8)
        );
        // A declared policy adds its tags to the bulk read and three reads to the other.
        assert_eq!(
            choose(counts(5000, 900), 2, 1),
            (Strategy::PerResource, 12, 11)
        );
        // Equal costs: bulk, which also sees moved and case-renamed resources in one go.
        assert_eq!(choose(counts(2000, 0), 1, 0), (Strategy::Bulk, 4, 4));
    }

    #[test]
    fn unknown_counts_mean_bulk() {
        let unknown = AccountCounts {
            roles: None,
            policies: Some(3),
        };
        assert_eq!(choose(unknown, 1, 0).0, Strategy::Bulk);
    }
}
