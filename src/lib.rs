//! iam-warden keeps AWS IAM roles and customer-managed policies equal to declarative YAML
//! manifests: a CLI for CI (`validate`, `plan`, `apply`) and a reconciling daemon (`run`).
//!
//! Data flows one way: `manifest` loads the desired state, `iam` observes AWS, `reconcile`
//! plans the difference (pure) and applies it; `controller` runs that in a loop.

pub mod arn;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod fieldpath;
pub mod guardrails;
pub mod iam;
pub mod import;
pub mod manifest;
pub mod plan;
pub mod policy;
pub mod printable;
pub mod reconcile;
pub mod suggest;
pub mod telemetry;
pub mod view;
