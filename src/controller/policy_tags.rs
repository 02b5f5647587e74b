//! Managed policies' tags by ARN, for the resync. The bulk snapshot lacks them, and asking IAM
//! for every policy at every resync would cost a request per policy per interval.
//!
//! A policy's tags are read again when they are not cached, when its versions changed since
//! (a new document, or a policy deleted and created again under the same ARN), after a
//! reconcile of it (`forget`), and in rotation: each resync also reads again the
//! `1/ROTATION` of the entries read longest ago (at most MAX_ROTATED), so out-of-band tag
//! drift is found within ROTATION resyncs (more for over 500 policies). Every write and every
//! deletion decides on tags it reads fresh, so an entry read a while ago can only delay
//! finding drift, never cause a wrong change.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use crate::iam::{IamError, ObservedPolicy};

/// Every cached policy's tags are read again within this many resyncs...
pub const ROTATION: usize = 20;

/// ...but no more than this many a resync: a no-op resync of a large account stays a few
/// dozen requests (1,000 policies take 40 resyncs to go round).
pub const MAX_ROTATED: usize = 25;

/// Reads run this many at a time (the token bucket paces them further).
const CONCURRENCY: usize = 8;

type Tags = BTreeMap<String, String>;

#[derive(Default)]
pub struct PolicyTagCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    /// Lowercased policy name, for `forget`.
    name: String,
    tags: Tags,
    versions: u64,
    read_at: Instant,
}

/// What changes when a policy gets a new version, or is created again under the same ARN.
fn versions_fingerprint(policy: &ObservedPolicy) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in &policy.versions {
        (&v.id, v.is_default, v.created).hash(&mut h);
    }
    h.finish()
}

impl PolicyTagCache {
    /// The tags of `policies`, by ARN, reading from IAM (with `read`) those not cached,
    /// changed, or due in the rotation. A policy whose read failed is left out. Entries of
    /// policies not asked for are dropped: they are gone, or no longer needed.
    pub async fn tags<F, Fut>(
        &self,
        policies: &[&ObservedPolicy],
        read: F,
    ) -> BTreeMap<String, Tags>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Tags, IamError>>,
    {
        let (mut out, due) = self.cached_and_due(policies);
        let read = &read;
        let fresh: Vec<(String, String, u64, Result<Tags, IamError>)> = stream::iter(due)
            .map(|(arn, name, versions)| async move {
                let tags = read(arn.clone()).await;
                (arn, name, versions, tags)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut entries = self.lock();
        for (arn, name, versions, tags) in fresh {
            let Ok(tags) = tags else {
                entries.remove(&arn);
                continue;
            };
            out.insert(arn.clone(), tags.clone());
            let read_at = Instant::now();
            entries.insert(
                arn,
                Entry {
                    name,
                    tags,
                    versions,
                    read_at,
                },
            );
        }
        out
    }

    /// What the cache can answer now, and what must be read: `(arn, name, versions)`.
    #[allow(clippy::type_complexity)]
    fn cached_and_due(
        &self,
        policies: &[&ObservedPolicy],
    ) -> (BTreeMap<String, Tags>, Vec<(String, String, u64)>) {
        let mut entries = self.lock();
        entries.retain(|arn, _| policies.iter().any(|p| &p.arn == arn));
        let mut due = Vec::new();
        let mut fresh: Vec<(&str, Instant)> = Vec::new();
        for p in policies {
            let versions = versions_fingerprint(p);
            match entries.get(&p.arn) {
                Some(e) if e.versions == versions => fresh.push((&p.arn, e.read_at)),
                _ => due.push((p.arn.clone(), p.name.to_lowercase(), versions)),
            }
        }
        // The rotation: the entries read longest ago, a share of all of them.
        fresh.sort_by_key(|(_, read_at)| *read_at);
        let rotate = policies
            .len()
            .div_ceil(ROTATION)
            .min(MAX_ROTATED)
            .min(fresh.len());
        let mut out = BTreeMap::new();
        for (i, (arn, _)) in fresh.into_iter().enumerate() {
            let Some(e) = entries.get(arn) else { continue };
            if i < rotate {
                due.push((arn.to_string(), e.name.clone(), e.versions));
            } else {
                out.insert(arn.to_string(), e.tags.clone());
            }
        }
        (out, due)
    }

    /// Forgets the policy named `name` (ignoring case): its tags were just written.
    pub fn forget(&self, name: &str) {
        let name = name.to_lowercase();
        self.lock().retain(|_, e| e.name != name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::iam::{ErrorKind, PolicyVersion};
    use crate::policy::PolicyDocument;

    fn policy(name: &str, version: &str) -> ObservedPolicy {
        ObservedPolicy {
            name: name.to_string(),
            arn: format!("arn:aws:iam::123456789012:policy/{name}"),
            path: "/".to_string(),
            description: String::new(),
            document: PolicyDocument::from_iam(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .unwrap(),
            versions: vec![PolicyVersion {
                id: version.to_string(),
                is_default: true,
                created: 1,
            }],
            tags: BTreeMap::new(),
        }
    }

    /// Reads answer `team=<the ARN's name>` (an error for `broken`), and are logged.
    #[derive(Default)]
    struct Reads(Mutex<Vec<String>>);

    impl Reads {
        async fn read(&self, arn: String) -> Result<Tags, IamError> {
            self.0.lock().unwrap().push(arn.clone());
            if arn.ends_with("/broken") {
                return Err(IamError::for_test(
                    ErrorKind::Transient,
                    "ServiceFailure",
                    "down",
                ));
            }
            let name = crate::arn::Arn::parse(&arn)
                .ok()
                .and_then(|a| a.name())
                .unwrap_or_default()
                .to_string();
            Ok(BTreeMap::from([("team".to_string(), name)]))
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn many(n: usize) -> Vec<ObservedPolicy> {
        (0..n).map(|i| policy(&format!("p{i}"), "v1")).collect()
    }

    #[tokio::test]
    async fn a_cached_policy_is_read_again_only_in_its_turn_and_every_one_within_the_rotation() {
        let cache = PolicyTagCache::default();
        let reads = Reads::default();
        let all = many(40);
        let refs: Vec<&ObservedPolicy> = all.iter().collect();
        let tags = cache.tags(&refs, |a| reads.read(a)).await;
        assert_eq!((tags.len(), reads.take().len()), (40, 40));
        assert_eq!(tags[&all[7].arn]["team"], "p7");
        // 40 policies, a rotation of 20 resyncs: two are read again each time, and each one
        // once in 20.
        let mut read_again = HashSet::new();
        for _ in 0..ROTATION {
            let tags = cache.tags(&refs, |a| reads.read(a)).await;
            assert_eq!(tags.len(), 40);
            let read = reads.take();
            assert_eq!(read.len(), 2);
            read_again.extend(read);
        }
        assert_eq!(read_again.len(), 40);
    }

    #[tokio::test]
    async fn a_large_account_reads_at_most_max_rotated_again_a_resync() {
        let cache = PolicyTagCache::default();
        let reads = Reads::default();
        let all = many(1000);
        let refs: Vec<&ObservedPolicy> = all.iter().collect();
        cache.tags(&refs, |a| reads.read(a)).await;
        assert_eq!(reads.take().len(), 1000);
        cache.tags(&refs, |a| reads.read(a)).await;
        assert_eq!(reads.take().len(), MAX_ROTATED);
    }

    #[tokio::test]
    async fn a_new_version_a_forgotten_policy_and_a_failed_read_are_read_at_the_next_resync() {
        let cache = PolicyTagCache::default();
        let reads = Reads::default();
        let all = many(40);
        let (a, b, broken) = (policy("a", "v1"), policy("b", "v1"), policy("broken", "v1"));
        let mut refs: Vec<&ObservedPolicy> = all.iter().collect();
        refs.extend([&a, &b, &broken]);
        let tags = cache.tags(&refs, |x| reads.read(x)).await;
        assert_eq!((tags.len(), reads.take().len()), (42, 43));
        assert!(!tags.contains_key(&broken.arn), "a failed read is left out");

        let a2 = policy("a", "v2");
        refs.retain(|p| p.arn != a.arn);
        refs.push(&a2);
        cache.forget("B");
        let tags = cache.tags(&refs, |x| reads.read(x)).await;
        let read = reads.take();
        for arn in [&a.arn, &b.arn, &broken.arn] {
            assert!(read.contains(arn), "{arn} not read again: {read:?}");
        }
        // And the rotation's share: 43 policies over 20 resyncs.
        assert_eq!(read.len(), 3 + 43usize.div_ceil(ROTATION));
        assert_eq!(tags.len(), 42);

        // A policy no longer asked for is dropped.
        cache.tags(&refs[1..], |x| reads.read(x)).await;
        assert!(!cache.lock().contains_key(&all[0].arn));
    }
}
