//! `iam-warden/accounts: "prod-*,!prod-legacy"`: which accounts a manifest applies to.
//!
//! Items are account names or ids with IAM's wildcards (`*`, `?`); a `!` item excludes. An
//! account is selected when it matches some included item (or there is none: every account)
//! and no excluded one. A name or an id matches alike.

use crate::policy::glob;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selector {
    /// Parses `text`; the error says what is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut selector = Selector {
            include: Vec::new(),
            exclude: Vec::new(),
        };
        for raw in text.split(',') {
            let item = raw.trim();
            let (list, pattern) = match item.strip_prefix('!') {
                Some(rest) => (&mut selector.exclude, rest.trim()),
                None => (&mut selector.include, item),
            };
            if pattern.is_empty() {
                return Err(format!(
                    "`{text}` holds an empty item (a comma-separated list of account names or \
                     ids, `*` and `?` wildcards, `!` to exclude)"
                ));
            }
            if let Some(bad) = pattern.chars().find(|c| !allowed(*c)) {
                return Err(format!(
                    "`{pattern}` holds `{bad}` (account names and ids are letters, digits, `_` \
                     and `-`; `*` and `?` are wildcards, `!` before an item excludes it)"
                ));
            }
            list.push(pattern.to_string());
        }
        Ok(selector)
    }

    /// Whether the account `name` (id `id`) is selected.
    pub fn selects(&self, name: &str, id: &str) -> bool {
        let hit = |p: &String| glob::matches(p, name, false) || glob::matches(p, id, false);
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(t: &str) -> Selector {
        Selector::parse(t).unwrap()
    }

    #[test]
    fn includes_by_name_or_id_with_wildcards_and_excludes_win() {
        let s = sel("prod-*, !prod-legacy");
        assert!(s.selects("prod-eu", "111111111111"));
        assert!(!s.selects("prod-legacy", "222222222222"));
        assert!(!s.selects("dev", "333333333333"));
        let by_id = sel("1111*");
        assert!(by_id.selects("anything", "111122223333"));
        assert!(!by_id.selects("prod", "999911112222"));
        assert!(sel("d?v").selects("dev", "1"));
        assert!(!sel("d?v").selects("deev", "1"));
    }

    #[test]
    fn only_exclusions_select_every_other_account() {
        let s = sel("!dev,!3333*");
        assert!(s.selects("prod", "111111111111"));
        assert!(!s.selects("dev", "111111111111"));
        assert!(!s.selects("stage", "333333333333"));
    }

    #[test]
    fn matching_is_exact_and_case_sensitive() {
        assert!(!sel("prod").selects("prod-eu", "1"));
        assert!(!sel("Prod").selects("prod", "1"));
    }

    #[test]
    fn malformed_selectors_say_what_is_allowed() {
        for bad in [
            "",
            "prod,,dev",
            "!",
            "prod dev",
            "arn:aws:iam::1:root",
            "pr[o]d",
        ] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(e.contains("account names"), "{bad}: {e}");
        }
    }
}
