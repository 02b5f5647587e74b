//! What AWS has: plain data read by `iam`, compared by the planner.

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::PolicyDocument;

pub use crate::arn::Account;

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedRole {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub description: String,
    pub max_session_duration: i32,
    pub permissions_boundary: Option<String>,
    pub assume_role_policy: PolicyDocument,
    pub managed_policies: BTreeSet<String>,
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    /// Seconds since the epoch; orders versions oldest first.
    pub created: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedPolicy {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub description: String,
    /// The default version's document.
    pub document: PolicyDocument,
    pub versions: Vec<PolicyVersion>,
    pub tags: BTreeMap<String, String>,
}

/// The kind of IAM identity that can use a managed policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    Role,
    User,
    Group,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Role => "role",
            EntityKind::User => "user",
            EntityKind::Group => "group",
        }
    }
}

/// An identity that uses a managed policy, attached or as its permissions boundary.
///
/// Invariant: two users are the same identity when kind and name match ignoring case (IAM
/// names ignore case); a name is never compared by prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyUser {
    pub kind: EntityKind,
    pub name: String,
    /// Used as the permissions boundary rather than (only) attached.
    pub boundary: bool,
}

impl PolicyUser {
    pub fn new(kind: EntityKind, name: &str, boundary: bool) -> PolicyUser {
        PolicyUser {
            kind,
            name: name.to_string(),
            boundary,
        }
    }

    /// The same identity as `kind`/`name` (IAM names ignore case).
    pub fn is(&self, kind: EntityKind, name: &str) -> bool {
        self.kind == kind && self.name.eq_ignore_ascii_case(name)
    }

    /// Adds `user` to `users` unless that identity is there already; an attachment wins
    /// over a boundary, so each identity is named once.
    pub fn add_to(users: &mut Vec<PolicyUser>, user: PolicyUser) {
        match users.iter_mut().find(|u| u.is(user.kind, &user.name)) {
            Some(existing) => existing.boundary &= user.boundary,
            None => users.push(user),
        }
    }
}

impl std::fmt::Display for PolicyUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)?;
        if self.boundary {
            write!(f, " (as its permissions boundary)")?;
        }
        Ok(())
    }
}
