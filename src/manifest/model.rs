//! The desired state: typed, validated, variable-resolved resources. What the planner consumes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::policy::PolicyDocument;

pub const API_VERSION: &str = "iamwarden/v1alpha1";
/// The tag that marks a resource as managed by iam-warden; its value is `--owner`.
pub const OWNER_TAG: &str = "iam-warden/owner";
/// The annotation that lets a manifest take over a resource no owner tag claims.
pub const ADOPT_ANNOTATION: &str = "iam-warden/adopt";
/// `iam-warden/prune: "never"`: when the manifest goes, the resource stays and is let go (its
/// owner tag removed) instead of being deleted. Recorded on the resource as a tag of the same
/// name, since the manifest is gone when it matters.
pub const PRUNE_ANNOTATION: &str = "iam-warden/prune";
/// `iam-warden/mode: observe`: report this resource's drift, never write to it.
pub const MODE_ANNOTATION: &str = "iam-warden/mode";
/// `iam-warden/accounts: "prod-*,!prod-legacy"`: the accounts of the accounts file a manifest
/// applies to (default: every one).
pub const ACCOUNTS_ANNOTATION: &str = "iam-warden/accounts";
/// Set on an owned resource when no manifest declares it any more: when the grace period of
/// `--prune-after` started (RFC 3339). Kept in IAM so every pass and every process agrees.
pub const UNDECLARED_SINCE_TAG: &str = "iam-warden/undeclared-since";
/// Tags iam-warden sets itself; a manifest cannot declare them.
pub const RESERVED_TAGS: &[&str] = &[OWNER_TAG, PRUNE_ANNOTATION, UNDECLARED_SINCE_TAG];
pub const DEFAULT_MAX_SESSION: i32 = 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Kind {
    Policy,
    Role,
    /// Applied after roles, whose names it holds.
    InstanceProfile,
    /// Applied before roles, whose trust policies may name it.
    OpenIDConnectProvider,
}

impl Kind {
    pub const NAMES: &'static [&'static str] =
        &["Role", "Policy", "InstanceProfile", "OpenIDConnectProvider"];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "Role",
            Kind::Policy => "Policy",
            Kind::InstanceProfile => "InstanceProfile",
            Kind::OpenIDConnectProvider => "OpenIDConnectProvider",
        }
    }
}

/// How `Federated: {ref: NAME}` stands in a trust policy until the provider's ARN is known
/// (the planner knows the account): a string no ARN can be.
pub fn provider_ref_marker(name: &str) -> String {
    format!("{{ref: {name}}}")
}

/// The provider name a [`provider_ref_marker`] holds.
pub fn provider_ref_name(text: &str) -> Option<&str> {
    text.strip_prefix("{ref: ")?.strip_suffix('}')
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a resource was declared, for error messages that name both places of a duplicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    /// An ACK object's Kubernetes identity, which other ACK objects refer to it by.
    pub k8s: Option<K8sName>,
}

/// A Kubernetes object's namespace (empty when the manifest names none) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct K8sName {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A managed policy named by ARN, or by the name of a `Policy` of the same desired state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyRef {
    Arn(String),
    Ref(String),
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyRef::Arn(arn) => f.write_str(arn),
            PolicyRef::Ref(name) => write!(f, "{{ref: {name}}}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredRole {
    pub name: String,
    pub path: String,
    /// Empty when the manifest gives none: the desired state is exact.
    pub description: String,
    pub max_session_duration: i32,
    pub permissions_boundary: Option<PolicyRef>,
    pub assume_role_policy: PolicyDocument,
    /// Sorted, without duplicates.
    pub managed_policies: Vec<PolicyRef>,
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// The user's tags; the owner tag is added by the planner, never declared.
    pub tags: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub origin: Origin,
}

impl DesiredRole {
    /// The declared policies it refers to by `{ref: NAME}`, attached or as its boundary.
    pub fn policy_refs(&self) -> impl Iterator<Item = &str> {
        self.managed_policies
            .iter()
            .chain(&self.permissions_boundary)
            .filter_map(|r| match r {
                PolicyRef::Ref(name) => Some(name.as_str()),
                PolicyRef::Arn(_) => None,
            })
    }

    /// The declared OIDC providers its trust policy names by `Federated: {ref: NAME}`.
    pub fn provider_refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for_federated(&mut self.assume_role_policy.value().clone(), &mut |v| {
            if let Some(name) = v.as_str().and_then(provider_ref_name) {
                out.push(name.to_string());
            }
        });
        out
    }

    /// Its trust policy with each `Federated: {ref: NAME}` the ARN `arn_of` gives (left as it
    /// is where `arn_of` has none).
    pub fn trust_with_providers(&self, arn_of: impl Fn(&str) -> Option<String>) -> PolicyDocument {
        let mut value = self.assume_role_policy.value().clone();
        let mut changed = false;
        for_federated(&mut value, &mut |v| {
            if let Some(arn) = v.as_str().and_then(provider_ref_name).and_then(&arn_of) {
                *v = serde_json::Value::String(arn);
                changed = true;
            }
        });
        match changed {
            true => PolicyDocument::from_value(value)
                .unwrap_or_else(|_| self.assume_role_policy.clone()),
            false => self.assume_role_policy.clone(),
        }
    }
}

/// Calls `each` on every value of `Statement[*].Principal.Federated` (each item of a list).
pub fn for_federated(doc: &mut serde_json::Value, each: &mut dyn FnMut(&mut serde_json::Value)) {
    use serde_json::Value;
    let statements: Vec<&mut Value> = match doc.get_mut("Statement") {
        Some(Value::Array(items)) => items.iter_mut().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return,
    };
    for statement in statements {
        let Some(federated) = statement
            .get_mut("Principal")
            .and_then(|p| p.get_mut("Federated"))
        else {
            continue;
        };
        match federated {
            Value::Array(items) => items.iter_mut().for_each(&mut *each),
            one => each(one),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPolicy {
    pub name: String,
    pub path: String,
    pub description: String,
    pub document: PolicyDocument,
    pub tags: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub origin: Origin,
}

/// A role named as it is, or by `{ref: NAME}`: a `Role` of the same desired state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RoleRef {
    Name(String),
    Ref(String),
}

impl RoleRef {
    /// The role's IAM name.
    pub fn name(&self) -> &str {
        match self {
            RoleRef::Name(n) | RoleRef::Ref(n) => n,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredInstanceProfile {
    pub name: String,
    pub path: String,
    /// IAM allows one role per instance profile; none is a valid state.
    pub role: Option<RoleRef>,
    pub tags: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub origin: Origin,
}

/// An OpenID Connect identity provider (EKS IRSA, GitHub Actions, …). IAM identifies it by
/// its url; `name` is for refs and messages.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredOidcProvider {
    pub name: String,
    /// As written, `https://…`; IAM keeps it without the scheme.
    pub url: String,
    /// The exact set.
    pub client_ids: std::collections::BTreeSet<String>,
    /// `None`: whatever IAM holds is fine (IAM fills them in). Lowercase hex.
    pub thumbprints: Option<std::collections::BTreeSet<String>>,
    pub tags: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub origin: Origin,
}

impl DesiredOidcProvider {
    /// The url as IAM keeps it (and builds the ARN from): without `https://`.
    pub fn host_path(&self) -> &str {
        self.url.strip_prefix("https://").unwrap_or(&self.url)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Role(DesiredRole),
    Policy(DesiredPolicy),
    InstanceProfile(DesiredInstanceProfile),
    OpenIDConnectProvider(DesiredOidcProvider),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Role(_) => Kind::Role,
            Resource::Policy(_) => Kind::Policy,
            Resource::InstanceProfile(_) => Kind::InstanceProfile,
            Resource::OpenIDConnectProvider(_) => Kind::OpenIDConnectProvider,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::Role(r) => &r.name,
            Resource::Policy(p) => &p.name,
            Resource::InstanceProfile(p) => &p.name,
            Resource::OpenIDConnectProvider(p) => &p.name,
        }
    }

    pub fn origin(&self) -> &Origin {
        match self {
            Resource::Role(r) => &r.origin,
            Resource::Policy(p) => &p.origin,
            Resource::InstanceProfile(p) => &p.origin,
            Resource::OpenIDConnectProvider(p) => &p.origin,
        }
    }

    pub fn origin_mut(&mut self) -> &mut Origin {
        match self {
            Resource::Role(r) => &mut r.origin,
            Resource::Policy(p) => &mut p.origin,
            Resource::InstanceProfile(p) => &mut p.origin,
            Resource::OpenIDConnectProvider(p) => &mut p.origin,
        }
    }

    /// The declared resources it refers to by `{ref}`, which must exist before it is written:
    /// a role's policies and OIDC providers, an instance profile's role.
    pub fn needs(&self) -> Vec<(Kind, String)> {
        match self {
            Resource::Role(r) => r
                .policy_refs()
                .map(|n| (Kind::Policy, n.to_string()))
                .chain(
                    r.provider_refs()
                        .into_iter()
                        .map(|n| (Kind::OpenIDConnectProvider, n)),
                )
                .collect(),
            Resource::InstanceProfile(p) => match &p.role {
                Some(RoleRef::Ref(n)) => vec![(Kind::Role, n.clone())],
                _ => Vec::new(),
            },
            Resource::Policy(_) | Resource::OpenIDConnectProvider(_) => Vec::new(),
        }
    }
}

/// `iam-warden/adopt: "true"`.
pub fn adopts(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(ADOPT_ANNOTATION)
        .is_some_and(|v| v == "true")
}

/// `iam-warden/prune: "never"`.
pub fn never_pruned(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(PRUNE_ANNOTATION)
        .is_some_and(|v| v == "never")
}

/// `iam-warden/mode: observe`.
pub fn observe_only(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(MODE_ANNOTATION)
        .is_some_and(|v| v == "observe")
}

/// Every declared resource, by name (as written) within its kind. Names are unique ignoring
/// case, as IAM's are; look them up with [`DesiredState::role`] and [`DesiredState::policy`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredState {
    pub roles: BTreeMap<String, DesiredRole>,
    pub policies: BTreeMap<String, DesiredPolicy>,
    pub instance_profiles: BTreeMap<String, DesiredInstanceProfile>,
    pub oidc_providers: BTreeMap<String, DesiredOidcProvider>,
}

impl DesiredState {
    /// Declares nothing at all: a directory in this state must never prune.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many resources it declares.
    pub fn len(&self) -> usize {
        self.roles.len()
            + self.policies.len()
            + self.instance_profiles.len()
            + self.oidc_providers.len()
    }

    /// The OIDC provider declared as `name` (names ignore case, like every other).
    pub fn oidc_provider(&self, name: &str) -> Option<&DesiredOidcProvider> {
        self.oidc_providers.get(name).or_else(|| {
            self.oidc_providers
                .values()
                .find(|p| p.name.eq_ignore_ascii_case(name))
        })
    }

    /// The OIDC provider declared for the provider `arn` names: IAM knows a provider by its
    /// url, kept as written.
    pub fn oidc_provider_at(&self, arn: &str) -> Option<&DesiredOidcProvider> {
        let url = crate::arn::oidc_provider_url(arn)?;
        self.oidc_providers.values().find(|p| p.host_path() == url)
    }

    /// The name as declared of the `kind` resource IAM would find by `name` (names ignore
    /// case).
    pub fn declared_name(&self, kind: Kind, name: &str) -> Option<&String> {
        self.declared(kind, name).map(|(name, _)| name)
    }

    /// Where the `kind` resource IAM would find by `name` is declared.
    pub fn origin(&self, kind: Kind, name: &str) -> Option<&Origin> {
        self.declared(kind, name).map(|(_, origin)| origin)
    }

    /// The name as declared and the origin of the `kind` resource IAM would find by `name`.
    fn declared(&self, kind: Kind, name: &str) -> Option<(&String, &Origin)> {
        match kind {
            Kind::Policy => self.policy(name).map(|p| (&p.name, &p.origin)),
            Kind::Role => self.role(name).map(|r| (&r.name, &r.origin)),
            Kind::InstanceProfile => self.instance_profile(name).map(|p| (&p.name, &p.origin)),
            Kind::OpenIDConnectProvider => self.oidc_provider(name).map(|p| (&p.name, &p.origin)),
        }
    }

    /// The instance profile IAM would find by `name` (names ignore case).
    pub fn instance_profile(&self, name: &str) -> Option<&DesiredInstanceProfile> {
        self.instance_profiles.get(name).or_else(|| {
            self.instance_profiles
                .values()
                .find(|p| p.name.eq_ignore_ascii_case(name))
        })
    }

    /// The role IAM would find by `name` (names ignore case).
    pub fn role(&self, name: &str) -> Option<&DesiredRole> {
        self.roles.get(name).or_else(|| {
            self.roles
                .values()
                .find(|r| r.name.eq_ignore_ascii_case(name))
        })
    }

    /// The policy IAM would find by `name` (names ignore case).
    pub fn policy(&self, name: &str) -> Option<&DesiredPolicy> {
        self.policies.get(name).or_else(|| {
            self.policies
                .values()
                .find(|p| p.name.eq_ignore_ascii_case(name))
        })
    }
}
