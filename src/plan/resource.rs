//! The planner: a pure function from (desired, observed) to the changes that make them equal.
//!
//! No I/O here, so every rule is a row in a unit-test table. Documents are compared by
//! equivalence, never by text, so an equivalent document is never rewritten.

use std::collections::{BTreeMap, BTreeSet};

use super::change::{Change, Finding, ResourcePlan};
use crate::iam::{
    Account, ObservedInstanceProfile, ObservedOidcProvider, ObservedPolicy, ObservedRole,
};
use crate::manifest::{
    DesiredInstanceProfile, DesiredOidcProvider, DesiredPolicy, DesiredRole, DesiredState, Kind,
    OWNER_TAG, PRUNE_ANNOTATION, PolicyRef, adopts, never_pruned, observe_only,
};
use crate::policy::glob;

/// What planning needs besides the two states.
#[derive(Clone, Debug)]
pub struct Context {
    pub account: Account,
    pub owner: String,
    /// Tag keys under these prefixes (and `aws:`) are never changed or removed.
    pub ignore_tag_prefixes: Vec<String>,
    /// Managed policy ARNs (IAM wildcards) never attached or detached: the organisation's own.
    pub ignore_managed_policies: Vec<String>,
    /// ARN of each declared Policy, by lowercased name: what `{ref: NAME}` resolves to (IAM
    /// names ignore case).
    pub policy_arns: BTreeMap<String, String>,
    /// The name IAM has for roles, by lowercased name, as a listing saw them: a role that
    /// GetRole does not find by its manifest's name is looked up here (empty: not known).
    pub role_names: BTreeMap<String, String>,
    /// ARN of each declared OIDC provider, by lowercased name: what `Federated: {ref: NAME}`
    /// resolves to.
    pub provider_arns: BTreeMap<String, String>,
}

impl Context {
    pub fn new(
        owner: &str,
        ignore_tag_prefixes: &[String],
        account: &Account,
        desired: &DesiredState,
    ) -> Context {
        Context {
            account: account.clone(),
            owner: owner.to_string(),
            ignore_tag_prefixes: ignore_tag_prefixes.to_vec(),
            ignore_managed_policies: Vec::new(),
            policy_arns: desired
                .policies
                .values()
                .map(|p| (p.name.to_lowercase(), account.policy_arn(&p.path, &p.name)))
                .collect(),
            role_names: BTreeMap::new(),
            provider_arns: desired
                .oidc_providers
                .values()
                .map(|p| (p.name.to_lowercase(), account.oidc_provider_arn(&p.url)))
                .collect(),
        }
    }

    /// The trust policy `role` should have: each `Federated: {ref: NAME}` the provider's ARN.
    pub fn trust_policy(&self, role: &DesiredRole) -> crate::policy::PolicyDocument {
        role.trust_with_providers(|name| self.provider_arns.get(&name.to_lowercase()).cloned())
    }

    /// The same context, knowing the name IAM has for these roles (from a listing).
    pub fn with_observed_role_names(mut self, names: BTreeMap<String, String>) -> Context {
        self.role_names = names;
        self
    }

    /// The same context, leaving attachments of these policies (IAM wildcards) alone.
    pub fn with_ignored_managed_policies(mut self, patterns: &[String]) -> Context {
        self.ignore_managed_policies = patterns.to_vec();
        self
    }

    fn ignored_managed(&self, arn: &str) -> bool {
        self.ignore_managed_policies
            .iter()
            .any(|p| glob::matches(p, arn, false))
    }

    pub fn resolve(&self, r: &PolicyRef) -> String {
        match r {
            PolicyRef::Arn(arn) => arn.clone(),
            // Refs are checked at load time; an unknown one resolves to a name IAM rejects.
            PolicyRef::Ref(name) => self
                .policy_arns
                .get(&name.to_lowercase())
                .cloned()
                .unwrap_or_else(|| name.clone()),
        }
    }

    /// The same context with refs resolving to the ARNs IAM has for the declared policies
    /// (by name, ignoring case): a policy renamed only in case, or at another path, keeps
    /// its attachments instead of being detached for an ARN that does not exist.
    pub fn with_observed_policy_arns<'a>(
        mut self,
        observed: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Context {
        for (name, arn) in observed {
            if let Some(slot) = self.policy_arns.get_mut(&name.to_lowercase()) {
                *slot = arn.to_string();
            }
        }
        self
    }

    /// The ARN a declared policy has (or will have when created).
    pub fn policy_arn(&self, name: &str) -> Option<&String> {
        self.policy_arns.get(&name.to_lowercase())
    }

    fn ignored_tag(&self, key: &str) -> bool {
        key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
            || self
                .ignore_tag_prefixes
                .iter()
                .any(|p| key.to_lowercase().starts_with(&p.to_lowercase()))
    }

    /// The tags `policy` should carry in IAM: its declared ones and iam-warden's own.
    pub fn policy_tags_wanted(&self, policy: &DesiredPolicy) -> BTreeMap<String, String> {
        self.tags_with_owner(&policy.tags, &policy.annotations)
    }

    /// The declared tags and iam-warden's own: the owner, and `iam-warden/prune: never`
    /// recorded for when the manifest is gone (also in observe mode, so that a resource only
    /// watched is never deleted by a prune).
    fn tags_with_owner(
        &self,
        tags: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut all = tags.clone();
        all.insert(OWNER_TAG.to_string(), self.owner.clone());
        if never_pruned(annotations) || observe_only(annotations) {
            all.insert(PRUNE_ANNOTATION.to_string(), "never".to_string());
        }
        all
    }
}

/// The value of tag `key` (tag keys ignore case in IAM).
pub fn tag_value<'t>(tags: &'t BTreeMap<String, String>, key: &str) -> Option<&'t String> {
    tags.get(key).or_else(|| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Whether iam-warden may change the resource, given its tags.
fn ownership(
    ctx: &Context,
    tags: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<Finding> {
    match tag_value(tags, OWNER_TAG) {
        Some(o) if *o == ctx.owner => None,
        None if adopts(annotations) => None,
        owner => Some(Finding::NotOwned {
            owner: owner.cloned(),
        }),
    }
}

/// Tag changes: the declared set plus the owner tag is exact, except ignored keys. Keys are
/// matched ignoring case, as IAM does: a key is never set in one spelling and removed in
/// another, and a spelling-only difference is no difference.
fn tag_changes(
    ctx: &Context,
    declared: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Vec<Change> {
    let desired = ctx.tags_with_owner(declared, annotations);
    let desired_keys: BTreeSet<String> = desired.keys().map(|k| k.to_lowercase()).collect();
    let mut set = BTreeMap::new();
    let mut before = BTreeMap::new();
    for (k, v) in &desired {
        // A key IAM has in another spelling is written in that spelling: the same key to
        // IAM, and never a second one where case matters (moto).
        let spelled = observed
            .keys()
            .find(|o| o.eq_ignore_ascii_case(k))
            .unwrap_or(k);
        match tag_value(observed, k) {
            Some(old) if old == v => {}
            old => {
                set.insert(spelled.clone(), v.clone());
                if let Some(old) = old {
                    before.insert(spelled.clone(), old.clone());
                }
            }
        }
    }
    let remove: BTreeMap<String, String> = observed
        .iter()
        .filter(|(k, _)| !desired_keys.contains(&k.to_lowercase()) && !ctx.ignored_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut changes = Vec::new();
    if !set.is_empty() {
        changes.push(Change::SetTags { tags: set, before });
    }
    if !remove.is_empty() {
        changes.push(Change::RemoveTags { keys: remove });
    }
    changes
}

/// What every kind's plan of a resource that exists starts from.
struct Existing<'a> {
    arn: &'a str,
    tags: &'a BTreeMap<String, String>,
    /// (field, observed, desired) of the fields IAM cannot change in place.
    immutable: &'a [(&'static str, &'a String, &'a String)],
}

impl Existing<'_> {
    /// Records the resource's ARN, and whether it is ours and its immutable fields agree;
    /// when they do, adds the tag changes (first: when adopting, the owner tag is the first
    /// thing written) and says the plan may go on.
    fn may_change(
        &self,
        ctx: &Context,
        plan: &mut ResourcePlan,
        tags: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> bool {
        plan.arn = Some(self.arn.to_string());
        plan.findings.extend(ownership(ctx, self.tags, annotations));
        for (field, observed, desired) in self.immutable {
            if observed != desired {
                plan.findings.push(Finding::Immutable {
                    field,
                    observed: (*observed).clone(),
                    desired: (*desired).clone(),
                });
            }
        }
        if !plan.findings.is_empty() {
            return false;
        }
        plan.changes
            .extend(tag_changes(ctx, tags, annotations, self.tags));
        true
    }
}

pub fn plan_policy(
    ctx: &Context,
    desired: &DesiredPolicy,
    observed: Option<&ObservedPolicy>,
) -> ResourcePlan {
    let mut plan = ResourcePlan {
        kind: Kind::Policy,
        name: desired.name.clone(),
        arn: ctx.policy_arn(&desired.name).cloned(),
        changes: Vec::new(),
        findings: Vec::new(),
        observe_only: observe_only(&desired.annotations),
    };
    let Some(o) = observed else {
        plan.changes.push(Change::CreatePolicy {
            path: desired.path.clone(),
            description: desired.description.clone(),
            document: desired.document.clone(),
            tags: ctx.tags_with_owner(&desired.tags, &desired.annotations),
        });
        return plan;
    };
    let existing = Existing {
        arn: &o.arn,
        tags: &o.tags,
        immutable: &[
            ("path", &o.path, &desired.path),
            ("description", &o.description, &desired.description),
        ],
    };
    if !existing.may_change(ctx, &mut plan, &desired.tags, &desired.annotations) {
        return plan;
    }
    if !o.document.is_equivalent(&desired.document) {
        plan.changes.push(Change::CreatePolicyVersion {
            delete_first: version_to_delete(o),
            before: o.document.clone(),
            after: desired.document.clone(),
        });
    }
    plan
}

/// An instance profile: its one role (removed before another is added, as IAM holds one),
/// its tags as an exact set; its path cannot change in place.
pub fn plan_instance_profile(
    ctx: &Context,
    desired: &DesiredInstanceProfile,
    observed: Option<&ObservedInstanceProfile>,
) -> ResourcePlan {
    let mut plan = ResourcePlan {
        kind: Kind::InstanceProfile,
        name: desired.name.clone(),
        arn: Some(
            ctx.account
                .instance_profile_arn(&desired.path, &desired.name),
        ),
        changes: Vec::new(),
        findings: Vec::new(),
        observe_only: observe_only(&desired.annotations),
    };
    let role = desired.role.as_ref().map(|r| r.name().to_string());
    let Some(o) = observed else {
        plan.changes.push(Change::CreateInstanceProfile {
            path: desired.path.clone(),
            tags: ctx.tags_with_owner(&desired.tags, &desired.annotations),
        });
        plan.changes
            .extend(role.map(|role| Change::AddRoleToInstanceProfile { role }));
        return plan;
    };
    let existing = Existing {
        arn: &o.arn,
        tags: &o.tags,
        immutable: &[("path", &o.path, &desired.path)],
    };
    if !existing.may_change(ctx, &mut plan, &desired.tags, &desired.annotations) {
        return plan;
    }
    // Role names ignore case, as IAM's do.
    let holds = |name: &str| o.roles.iter().any(|r| r.eq_ignore_ascii_case(name));
    for held in &o.roles {
        if role.as_ref().is_none_or(|r| !r.eq_ignore_ascii_case(held)) {
            plan.changes
                .push(Change::RemoveRoleFromInstanceProfile { role: held.clone() });
        }
    }
    if let Some(role) = role.filter(|r| !holds(r)) {
        plan.changes.push(Change::AddRoleToInstanceProfile { role });
    }
    plan
}

/// An OIDC provider, found by its url: client ids and tags as exact sets, thumbprints when
/// the manifest lists them (otherwise IAM's are never drift).
pub fn plan_oidc_provider(
    ctx: &Context,
    desired: &DesiredOidcProvider,
    observed: Option<&ObservedOidcProvider>,
) -> ResourcePlan {
    let mut plan = ResourcePlan {
        kind: Kind::OpenIDConnectProvider,
        name: desired.name.clone(),
        arn: Some(ctx.account.oidc_provider_arn(&desired.url)),
        changes: Vec::new(),
        findings: Vec::new(),
        observe_only: observe_only(&desired.annotations),
    };
    let Some(o) = observed else {
        plan.changes.push(Change::CreateOpenIDConnectProvider {
            url: desired.url.clone(),
            client_ids: desired.client_ids.clone(),
            thumbprints: desired.thumbprints.clone(),
            tags: ctx.tags_with_owner(&desired.tags, &desired.annotations),
        });
        return plan;
    };
    let existing = Existing {
        arn: &o.arn,
        tags: &o.tags,
        immutable: &[],
    };
    if !existing.may_change(ctx, &mut plan, &desired.tags, &desired.annotations) {
        return plan;
    }
    // Removals first: IAM holds 100 client ids at most.
    for id in o.client_ids.difference(&desired.client_ids) {
        plan.changes.push(Change::RemoveClientId {
            client_id: id.clone(),
        });
    }
    for id in desired.client_ids.difference(&o.client_ids) {
        plan.changes.push(Change::AddClientId {
            client_id: id.clone(),
        });
    }
    if let Some(wanted) = desired
        .thumbprints
        .as_ref()
        .filter(|t| **t != o.thumbprints)
    {
        plan.changes.push(Change::UpdateThumbprints {
            before: o.thumbprints.clone(),
            after: wanted.clone(),
        });
    }
    plan
}

/// IAM keeps 5 versions at most: the oldest non-default one makes room for the new one.
fn version_to_delete(o: &ObservedPolicy) -> Option<String> {
    if o.versions.len() < 5 {
        return None;
    }
    o.versions
        .iter()
        .filter(|v| !v.is_default)
        .min_by(|a, b| (a.created, version_number(&a.id)).cmp(&(b.created, version_number(&b.id))))
        .map(|v| v.id.clone())
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

pub fn plan_role(
    ctx: &Context,
    desired: &DesiredRole,
    observed: Option<&ObservedRole>,
) -> ResourcePlan {
    let mut plan = ResourcePlan {
        kind: Kind::Role,
        name: desired.name.clone(),
        arn: Some(ctx.account.role_arn(&desired.path, &desired.name)),
        changes: Vec::new(),
        findings: Vec::new(),
        observe_only: observe_only(&desired.annotations),
    };
    let boundary = desired
        .permissions_boundary
        .as_ref()
        .map(|b| ctx.resolve(b));
    let trust = ctx.trust_policy(desired);
    let managed: BTreeSet<String> = desired
        .managed_policies
        .iter()
        .map(|r| ctx.resolve(r))
        .filter(|arn| !ctx.ignored_managed(arn))
        .collect();
    for arn in managed.iter().chain(&boundary) {
        let partition = crate::arn::Arn::parse(arn).map(|a| a.partition);
        if partition.ok() != Some(ctx.account.partition.as_str()) {
            plan.findings.push(Finding::OtherPartition {
                arn: arn.clone(),
                partition: ctx.account.partition.clone(),
            });
        }
    }
    if !plan.findings.is_empty() {
        return plan;
    }
    let Some(o) = observed else {
        plan.changes.push(Change::CreateRole {
            path: desired.path.clone(),
            description: desired.description.clone(),
            max_session_duration: desired.max_session_duration,
            assume_role_policy: trust.clone(),
            permissions_boundary: boundary,
            tags: ctx.tags_with_owner(&desired.tags, &desired.annotations),
        });
        for (name, doc) in &desired.inline_policies {
            plan.changes.push(Change::PutInlinePolicy {
                name: name.clone(),
                before: None,
                after: doc.clone(),
            });
        }
        for arn in managed {
            plan.changes.push(Change::AttachManagedPolicy { arn });
        }
        return plan;
    };
    let existing = Existing {
        arn: &o.arn,
        tags: &o.tags,
        immutable: &[("path", &o.path, &desired.path)],
    };
    if !existing.may_change(ctx, &mut plan, &desired.tags, &desired.annotations) {
        return plan;
    }
    if !o.assume_role_policy.is_equivalent(&trust) {
        plan.changes.push(Change::UpdateAssumeRolePolicy {
            before: o.assume_role_policy.clone(),
            after: trust.clone(),
        });
    }
    if o.description != desired.description
        || o.max_session_duration != desired.max_session_duration
    {
        plan.changes.push(Change::UpdateRole {
            description: (o.description.clone(), desired.description.clone()),
            max_session_duration: (o.max_session_duration, desired.max_session_duration),
        });
    }
    match (&o.permissions_boundary, boundary) {
        (before, Some(after)) if before.as_ref() != Some(&after) => {
            plan.changes.push(Change::PutPermissionsBoundary {
                before: before.clone(),
                after,
            })
        }
        (Some(before), None) => plan.changes.push(Change::DeletePermissionsBoundary {
            before: before.clone(),
        }),
        _ => {}
    }
    // Removals before additions: IAM counts attached policies (10 by default) and the size of
    // all inline policies together (10,240), so a swap at the limit only fits this way round.
    for (name, doc) in &o.inline_policies {
        if !desired.inline_policies.contains_key(name) {
            plan.changes.push(Change::DeleteInlinePolicy {
                name: name.clone(),
                before: doc.clone(),
            });
        }
    }
    for arn in o.managed_policies.difference(&managed) {
        if !ctx.ignored_managed(arn) {
            plan.changes
                .push(Change::DetachManagedPolicy { arn: arn.clone() });
        }
    }
    // Puts that shrink the inline total come before puts that grow it, for the same reason.
    let mut puts: Vec<(i64, Change)> = Vec::new();
    for (name, doc) in &desired.inline_policies {
        match o.inline_policies.get(name) {
            Some(current) if current.is_equivalent(doc) => {}
            current => {
                let growth = doc.size() as i64 - current.map_or(0, |c| c.size() as i64);
                puts.push((
                    growth,
                    Change::PutInlinePolicy {
                        name: name.clone(),
                        before: current.cloned(),
                        after: doc.clone(),
                    },
                ));
            }
        }
    }
    puts.sort_by_key(|(growth, _)| *growth);
    plan.changes.extend(puts.into_iter().map(|(_, c)| c));
    for arn in managed.difference(&o.managed_policies) {
        plan.changes
            .push(Change::AttachManagedPolicy { arn: arn.clone() });
    }
    plan
}
