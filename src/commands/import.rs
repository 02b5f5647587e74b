//! `iam-warden import NAME...`: prints manifests for roles (and `--policy` ARNs) that exist in
//! AWS, or writes one file per resource with `--out DIR`.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::EXIT_OK;
use crate::cli::ImportArgs;
use crate::import::{
    instance_profile_manifest, oidc_provider_manifest, policy_manifest, provider_name,
    role_manifest, to_yaml, with_provider_refs,
};
use crate::reconcile::{Eventual, RetryPolicy, retrying};

pub async fn run(args: &ImportArgs) -> anyhow::Result<u8> {
    if args.names.is_empty()
        && args.policies.is_empty()
        && args.instance_profiles.is_empty()
        && args.oidc_providers.is_empty()
    {
        anyhow::bail!(
            "name at least one role, or a resource with --policy ARN, --instance-profile NAME or --oidc-provider ARN"
        );
    }
    let iam = args.iam.connect().await;
    // Reads are retried under throttling and 5xx, as in every command.
    let retry = RetryPolicy::default();
    let mut docs = Vec::new();
    let mut refs = BTreeMap::new();
    for arn in &args.policies {
        let policy = retrying(&retry, Eventual::No, || iam.observe_policy(arn))
            .await?
            .with_context(|| format!("no policy {arn}"))?;
        refs.insert(policy.arn.clone(), policy.name.clone());
        docs.push((policy.name.clone(), policy_manifest(&policy)));
    }
    let mut providers = BTreeMap::new();
    for arn in &args.oidc_providers {
        let provider = retrying(&retry, Eventual::No, || iam.observe_oidc_provider(arn))
            .await?
            .with_context(|| format!("no OIDC provider {arn}"))?;
        let name = provider_name(&provider);
        providers.insert(provider.arn.clone(), name.clone());
        docs.push((name, oidc_provider_manifest(&provider)));
    }
    let mut roles = Vec::new();
    for name in &args.names {
        let role = retrying(&retry, Eventual::No, || iam.observe_role(name))
            .await?
            .with_context(|| format!("no role named {name}"))?;
        roles.push(role.name.clone());
        let manifest = with_provider_refs(role_manifest(&role, &refs), &providers);
        docs.push((role.name.clone(), manifest));
    }
    for name in &args.instance_profiles {
        let profile = retrying(&retry, Eventual::No, || iam.observe_instance_profile(name))
            .await?
            .with_context(|| format!("no instance profile named {name}"))?;
        docs.push((
            profile.name.clone(),
            instance_profile_manifest(&profile, &roles),
        ));
    }
    match &args.out {
        None => print!(
            "{}",
            to_yaml(&docs.into_iter().map(|(_, d)| d).collect::<Vec<_>>())
        ),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, doc) in docs {
                let kind = doc["kind"]
                    .as_str()
                    .unwrap_or("resource")
                    .to_ascii_lowercase();
                let path = dir.join(format!("{kind}-{name}.yaml"));
                std::fs::write(&path, to_yaml(&[doc]))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(EXIT_OK)
}
