//! IAM's limits on names, paths, descriptions, tags and ARNs, as plain checks.
//!
//! Each returns `Err(message)` saying what is wrong and what is allowed. moto accepts several
//! of these that AWS rejects, so they are enforced here rather than left to the API.

use crate::arn::{Arn, ArnError, is_account_id};

use super::model::{OWNER_TAG, RESERVED_TAGS};

pub const ROLE_NAME_MAX: usize = 64;
pub const POLICY_NAME_MAX: usize = 128;
pub const INSTANCE_PROFILE_NAME_MAX: usize = 128;
/// A manifest name for an OIDC provider (IAM has none; refs and messages use it).
pub const OIDC_PROVIDER_NAME_MAX: usize = 128;
pub const OIDC_CLIENT_IDS_MAX: usize = 100;
pub const OIDC_THUMBPRINTS_MAX: usize = 5;

/// An OIDC issuer url as IAM takes it: `https://`, a host, at most 255 characters, no query
/// or fragment.
pub fn oidc_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!(
            "must start with https:// (IAM trusts only https issuers), not `{url}`"
        ));
    };
    if url.len() > 255 {
        return Err(format!("is {} characters; IAM allows 255", url.len()));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no host"));
    }
    // IAM's documentation: the url should not contain a port; a user name has no place.
    if host.contains([':', '@']) {
        return Err(format!(
            "`{url}` names a port or a user; an issuer url is https://HOST[/PATH]"
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(format!("`{url}` must not hold a query or fragment"));
    }
    if rest.ends_with('/') {
        return Err(format!(
            "`{url}` ends with `/`; write the issuer as its tokens' `iss` says (no trailing slash)"
        ));
    }
    Ok(())
}

/// A certificate thumbprint: 40 hex digits (SHA-1).
pub fn thumbprint(t: &str) -> Result<(), String> {
    if t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("`{t}` is not a thumbprint (40 hex digits)"))
    }
}

/// An audience (client id): 1 to 255 characters.
pub fn client_id(id: &str) -> Result<(), String> {
    match id.chars().count() {
        1..=255 => Ok(()),
        n => Err(format!("a client id is 1 to 255 characters, not {n}")),
    }
}
pub const PATH_MAX: usize = 512;
pub const DESCRIPTION_MAX: usize = 1000;
pub const MAX_SESSION_MIN: i64 = 3600;
pub const MAX_SESSION_MAX: i64 = 43200;
pub const MANAGED_POLICY_SIZE_MAX: usize = 6144;
pub const INLINE_POLICIES_SIZE_MAX: usize = 10240;
pub const TRUST_POLICY_SIZE_MAX: usize = 2048;
/// IAM allows 50 tags; iam-warden's owner tag takes one of them.
pub const USER_TAGS_MAX: usize = 49;
pub const TAG_KEY_MAX: usize = 128;
pub const TAG_VALUE_MAX: usize = 256;
/// The highest quota IAM grants for managed policies per role (10 by default).
pub const MANAGED_POLICIES_MAX: usize = 20;

/// Role, policy and inline policy names: `[\w+=,.@-]`, 1..=max characters.
pub fn name(name: &str, max: usize) -> Result<(), String> {
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(format!(
            "`{name}` must be 1 to {max} characters long (it is {len})"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{name}` holds `{c}`: allowed are letters, digits and _+=,.@-"
        )),
        None => Ok(()),
    }
}

/// `/` or `/segments/`, printable ASCII, at most 512 characters.
pub fn path(path: &str) -> Result<(), String> {
    if path.len() > PATH_MAX {
        return Err(format!(
            "must be at most {PATH_MAX} characters long (it is {})",
            path.len()
        ));
    }
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err(format!(
            "`{path}` must begin and end with `/` (for example /agent/)"
        ));
    }
    if let Some(c) = path.chars().find(|c| !('!'..='~').contains(c)) {
        return Err(format!(
            "`{path}` holds {c:?}: a path is printable ASCII without spaces"
        ));
    }
    if path.len() > 1 && path.contains("//") {
        return Err(format!(
            "`{path}` has an empty segment (`//`): write /a/b/ (IAM refuses empty segments)"
        ));
    }
    Ok(())
}

/// Role and policy descriptions: at most 1000 characters of IAM's allowed set (tab, newline,
/// carriage return, U+0020 to U+00FF).
pub fn description(text: &str) -> Result<(), String> {
    let len = text.chars().count();
    if len > DESCRIPTION_MAX {
        return Err(format!(
            "must be at most {DESCRIPTION_MAX} characters long (it is {len})"
        ));
    }
    match text.chars().find(|c| !crate::policy::is_iam_text_char(*c)) {
        Some(c) => Err(format!(
            "holds {c:?} (U+{:04X}), which IAM does not allow in a description (tab, newline, \
             carriage return and U+0020 to U+00FF only)",
            c as u32
        )),
        None => Ok(()),
    }
}

pub fn max_session(seconds: i64) -> Result<(), String> {
    if (MAX_SESSION_MIN..=MAX_SESSION_MAX).contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "must be between {MAX_SESSION_MIN} and {MAX_SESSION_MAX} seconds, not {seconds}"
        ))
    }
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

pub fn tag_key(key: &str) -> Result<(), String> {
    let len = key.chars().count();
    if len == 0 || len > TAG_KEY_MAX {
        return Err(format!(
            "tag key `{key}` must be 1 to {TAG_KEY_MAX} characters long"
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "tag key `{key}`: keys starting with `aws:` are reserved for AWS"
        ));
    }
    if key.eq_ignore_ascii_case(OWNER_TAG) {
        return Err(format!(
            "tag key `{OWNER_TAG}` is set by iam-warden from --owner; do not declare it"
        ));
    }
    if let Some(reserved) = RESERVED_TAGS.iter().find(|r| key.eq_ignore_ascii_case(r)) {
        return Err(format!(
            "tag key `{reserved}` is set by iam-warden itself; do not declare it"
        ));
    }
    match key.chars().find(|c| !tag_char(*c)) {
        Some(c) => Err(format!(
            "tag key `{key}` holds {c:?}: allowed are letters, digits, spaces and _.:/=+-@"
        )),
        None => Ok(()),
    }
}

pub fn tag_value(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len > TAG_VALUE_MAX {
        return Err(format!(
            "tag value must be at most {TAG_VALUE_MAX} characters long (it is {len})"
        ));
    }
    match value.chars().find(|c| !tag_char(*c)) {
        Some(c) => Err(format!(
            "tag value holds {c:?}: allowed are letters, digits, spaces and _.:/=+-@"
        )),
        None => Ok(()),
    }
}

/// A managed policy ARN: `arn:PARTITION:iam::(aws|ACCOUNT):policy/[PATH/]NAME`.
pub fn policy_arn(arn: &str) -> Result<(), String> {
    let wrong = |why: &str| {
        Err(format!(
            "`{arn}` is not an IAM policy ARN ({why}); expected \
             arn:aws:iam::ACCOUNT:policy/NAME or arn:aws:iam::aws:policy/NAME"
        ))
    };
    let parsed = match Arn::parse(arn) {
        Ok(parsed) => parsed,
        Err(ArnError::TooFewParts(_)) => return wrong("too few `:`-separated parts"),
        Err(_) => return wrong("it must start with arn:aws:iam:"),
    };
    if !parsed.partition.starts_with("aws") || parsed.service != "iam" {
        return wrong("it must start with arn:aws:iam:");
    }
    if !parsed.region.is_empty() {
        return wrong("IAM ARNs have no region");
    }
    if parsed.account != "aws" && !is_account_id(parsed.account) {
        return wrong("the account must be 12 digits or `aws`");
    }
    let Some(rest) = parsed.resource.strip_prefix("policy/") else {
        return wrong("the resource must start with policy/");
    };
    // `policy/NAME` or `policy/SEG/…/NAME`: a path given is never empty, `.` or `..` (which a
    // reader would take for a file system path, and IAM would not resolve).
    if let Some((dirs, _)) = rest.rsplit_once('/') {
        let bad = dirs.split('/').find(|seg| {
            seg.is_empty()
                || *seg == "."
                || *seg == ".."
                || !seg.chars().all(|c| ('!'..='~').contains(&c))
        });
        if let Some(seg) = bad {
            return wrong(&format!(
                "its path has the segment `{seg}`: path segments are printable ASCII, never \
                 empty, `.` or `..`, as in policy/team/NAME"
            ));
        }
        if dirs.len() + 2 > PATH_MAX {
            return wrong(&format!("its path is longer than {PATH_MAX} characters"));
        }
    }
    let policy_name = rest.rsplit_once('/').map_or(rest, |(_, name)| name);
    if name(policy_name, POLICY_NAME_MAX).is_err() {
        return wrong("the policy name is not valid");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_iam_characters_and_lengths() {
        assert!(name("agent-task_role+=,.@1", ROLE_NAME_MAX).is_ok());
        assert!(name(&"a".repeat(64), ROLE_NAME_MAX).is_ok());
        assert!(
            name(&"a".repeat(65), ROLE_NAME_MAX)
                .unwrap_err()
                .contains("1 to 64")
        );
        assert!(name(&"a".repeat(128), POLICY_NAME_MAX).is_ok());
        assert!(name("", ROLE_NAME_MAX).is_err());
        assert!(
            name("my role", ROLE_NAME_MAX)
                .unwrap_err()
                .contains("holds ` `")
        );
        assert!(name("rôle", ROLE_NAME_MAX).is_err());
        assert!(name("a/b", POLICY_NAME_MAX).is_err());
    }

    #[test]
    fn paths_begin_and_end_with_a_slash() {
        assert!(path("/").is_ok());
        assert!(path("/agent/ecs/").is_ok());
        assert!(path("agent/").is_err());
        assert!(path("/agent").is_err());
        assert!(path("/a b/").is_err());
        assert!(path(&format!("/{}/", "a".repeat(510))).is_ok());
        assert!(path(&format!("/{}/", "a".repeat(511))).is_err());
    }

    #[test]
    fn descriptions_are_limited_latin1() {
        assert!(description("Agent task role, café\n").is_ok());
        assert!(description(&"x".repeat(1000)).is_ok());
        assert!(description(&"x".repeat(1001)).is_err());
        assert!(description("emoji 🚀").is_err());
    }

    #[test]
    fn max_session_is_between_one_and_twelve_hours() {
        assert!(max_session(3600).is_ok());
        assert!(max_session(43200).is_ok());
        assert!(max_session(3599).is_err());
        assert!(max_session(43201).is_err());
    }

    #[test]
    fn tag_keys_and_values_follow_iam_rules() {
        assert!(tag_key("team").is_ok());
        assert!(tag_key("cost-center/owner:x").is_ok());
        assert!(tag_key("").is_err());
        assert!(tag_key(&"k".repeat(129)).is_err());
        assert!(tag_key(&"k".repeat(128)).is_ok());
        assert!(
            tag_key("aws:cloudformation")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(tag_key("AWS:x").is_err());
        assert!(tag_key(OWNER_TAG).unwrap_err().contains("--owner"));
        assert!(tag_key("bad*key").is_err());
        assert!(tag_value("").is_ok());
        assert!(tag_value(&"v".repeat(256)).is_ok());
        assert!(tag_value(&"v".repeat(257)).is_err());
        assert!(tag_value("a;b").is_err());
    }

    #[test]
    fn policy_arns_must_be_well_formed() {
        assert!(
            policy_arn("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
                .is_ok()
        );
        assert!(policy_arn("arn:aws:iam::123456789012:policy/agent-task-policy").is_ok());
        assert!(policy_arn("arn:aws-cn:iam::123456789012:policy/a/b/c").is_ok());
        assert!(policy_arn("arn:aws:iam::aws:policy/PowerUserAccess").is_ok());
        for bad in [
            "AmazonS3ReadOnlyAccess",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::12345:policy/x",
            "arn:aws:iam:eu-west-1:123456789012:policy/x",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:policy/",
            "arn:aws:iam::123456789012:policy/a//b",
        ] {
            assert!(policy_arn(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn policy_arn_paths_have_no_empty_dot_or_dot_dot_segments() {
        assert!(policy_arn("arn:aws:iam::123456789012:policy/team.a/x").is_ok());
        assert!(policy_arn("arn:aws:iam::123456789012:policy/..x/x").is_ok());
        for (bad, segment) in [
            ("arn:aws:iam::123456789012:policy//x", "``"),
            ("arn:aws:iam::123456789012:policy/a/../x", "`..`"),
            ("arn:aws:iam::123456789012:policy/../x", "`..`"),
            ("arn:aws:iam::123456789012:policy/./x", "`.`"),
            ("arn:aws:iam::123456789012:policy/a//b/x", "``"),
            ("arn:aws:iam::123456789012:policy/a b/x", "`a b`"),
        ] {
            let message = policy_arn(bad).expect_err(bad);
            assert!(
                message.contains(&format!("its path has the segment {segment}")),
                "{bad}: {message}"
            );
            assert!(
                message.contains("never empty, `.` or `..`"),
                "{bad}: says what is allowed: {message}"
            );
        }
    }
}
