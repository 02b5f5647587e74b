//! What prune needs of the kinds a snapshot does not hold: every instance profile and OIDC
//! provider that no manifest declares, with its tags (listing calls do not return tags, so
//! each undeclared one is read: one request each, like an undeclared policy's tags).

use futures::stream::{self, StreamExt};

use super::retry::{Eventual, RetryPolicy, retrying};
use crate::iam::{Iam, IamError};
use crate::manifest::{DesiredState, Kind};
use crate::plan::prune::Candidate;

/// Reads run this many at a time.
const CONCURRENCY: usize = 8;

/// Undeclared instance profiles and OIDC providers as prune candidates (a provider named by
/// its url without `https://`, as IAM names it). Providers only `with_providers`: without a
/// snapshot of the roles nobody's trust is known, and a provider is never pruned then.
pub async fn other_kinds(
    iam: &Iam,
    retry: &RetryPolicy,
    desired: &DesiredState,
    with_providers: bool,
) -> Result<Vec<Candidate>, IamError> {
    let profiles: Vec<String> = retrying(retry, Eventual::No, || iam.list_instance_profiles())
        .await?
        .into_iter()
        .filter(|name| desired.instance_profile(name).is_none())
        .collect();
    let providers: Vec<String> = match with_providers {
        true => retrying(retry, Eventual::No, || iam.list_oidc_providers())
            .await?
            .into_iter()
            .filter(|arn| desired.oidc_provider_at(arn).is_none())
            .collect(),
        false => Vec::new(),
    };
    let read_profiles: Vec<Result<Option<Candidate>, IamError>> = stream::iter(profiles)
        .map(|name| async move {
            let found =
                retrying(retry, Eventual::No, || iam.observe_instance_profile(&name)).await?;
            Ok(found.map(|p| Candidate::listed(Kind::InstanceProfile, &p.name, &p.arn, p.tags)))
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let read_providers: Vec<Result<Option<Candidate>, IamError>> = stream::iter(providers)
        .map(|arn| async move {
            let found = retrying(retry, Eventual::No, || iam.observe_oidc_provider(&arn)).await?;
            Ok(found.map(|p| {
                let name = crate::arn::oidc_provider_url(&p.arn).unwrap_or(&p.url);
                Candidate::listed(Kind::OpenIDConnectProvider, name, &p.arn, p.tags)
            }))
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::new();
    for c in read_profiles.into_iter().chain(read_providers) {
        out.extend(c?);
    }
    Ok(out)
}
