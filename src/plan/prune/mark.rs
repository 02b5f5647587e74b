//! The grace mark: `iam-warden/undeclared-since` on a resource awaiting prune, written by the
//! first pass that finds it undeclared. Its value is the time and a signature over the owner,
//! the resource's ARN and that time (HMAC-SHA-256 with `--prune-mark-key`, or a fixed key when
//! none is given), so a mark that iam-warden did not write for this very resource (set by
//! hand, copied from another resource, written by an older version) is not honoured: the grace
//! period starts again from now. Anyone allowed to tag could otherwise have a resource deleted
//! at once by back-dating its mark.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Used when no `--prune-mark-key` is given: a mark is then bound to its resource and owner
/// but can be computed by anyone who reads this code.
const DEFAULT_KEY: &[u8] = b"iam-warden grace mark v1";

/// Hex digits of the signature kept in the tag value (64 bits).
const SIGNATURE_LEN: usize = 16;

fn signature(key: Option<&str>, owner: &str, arn: &str, stamp: &str) -> String {
    let key = key.map_or(DEFAULT_KEY, str::as_bytes);
    // HMAC accepts a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for part in [owner, arn, stamp] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes()[..SIGNATURE_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The mark iam-warden writes on `arn` for a grace period that started at `since`.
pub fn write(key: Option<&str>, owner: &str, arn: &str, since: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(since).to_string();
    let sig = signature(key, owner, arn, &stamp);
    format!("{stamp}/{sig}")
}

/// When the grace period of `arn` started, if `value` is a mark iam-warden wrote for it.
pub fn read(key: Option<&str>, owner: &str, arn: &str, value: &str) -> Option<SystemTime> {
    let (stamp, sig) = value.split_once('/')?;
    let expected = signature(key, owner, arn, stamp);
    // Not a secret comparison worth timing care: the signature is not a credential.
    if expected.is_empty() || sig != expected {
        return None;
    }
    humantime::parse_rfc3339(stamp).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ARN: &str = "arn:aws:iam::123456789012:role/old";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_mark_reads_back_only_for_its_resource_owner_and_key() {
        let mark = write(None, "me", ARN, at(1_800_000_000));
        assert!(mark.starts_with("2027-01-15T08:00:00Z/"), "{mark}");
        assert_eq!(read(None, "me", ARN, &mark), Some(at(1_800_000_000)));
        // Another resource, another owner, another key: not ours.
        assert_eq!(
            read(None, "me", "arn:aws:iam::123456789012:role/old2", &mark),
            None
        );
        assert_eq!(read(None, "you", ARN, &mark), None);
        assert_eq!(read(Some("k"), "me", ARN, &mark), None);
        let keyed = write(Some("k"), "me", ARN, at(1_800_000_000));
        assert_eq!(read(Some("k"), "me", ARN, &keyed), Some(at(1_800_000_000)));
        assert_eq!(read(None, "me", ARN, &keyed), None);
    }

    #[test]
    fn a_hand_set_or_edited_mark_is_not_ours() {
        let mark = write(None, "me", ARN, at(1_800_000_000));
        let (_, sig) = mark.split_once('/').unwrap();
        for value in [
            "2001-01-01T00:00:00Z".to_string(),
            format!("2001-01-01T00:00:00Z/{sig}"),
            "garbage".to_string(),
            String::new(),
            format!("{mark}0"),
        ] {
            assert_eq!(read(None, "me", ARN, &value), None, "{value}");
        }
    }
}
