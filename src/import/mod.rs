//! `import`: manifests written from what AWS has, so hand-made roles can come under
//! iam-warden. Pure: observed resources in, YAML documents out.

mod emit;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::iam::{ObservedInstanceProfile, ObservedOidcProvider, ObservedPolicy, ObservedRole};
use crate::manifest::{
    ADOPT_ANNOTATION, API_VERSION, DEFAULT_MAX_SESSION, OWNER_TAG, PRUNE_ANNOTATION, RESERVED_TAGS,
};
use crate::plan::tag_value;

pub use emit::to_yaml;

/// Tags a manifest declares: not AWS's own, not iam-warden's (the owner, `prune`, the grace
/// mark: iam-warden sets them, and a manifest may not), in any key case.
fn declared_tags(tags: &BTreeMap<String, String>) -> Map<String, Value> {
    let reserved = |k: &str| {
        k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
            || RESERVED_TAGS.iter().any(|r| k.eq_ignore_ascii_case(r))
    };
    tags.iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect()
}

/// Resources no owner tag claims are imported with the adopt annotation: applying takes them
/// over (one another owner holds is not, and applying reports it). A recorded
/// `iam-warden/prune: never` comes back as the annotation.
fn metadata(name: &str, tags: &BTreeMap<String, String>) -> Value {
    let mut annotations = Map::new();
    if tag_value(tags, OWNER_TAG).is_none() {
        annotations.insert(ADOPT_ANNOTATION.into(), "true".into());
    }
    if tag_value(tags, PRUNE_ANNOTATION).is_some_and(|v| v == "never") {
        annotations.insert(PRUNE_ANNOTATION.into(), "never".into());
    }
    let mut meta = json!({ "name": name });
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    meta
}

/// A Role manifest. Managed policies that are imported too (`refs`: ARN -> name) become
/// `{ref: NAME}`; the others stay ARNs.
pub fn role_manifest(role: &ObservedRole, refs: &BTreeMap<String, String>) -> Value {
    let policy_ref = |arn: &String| match refs.get(arn) {
        Some(name) => json!({ "ref": name }),
        None => Value::from(arn.as_str()),
    };
    let mut spec = Map::new();
    spec.insert("path".into(), role.path.clone().into());
    if !role.description.is_empty() {
        spec.insert("description".into(), role.description.clone().into());
    }
    if role.max_session_duration != DEFAULT_MAX_SESSION {
        spec.insert(
            "maxSessionDuration".into(),
            role.max_session_duration.into(),
        );
    }
    if let Some(b) = &role.permissions_boundary {
        spec.insert("permissionsBoundary".into(), policy_ref(b));
    }
    spec.insert(
        "assumeRolePolicy".into(),
        role.assume_role_policy.value().clone(),
    );
    if !role.managed_policies.is_empty() {
        spec.insert(
            "managedPolicies".into(),
            role.managed_policies.iter().map(policy_ref).collect(),
        );
    }
    if !role.inline_policies.is_empty() {
        let inline: Map<String, Value> = role
            .inline_policies
            .iter()
            .map(|(k, d)| (k.clone(), d.value().clone()))
            .collect();
        spec.insert("inlinePolicies".into(), inline.into());
    }
    let tags = declared_tags(&role.tags);
    if !tags.is_empty() {
        spec.insert("tags".into(), tags.into());
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Role",
        "metadata": metadata(&role.name, &role.tags),
        "spec": spec,
    })
}

pub fn policy_manifest(policy: &ObservedPolicy) -> Value {
    let mut spec = Map::new();
    spec.insert("path".into(), policy.path.clone().into());
    if !policy.description.is_empty() {
        spec.insert("description".into(), policy.description.clone().into());
    }
    spec.insert("document".into(), policy.document.value().clone());
    let tags = declared_tags(&policy.tags);
    if !tags.is_empty() {
        spec.insert("tags".into(), tags.into());
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Policy",
        "metadata": metadata(&policy.name, &policy.tags),
        "spec": spec,
    })
}

/// An InstanceProfile manifest; its role becomes `{ref: NAME}` when that role is imported too.
pub fn instance_profile_manifest(
    profile: &ObservedInstanceProfile,
    imported_roles: &[String],
) -> Value {
    let mut spec = Map::new();
    spec.insert("path".into(), profile.path.clone().into());
    if let Some(role) = profile.roles.first() {
        let role = match imported_roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
            true => json!({ "ref": role }),
            false => Value::from(role.as_str()),
        };
        spec.insert("role".into(), role);
    }
    let tags = declared_tags(&profile.tags);
    if !tags.is_empty() {
        spec.insert("tags".into(), tags.into());
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "InstanceProfile",
        "metadata": metadata(&profile.name, &profile.tags),
        "spec": spec,
    })
}

/// A manifest name for a provider, which IAM names by its url: the host and path, each other
/// character a `-` (`oidc.eks.us-east-1.amazonaws.com/id/X` -> `oidc.eks.us-east-1.amazonaws.com-id-X`).
pub fn provider_name(provider: &ObservedOidcProvider) -> String {
    let name: String = provider
        .url
        .trim_start_matches("https://")
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                true => c,
                false => '-',
            },
        )
        .take(crate::manifest::limits::OIDC_PROVIDER_NAME_MAX)
        .collect();
    name
}

/// An OpenIDConnectProvider manifest, listing IAM's thumbprints (a manifest may drop them to
/// let IAM keep its own).
pub fn oidc_provider_manifest(provider: &ObservedOidcProvider) -> Value {
    let url = format!("https://{}", provider.url.trim_start_matches("https://"));
    let mut spec = Map::new();
    spec.insert("url".into(), url.into());
    spec.insert(
        "clientIDs".into(),
        provider
            .client_ids
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into(),
    );
    if !provider.thumbprints.is_empty() {
        spec.insert(
            "thumbprints".into(),
            provider
                .thumbprints
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        );
    }
    let tags = declared_tags(&provider.tags);
    if !tags.is_empty() {
        spec.insert("tags".into(), tags.into());
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "OpenIDConnectProvider",
        "metadata": metadata(&provider_name(provider), &provider.tags),
        "spec": spec,
    })
}

/// `role` (a Role manifest) with each `Federated` ARN of an imported provider as
/// `{ref: NAME}` (`providers`: ARN -> name).
pub fn with_provider_refs(mut role: Value, providers: &BTreeMap<String, String>) -> Value {
    if let Some(trust) = role
        .get_mut("spec")
        .and_then(|s| s.get_mut("assumeRolePolicy"))
    {
        crate::manifest::for_federated(trust, &mut |v| {
            if let Some(name) = v.as_str().and_then(|arn| providers.get(arn)) {
                *v = json!({ "ref": name });
            }
        });
    }
    role
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{self, Variables};
    use crate::policy::PolicyDocument;
    use std::collections::BTreeSet;

    fn observed() -> ObservedRole {
        let doc = |v: Value| PolicyDocument::from_value(v).unwrap();
        ObservedRole {
            name: "clicked".into(),
            arn: "arn:aws:iam::123456789012:role/x/clicked".into(),
            path: "/x/".into(),
            description: "by hand".into(),
            max_session_duration: 7200,
            permissions_boundary: None,
            assume_role_policy: doc(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            ),
            managed_policies: BTreeSet::from([
                "arn:aws:iam::123456789012:policy/p".to_string(),
                "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string(),
            ]),
            inline_policies: BTreeMap::from([(
                "s3".to_string(),
                doc(
                    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
                ),
            )]),
            tags: BTreeMap::from([
                ("team".to_string(), "data".to_string()),
                ("aws:cloudformation:stack-name".to_string(), "s".to_string()),
            ]),
        }
    }

    /// The one role `yaml` declares, read as `validate` reads it; it must be valid.
    fn read_back(yaml: &str) -> manifest::DesiredRole {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clicked.yaml");
        std::fs::write(&file, yaml).unwrap();
        let report = manifest::load_file(&file, &Variables::default());
        assert!(
            report.diagnostics.is_empty(),
            "{:#?}\n{yaml}",
            report.diagnostics
        );
        let [manifest::Resource::Role(r)] = report.resources.as_slice() else {
            panic!("{yaml}")
        };
        r.clone()
    }

    #[test]
    fn iam_wardens_own_tags_never_reach_a_manifest_in_any_key_case() {
        let mut role = observed();
        role.tags.extend([
            ("IAM-Warden/Owner".to_string(), "team-b".to_string()),
            ("iam-warden/prune".to_string(), "never".to_string()),
            ("IAM-WARDEN/UNDECLARED-SINCE".to_string(), "x".to_string()),
            ("AWS:foo".to_string(), "y".to_string()),
        ]);
        let yaml = to_yaml(&[role_manifest(&role, &BTreeMap::new())]);
        let r = read_back(&yaml);
        assert_eq!(
            r.tags,
            BTreeMap::from([("team".to_string(), "data".to_string())])
        );
        // Another owner holds it: not adopted (applying reports that); `prune: never` kept.
        assert!(!manifest::adopts(&r.annotations), "{yaml}");
        assert!(manifest::never_pruned(&r.annotations), "{yaml}");
    }

    #[test]
    fn an_imported_role_is_a_valid_manifest_that_adopts_it() {
        let refs = BTreeMap::from([(
            "arn:aws:iam::123456789012:policy/p".to_string(),
            "p".to_string(),
        )]);
        let yaml = to_yaml(&[role_manifest(&observed(), &refs)]);
        let r = read_back(&yaml);
        assert!(manifest::adopts(&r.annotations));
        assert_eq!(
            (
                r.path.as_str(),
                r.description.as_str(),
                r.max_session_duration
            ),
            ("/x/", "by hand", 7200)
        );
        assert_eq!(
            r.tags,
            BTreeMap::from([("team".to_string(), "data".to_string())])
        );
        assert!(
            r.assume_role_policy
                .is_equivalent(&observed().assume_role_policy)
        );
        assert!(
            r.managed_policies
                .contains(&manifest::PolicyRef::Ref("p".into()))
        );
        assert!(r.managed_policies.contains(&manifest::PolicyRef::Arn(
            "arn:aws:iam::aws:policy/ReadOnlyAccess".into()
        )));
    }

    #[test]
    fn an_owned_role_is_imported_without_the_adopt_annotation_or_owner_tag() {
        let mut role = observed();
        role.tags.insert(OWNER_TAG.into(), "me".into());
        let doc = role_manifest(&role, &BTreeMap::new());
        assert!(doc["metadata"].get("annotations").is_none());
        assert!(doc["spec"]["tags"].get(OWNER_TAG).is_none());
    }
}
