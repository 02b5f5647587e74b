//! The mutations: one IAM call each, errors classified. Sequences (deleting a role with what
//! it holds) live in `prune`; deciding what to call is the planner's job.

use std::collections::BTreeMap;

use super::{Iam, IamError, to_tags};
use crate::policy::PolicyDocument;

impl Iam {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_role(
        &self,
        name: &str,
        path: &str,
        description: &str,
        max_session_duration: i32,
        trust: &PolicyDocument,
        boundary: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let mut req = self
            .client
            .create_role()
            .role_name(name)
            .path(path)
            .max_session_duration(max_session_duration)
            .assume_role_policy_document(trust.to_json())
            .set_tags(Some(to_tags(tags)))
            .set_permissions_boundary(boundary.map(str::to_string));
        if !description.is_empty() {
            req = req.description(description);
        }
        self.done("CreateRole", self.paced(req.send()).await)
            .map(drop)
    }

    pub async fn update_assume_role_policy(
        &self,
        role: &str,
        doc: &PolicyDocument,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .update_assume_role_policy()
                    .role_name(role)
                    .policy_document(doc.to_json())
                    .send(),
            )
            .await;
        self.done("UpdateAssumeRolePolicy", out).map(drop)
    }

    /// Description and max session go together every time: a call without Description clears
    /// it in moto, and AWS's documentation does not promise otherwise.
    pub async fn update_role(
        &self,
        role: &str,
        description: &str,
        max_session: i32,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .update_role()
                    .role_name(role)
                    .description(description)
                    .max_session_duration(max_session)
                    .send(),
            )
            .await;
        self.done("UpdateRole", out).map(drop)
    }

    pub async fn put_role_permissions_boundary(
        &self,
        role: &str,
        arn: &str,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .put_role_permissions_boundary()
                    .role_name(role)
                    .permissions_boundary(arn)
                    .send(),
            )
            .await;
        self.done("PutRolePermissionsBoundary", out).map(drop)
    }

    pub async fn delete_role_permissions_boundary(&self, role: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .delete_role_permissions_boundary()
                    .role_name(role)
                    .send(),
            )
            .await;
        self.done("DeleteRolePermissionsBoundary", out).map(drop)
    }

    pub async fn tag_role(
        &self,
        role: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .tag_role()
                    .role_name(role)
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("TagRole", out).map(drop)
    }

    pub async fn untag_role(&self, role: &str, keys: &[String]) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .untag_role()
                    .role_name(role)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send(),
            )
            .await;
        self.done("UntagRole", out).map(drop)
    }

    pub async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        doc: &PolicyDocument,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .put_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .policy_document(doc.to_json())
                    .send(),
            )
            .await;
        self.done("PutRolePolicy", out).map(drop)
    }

    pub async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send(),
            )
            .await;
        self.done("DeleteRolePolicy", out).map(drop)
    }

    pub async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .attach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send(),
            )
            .await;
        self.done("AttachRolePolicy", out).map(drop)
    }

    pub async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .detach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send(),
            )
            .await;
        self.done("DetachRolePolicy", out).map(drop)
    }

    pub async fn create_policy(
        &self,
        name: &str,
        path: &str,
        description: &str,
        doc: &PolicyDocument,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let mut req = self
            .client
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(doc.to_json())
            .set_tags(Some(to_tags(tags)));
        if !description.is_empty() {
            req = req.description(description);
        }
        self.done("CreatePolicy", self.paced(req.send()).await)
            .map(drop)
    }

    /// Sent once: the SDK does not retry it. A request that IAM carried out but whose answer
    /// was lost would, sent again, add a second identical version (or fail on the limit of 5);
    /// the executor retries it only after checking the policy's default document.
    pub async fn create_policy_version(
        &self,
        arn: &str,
        doc: &PolicyDocument,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .create_policy_version()
                    .policy_arn(arn)
                    .policy_document(doc.to_json())
                    .set_as_default(true)
                    .customize()
                    .config_override(
                        aws_sdk_iam::config::Builder::default()
                            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled()),
                    )
                    .send(),
            )
            .await;
        self.done("CreatePolicyVersion", out).map(drop)
    }

    pub async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .delete_policy_version()
                    .policy_arn(arn)
                    .version_id(version)
                    .send(),
            )
            .await;
        self.done("DeletePolicyVersion", out).map(drop)
    }

    pub async fn tag_policy(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .tag_policy()
                    .policy_arn(arn)
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("TagPolicy", out).map(drop)
    }

    pub async fn untag_policy(&self, arn: &str, keys: &[String]) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .untag_policy()
                    .policy_arn(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send(),
            )
            .await;
        self.done("UntagPolicy", out).map(drop)
    }
}
