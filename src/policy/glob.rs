//! IAM's wildcards (`*` any run of characters, `?` one character), for actions, ARNs and
//! principals: does a pattern match a text, and can two patterns match a common text.

/// Whether `pattern` matches all of `text`. `fold` ignores ASCII case (IAM actions).
pub fn matches(pattern: &str, text: &str, fold: bool) -> bool {
    intersect(pattern, &escape_wildcards(text), fold)
}

/// Whether some text matches both patterns. Exact for `*` and `?`, in O(|a|·|b|).
pub fn intersect(a: &str, b: &str, fold: bool) -> bool {
    let a: Vec<Tok> = tokens(a, fold);
    let b: Vec<Tok> = tokens(b, fold);
    // reach[i][j]: the prefixes a[..i] and b[..j] can match a common text.
    let mut reach = vec![vec![false; b.len() + 1]; a.len() + 1];
    reach[0][0] = true;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if !reach[i][j] {
                continue;
            }
            let (ta, tb) = (a.get(i), b.get(j));
            if ta == Some(&Tok::Star) {
                reach[i + 1][j] = true;
                if tb.is_some() {
                    reach[i][j + 1] = true;
                }
            }
            if tb == Some(&Tok::Star) {
                reach[i][j + 1] = true;
                if ta.is_some() {
                    reach[i + 1][j] = true;
                }
            }
            if let (Some(x), Some(y)) = (ta, tb) {
                let one = |t: &Tok| matches!(t, Tok::Any | Tok::Char(_));
                let same = match (x, y) {
                    (Tok::Char(p), Tok::Char(q)) => p == q,
                    _ => one(x) && one(y),
                };
                if same {
                    reach[i + 1][j + 1] = true;
                }
            }
        }
    }
    reach[a.len()][b.len()]
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Char(char),
    /// A literal `*` or `?` of a text being matched.
    Literal(char),
}

fn tokens(s: &str, fold: bool) -> Vec<Tok> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::Any,
            '\u{0}' => match chars.next() {
                Some(l) => Tok::Literal(l),
                None => Tok::Char('\u{0}'),
            },
            c if fold => Tok::Char(c.to_ascii_lowercase()),
            c => Tok::Char(c),
        });
    }
    // A literal is one fixed character: it pairs with `?` and with itself only.
    out.into_iter()
        .map(|t| match t {
            Tok::Literal(c) => Tok::Char(c),
            t => t,
        })
        .collect()
}

/// `text` with its `*` and `?` made literal (marked by a NUL before them).
fn escape_wildcards(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '*' || c == '?' {
            out.push('\u{0}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_texts_with_iams_wildcards() {
        for (pattern, text, fold, expected) in [
            ("iam:*", "iam:PassRole", true, true),
            ("iam:*", "IAM:passrole", true, true),
            ("iam:*", "IAM:passrole", false, false),
            ("iam:Pass*", "iam:PassRole", true, true),
            ("iam:Pass*", "iam:GetRole", true, false),
            ("s3:Get?bject", "s3:GetObject", true, true),
            ("*", "anything", true, true),
            (
                "arn:aws:iam::*:root",
                "arn:aws:iam::123456789012:root",
                false,
                true,
            ),
            (
                "arn:aws:iam::*:root",
                "arn:aws:iam::123456789012:role/x",
                false,
                false,
            ),
            // A text's own wildcard is a character, not a wildcard.
            ("iam:PassRole", "iam:*", true, false),
            ("iam:\u{2a}", "iam:*", true, true),
        ] {
            assert_eq!(matches(pattern, text, fold), expected, "{pattern} {text}");
        }
    }

    #[test]
    fn two_patterns_intersect_when_some_text_matches_both() {
        for (a, b, expected) in [
            ("iam:*", "iam:PassRole", true),
            ("iam:Pass*", "iam:*Role", true),
            ("i*", "iam:*", true),
            ("*", "s3:GetObject", true),
            ("s3:*", "iam:*", false),
            ("iam:Get*", "iam:Pass*", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a", "b*", true),
        ] {
            assert_eq!(intersect(a, b, true), expected, "{a} {b}");
            assert_eq!(intersect(b, a, true), expected, "{b} {a}");
        }
    }
}
