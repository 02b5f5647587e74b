//! One account's runtime, one value: its IAM client (which carries the account's pace), what
//! is known of it between bulk reads, the record of every key reconciled in it, its policy
//! tag cache and its prune and resync state. Many accounts will be many such values under a
//! small supervisor.
//!
//! [`AccountView`] is what is known between bulk reads: where IAM has each policy, the name
//! IAM has for each role, and which roles use each policy, refreshed in one place from each
//! snapshot (the first pass and every resync) and amended as reconciles find or create
//! resources.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use super::keys::KeyTable;
use super::policy_tags::PolicyTagCache;
use crate::iam::{Iam, PolicyUser, Snapshot};
use crate::reconcile::Context;

pub struct AccountRuntime {
    /// The account's IAM client, paced for it.
    pub iam: Iam,
    pub known: AccountView,
    /// Everything remembered per key (status, backoff, converged spec, prune, contest).
    pub keys: Mutex<KeyTable>,
    /// Managed policies' tags, which the snapshot lacks, as last read.
    pub policy_tags: PolicyTagCache,
    /// `--max-prune` holds deletions back: how many the last pass counted.
    pub prune_refused: Mutex<Option<usize>>,
    /// A resync of this account is running (one at a time).
    pub resyncing: AtomicBool,
    /// The last resync could not read the account in bulk (said once, not every interval).
    pub bulk_failing: AtomicBool,
    /// The last snapshot held another account's resources (said once).
    pub foreign: AtomicBool,
}

impl AccountRuntime {
    pub fn new(iam: Iam) -> AccountRuntime {
        AccountRuntime {
            iam,
            known: AccountView::default(),
            keys: Mutex::new(KeyTable::default()),
            policy_tags: PolicyTagCache::default(),
            prune_refused: Mutex::new(None),
            resyncing: AtomicBool::new(false),
            bulk_failing: AtomicBool::new(false),
            foreign: AtomicBool::new(false),
        }
    }
}

#[derive(Default)]
pub struct AccountView {
    inner: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Where IAM has each policy, by lowercased name: roles' refs resolve to it.
    policy_arns: BTreeMap<String, String>,
    /// The name IAM has for each role, by lowercased name (a manifest renamed only in case
    /// finds its role by it).
    role_names: BTreeMap<String, String>,
    /// The roles using each managed policy (attached or as boundary), by ARN: a policy still
    /// used so is never pruned (ListEntitiesForPolicy may leave boundaries out).
    role_users: BTreeMap<String, Vec<PolicyUser>>,
}

impl AccountView {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything known, replaced by what `snapshot` shows.
    pub fn refresh(&self, snapshot: &Snapshot) {
        let known = Known {
            policy_arns: snapshot
                .policies()
                .map(|p| (p.name.to_lowercase(), p.arn.clone()))
                .collect(),
            role_names: snapshot
                .roles()
                .map(|r| (r.name.to_lowercase(), r.name.clone()))
                .collect(),
            role_users: snapshot.role_users(),
        };
        *self.lock() = known;
    }

    /// A reconcile found (or made) the policy `name` at `arn`.
    pub fn policy_found(&self, name: &str, arn: &str) {
        self.lock()
            .policy_arns
            .insert(name.to_lowercase(), arn.to_string());
    }

    /// A reconcile found (or made) a role IAM calls `name`.
    pub fn role_found(&self, name: &str) {
        self.lock()
            .role_names
            .insert(name.to_lowercase(), name.to_string());
    }

    /// `ctx` with refs resolving to where IAM has the policies, and knowing the name IAM has
    /// for the role `role` (only that one: not a copy of every role's name per reconcile).
    pub fn context(&self, ctx: Context, role: Option<&str>) -> Context {
        let known = self.lock();
        let ctx = ctx.with_observed_policy_arns(
            known
                .policy_arns
                .iter()
                .map(|(n, a)| (n.as_str(), a.as_str())),
        );
        let actual = role.and_then(|r| {
            let lower = r.to_lowercase();
            known.role_names.get(&lower).map(|n| (lower, n.clone()))
        });
        match actual {
            Some((lower, name)) => ctx.with_observed_role_names(BTreeMap::from([(lower, name)])),
            None => ctx,
        }
    }

    /// The roles the last snapshot showed using the policy `arn`.
    pub fn role_users_of(&self, arn: &str) -> Vec<PolicyUser> {
        self.lock().role_users.get(arn).cloned().unwrap_or_default()
    }
}
