//! A YAML reader that keeps line numbers and refuses hostile input.
//!
//! serde's YAML path loses positions once a value is deserialised, and stops at the first error
//! of a document. Manifests need both: every error with its line, all errors of a file at once.
//! So documents are read into a small tree of [`Node`]s that remember their line, from the event
//! stream of `saphyr-parser`. The limits here (depth, alias expansion, duplicate keys) are what
//! keeps a hostile file from exhausting the daemon.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::fieldpath::{FieldPath, Seg};

/// Nesting deeper than this is refused: no manifest needs it, and it bounds recursion.
pub const MAX_DEPTH: usize = 64;
/// Nodes one document may hold after aliases are expanded (stops "billion laughs").
pub const MAX_NODES: usize = 100_000;

/// One YAML node and the line (1-based) where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar's text. `plain` scalars are typed by the YAML core schema (`true`, `10`, `~`);
    /// quoted and block scalars are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys are strings (a manifest never needs other keys); order is kept.
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: usize,
}

/// A failure to read YAML at all: the document cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub line: usize,
    /// The field being read when it happened (empty at the top of a document).
    pub path: FieldPath,
    pub message: String,
}

impl SyntaxError {
    fn new(line: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line,
            path: FieldPath::default(),
            message: message.into(),
        }
    }

    /// Names the field being read, unless a deeper one is already named.
    fn within(mut self, path: &FieldPath) -> SyntaxError {
        if self.path.0.is_empty() {
            self.path = path.clone();
        }
        self
    }
}

impl Node {
    pub fn scalar(line: usize, text: impl Into<String>, plain: bool) -> Node {
        Node {
            line,
            value: Value::Scalar {
                text: text.into(),
                plain,
            },
        }
    }

    /// True for `~`, `null`, an empty plain scalar: YAML's null.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null_text(text))
    }

    /// What a user calls this node in an error message.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { text, plain: true } => match core_scalar(text) {
                CoreScalar::Bool(_) => "a boolean",
                CoreScalar::Int(_) | CoreScalar::Float(_) => "a number",
                _ => "a string",
            },
            Value::Scalar { .. } => "a string",
        }
    }

    /// The line of the node at `path` below this one, or of the deepest node on the way.
    pub fn line_at(&self, path: &FieldPath) -> usize {
        let mut node = self;
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => entries
                    .iter()
                    .find(|(key, _)| &key.name == k)
                    .map(|(_, v)| v),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.line
    }
}

/// A plain scalar typed by the YAML 1.2 core schema.
#[derive(Debug, PartialEq)]
pub enum CoreScalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

pub fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

pub fn core_scalar(text: &str) -> CoreScalar {
    if is_null_text(text) {
        return CoreScalar::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return CoreScalar::Bool(true),
        "false" | "False" | "FALSE" => return CoreScalar::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return CoreScalar::Int(i);
        }
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Ok(f) = text.parse::<f64>() {
            return CoreScalar::Float(f);
        }
    }
    CoreScalar::Str
}

/// One document of a stream: its root (`None` for an empty document) and start line.
#[derive(Debug)]
pub struct Document {
    pub line: usize,
    pub root: Option<Node>,
}

/// Reads every document of `text`. A syntax error ends the stream: YAML cannot resynchronise
/// after one, so the documents read before it are returned along with it.
pub fn parse_documents(text: &str) -> (Vec<Document>, Option<SyntaxError>) {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut docs = Vec::new();
    loop {
        match builder.next_document() {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => return (docs, None),
            Err(e) => return (docs, Some(e)),
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn next_event(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(SyntaxError::new(
                e.marker().line(),
                format!("invalid YAML: {}", e.info()),
            )),
            None => Err(SyntaxError::new(0, "invalid YAML: unexpected end of input")),
        }
    }

    fn next_document(&mut self) -> Result<Option<Document>, SyntaxError> {
        loop {
            let (event, span) = self.next_event()?;
            match event {
                Event::StreamStart | Event::Nothing => continue,
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart(_) => break,
                _ => {
                    return Err(SyntaxError::new(
                        span.start.line(),
                        "invalid YAML: content outside a document",
                    ));
                }
            }
        }
        self.anchors.clear();
        self.nodes = 0;
        let (event, span) = self.next_event()?;
        let line = span.start.line();
        let root = match event {
            Event::DocumentEnd => return Ok(Some(Document { line, root: None })),
            event => self.node(event, span, 1, &FieldPath::default())?,
        };
        let (event, span) = self.next_event()?;
        if !matches!(event, Event::DocumentEnd) {
            return Err(SyntaxError::new(
                span.start.line(),
                "invalid YAML: more than one value in a document",
            ));
        }
        let root = if root.is_null() { None } else { Some(root) };
        Ok(Some(Document { line, root }))
    }

    fn count(&mut self, added: usize, line: usize) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError::new(
                line,
                format!(
                    "document expands to more than {MAX_NODES} values (an alias bomb?); \
                     refusing to read it"
                ),
            ));
        }
        Ok(())
    }

    /// Reads the node that `event` starts; `path` names it in errors.
    fn node(
        &mut self,
        event: Event<'a>,
        span: Span,
        depth: usize,
        path: &FieldPath,
    ) -> Result<Node, SyntaxError> {
        self.node_inner(event, span, depth, path)
            .map_err(|e| e.within(path))
    }

    fn node_inner(
        &mut self,
        event: Event<'a>,
        span: Span,
        depth: usize,
        path: &FieldPath,
    ) -> Result<Node, SyntaxError> {
        let line = span.start.line();
        if depth > MAX_DEPTH {
            return Err(SyntaxError::new(
                line,
                format!("nesting deeper than {MAX_DEPTH} levels; refusing to read it"),
            ));
        }
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = match tag {
                    None => style == ScalarStyle::Plain,
                    Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => false,
                    Some(tag) => {
                        return Err(SyntaxError::new(
                            line,
                            format!(
                                "YAML tag `{}{}` is not supported (only !!str)",
                                tag.handle, tag.suffix
                            ),
                        ));
                    }
                };
                self.count(1, line)?;
                (Node::scalar(line, text.into_owned(), plain), anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.count(1, line)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next_event()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = path.index(items.len());
                    items.push(self.node(event, span, depth + 1, &item_path)?);
                }
                let value = Value::Seq(items);
                (Node { line, value }, anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.count(1, line)?;
                let mut entries: Vec<(Key, Node)> = Vec::new();
                loop {
                    let (event, span) = self.next_event()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let key_line = span.start.line();
                    let name = match self.node(event, span, depth + 1, path)?.value {
                        Value::Scalar { text, .. } => text,
                        _ => {
                            return Err(SyntaxError::new(
                                key_line,
                                "a mapping key must be a string",
                            ));
                        }
                    };
                    let key_path = path.key(name.as_str());
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                        let message =
                            format!("duplicate key `{name}` (first on line {})", first.line);
                        return Err(SyntaxError::new(key_line, message).within(&key_path));
                    }
                    let (event, span) = self.next_event().map_err(|e| e.within(&key_path))?;
                    let value = self.node(event, span, depth + 1, &key_path)?;
                    let key = Key {
                        name,
                        line: key_line,
                    };
                    entries.push((key, value));
                }
                let value = Value::Map(entries);
                (Node { line, value }, anchor)
            }
            Event::Alias(id) => {
                let target = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| SyntaxError::new(line, "alias to an unknown anchor"))?;
                self.count(node_count(&target), line)?;
                (Node { line, ..target }, 0)
            }
            other => {
                return Err(SyntaxError::new(
                    line,
                    format!("invalid YAML: unexpected {other:?}"),
                ));
            }
        };
        // saphyr numbers anchors from 1; 0 means "no anchor".
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

fn node_count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar { .. } => 0,
        Value::Seq(items) => items.iter().map(node_count).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| node_count(v)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let (docs, err) = parse_documents(text);
        assert_eq!(err, None);
        docs.into_iter()
            .next()
            .and_then(|d| d.root)
            .expect("a document")
    }

    fn error(text: &str) -> SyntaxError {
        parse_documents(text).1.expect("an error")
    }

    #[test]
    fn nodes_remember_their_lines() {
        let root = one("a: 1\nb:\n  c: [x, y]\n");
        let path = FieldPath::default().key("b").key("c").index(1);
        assert_eq!(root.line_at(&path), 3);
        assert_eq!(root.line_at(&FieldPath::default().key("a")), 1);
    }

    #[test]
    fn several_documents_are_read_and_empty_ones_have_no_root() {
        let (docs, err) = parse_documents("a: 1\n---\n---\n# only a comment\n---\nb: 2\n");
        assert_eq!(err, None);
        let roots: Vec<bool> = docs.iter().map(|d| d.root.is_some()).collect();
        assert_eq!(roots, vec![true, false, false, true]);
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_lines() {
        let e = error("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("duplicate key `a` (first on line 1)"),
            "{e}"
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let list = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{list}]\n"));
        }
        assert!(error(&text).message.contains("alias bomb"));
    }

    #[test]
    fn small_aliases_are_expanded() {
        let root = one("a: &x {k: v}\nb: *x\n");
        assert_eq!(root.line_at(&FieldPath::default().key("b").key("k")), 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(error(&text).message.contains("nesting deeper"));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let e = error("a: 1\nb: [unclosed\nc: 2\n");
        assert!(e.line >= 2, "{e:?}");
        assert!(e.message.starts_with("invalid YAML"));
    }

    #[test]
    fn core_schema_types_plain_scalars_only() {
        assert_eq!(core_scalar("true"), CoreScalar::Bool(true));
        assert_eq!(core_scalar("3600"), CoreScalar::Int(3600));
        assert_eq!(core_scalar("1.5"), CoreScalar::Float(1.5));
        assert_eq!(core_scalar("2012-10-17"), CoreScalar::Str);
        assert_eq!(core_scalar("~"), CoreScalar::Null);
        assert_eq!(core_scalar("e"), CoreScalar::Str);
        let root = one("q: \"true\"\np: true\n");
        assert_eq!(root.line_at(&FieldPath::default().key("q")), 1);
        match &root.value {
            Value::Map(e) => {
                assert_eq!(e[0].1.type_name(), "a string");
                assert_eq!(e[1].1.type_name(), "a boolean");
            }
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn unsupported_tags_are_refused_but_str_is_a_string() {
        assert!(error("a: !custom x\n").message.contains("not supported"));
        let root = one("a: !!str 10\n");
        match &root.value {
            Value::Map(e) => assert_eq!(e[0].1.type_name(), "a string"),
            _ => panic!("not a map"),
        }
    }
}
