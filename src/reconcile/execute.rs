//! The executor: carries out one resource's plan against IAM, in order, retrying what IAM's
//! eventual consistency and throttling produce, and failing fast on what retrying cannot fix.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::info;

use super::retry::{Eventual, RetryPolicy, retrying};
use crate::iam::{ErrorKind, Iam, IamError};
use crate::manifest::{Kind, OWNER_TAG};
use crate::plan::{Change, ResourcePlan};

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
                crate::plan::render::summary(change)
            );
        }
        Ok(plan.changes.len())
    }

    /// Every write is retried as `retry` says; NoSuchEntity and "Invalid principal" count as
    /// IAM's propagation for a short window only.
    async fn retrying<F, Fut>(&self, call: F) -> Result<(), IamError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), IamError>>,
    {
        retrying(&self.retry, Eventual::Propagating, call).await
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
        let name = plan.iam_name();
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
                // An AWS managed policy never propagates: if it is missing, it does not exist.
                let eventual = if is_aws_managed(policy) {
                    Eventual::No
                } else {
                    Eventual::Propagating
                };
                retrying(&self.retry, eventual, || {
                    iam.attach_role_policy(name, policy)
                })
                .await
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
                // Not idempotent: each call adds a version. An attempt whose answer was lost
                // may have been carried out, so before sending it again, the policy is read:
                // a default document equal to `after` means the earlier attempt did the job.
                let sent = AtomicBool::new(false);
                let create = || async {
                    if sent.swap(true, Ordering::SeqCst) {
                        let current = iam.observe_policy(arn).await?;
                        if current.is_some_and(|p| p.document.is_equivalent(after)) {
                            return Ok(());
                        }
                    }
                    iam.create_policy_version(arn, after).await
                };
                self.retrying(create).await
            }
            Change::SetTags { tags, .. } => match plan.kind {
                Kind::Role => self.retrying(|| iam.tag_role(name, tags)).await,
                Kind::Policy => self.retrying(|| iam.tag_policy(arn, tags)).await,
                Kind::InstanceProfile => {
                    self.retrying(|| iam.tag_instance_profile(name, tags)).await
                }
                Kind::OpenIDConnectProvider => {
                    self.retrying(|| iam.tag_oidc_provider(arn, tags)).await
                }
            },
            Change::CreateOpenIDConnectProvider {
                url,
                client_ids,
                thumbprints,
                tags,
            } => {
                let create = || async {
                    match iam
                        .create_oidc_provider(url, client_ids, thumbprints.as_ref(), tags)
                        .await
                    {
                        Err(e) if e.kind == ErrorKind::AlreadyExists => {
                            self.created_by_us(Kind::OpenIDConnectProvider, name, arn, e)
                                .await
                        }
                        other => other,
                    }
                };
                self.retrying(create).await
            }
            // Both are idempotent in IAM: a lost answer is retried as it is.
            Change::AddClientId { client_id } => {
                self.retrying(|| iam.add_client_id(arn, client_id)).await
            }
            Change::RemoveClientId { client_id } => {
                self.removing(|| iam.remove_client_id(arn, client_id)).await
            }
            Change::UpdateThumbprints { after, .. } => {
                self.retrying(|| iam.update_thumbprints(arn, after)).await
            }
            Change::DeleteOpenIDConnectProvider => {
                let ours = |tags: &_| self.owns(tags);
                self.retrying(|| iam.delete_oidc_provider_completely(arn, &ours))
                    .await
            }
            Change::CreateInstanceProfile { path, tags } => {
                let create = || async {
                    match iam.create_instance_profile(name, path, tags).await {
                        Err(e) if e.kind == ErrorKind::AlreadyExists => {
                            self.created_by_us(Kind::InstanceProfile, name, arn, e)
                                .await
                        }
                        other => other,
                    }
                };
                self.retrying(create).await
            }
            Change::AddRoleToInstanceProfile { role } => {
                let add = || async {
                    match iam.add_role_to_instance_profile(name, role).await {
                        // The answer to an earlier try was lost and the role is in: done.
                        // IAM refuses a second role with LimitExceeded.
                        Err(e) if e.kind != ErrorKind::Throttled => {
                            let holds =
                                iam.observe_instance_profile(name).await?.is_some_and(|p| {
                                    p.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
                                });
                            if holds { Ok(()) } else { Err(e) }
                        }
                        other => other,
                    }
                };
                self.retrying(add).await
            }
            Change::RemoveRoleFromInstanceProfile { role } => {
                self.removing(|| iam.remove_role_from_instance_profile(name, role))
                    .await
            }
            Change::DeleteInstanceProfile => {
                let ours = |tags: &_| self.owns(tags);
                self.retrying(|| iam.delete_instance_profile_completely(name, &ours))
                    .await
            }
            // Ownership is judged again on the tags read just before the delete.
            Change::DeleteRole => {
                let ours = |tags: &_| self.owns(tags);
                self.retrying(|| iam.delete_role_completely(name, &ours))
                    .await
            }
            Change::DeletePolicy => {
                let ours = |tags: &_| self.owns(tags);
                self.retrying(|| iam.delete_policy_completely(arn, &ours))
                    .await
            }
            Change::RemoveTags { keys } => {
                let keys: Vec<String> = keys.keys().cloned().collect();
                match plan.kind {
                    Kind::Role => self.removing(|| iam.untag_role(name, &keys)).await,
                    Kind::Policy => self.removing(|| iam.untag_policy(arn, &keys)).await,
                    Kind::InstanceProfile => {
                        self.removing(|| iam.untag_instance_profile(name, &keys))
                            .await
                    }
                    Kind::OpenIDConnectProvider => {
                        self.removing(|| iam.untag_oidc_provider(arn, &keys)).await
                    }
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
            Kind::InstanceProfile => self
                .iam
                .observe_instance_profile(name)
                .await?
                .map(|p| p.tags),
            Kind::OpenIDConnectProvider => {
                self.iam.observe_oidc_provider(arn).await?.map(|p| p.tags)
            }
        };
        let Some(tags) = tags else {
            // It exists, yet cannot be read: IAM's propagation after a create whose answer was
            // lost. Not a conflict; the create is tried again.
            return Err(IamError {
                kind: ErrorKind::NotFound,
                ..err
            });
        };
        if self.owns(&tags) {
            Ok(())
        } else {
            Err(IamError {
                kind: ErrorKind::Conflict,
                ..err
            })
        }
    }

    /// Whether `tags` carry this owner's tag.
    fn owns(&self, tags: &std::collections::BTreeMap<String, String>) -> bool {
        crate::plan::tag_value(tags, OWNER_TAG).is_some_and(|o| o == self.owner)
    }
}

fn is_aws_managed(arn: &str) -> bool {
    crate::arn::Arn::parse(arn).is_ok_and(|a| a.is_aws_managed_policy())
}
