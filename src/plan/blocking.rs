//! What blocks a role, decided once for `apply` and the daemon: a policy it refers to by
//! `{ref}` (attached or as its boundary) that failed or is in conflict. Attaching the ARN its
//! manifest implies could only fail then, or detach the one IAM has.

use crate::manifest::DesiredRole;

/// How a declared policy fared, as far as a role that needs it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyVerdict {
    Failed,
    Conflict,
}

/// Why `role` cannot be applied now, if a policy it refers to failed or is in conflict;
/// `verdict` says how the declared policy of that name (ignoring case) fared.
pub fn blocking_policy(
    role: &DesiredRole,
    verdict: impl Fn(&str) -> Option<PolicyVerdict>,
) -> Option<String> {
    blocked_by(role, verdict).map(|(_, why)| why)
}

/// [`blocking_policy`], with how the blocking policy fared: a role waiting for a policy that
/// failed is retried with it; one held by a policy in conflict waits for a person.
pub fn blocked_by(
    role: &DesiredRole,
    verdict: impl Fn(&str) -> Option<PolicyVerdict>,
) -> Option<(PolicyVerdict, String)> {
    role.policy_refs().find_map(|n| match verdict(n)? {
        PolicyVerdict::Failed => Some((
            PolicyVerdict::Failed,
            format!("it needs Policy `{n}`, which failed"),
        )),
        PolicyVerdict::Conflict => Some((
            PolicyVerdict::Conflict,
            format!("it needs Policy `{n}`, which is in conflict"),
        )),
    })
}
