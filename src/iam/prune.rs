//! What pruning needs from IAM: finding everything an owner tagged, and deleting a role or a
//! policy together with what IAM requires gone first (DeleteConflict otherwise).

use std::collections::BTreeMap;

use aws_sdk_iam::types::{PolicyScopeType, PolicyUsageType};

use super::{EntityKind, ErrorKind, Iam, IamError, PAGE_SIZE, PolicyUser, tags_of};

/// Refuses a deletion when the resource, as read just now, is no longer ours: its owner tag
/// changed or went between the decision and the delete.
pub(super) fn still_ours(
    tags: &BTreeMap<String, String>,
    ours: &(dyn Fn(&BTreeMap<String, String>) -> bool + Sync),
    what: &str,
    operation: &'static str,
) -> Result<(), IamError> {
    if ours(tags) {
        return Ok(());
    }
    Err(IamError {
        operation,
        kind: ErrorKind::Conflict,
        code: None,
        message: format!("{what} is no longer owned by this owner: not deleted"),
    })
}

/// A removal whose target is already gone has done its job.
pub(super) fn gone_ok(result: Result<(), IamError>) -> Result<(), IamError> {
    match result {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Iam {
    /// Every role and customer-managed policy with its tags (ARN, tags), for pruning when the
    /// account denies the bulk read: listing calls do not return tags, so each is read.
    pub async fn list_tagged(&self) -> Result<Vec<(String, BTreeMap<String, String>)>, IamError> {
        let mut out = Vec::new();
        for role in self.list_roles().await? {
            let tags = self
                .paced(
                    self.client
                        .list_role_tags()
                        .role_name(role.role_name())
                        .send(),
                )
                .await;
            out.push((
                role.arn().to_string(),
                tags_of(self.done("ListRoleTags", tags)?.tags()),
            ));
        }
        let mut arns = Vec::new();
        self.pages(
            "ListPolicies",
            |marker| {
                self.client
                    .list_policies()
                    .scope(PolicyScopeType::Local)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                arns.extend(
                    page.policies()
                        .iter()
                        .filter_map(|p| p.arn().map(str::to_string)),
                );
                Ok(true)
            },
        )
        .await?;
        for arn in arns {
            let tags = self.policy_tags(&arn).await?;
            out.push((arn, tags));
        }
        Ok(out)
    }

    /// The roles, users and groups a managed policy is attached to or is the permissions
    /// boundary of (every page), each identity once.
    pub async fn policy_users(&self, arn: &str) -> Result<Vec<PolicyUser>, IamError> {
        let mut out = Vec::new();
        for usage in [
            PolicyUsageType::PermissionsPolicy,
            PolicyUsageType::PermissionsBoundary,
        ] {
            let boundary = usage == PolicyUsageType::PermissionsBoundary;
            self.pages(
                "ListEntitiesForPolicy",
                |marker| {
                    self.client
                        .list_entities_for_policy()
                        .policy_arn(arn)
                        .policy_usage_filter(usage.clone())
                        .max_items(PAGE_SIZE)
                        .set_marker(marker)
                        .send()
                },
                |page| {
                    let roles = page.policy_roles().iter().filter_map(|r| r.role_name());
                    let users = page.policy_users().iter().filter_map(|u| u.user_name());
                    let groups = page.policy_groups().iter().filter_map(|g| g.group_name());
                    for (kind, name) in roles
                        .map(|n| (EntityKind::Role, n))
                        .chain(users.map(|n| (EntityKind::User, n)))
                        .chain(groups.map(|n| (EntityKind::Group, n)))
                    {
                        PolicyUser::add_to(&mut out, PolicyUser::new(kind, name, boundary));
                    }
                    Ok(true)
                },
            )
            .await?;
        }
        Ok(out)
    }

    /// Detaches, deletes inline policies, leaves instance profiles, then deletes the role.
    /// `ours` judges the role's tags as read just now: a role whose owner tag changed since
    /// the decision is not touched.
    pub async fn delete_role_completely(
        &self,
        name: &str,
        ours: &(dyn Fn(&BTreeMap<String, String>) -> bool + Sync),
    ) -> Result<(), IamError> {
        let Some(role) = self.observe_role(name).await? else {
            return Ok(());
        };
        still_ours(&role.tags, ours, &format!("role {name}"), "DeleteRole")?;
        for arn in &role.managed_policies {
            gone_ok(self.detach_role_policy(name, arn).await)?;
        }
        for policy in role.inline_policies.keys() {
            gone_ok(self.delete_role_policy(name, policy).await)?;
        }
        let profiles = self
            .paced(
                self.client
                    .list_instance_profiles_for_role()
                    .role_name(name)
                    .send(),
            )
            .await;
        for profile in self
            .done("ListInstanceProfilesForRole", profiles)?
            .instance_profiles()
        {
            let out = self
                .paced(
                    self.client
                        .remove_role_from_instance_profile()
                        .role_name(name)
                        .instance_profile_name(profile.instance_profile_name())
                        .send(),
                )
                .await;
            gone_ok(self.done("RemoveRoleFromInstanceProfile", out).map(drop))?;
        }
        let out = self
            .paced(self.client.delete_role().role_name(name).send())
            .await;
        gone_ok(self.done("DeleteRole", out).map(drop))
    }

    /// Deletes non-default versions, then the policy. It detaches nothing: prune deletes a
    /// policy only when nothing but the roles it deletes first uses it, so an attachment left
    /// is someone else's, and IAM's DeleteConflict is the right answer (the operator policy
    /// grants no detaching from others either).
    pub async fn delete_policy_completely(
        &self,
        arn: &str,
        ours: &(dyn Fn(&BTreeMap<String, String>) -> bool + Sync),
    ) -> Result<(), IamError> {
        let Some(policy) = self.observe_policy(arn).await? else {
            return Ok(());
        };
        still_ours(&policy.tags, ours, &format!("policy {arn}"), "DeletePolicy")?;
        for version in policy.versions.iter().filter(|v| !v.is_default) {
            gone_ok(self.delete_policy_version(arn, &version.id).await)?;
        }
        let out = self
            .paced(self.client.delete_policy().policy_arn(arn).send())
            .await;
        gone_ok(self.done("DeletePolicy", out).map(drop))
    }
}
