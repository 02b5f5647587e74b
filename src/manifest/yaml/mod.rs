//! A YAML reader that keeps line numbers and refuses hostile input.
//!
//! serde's YAML path loses positions once a value is deserialised, and stops at the first error
//! of a document. Manifests need both: every error with its line, all errors of a file at once.
//! So documents are read into a small tree of [`Node`]s that remember their line, from the event
//! stream of `saphyr-parser`. The limits here (depth, alias expansion, duplicate keys) are what
//! keeps a hostile file from exhausting the daemon.
//!
//! Memory is bounded for any input, not only for alias bombs: every node built is counted
//! against a document's, a file's and a whole load's budget *before* it is built (an alias
//! before its target is copied), and the scanner may read only [`MAX_LOOKAHEAD`] characters past
//! the last event it produced. (saphyr's scanner reads a whole flow collection `[…]` before its
//! first event, keeping ~175 bytes per character of it; a 1 MiB `[x,x,…]` took 180 MB.)

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{BufferedInput, Event, Marker, Parser, ScalarStyle, Span};

use crate::fieldpath::{FieldPath, Seg};

/// Nesting deeper than this is refused: no manifest needs it, and it bounds recursion.
pub const MAX_DEPTH: usize = 64;
/// Nodes one document may hold after aliases are expanded (stops "billion laughs").
pub const MAX_NODES: usize = 100_000;
/// Nodes one file may hold, all its documents together. Without it, a file of many documents
/// each just under [`MAX_NODES`] is a bomb of its own. A 1 MiB file of real manifests holds
/// well under 100,000; the tree of this many nodes takes a few tens of MB.
pub const MAX_FILE_NODES: usize = 250_000;
/// Nodes one load of DIR may hold, all its files together: bounds the time a reload takes,
/// whatever the number of files. Thousands of roles with their policies fit well within it.
pub const MAX_LOAD_NODES: usize = 2_000_000;
/// Characters the scanner may read past the end of the last event before it must produce the
/// next one: the largest flow collection (`[…]`, `{…}`, a whole JSON document pasted in) or
/// scalar that can be read. Real manifests stay far below: IAM's own limits keep a role with all
/// its policies under 20,000 characters.
pub const MAX_LOOKAHEAD: usize = 128 * 1024;

/// How many nodes a load of DIR has built so far, across files: one per load, passed to
/// [`parse_documents_within`] for each file.
#[derive(Debug, Default)]
pub struct Budget {
    used: usize,
    /// Set once the load limit is reached: every later file is refused at its first node.
    exhausted: bool,
}

impl Budget {
    /// Nodes built so far in this load.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Counts `nodes` that a file built in an earlier load, as if it were read again now:
    /// `false`, and nothing counted, when they would not fit (the file must then be read).
    pub fn charge(&mut self, nodes: usize) -> bool {
        let load = self.used.saturating_add(nodes);
        if self.exhausted || load > MAX_LOAD_NODES {
            return false;
        }
        self.used = load;
        true
    }
}

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

    /// The node as JSON, plain scalars typed by the core schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match &self.value {
            Value::Scalar { text, plain: false } => Json::String(text.clone()),
            Value::Scalar { text, plain: true } => match core_scalar(text) {
                CoreScalar::Null => Json::Null,
                CoreScalar::Bool(b) => Json::Bool(b),
                CoreScalar::Int(i) => Json::from(i),
                CoreScalar::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| Json::String(text.clone()), Json::Number),
                CoreScalar::Str => Json::String(text.clone()),
            },
            Value::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
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
    parse_documents_within(text, &mut Budget::default())
}

/// [`parse_documents`] for one file of a load whose nodes so far `budget` counts. A limit
/// reached (document, file or load) is a syntax error at the line where it was reached, and
/// nothing past it is built.
pub fn parse_documents_within(
    text: &str,
    budget: &mut Budget,
) -> (Vec<Document>, Option<SyntaxError>) {
    let limit = Rc::new(Cell::new(MAX_LOOKAHEAD));
    let cut = Rc::new(Cell::new(false));
    let window = Window {
        chars: text.chars(),
        read: 0,
        limit: Rc::clone(&limit),
        cut: Rc::clone(&cut),
    };
    let mut builder = Builder {
        parser: Parser::new_from_iter(window),
        limit,
        cut,
        last_end: Marker::default(),
        anchors: HashMap::new(),
        built: 0,
        doc_nodes: 0,
        file_nodes: 0,
        budget,
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

/// The text as the scanner reads it: ends early, setting `cut`, once the scanner reads past
/// `limit` (in characters).
struct Window<'a> {
    chars: std::str::Chars<'a>,
    read: usize,
    limit: Rc<Cell<usize>>,
    cut: Rc<Cell<bool>>,
}

impl Iterator for Window<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.read >= self.limit.get() && !self.chars.as_str().is_empty() {
            self.cut.set(true);
            return None;
        }
        self.read += 1;
        self.chars.next()
    }
}

struct Builder<'a, 'b> {
    parser: Parser<'a, BufferedInput<Window<'a>>>,
    /// How far the scanner may read: [`MAX_LOOKAHEAD`] past `last_end`.
    limit: Rc<Cell<usize>>,
    /// Set when the scanner was stopped at `limit`: what it read last is truncated.
    cut: Rc<Cell<bool>>,
    last_end: Marker,
    /// Each anchored node with the number of nodes it holds, so that an alias is counted
    /// before it is copied.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes of this document as built, anchor copies not included.
    built: usize,
    /// Nodes of this document, file and load as counted against the limits: built ones and
    /// anchor copies.
    doc_nodes: usize,
    file_nodes: usize,
    budget: &'b mut Budget,
}

impl<'a> Builder<'a, '_> {
    fn next_event(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        let next = self.parser.next_event();
        if self.cut.get() {
            // Whatever the scanner made of the truncated text, it is not the file's content.
            return Err(SyntaxError::new(
                self.last_end.line(),
                format!(
                    "a single value here (a flow collection `[…]` / `{{…}}`, or a scalar) is \
                     longer than {} KiB; refusing to read it",
                    MAX_LOOKAHEAD / 1024
                ),
            ));
        }
        match next {
            Some(Ok((event, span))) => {
                self.last_end = span.end;
                self.limit
                    .set(span.end.index().saturating_add(MAX_LOOKAHEAD));
                Ok((event, span))
            }
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
        self.built = 0;
        self.doc_nodes = 0;
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

    /// Counts `added` nodes about to be built.
    fn build(&mut self, added: usize, line: usize) -> Result<(), SyntaxError> {
        self.count(added, line)?;
        self.built += added;
        Ok(())
    }

    /// Counts `added` nodes against every limit before they are made.
    fn count(&mut self, added: usize, line: usize) -> Result<(), SyntaxError> {
        let doc = self.doc_nodes.saturating_add(added);
        let file = self.file_nodes.saturating_add(added);
        let load = self.budget.used.saturating_add(added);
        let refused = if doc > MAX_NODES {
            format!(
                "document expands to more than {MAX_NODES} values (an alias bomb?); \
                 refusing to read it"
            )
        } else if file > MAX_FILE_NODES {
            format!(
                "file expands to more than {MAX_FILE_NODES} values (an alias bomb?); \
                 refusing to read it"
            )
        } else if load > MAX_LOAD_NODES || self.budget.exhausted {
            self.budget.exhausted = true;
            format!(
                "the manifest files of DIR together expand to more than {MAX_LOAD_NODES} \
                 values; refusing to read more of them"
            )
        } else {
            (self.doc_nodes, self.file_nodes, self.budget.used) = (doc, file, load);
            return Ok(());
        };
        Err(SyntaxError::new(line, refused))
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
        let before = self.built;
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
                self.build(1, line)?;
                (Node::scalar(line, text.into_owned(), plain), anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.build(1, line)?;
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
                self.build(1, line)?;
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
                let size = match self.anchors.get(&id) {
                    Some((_, size)) => *size,
                    None => return Err(SyntaxError::new(line, "alias to an unknown anchor")),
                };
                self.build(size, line)?;
                let target = match self.anchors.get(&id) {
                    Some((target, _)) => target.clone(),
                    None => return Err(SyntaxError::new(line, "alias to an unknown anchor")),
                };
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
            // The nodes built while this one was read are exactly the nodes it holds. The copy
            // kept for aliases costs as much memory again, so it is counted too (else anchors
            // nested 64 deep would copy the innermost nodes 64 times, uncounted).
            let size = self.built - before;
            self.count(size, line)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests;
