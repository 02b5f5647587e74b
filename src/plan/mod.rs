//! Planning, pure: from the desired state and what IAM has, the changes that make them equal
//! (`resource`), in a safe order (`order`); what to prune (`prune`); what blocks a role
//! (`blocking`); and how a plan reads (`render`). No I/O here: every rule is a row in a table.
//! `reconcile` observes and executes; the controller and the commands only carry out what is
//! decided here.

mod blocking;
mod change;
pub mod markdown;
pub mod order;
pub mod prune;
pub mod render;
mod resource;

#[cfg(test)]
mod kinds_tests;
#[cfg(test)]
mod tests;

pub use blocking::{PolicyVerdict, blocked_by, blocking_policy};
pub use change::{Change, Finding, ResourcePlan, ResourceState};
pub use resource::{
    Context, plan_instance_profile, plan_oidc_provider, plan_policy, plan_role, tag_value,
};
