//! Guardrails: what a platform team allows manifests to declare, checked before any AWS call by
//! `validate`, `plan`, `apply` and `run` alike, so a violating manifest is an invalid manifest
//! (in the daemon it keeps its last good state).
//!
//! They come from flags and from a YAML file (`--guardrails FILE`, mounted apart from the
//! manifests); both apply, so the stricter wins: every deny list counts, and a resource must
//! satisfy each source's allow lists. `check` holds the rules.

mod check;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use check::{check, rules};

/// One source's rules (the flags, or a file).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rules {
    /// Every role carries exactly this permissions boundary.
    #[serde(default)]
    pub require_permissions_boundary: Option<String>,
    /// Roles and policies live under one of these paths (empty: anywhere).
    #[serde(default)]
    pub allowed_path_prefixes: Vec<String>,
    /// No Allow statement may grant an action matching one of these (IAM wildcards).
    #[serde(default)]
    pub deny_actions: Vec<String>,
    /// No trust policy may allow a principal matching one of these.
    #[serde(default)]
    pub deny_trust_principals: Vec<String>,
    /// Trust policies name accounts only from this list (empty: any).
    #[serde(default)]
    pub allowed_trust_accounts: Vec<String>,
    /// OpenIDConnectProvider urls match one of these (IAM wildcards; empty: any).
    #[serde(default)]
    pub allowed_oidc_provider_urls: Vec<String>,
}

/// The fields of a guardrails file.
const FIELDS: &[&str] = &[
    "requirePermissionsBoundary",
    "allowedPathPrefixes",
    "denyActions",
    "denyTrustPrincipals",
    "allowedTrustAccounts",
    "allowedOidcProviderUrls",
];

impl Rules {
    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }

    /// Rules from a guardrails file's text, read by the manifests' own hardened YAML reader
    /// (its limits on size, depth and aliases). An error names the line where it is known.
    pub fn from_yaml(text: &str) -> Result<Rules, String> {
        use crate::manifest::yaml;
        let (docs, error) = yaml::parse_documents(text);
        if let Some(e) = error {
            return Err(format!("line {}: {}", e.line, e.message));
        }
        let roots: Vec<&yaml::Node> = docs.iter().filter_map(|d| d.root.as_ref()).collect();
        let root = match roots[..] {
            [root] => root,
            [] => return Err("holds no rules".into()),
            _ => {
                return Err(format!(
                    "holds {} documents; a guardrails file holds one",
                    roots.len()
                ));
            }
        };
        let yaml::Value::Map(entries) = &root.value else {
            return Err(format!(
                "line {}: a guardrails file is a mapping of rules, not a {}",
                root.line,
                root.type_name()
            ));
        };
        if let Some((key, _)) = entries
            .iter()
            .find(|(k, _)| !FIELDS.contains(&k.name.as_str()))
        {
            return Err(format!(
                "line {}: {}",
                key.line,
                crate::suggest::unknown_field(&key.name, FIELDS)
            ));
        }
        // Field by field, so that a wrong type names its field and line.
        for (key, value) in entries {
            let one = serde_json::json!({ key.name.as_str(): value.to_json() });
            if let Err(e) = serde_json::from_value::<Rules>(one) {
                return Err(format!("line {}: {}: {e}", value.line, key.name));
            }
        }
        serde_json::from_value(root.to_json()).map_err(|e| format!("line {}: {e}", root.line))
    }
}

/// Whether issuer `url` matches `pattern` (IAM wildcards), host and path apart: a wildcard
/// never crosses from the host into the path, so `https://oidc.eks.*.amazonaws.com/id/*`
/// cannot match `https://oidc.eks.attacker.example/x.amazonaws.com/id/1`. Hosts ignore case.
pub fn issuer_matches(pattern: &str, url: &str) -> bool {
    let split = |u: &str| -> Option<(String, String)> {
        let rest = u.strip_prefix("https://")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        Some((host.to_string(), path.to_string()))
    };
    match (split(pattern), split(url)) {
        (Some((pattern_host, pattern_path)), Some((host, path))) => {
            crate::policy::glob::matches(&pattern_host, &host, true)
                && crate::policy::glob::matches(&pattern_path, &path, false)
        }
        _ => false,
    }
}

/// Every source's rules; a resource must pass all of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Guardrails {
    pub sources: Vec<(String, Rules)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardrailsError {
    #[error("guardrails ({}): {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Guardrails {
    /// The flags' rules, then the file's (if any).
    pub fn load(flags: Rules, file: Option<&Path>) -> Result<Guardrails, GuardrailsError> {
        let mut sources = Vec::new();
        if !flags.is_empty() {
            sources.push(("flags".to_string(), flags));
        }
        if let Some(path) = file {
            let invalid = |message: String| GuardrailsError::Invalid {
                path: path.to_path_buf(),
                message,
            };
            // The same limits as a manifest file (size, UTF-8).
            let text = crate::manifest::files::read(path).map_err(invalid)?;
            let blank = text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
            if blank {
                // A truncated or half-synced mount must not turn every guardrail off.
                return Err(invalid(
                    "is empty: a guardrails file must set at least one rule".into(),
                ));
            }
            let rules = Rules::from_yaml(&text).map_err(invalid)?;
            sources.push((path.display().to_string(), rules));
        }
        for (source, rules) in &sources {
            if let Some(p) = rules
                .deny_actions
                .iter()
                .find(|p| !crate::policy::is_action_pattern(p))
            {
                return Err(GuardrailsError::Invalid {
                    path: PathBuf::from(source),
                    message: format!(
                        "denyActions (--deny-action): `{p}` can never match an action; write `service:Action` with wildcards (`iam:*`) or `*`"
                    ),
                });
            }
            if let Some(account) = rules
                .allowed_trust_accounts
                .iter()
                .find(|a| !crate::arn::is_account_id(a))
            {
                return Err(GuardrailsError::Invalid {
                    path: PathBuf::from(source),
                    message: format!(
                        "allowedTrustAccounts (--allowed-trust-account): `{account}` is not a 12-digit account id"
                    ),
                });
            }
        }
        Ok(Guardrails { sources })
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether a resource at `path` lies under the allowed path prefixes (every source's).
    /// Prune never deletes outside them: tagging a role elsewhere must not make it deletable.
    pub fn allows_path(&self, path: &str) -> bool {
        self.sources.iter().all(|(_, r)| {
            r.allowed_path_prefixes.is_empty()
                || r.allowed_path_prefixes
                    .iter()
                    .any(|p| path.starts_with(p.as_str()))
        })
    }

    /// Whether every source allows an OIDC provider with this issuer url.
    pub fn allows_issuer(&self, url: &str) -> bool {
        self.sources.iter().all(|(_, r)| {
            r.allowed_oidc_provider_urls.is_empty()
                || r.allowed_oidc_provider_urls
                    .iter()
                    .any(|p| issuer_matches(p, url))
        })
    }

    /// Whether the resource with this ARN lies under the allowed path prefixes.
    pub fn allows_arn(&self, arn: &str) -> bool {
        // An OIDC provider has no path: its url is what the guardrails judge.
        if let Some(host_path) = crate::arn::oidc_provider_url(arn) {
            return self.allows_issuer(&format!("https://{host_path}"));
        }
        crate::arn::name_and_path(arn).is_some_and(|(_, path)| self.allows_path(&path))
    }
}

impl crate::manifest::ResourceRules for Guardrails {
    fn violations(
        &self,
        resource: &crate::manifest::Resource,
    ) -> Vec<(crate::fieldpath::FieldPath, &'static str, String)> {
        check::check(self, resource)
    }

    /// Every rule, as written: equal guardrails give equal text.
    fn identity(&self) -> String {
        format!("{self:?}")
    }
}
