//! The planner's output: typed changes to one resource, and what blocks changing it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::Kind;
use crate::policy::PolicyDocument;

/// One change to a role or policy; each maps to one IAM call (two for a version rollover).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Change {
    CreateRole {
        path: String,
        description: String,
        max_session_duration: i32,
        assume_role_policy: PolicyDocument,
        permissions_boundary: Option<String>,
        tags: BTreeMap<String, String>,
    },
    UpdateAssumeRolePolicy {
        before: PolicyDocument,
        after: PolicyDocument,
    },
    /// Description and max session are always sent together.
    UpdateRole {
        description: (String, String),
        max_session_duration: (i32, i32),
    },
    PutPermissionsBoundary {
        before: Option<String>,
        after: String,
    },
    DeletePermissionsBoundary {
        before: String,
    },
    PutInlinePolicy {
        name: String,
        before: Option<PolicyDocument>,
        after: PolicyDocument,
    },
    DeleteInlinePolicy {
        name: String,
        before: PolicyDocument,
    },
    AttachManagedPolicy {
        arn: String,
    },
    DetachManagedPolicy {
        arn: String,
    },
    CreatePolicy {
        path: String,
        description: String,
        document: PolicyDocument,
        tags: BTreeMap<String, String>,
    },
    /// A new default version; with 5 versions, the oldest non-default one is deleted first.
    CreatePolicyVersion {
        delete_first: Option<String>,
        before: PolicyDocument,
        after: PolicyDocument,
    },
    /// Tags added or changed (role or policy, per the plan's kind). `before` holds old values.
    SetTags {
        tags: BTreeMap<String, String>,
        before: BTreeMap<String, String>,
    },
    RemoveTags {
        keys: BTreeMap<String, String>,
    },
    CreateInstanceProfile {
        path: String,
        tags: BTreeMap<String, String>,
    },
    /// IAM holds one role per instance profile: a swap removes the old role first.
    AddRoleToInstanceProfile {
        role: String,
    },
    RemoveRoleFromInstanceProfile {
        role: String,
    },
    CreateOpenIDConnectProvider {
        url: String,
        client_ids: std::collections::BTreeSet<String>,
        /// `None`: IAM fills them in.
        thumbprints: Option<std::collections::BTreeSet<String>>,
        tags: BTreeMap<String, String>,
    },
    AddClientId {
        client_id: String,
    },
    RemoveClientId {
        client_id: String,
    },
    UpdateThumbprints {
        before: std::collections::BTreeSet<String>,
        after: std::collections::BTreeSet<String>,
    },
    /// Pruning: an owned resource that no manifest declares any more.
    DeleteRole,
    DeletePolicy,
    DeleteInstanceProfile,
    DeleteOpenIDConnectProvider,
}

impl Change {
    /// The field a change corrects: the label of the drift metric.
    pub fn field(&self) -> &'static str {
        match self {
            Change::CreateRole { .. }
            | Change::CreatePolicy { .. }
            | Change::CreateInstanceProfile { .. }
            | Change::CreateOpenIDConnectProvider { .. } => "create",
            Change::AddClientId { .. } | Change::RemoveClientId { .. } => "clientIDs",
            Change::UpdateThumbprints { .. } => "thumbprints",
            Change::AddRoleToInstanceProfile { .. }
            | Change::RemoveRoleFromInstanceProfile { .. } => "role",
            Change::UpdateAssumeRolePolicy { .. } => "assumeRolePolicy",
            Change::UpdateRole { .. } => "descriptionOrMaxSession",
            Change::PutPermissionsBoundary { .. } | Change::DeletePermissionsBoundary { .. } => {
                "permissionsBoundary"
            }
            Change::PutInlinePolicy { .. } | Change::DeleteInlinePolicy { .. } => "inlinePolicies",
            Change::AttachManagedPolicy { .. } | Change::DetachManagedPolicy { .. } => {
                "managedPolicies"
            }
            Change::CreatePolicyVersion { .. } => "document",
            Change::SetTags { .. } | Change::RemoveTags { .. } => "tags",
            Change::DeleteRole
            | Change::DeletePolicy
            | Change::DeleteInstanceProfile
            | Change::DeleteOpenIDConnectProvider => "delete",
        }
    }

    /// Pruning: the resource is deleted.
    pub fn is_delete(&self) -> bool {
        matches!(
            self,
            Change::DeleteRole
                | Change::DeletePolicy
                | Change::DeleteInstanceProfile
                | Change::DeleteOpenIDConnectProvider
        )
    }

    pub fn is_create(&self) -> bool {
        matches!(
            self,
            Change::CreateRole { .. }
                | Change::CreatePolicy { .. }
                | Change::CreateInstanceProfile { .. }
                | Change::CreateOpenIDConnectProvider { .. }
        )
    }
}

/// Why a resource is reported and left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "reason",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Finding {
    /// Its owner tag is missing (and the manifest does not adopt it) or names another owner.
    NotOwned { owner: Option<String> },
    /// A field IAM cannot change in place differs; replacing the resource is never silent.
    Immutable {
        field: &'static str,
        observed: String,
        desired: String,
    },
    /// An ARN the manifest names lives in another partition than the account.
    OtherPartition { arn: String, partition: String },
    /// Undeclared and owned: deleted once `--prune-after` has passed since `since`.
    PruneScheduled { since: String, remaining_secs: u64 },
    /// Undeclared and owned, but still used by entities that deleting it would break.
    PruneBlocked { used_by: Vec<String> },
    /// More deletions in one pass than `--max-prune` allows: none of them is made.
    PruneRefused { deletions: usize, max: usize },
}

impl Finding {
    /// Whether it stops every change to the resource (a scheduled prune does not: its grace
    /// period is being recorded).
    pub fn blocks(&self) -> bool {
        !matches!(self, Finding::PruneScheduled { .. })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NotOwned { owner: None } => write!(
                f,
                "exists without an iam-warden/owner tag; left alone (annotate iam-warden/adopt: \"true\" to take it over)"
            ),
            Finding::NotOwned { owner: Some(o) } => {
                write!(f, "owned by iam-warden owner `{o}`; left alone")
            }
            Finding::Immutable {
                field,
                observed,
                desired,
            } => write!(
                f,
                "{field} is `{observed}` in AWS but `{desired}` in the manifest; IAM cannot change it in place, so nothing was changed (delete and recreate it by hand)"
            ),
            Finding::OtherPartition { arn, partition } => write!(
                f,
                "{arn} is not in this account's partition `{partition}`: IAM cannot attach it, so nothing was changed (write arn:{partition}:… or use ${{aws.partition}})"
            ),
            Finding::PruneScheduled {
                since,
                remaining_secs,
            } => write!(
                f,
                "no manifest declares it (since {since}): deleted in {} unless a manifest declares it again (--prune-after)",
                humantime::format_duration(std::time::Duration::from_secs(*remaining_secs))
            ),
            Finding::PruneBlocked { used_by } => write!(
                f,
                "no manifest declares it, but it is still used by {}: not deleted",
                used_by.join(", ")
            ),
            Finding::PruneRefused { deletions, max } => write!(
                f,
                "{deletions} deletions in one pass exceed --max-prune {max}: nothing was deleted (raise --max-prune if this is intended)"
            ),
        }
    }
}

/// The state a resource is in, as `plan`'s summary, `/status` and the metrics report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceState {
    InSync,
    Drifted,
    Pending,
    /// The last reconcile failed (never the result of a plan).
    Error,
    Conflict,
    /// Someone keeps changing it back: corrections back off (the daemon only, never a plan).
    Contested,
}

impl ResourceState {
    pub const ALL: [ResourceState; 6] = [
        ResourceState::InSync,
        ResourceState::Drifted,
        ResourceState::Pending,
        ResourceState::Error,
        ResourceState::Conflict,
        ResourceState::Contested,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::InSync => "in-sync",
            ResourceState::Drifted => "drifted",
            ResourceState::Pending => "pending",
            ResourceState::Error => "error",
            ResourceState::Conflict => "conflict",
            ResourceState::Contested => "contested",
        }
    }
}

/// Everything planned for one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePlan {
    pub kind: Kind,
    pub name: String,
    pub arn: Option<String>,
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
    /// `iam-warden/mode: observe`: reported, never applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub observe_only: bool,
}

impl ResourcePlan {
    pub fn new(kind: Kind, name: &str, arn: Option<String>) -> ResourcePlan {
        ResourcePlan {
            kind,
            name: name.to_string(),
            arn,
            changes: Vec::new(),
            findings: Vec::new(),
            observe_only: false,
        }
    }

    /// In observe mode, the one write allowed: recording `iam-warden/prune: never` on a
    /// resource iam-warden owns, so that it is let go, never deleted, once its manifest is
    /// gone (the planner asks for it in observe mode). `None` when there is nothing to record,
    /// or when the resource is not owned yet (the owner tag would be written with it).
    pub fn observe_mode_record(&self) -> Option<ResourcePlan> {
        if !self.observe_only || self.is_blocked() {
            return None;
        }
        let sets = self.changes.iter().find_map(|c| match c {
            Change::SetTags { tags, before } => Some((tags, before)),
            _ => None,
        })?;
        let ours = |k: &String| k.eq_ignore_ascii_case(crate::manifest::OWNER_TAG);
        if sets.0.keys().any(ours) {
            return None;
        }
        let (key, value) = sets
            .0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(crate::manifest::PRUNE_ANNOTATION))?;
        let mut record = self.clone();
        record.changes = vec![Change::SetTags {
            tags: BTreeMap::from([(key.clone(), value.clone())]),
            before: sets
                .1
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }];
        record.observe_only = false;
        Some(record)
    }

    /// Whether a finding stops every change.
    pub fn is_blocked(&self) -> bool {
        self.findings.iter().any(Finding::blocks)
    }

    /// The name to send IAM: the one in the observed ARN, which keeps IAM's own spelling when a
    /// manifest renames a resource only in case (IAM names ignore case; moto's do not).
    pub fn iam_name(&self) -> &str {
        self.arn
            .as_deref()
            .and_then(|arn| crate::arn::name_and_path(arn))
            .map_or(self.name.as_str(), |(name, _)| name)
    }

    pub fn state(&self) -> ResourceState {
        if self.is_blocked() {
            ResourceState::Conflict
        } else if !self.findings.is_empty() {
            // A prune waiting for its grace period.
            ResourceState::Pending
        } else if self.changes.first().is_some_and(Change::is_create) {
            ResourceState::Pending
        } else if self.changes.is_empty() {
            ResourceState::InSync
        } else {
            ResourceState::Drifted
        }
    }
}
