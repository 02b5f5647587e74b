//! IAM policy documents: one type for identity and trust policies.
//!
//! A document is kept as the user wrote it (so it is sent to IAM unchanged, `Version` first) and
//! compared through its canonical form (see `canonical`), so that an equivalent document that
//! IAM hands back in another shape is never rewritten. `grammar` checks a document before any
//! AWS call sees it.

mod canonical;
pub mod danger;
pub mod glob;
mod grammar;

use canonical::canonical;
pub use grammar::{
    GrammarError, PolicyKind, check, is_action as is_action_pattern, is_iam_text_char,
};

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::fieldpath::FieldPath;

/// A policy document. Invariant: the value is a JSON object.
///
/// Shared, not copied: the daemon holds each desired document in several places (its file's
/// last good state, the parse cache, the desired state), and a copy of a document is a
/// pointer. The digest of its canonical form is computed once, when first compared: a resync
/// compares every desired document with IAM's every minute.
#[derive(Clone, Debug)]
pub struct PolicyDocument(Arc<Doc>);

#[derive(Debug)]
struct Doc {
    value: Value,
    /// SHA-256 of the canonical form's JSON: equal digests, equal meaning.
    canonical: OnceLock<[u8; 32]>,
}

/// Equal as written (the canonical comparison is [`PolicyDocument::is_equivalent`]).
impl PartialEq for PolicyDocument {
    fn eq(&self, other: &PolicyDocument) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("a policy document must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("policy document is not valid URL-encoded UTF-8")]
    Encoding,
}

impl PolicyError {
    pub fn from_json(e: &serde_json::Error) -> PolicyError {
        PolicyError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }
    }
}

impl serde::Serialize for PolicyDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(s)
    }
}

impl PolicyDocument {
    pub fn from_value(value: Value) -> Result<Self, PolicyError> {
        match value {
            Value::Object(_) => Ok(PolicyDocument(Arc::new(Doc {
                value,
                canonical: OnceLock::new(),
            }))),
            other => Err(PolicyError::NotAnObject(json_type_name(&other))),
        }
    }

    pub fn parse_json(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::from_json(&e))?;
        Self::from_value(value)
    }

    /// A document as IAM returns it: URL-encoded JSON (raw JSON is accepted too, since an
    /// encoded document never starts with `{`).
    pub fn from_iam(text: &str) -> Result<Self, PolicyError> {
        if text.trim_start().starts_with('{') {
            return Self::parse_json(text);
        }
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map_err(|_| PolicyError::Encoding)?;
        Self::parse_json(&decoded)
    }

    pub fn value(&self) -> &Value {
        &self.0.value
    }

    fn canonical_digest(&self) -> &[u8; 32] {
        self.0.canonical.get_or_init(|| {
            let text = canonical(&self.0.value).to_string();
            sha2::Sha256::digest(text.as_bytes()).into()
        })
    }

    /// Compact JSON with `Version` first, the rest in the order written: what IAM is sent.
    pub fn to_json(&self) -> String {
        let Value::Object(map) = &self.0.value else {
            return self.0.value.to_string();
        };
        let mut ordered = Map::with_capacity(map.len());
        if let Some(v) = map.get("Version") {
            ordered.insert("Version".into(), v.clone());
        }
        for (k, v) in map {
            if k != "Version" {
                ordered.insert(k.clone(), v.clone());
            }
        }
        Value::Object(ordered).to_string()
    }

    /// Size as IAM counts it against its quotas: characters, whitespace not counted.
    pub fn size(&self) -> usize {
        self.to_json()
            .chars()
            .filter(|c| !c.is_whitespace())
            .count()
    }

    /// Equal meaning to IAM, by comparison of canonical forms.
    pub fn is_equivalent(&self, other: &PolicyDocument) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.canonical_digest() == other.canonical_digest()
    }

    /// Each statement as (canonical JSON, JSON as written): diffs compare the first and show
    /// the second.
    pub fn statements(&self) -> Vec<(String, String)> {
        let written: Vec<&Value> = match self.0.value.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single) => vec![single],
            None => Vec::new(),
        };
        let mut out: Vec<(String, String)> = written
            .into_iter()
            .map(|s| {
                let one = serde_json::json!({ "Statement": [s] });
                let canon = canonical(&one)["Statement"][0].to_string();
                (canon, s.to_string())
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }
}

/// A document's statements with their paths below `at` (`Statement[i]`, or `Statement` for a
/// single statement object).
pub fn statements_at<'v>(doc: &'v Value, at: &FieldPath) -> Vec<(FieldPath, &'v Value)> {
    let path = at.key("Statement");
    match doc.get("Statement") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (path.index(i), s))
            .collect(),
        Some(single) => vec![(path, single)],
        None => Vec::new(),
    }
}

pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_compactly_with_version_first() {
        let doc = PolicyDocument::from_value(json!({
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            "Version": "2012-10-17"
        }))
        .unwrap();
        assert_eq!(
            doc.to_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
        );
    }

    #[test]
    fn reads_url_encoded_documents_from_iam() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        let doc = PolicyDocument::from_iam(encoded).unwrap();
        assert_eq!(doc.to_json(), r#"{"Version":"2012-10-17","Statement":[]}"#);
        let raw = PolicyDocument::from_iam(r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
        assert_eq!(raw, doc);
    }

    #[test]
    fn json_errors_name_line_and_column() {
        let err = PolicyDocument::parse_json("{\n  \"Version\": \n}").unwrap_err();
        assert!(matches!(err, PolicyError::Json { line: 3, .. }), "{err:?}");
        assert_eq!(
            PolicyDocument::parse_json("[1]").unwrap_err(),
            PolicyError::NotAnObject("a list")
        );
    }

    #[test]
    fn size_does_not_count_whitespace() {
        let doc = PolicyDocument::parse_json(r#"{"Version": "2012-10-17", "Id": "a b"}"#).unwrap();
        assert_eq!(doc.size(), r#"{"Version":"2012-10-17","Id":"ab"}"#.len());
    }
}
