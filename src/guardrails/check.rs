//! The guardrail rules over one decoded resource: pure, so tested as tables.

use serde_json::Value;

use super::{Guardrails, Rules};
use crate::arn::Arn;
use crate::arn::is_account_id;
use crate::fieldpath::FieldPath;
use crate::manifest::{DesiredPolicy, DesiredRole, PolicyRef, Resource};
use crate::policy::glob;

/// Every guardrail `resource` breaks, at the field that breaks it.
pub fn check(
    guardrails: &Guardrails,
    resource: &Resource,
) -> Vec<(FieldPath, &'static str, String)> {
    let mut out = Vec::new();
    for (source, rules) in &guardrails.sources {
        let mut v = Violations {
            source,
            out: &mut out,
        };
        match resource {
            Resource::Role(role) => v.role(rules, role),
            Resource::Policy(policy) => v.policy(rules, policy),
            Resource::InstanceProfile(profile) => v.path(rules, &profile.path),
            Resource::OpenIDConnectProvider(provider) => {
                let allowed = &rules.allowed_oidc_provider_urls;
                if !allowed.is_empty()
                    && !allowed
                        .iter()
                        .any(|p| super::issuer_matches(p, &provider.url))
                {
                    v.add(
                        rules::ALLOWED_OIDC_PROVIDER_URL,
                        spec().key("url"),
                        format!(
                            "`{}` is not an allowed OIDC provider url ({})",
                            provider.url,
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
    }
    out
}

struct Violations<'a> {
    source: &'a str,
    out: &'a mut Vec<(FieldPath, &'static str, String)>,
}

/// The rule id of each guardrail (SARIF's `ruleId`): `guardrail/` and its flag's name.
pub mod rules {
    pub const REQUIRE_PERMISSIONS_BOUNDARY: &str = "guardrail/require-permissions-boundary";
    pub const ALLOWED_PATH_PREFIX: &str = "guardrail/allowed-path-prefix";
    pub const DENY_ACTION: &str = "guardrail/deny-action";
    pub const DENY_TRUST_PRINCIPAL: &str = "guardrail/deny-trust-principal";
    pub const ALLOWED_TRUST_ACCOUNT: &str = "guardrail/allowed-trust-account";
    pub const ALLOWED_OIDC_PROVIDER_URL: &str = "guardrail/allowed-oidc-provider-url";
}

fn spec() -> FieldPath {
    FieldPath::default().key("spec")
}

impl Violations<'_> {
    fn add(&mut self, rule: &'static str, path: FieldPath, message: String) {
        self.out.push((
            path,
            rule,
            format!("{message} (guardrail from {})", self.source),
        ));
    }

    fn role(&mut self, rules: &Rules, role: &DesiredRole) {
        self.path(rules, &role.path);
        if let Some(required) = &rules.require_permissions_boundary {
            let path = spec().key("permissionsBoundary");
            match &role.permissions_boundary {
                None => self.add(
                    rules::REQUIRE_PERMISSIONS_BOUNDARY,
                    path,
                    format!("every role must carry the permissions boundary {required}; this one has none"),
                ),
                Some(b) if !is_boundary(b, required) => self.add(
                    rules::REQUIRE_PERMISSIONS_BOUNDARY,
                    path,
                    format!("every role must carry the permissions boundary {required}, not {b}"),
                ),
                Some(_) => {}
            }
        }
        for (name, doc) in &role.inline_policies {
            self.actions(
                rules,
                &spec().key("inlinePolicies").key(name.as_str()),
                doc.value(),
            );
        }
        self.trust(
            rules,
            &spec().key("assumeRolePolicy"),
            role.assume_role_policy.value(),
        );
    }

    fn policy(&mut self, rules: &Rules, policy: &DesiredPolicy) {
        self.path(rules, &policy.path);
        self.actions(rules, &spec().key("document"), policy.document.value());
    }

    fn path(&mut self, rules: &Rules, path: &str) {
        let allowed = &rules.allowed_path_prefixes;
        if !allowed.is_empty() && !allowed.iter().any(|p| path.starts_with(p.as_str())) {
            self.add(
                rules::ALLOWED_PATH_PREFIX,
                spec().key("path"),
                format!(
                    "`{path}` is outside the allowed paths ({})",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// Allow statements may not grant a denied action; `NotAction` allows everything it does
    /// not name.
    fn actions(&mut self, rules: &Rules, doc_path: &FieldPath, doc: &Value) {
        if rules.deny_actions.is_empty() {
            return;
        }
        for (path, statement) in allow_statements(doc_path, doc) {
            if let Some(actions) = statement.get("Action") {
                for (p, action) in strings(&path.key("Action"), actions) {
                    if let Some(pattern) = rules.deny_actions.iter().find(|d| grants(action, d)) {
                        self.add(rules::DENY_ACTION, p, format!("allows `{action}`, which the guardrail --deny-action `{pattern}` denies"));
                    }
                }
            }
            if let Some(not) = statement.get("NotAction") {
                let named: Vec<&str> = strings(&path, not).into_iter().map(|(_, s)| s).collect();
                for pattern in &rules.deny_actions {
                    let excluded =
                        pattern != "*" && named.iter().any(|n| glob::matches(n, pattern, true));
                    if !excluded {
                        self.add(
                            rules::DENY_ACTION,
                            path.key("NotAction"),
                            format!("allows every action it does not name, including `{pattern}`, which the guardrail --deny-action `{pattern}` denies"),
                        );
                    }
                }
            }
        }
    }

    fn trust(&mut self, rules: &Rules, doc_path: &FieldPath, doc: &Value) {
        if rules.deny_trust_principals.is_empty() && rules.allowed_trust_accounts.is_empty() {
            return;
        }
        for (path, statement) in allow_statements(doc_path, doc) {
            let path = path.key("Principal");
            let principals: Vec<(FieldPath, &str, &str)> = match statement.get("Principal") {
                Some(Value::String(s)) => vec![(path.clone(), "AWS", s.as_str())],
                Some(Value::Object(map)) => map
                    .iter()
                    .flat_map(|(kind, ids)| {
                        strings(&path.key(kind.as_str()), ids)
                            .into_iter()
                            .map(move |(p, id)| (p, kind.as_str(), id))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (p, kind, id) in principals {
                if let Some(pattern) = rules
                    .deny_trust_principals
                    .iter()
                    .find(|d| principal_denied(id, d))
                {
                    self.add(rules::DENY_TRUST_PRINCIPAL, p.clone(), format!("trusts `{id}`, which the guardrail --deny-trust-principal `{pattern}` denies"));
                }
                let allowed = &rules.allowed_trust_accounts;
                if allowed.is_empty() || kind == "Service" {
                    continue;
                }
                match account_of(id) {
                    Some(account) if allowed.iter().any(|a| a == account) => {}
                    Some("") => {}
                    Some(account) => self.add(
                        rules::ALLOWED_TRUST_ACCOUNT,
                        p,
                        format!("trusts account `{account}`, outside the allowed trust accounts ({})", allowed.join(", ")),
                    ),
                    None => self.add(
                        rules::ALLOWED_TRUST_ACCOUNT,
                        p,
                        format!("trusts `{id}`, which is not limited to the allowed trust accounts ({})", allowed.join(", ")),
                    ),
                }
            }
        }
    }
}

/// A boundary written as an ARN must be the required one; a `{ref}` must name it.
fn is_boundary(b: &PolicyRef, required: &str) -> bool {
    match b {
        PolicyRef::Arn(arn) => arn == required,
        PolicyRef::Ref(name) => Arn::parse(required).is_ok_and(|arn| {
            !arn.is_aws_managed_policy() && arn.name().is_some_and(|n| n.eq_ignore_ascii_case(name))
        }),
    }
}

/// Whether an allowed action overlaps a denied pattern. `*` alone denies granting everything
/// (`*`, `*:*`), not every action.
fn grants(action: &str, denied: &str) -> bool {
    if denied == "*" {
        return action == "*" || action == "*:*";
    }
    glob::intersect(action, denied, true)
}

/// `*` alone denies trusting anyone (`"*"`, `{AWS: "*"}`); other patterns match principals.
fn principal_denied(id: &str, denied: &str) -> bool {
    if denied == "*" {
        return id == "*";
    }
    glob::intersect(denied, id, false)
}

/// The account a principal names: `Some("")` for one that names none (a service), `None` for
/// one that may be any account (`*`, a wildcard account).
fn account_of(id: &str) -> Option<&str> {
    if is_account_id(id) {
        return Some(id);
    }
    if id == "*" {
        return None;
    }
    match Arn::parse(id) {
        Ok(arn) if is_account_id(arn.account) => Some(arn.account),
        Ok(arn) if arn.account.contains(['*', '?']) => None,
        Ok(arn) => Some(arn.account),
        Err(_) => Some(""),
    }
}

/// The Allow statements of a document with their paths.
fn allow_statements<'v>(doc_path: &FieldPath, doc: &'v Value) -> Vec<(FieldPath, &'v Value)> {
    crate::policy::statements_at(doc, doc_path)
        .into_iter()
        .filter(|(_, s)| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .collect()
}

fn strings<'v>(path: &FieldPath, value: &'v Value) -> Vec<(FieldPath, &'v str)> {
    match value {
        Value::String(s) => vec![(path.clone(), s.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_str().map(|s| (path.index(i), s)))
            .collect(),
        _ => Vec::new(),
    }
}
