//! Text from outside (a manifest, an error, another server) made safe to print.

/// `text` with every control character escaped (`\n`, `\u{1b}`): text that quotes a manifest,
/// an error or another server must not move a terminal's cursor, clear it, or start a line
/// that CI reads as a command (`::error …` in GitHub Actions).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c if c.is_control() => c.escape_unicode().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_never_splits_a_character() {
        assert_eq!(prefix("short", 10), "short");
        assert_eq!(prefix("abcdef", 3), "abc");
        // 'é' is two bytes: a cut in its middle steps back before it.
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("𝄞x", 3), "");
        assert_eq!(prefix("", 0), "");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain, é, 𝄞"), "plain, é, 𝄞");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            printable("x\n::error file=a::forged\r\t\u{1b}]0;t\u{7}"),
            "x\\n::error file=a::forged\\r\\t\\u{1b}]0;t\\u{7}"
        );
    }
}
