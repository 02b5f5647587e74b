//! The executor: carries out one resource's plan against IAM, in order, retrying what IAM's
//! eventual consistency and throttling produce, and failing fast on what retrying cannot fix.

use std::future::Future;
use std::time::Duration;

use backoff::ExponentialBackoffBuilder;
use tracing::info;

use super::change::{Change, ResourcePlan};
use crate::iam::{ErrorKind, Iam, IamError};
use crate::manifest::{Kind, OWNER_TAG};

/// How retries are paced: about two minutes in all by default.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max_interval: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

pub struct Executor<'a> {
    pub iam: &'a Iam,
    pub owner: &'a str,
    pub retry: RetryPolicy,
}

impl Executor<'_> {
    /// Applies every change of `plan` in order; stops at the first that fails for good.
    /// Returns how many changes were applied.
    pub async fn apply(&self, plan: &ResourcePlan) -> Result<usize, IamError> {
        for (done, change) in plan.changes.iter().enumerate() {
            if let Err(e) = self.apply_change(plan, change).await {
                tracing::warn!(
                    resource = %format!("{}/{}", plan.kind, plan.name),
                    field = change.field(),
                    error = %e,
                    "change failed after {done} applied"
                );
                return Err(e);
            }
            info!(
                resource = %format!("{}/{}", plan.kind, plan.name),
                field = change.field(),
                "applied: {}",
                super::render::summary(change)
            );
        }
        Ok(plan.changes.len())
    }

    async fn retrying<F, Fut>(&self, call: F) -> Result<(), IamError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), IamError>>,
    {
        let policy = ExponentialBackoffBuilder::new()
            .with_initial_interval(self.retry.initial)
            .with_max_interval(self.retry.max_interval)
            .with_max_elapsed_time(Some(self.retry.max_elapsed))
            .build();
        backoff::future::retry(policy, || async {
            call().await.map_err(|e| {
                if e.is_retryable() {
                    tracing::debug!(error = %e, "retrying");
                    backoff::Error::transient(e)
                } else {
                    backoff::Error::permanent(e)
                }
            })
        })
        .await
    }

    /// A removal whose target is already gone has done its job.
    async fn removing<F, Fut>(&self, call: F) -> Result<(), IamError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), IamError>>,
    {
        let once = || async {
            match call().await {
                Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        self.retrying(once).await
    }

    async fn apply_change(&self, plan: &ResourcePlan, change: &Change) -> Result<(), IamError> {
        let iam = self.iam;
        let name = plan.name.as_str();
        let arn = plan.arn.as_deref().unwrap_or_default();
        match change {
            Change::CreateRole {
                path,
                description,
                max_session_duration,
                assume_role_policy,
                permissions_boundary,
                tags,
            } => {
                let create = || async {
                    let result = iam
                        .create_role(
                            name,
                            path,
                            description,
                            *max_session_duration,
                            assume_role_policy,
                            permissions_boundary.as_deref(),
                            tags,
                        )
                        .await;
                    match result {
                        Err(e) if e.kind == ErrorKind::AlreadyExists => {
                            self.created_by_us(Kind::Role, name, arn, e).await
                        }
                        other => other,
                    }
                };
                self.retrying(create).await
            }
            Change::CreatePolicy {
                path,
                description,
                document,
                tags,
            } => {
                let create = || async {
                    match iam
                        .create_policy(name, path, description, document, tags)
                        .await
                    {
                        Err(e) if e.kind == ErrorKind::AlreadyExists => {
                            self.created_by_us(Kind::Policy, name, arn, e).await
                        }
                        other => other,
                    }
                };
                self.retrying(create).await
            }
            Change::UpdateAssumeRolePolicy { after, .. } => {
                self.retrying(|| iam.update_assume_role_policy(name, after))
                    .await
            }
            Change::UpdateRole {
                description,
                max_session_duration,
            } => {
                self.retrying(|| iam.update_role(name, &description.1, max_session_duration.1))
                    .await
            }
            Change::PutPermissionsBoundary { after, .. } => {
                self.retrying(|| iam.put_role_permissions_boundary(name, after))
                    .await
            }
            Change::DeletePermissionsBoundary { .. } => {
                self.removing(|| iam.delete_role_permissions_boundary(name))
                    .await
            }
            Change::PutInlinePolicy {
                name: policy,
                after,
                ..
            } => {
                self.retrying(|| iam.put_role_policy(name, policy, after))
                    .await
            }
            Change::DeleteInlinePolicy { name: policy, .. } => {
                self.removing(|| iam.delete_role_policy(name, policy)).await
            }
            Change::AttachManagedPolicy { arn: policy } => {
                self.retrying(|| iam.attach_role_policy(name, policy)).await
            }
            Change::DetachManagedPolicy { arn: policy } => {
                self.removing(|| iam.detach_role_policy(name, policy)).await
            }
            Change::CreatePolicyVersion {
                delete_first,
                after,
                ..
            } => {
                if let Some(version) = delete_first {
                    self.removing(|| iam.delete_policy_version(arn, version))
                        .await?;
                }
                self.retrying(|| iam.create_policy_version(arn, after))
                    .await
            }
            Change::SetTags { tags, .. } => match plan.kind {
                Kind::Role => self.retrying(|| iam.tag_role(name, tags)).await,
                Kind::Policy => self.retrying(|| iam.tag_policy(arn, tags)).await,
            },
            Change::DeleteRole => self.retrying(|| iam.delete_role_completely(name)).await,
            Change::DeletePolicy => self.retrying(|| iam.delete_policy_completely(arn)).await,
            Change::RemoveTags { keys } => {
                let keys: Vec<String> = keys.keys().cloned().collect();
                match plan.kind {
                    Kind::Role => self.removing(|| iam.untag_role(name, &keys)).await,
                    Kind::Policy => self.removing(|| iam.untag_policy(arn, &keys)).await,
                }
            }
        }
    }

    /// EntityAlreadyExists on a create whose earlier answer was lost: it is ours if it carries
    /// our owner tag, and then the create succeeded.
    async fn created_by_us(
        &self,
        kind: Kind,
        name: &str,
        arn: &str,
        err: IamError,
    ) -> Result<(), IamError> {
        let tags = match kind {
            Kind::Role => self.iam.observe_role(name).await?.map(|r| r.tags),
            Kind::Policy => self.iam.observe_policy(arn).await?.map(|p| p.tags),
        };
        match tags.as_ref().and_then(|t| t.get(OWNER_TAG)) {
            Some(owner) if owner == self.owner => Ok(()),
            _ => Err(IamError {
                kind: ErrorKind::Conflict,
                ..err
            }),
        }
    }
}
