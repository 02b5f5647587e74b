//! Errors, guardrail violations and dangerous grants as one kind of located finding, for every
//! output of validate and plan: the text lines as before, JSON and SARIF with a column and a
//! stable rule id each.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fieldpath::{FieldPath, Seg};
use crate::manifest::Diagnostic;
use crate::manifest::danger::Warning;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// One finding at its place in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub level: Level,
    pub file: PathBuf,
    /// 1-based; `None` where the finding is about the file as a whole.
    pub line: Option<usize>,
    /// 1-based, in UTF-16 code units as SARIF counts them: where the field's key (or value)
    /// starts on its line.
    pub column: Option<usize>,
    /// From the document root: `spec.inlinePolicies.admin.Statement[0].Action`.
    pub path: String,
    pub message: String,
    /// With an accounts file: the accounts it holds in, unless it holds in all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}

impl Finding {
    pub fn error(d: &Diagnostic, columns: &mut Columns) -> Finding {
        Finding {
            rule: d.rule,
            level: Level::Error,
            file: d.file.clone(),
            line: d.line,
            column: d.line.and_then(|l| columns.column(&d.file, l, &d.path)),
            path: d.path.to_string(),
            message: d.message.clone(),
            accounts: None,
        }
    }

    pub fn warning(w: &Warning, columns: &mut Columns) -> Finding {
        Finding {
            rule: w.grant.rule(),
            level: Level::Warning,
            file: w.file.clone(),
            line: Some(w.line),
            column: columns.column(&w.file, w.line, &w.path),
            path: w.path.to_string(),
            message: w.message(),
            accounts: None,
        }
    }

    /// `PATH: message (in account a, b)`: what it says, for outputs that show the place apart.
    pub fn described(&self) -> String {
        let mut text = if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        };
        if let Some(accounts) = &self.accounts {
            text.push_str(&format!(" (in account {})", accounts.join(", ")));
        }
        text
    }

    pub fn in_accounts(mut self, accounts: Option<Vec<String>>) -> Finding {
        self.accounts = accounts;
        self
    }
}

/// The shapes the text output always had: `FILE:LINE: PATH: message` for an error,
/// `warning: FILE:LINE: PATH: message` for a warning, and ` (in account a, b)` after it where
/// it does not hold in every account.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == Level::Warning {
            write!(f, "warning: ")?;
        }
        write!(
            f,
            "{}",
            crate::view::printable(&self.file.display().to_string())
        )?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", crate::view::printable(&self.path))?;
        }
        write!(f, ": {}", crate::view::printable(&self.message))?;
        if let Some(accounts) = &self.accounts {
            write!(f, " (in account {})", accounts.join(", "))?;
        }
        Ok(())
    }
}

/// Reads each file once for the columns of its findings.
#[derive(Default)]
pub struct Columns {
    files: HashMap<PathBuf, Option<String>>,
}

impl Columns {
    pub fn column(&mut self, file: &Path, line: usize, path: &FieldPath) -> Option<usize> {
        let text = self
            .files
            .entry(file.to_path_buf())
            .or_insert_with(|| std::fs::read_to_string(file).ok())
            .as_deref()?;
        let line = text.lines().nth(line.checked_sub(1)?)?;
        Some(column_in(line, &path.0))
    }
}

/// Where on `line` the field at `path` is: the deepest of its keys and flow-sequence items
/// (`[a, b]`) found on the line, each looked for after the one before it, so that
/// `Statement[1].Effect` on a line of flow mappings is the second statement's key; else the
/// first thing past indentation and list dashes. 1-based, in UTF-16 code units.
pub fn column_in(line: &str, path: &[Seg]) -> usize {
    let at = deepest_on(line, path).unwrap_or_else(|| {
        let rest = line.trim_start_matches([' ', '\t', '-']);
        line.len() - rest.len()
    });
    line[..at].encode_utf16().count() + 1
}

/// The byte offset of the deepest segment of `path` found on `line`. Keys above the line are
/// passed over; an item is looked for only right after its parent was found on the line, and
/// what lies under an item only within it.
fn deepest_on(line: &str, path: &[Seg]) -> Option<usize> {
    let mut within = 0..line.len();
    let mut found = None;
    let mut parent_here = false;
    for seg in path {
        let here = match seg {
            Seg::Key(k) => key_at(&line[..within.end], within.start, k).map(|at| at..at + 1),
            Seg::Index(i) if parent_here => flow_item_at(&line[..within.end], within.start, *i),
            Seg::Index(_) => None,
        };
        if let Some(span) = &here {
            found = Some(span.start);
            // Past a key's first byte, so that a key of the same name under it is its own.
            within = match seg {
                Seg::Key(_) => span.end..within.end,
                Seg::Index(_) => span.clone(),
            };
        }
        parent_here = here.is_some();
    }
    found
}

fn key_at(line: &str, from: usize, k: &str) -> Option<usize> {
    [format!("{k}:"), format!("\"{k}\":"), format!("'{k}':")]
        .iter()
        .filter_map(|p| find_key(line, from, p))
        .min()
}

/// Where item `index` of the first flow sequence on `line` from byte `from` starts, and where
/// it ends (its comma, the closing bracket, or the line's end): items split at commas outside
/// quotes and nested brackets.
fn flow_item_at(line: &str, from: usize, index: usize) -> Option<std::ops::Range<usize>> {
    let open = from + line.get(from..)?.find('[')?;
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut item = 0;
    let mut start = None;
    for (i, c) in line[open..].char_indices() {
        let at = open + i;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                quote = Some(c);
                if depth == 1 && start.is_none() {
                    start = Some(at);
                }
            }
            (None, '[' | '{') => {
                depth += 1;
                if depth == 2 && start.is_none() {
                    start = Some(at);
                }
            }
            (None, ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return start.filter(|_| item == index).map(|s| s..at);
                }
            }
            (None, ',') if depth == 1 => {
                if item == index {
                    return start.map(|s| s..at);
                }
                item += 1;
                start = None;
            }
            (None, c) if depth == 1 && start.is_none() && !c.is_whitespace() => start = Some(at),
            _ => {}
        }
    }
    start.filter(|_| item == index).map(|s| s..line.len())
}

/// The byte offset of `pattern` on `line`, at `from` or after, where it starts a key (after
/// indentation, a dash, `{`, `,` or a space), not inside another word.
fn find_key(line: &str, from: usize, pattern: &str) -> Option<usize> {
    line.match_indices(pattern).map(|(i, _)| i).find(|&i| {
        i >= from
            && line[..i]
                .chars()
                .next_back()
                .is_none_or(|c| matches!(c, ' ' | '\t' | '-' | '{' | ','))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Vec<Seg> {
        vec![Seg::Key(k.into())]
    }

    #[test]
    fn the_column_is_where_the_fields_key_starts() {
        assert_eq!(column_in("  path: /x/", &key("path")), 3);
        assert_eq!(column_in("  - path: /x/", &key("path")), 5);
        assert_eq!(column_in("{\"Action\": \"*\"}", &key("Action")), 2);
        // Not inside another key that ends alike.
        assert_eq!(column_in("  subpath: a, path: b", &key("path")), 15);
    }

    #[test]
    fn an_item_of_a_flow_sequence_is_found_on_its_line() {
        let item = |k: &str, i: usize| vec![Seg::Key(k.into()), Seg::Index(i)];
        let line = "        Action: [s3:GetObject, \"iam:PassRole\"]";
        assert_eq!(column_in(line, &item("Action", 0)), 18);
        assert_eq!(column_in(line, &item("Action", 1)), 32);
        // Commas inside quotes and nested brackets do not split items.
        let line = "  - {Effect: Allow, Action: [\"a,b\", [c, d], 'e']}";
        assert_eq!(column_in(line, &item("Action", 1)), 37);
        assert_eq!(column_in(line, &item("Action", 2)), 45);
        // An index past the end is its sequence's key.
        assert_eq!(column_in(line, &item("Action", 5)), 21);
    }

    #[test]
    fn a_key_of_a_later_flow_mapping_on_the_line_is_its_own() {
        let line = r#"    p: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: ["s3:Get*", "*"], Resource: "*"}, {Effect: Bogus, Action: x, Resource: "*"}]}"#;
        let path = |i: usize, k: &str| {
            vec![
                Seg::Key("spec".into()),
                Seg::Key("p".into()),
                Seg::Key("Statement".into()),
                Seg::Index(i),
                Seg::Key(k.into()),
            ]
        };
        assert_eq!(column_in(line, &path(0, "Effect")), 45);
        assert_eq!(column_in(line, &path(1, "Effect")), 103);
        assert_eq!(column_in(line, &path(1, "Action")), 118);
        // A field missing from the second statement: the statement itself.
        assert_eq!(column_in(line, &path(1, "Sid")), 102);
        // Not the same key of a later statement.
        let line = "Statement: [{Effect: Allow}, {Sid: x, Effect: Deny}]";
        assert_eq!(column_in(line, &path(0, "Sid")), 13);
        assert_eq!(column_in(line, &path(1, "Sid")), 31);
        // A key of the same name under a key is its own.
        let nested = |k: &str| vec![Seg::Key(k.into()), Seg::Key(k.into())];
        assert_eq!(column_in("a: {b: 1, a: 2}", &nested("a")), 11);
        // Keys above the line are passed over; an index whose parent is not on the line is
        // not looked for in another sequence.
        let block = "      - {Effect: Allow, Action: [a, b]}";
        assert_eq!(column_in(block, &path(1, "Action")), 25);
        assert_eq!(column_in(block, &path(1, "Sid")), 9);
    }

    #[test]
    fn without_the_key_on_the_line_the_column_is_past_indentation_and_dashes() {
        assert_eq!(column_in("      - s3:*", &[Seg::Index(0)]), 9);
        assert_eq!(column_in("    name: x", &key("other")), 5);
        assert_eq!(column_in("", &[]), 1);
    }

    #[test]
    fn columns_count_utf16_code_units() {
        // `é` is one UTF-16 unit (two bytes), `𝄞` two units (four bytes).
        assert_eq!(column_in("é: 1, k: 2", &key("k")), 7);
        assert_eq!(column_in("𝄞: 1, k: 2", &key("k")), 8);
    }

    #[test]
    fn text_keeps_the_shapes_of_errors_and_warnings() {
        let mut f = Finding {
            rule: "manifest",
            level: Level::Error,
            file: "m/a.yaml".into(),
            line: Some(3),
            column: Some(5),
            path: "spec.path".into(),
            message: "must begin with `/`".into(),
            accounts: None,
        };
        assert_eq!(f.to_string(), "m/a.yaml:3: spec.path: must begin with `/`");
        f.level = Level::Warning;
        f.accounts = Some(vec!["dev".into(), "prod".into()]);
        assert_eq!(
            f.to_string(),
            "warning: m/a.yaml:3: spec.path: must begin with `/` (in account dev, prod)"
        );
        f.line = None;
        f.path.clear();
        f.level = Level::Error;
        f.accounts = None;
        assert_eq!(f.to_string(), "m/a.yaml: must begin with `/`");
    }

    #[test]
    fn a_findings_column_is_read_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "kind: Role\nspec:\n  path: nope\n").unwrap();
        let d = Diagnostic {
            file: file.clone(),
            line: Some(3),
            path: FieldPath::default().key("spec").key("path"),
            message: "bad".into(),
            rule: "manifest",
        };
        let mut columns = Columns::default();
        let f = Finding::error(&d, &mut columns);
        assert_eq!((f.line, f.column), (Some(3), Some(3)));
        let whole = Diagnostic::file(&file, "too big");
        assert_eq!(Finding::error(&whole, &mut columns).column, None);
    }
}
