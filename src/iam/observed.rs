//! What AWS has: plain data read by `iam`, compared by the planner.

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::PolicyDocument;

/// The account the credentials belong to, which makes policy ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub partition: String,
    pub id: String,
}

impl Account {
    /// `arn:aws:iam::ACCOUNT:policy/PATH/NAME` of a customer-managed policy.
    pub fn policy_arn(&self, path: &str, name: &str) -> String {
        format!("arn:{}:iam::{}:policy{path}{name}", self.partition, self.id)
    }

    /// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
    pub fn role_arn(&self, path: &str, name: &str) -> String {
        format!("arn:{}:iam::{}:role{path}{name}", self.partition, self.id)
    }

    /// From a caller identity ARN such as `arn:aws:sts::123456789012:assumed-role/x/y`.
    pub fn from_arn(arn: &str) -> Option<Account> {
        let mut parts = arn.split(':');
        let (_, partition, _, _, id) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        (!partition.is_empty() && id.len() == 12).then(|| Account {
            partition: partition.to_string(),
            id: id.to_string(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_comes_from_a_caller_arn_and_makes_policy_arns() {
        let a = Account::from_arn("arn:aws:sts::123456789012:assumed-role/r/s").unwrap();
        assert_eq!(
            a.policy_arn("/agent/", "p"),
            "arn:aws:iam::123456789012:policy/agent/p"
        );
        let cn = Account::from_arn("arn:aws-cn:iam::210987654321:user/u").unwrap();
        assert_eq!(
            cn.policy_arn("/", "p"),
            "arn:aws-cn:iam::210987654321:policy/p"
        );
        assert_eq!(Account::from_arn("nonsense"), None);
    }
}
