//! Text from outside (a manifest, an error, another server) made safe to print.

/// `text` with every control character escaped (`\n`, `\u{1b}`): text that quotes a manifest,
/// an error or another server must not move a terminal's cursor, clear it, or start a line
/// that CI reads as a command (`::error …` in GitHub Actions). Bidirectional overrides are
/// escaped too: they make a line read in another order than it is written.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    // Plain ASCII, by far the most text, is settled by its bytes.
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) || !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c if hidden(c) => c.escape_unicode().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// A character that acts on the text around it instead of showing.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
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
    fn bidirectional_overrides_are_escaped() {
        assert_eq!(printable("a\u{202e}b\u{2066}c"), "a\\u{202e}b\\u{2066}c");
        // Right-to-left script itself is text, and kept.
        assert_eq!(printable("שלום"), "שלום");
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
