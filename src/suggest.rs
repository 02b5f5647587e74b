//! "Did you mean" for unknown names: the message an unknown field gets everywhere.

/// The candidate closest to `word`, if any is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `unknown field `Actions`; did you mean `Action`? (allowed: …)`
pub fn unknown_field(word: &str, allowed: &[&str]) -> String {
    let hint = match closest(word, allowed) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    };
    format!(
        "unknown field `{word}`{hint} (allowed: {})",
        allowed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name_for_a_typo() {
        let allowed = [
            "assumeRolePolicy",
            "managedPolicies",
            "inlinePolicies",
            "tags",
        ];
        assert_eq!(closest("managedPolicy", &allowed), Some("managedPolicies"));
        assert_eq!(
            closest("assume_role_policy", &allowed),
            Some("assumeRolePolicy")
        );
        assert_eq!(closest("Tags", &allowed), Some("tags"));
    }

    #[test]
    fn suggests_nothing_for_an_unrelated_name() {
        assert_eq!(closest("zebra", &["assumeRolePolicy", "tags"]), None);
        let msg = unknown_field("zebra", &["a", "b"]);
        assert_eq!(msg, "unknown field `zebra` (allowed: a, b)");
    }

    #[test]
    fn message_names_the_field_and_the_suggestion() {
        let msg = unknown_field("Actions", &["Action", "Effect"]);
        assert_eq!(
            msg,
            "unknown field `Actions`; did you mean `Action`? (allowed: Action, Effect)"
        );
    }
}
