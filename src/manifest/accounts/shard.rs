//! `--shard INDEX/COUNT`: which accounts one of COUNT processes manages, with no coordination
//! service. Rendezvous (highest random weight) hashing of the account id: every account has
//! exactly one shard, and going from COUNT to COUNT+1 moves only the accounts the new shard
//! wins (about 1/(COUNT+1) of them).

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `INDEX/COUNT`, where INDEX is a number or a StatefulSet pod name ending in its ordinal
    /// (`iam-warden-2/3` is shard 2 of 3).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let usage = "expected INDEX/COUNT, e.g. 0/3 or iam-warden-0/3 (a StatefulSet pod name \
                     ending in its ordinal), with INDEX below COUNT";
        let (index, count) = text
            .rsplit_once('/')
            .ok_or_else(|| format!("`{text}`: {usage}"))?;
        let ordinal = match index.rsplit_once('-') {
            Some((pod, ordinal)) if !pod.is_empty() => ordinal,
            Some(_) => "",
            None => index,
        };
        let index: u32 = ordinal
            .parse()
            .map_err(|_| format!("`{text}`: `{index}` has no ordinal; {usage}"))?;
        let count: u32 = count
            .parse()
            .map_err(|_| format!("`{text}`: `{count}` is not a count; {usage}"))?;
        if count == 0 || index >= count {
            return Err(format!("`{text}`: {usage}"));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard manages the account `id`.
    pub fn owns(&self, id: &str) -> bool {
        shard_of(id, self.count) == self.index
    }
}

/// The shard of `count` that manages the account `id`.
pub fn shard_of(id: &str, count: u32) -> u32 {
    (0..count)
        .max_by_key(|shard| weight(id, *shard))
        .unwrap_or(0)
}

fn weight(id: &str, shard: u32) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(id.as_bytes())
        .chain_update(b"/")
        .chain_update(shard.to_be_bytes())
        .finalize();
    let mut w = [0; 8];
    w.copy_from_slice(&digest[..8]);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7919))
            .collect()
    }

    #[test]
    fn every_account_has_exactly_one_shard_and_the_split_is_even() {
        let ids = ids(3000);
        for count in [1, 2, 3, 7] {
            let mut sizes = vec![0usize; count as usize];
            for id in &ids {
                let owners: Vec<u32> = (0..count)
                    .filter(|i| Shard { index: *i, count }.owns(id))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} in {count}: {owners:?}");
                sizes[owners[0] as usize] += 1;
            }
            let fair = ids.len() / count as usize;
            for s in sizes {
                assert!(
                    s > fair * 8 / 10 && s < fair * 12 / 10,
                    "{count}: {s} vs {fair}"
                );
            }
        }
    }

    #[test]
    fn one_more_shard_moves_only_the_accounts_it_takes() {
        let ids = ids(3000);
        for count in 1..6 {
            let mut moved = 0;
            for id in &ids {
                let (before, after) = (shard_of(id, count), shard_of(id, count + 1));
                if before != after {
                    assert_eq!(after, count, "{id} moved between old shards");
                    moved += 1;
                }
            }
            let expected = ids.len() / (count as usize + 1);
            assert!(moved > expected * 8 / 10 && moved < expected * 12 / 10);
        }
    }

    #[test]
    fn parses_numbers_and_statefulset_pod_names() {
        assert_eq!(Shard::parse("0/1"), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(
            Shard::parse("iam-warden-2/3"),
            Ok(Shard { index: 2, count: 3 })
        );
        for bad in ["", "3", "3/3", "1/0", "a/2", "iam-warden/2", "-1/2", "1/x"] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("INDEX/COUNT"), "{bad}: {e}");
        }
    }
}
