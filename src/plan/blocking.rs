//! What blocks a resource, decided once for `apply` and the daemon: a declared resource it
//! needs that failed or is in conflict. A role needs the policies it refers to by `{ref}`
//! (attached or as its boundary) and the OIDC providers its trust policy names by `{ref}`; an
//! instance profile needs the role it holds by `{ref}`. Writing it then could only fail, or
//! name what IAM does not have.

use crate::manifest::{Kind, Resource};

/// How a declared resource fared, as far as one that needs it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyVerdict {
    Failed,
    Conflict,
}

/// Why `resource` cannot be applied now, if something it needs failed or is in conflict;
/// `verdict` says how the declared resource of that kind and name (ignoring case) fared.
pub fn blocking_policy(
    resource: &Resource,
    verdict: impl Fn(Kind, &str) -> Option<PolicyVerdict>,
) -> Option<String> {
    blocked_by(resource, verdict).map(|(_, why)| why)
}

/// [`blocking_policy`], with how the blocking resource fared: one waiting for a resource that
/// failed is retried with it; one held by a resource in conflict waits for a person.
pub fn blocked_by(
    resource: &Resource,
    verdict: impl Fn(Kind, &str) -> Option<PolicyVerdict>,
) -> Option<(PolicyVerdict, String)> {
    resource
        .needs()
        .into_iter()
        .find_map(|(kind, n)| match verdict(kind, &n)? {
            PolicyVerdict::Failed => Some((
                PolicyVerdict::Failed,
                format!("it needs {kind} `{n}`, which failed"),
            )),
            PolicyVerdict::Conflict => Some((
                PolicyVerdict::Conflict,
                format!("it needs {kind} `{n}`, which is in conflict"),
            )),
        })
}
