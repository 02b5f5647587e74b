//! Policy documents, managed policy lists and `{ref: NAME}` inside a manifest: grammar-checked,
//! size-checked, with errors that point into the document.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Decoder, Fields};
use crate::fieldpath::FieldPath;
use crate::manifest::limits;
use crate::manifest::model::PolicyRef;
use crate::manifest::yaml::{CoreScalar, Node, Value, core_scalar};
use crate::policy::{self, PolicyDocument, PolicyError, PolicyKind};

impl Decoder<'_> {
    /// A required document field, grammar-checked for `kind` and within `max` characters.
    pub(super) fn sized_document(
        &mut self,
        fields: &Fields,
        parent: &FieldPath,
        field: &str,
        kind: PolicyKind,
        max: usize,
    ) -> Option<PolicyDocument> {
        let path = parent.key(field);
        let node = self.required(fields, parent, field)?;
        let doc = self.policy_document(node, &path, kind)?;
        let size = doc.size();
        if size > max {
            let message =
                format!("policy is {size} characters (whitespace not counted); IAM allows {max}");
            self.error(node.line, &path, message);
            return None;
        }
        Some(doc)
    }

    pub(super) fn managed_policies(
        &mut self,
        node: &Node,
        path: &FieldPath,
    ) -> Option<Vec<PolicyRef>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.line,
                path,
                format!(
                    "must be a list of policy ARNs or {{ref: NAME}}, not {}",
                    node.type_name()
                ),
            );
            return None;
        };
        let mut refs: Vec<PolicyRef> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = path.index(i);
            match self.policy_ref(item, &p) {
                Some(r) if refs.contains(&r) => {
                    self.error(item.line, &p, format!("{r} is listed twice"));
                    ok = false;
                }
                Some(r) => refs.push(r),
                None => ok = false,
            }
        }
        if items.len() > limits::MANAGED_POLICIES_MAX {
            self.error(
                node.line,
                path,
                format!(
                    "{} managed policies; IAM allows at most {} per role (10 unless the quota was raised)",
                    items.len(),
                    limits::MANAGED_POLICIES_MAX
                ),
            );
            ok = false;
        }
        refs.sort();
        ok.then_some(refs)
    }

    pub(super) fn inline_policies(
        &mut self,
        node: &Node,
        path: &FieldPath,
    ) -> Option<BTreeMap<String, PolicyDocument>> {
        let fields = self.mapping(node, path, &[])?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in fields.entries {
            let p = path.key(key.name.as_str());
            ok &= self.check(
                key.line,
                &p,
                limits::name(&key.name, limits::POLICY_NAME_MAX),
            );
            match self.policy_document(value, &p, PolicyKind::Identity) {
                Some(doc) => {
                    out.insert(key.name.clone(), doc);
                }
                None => ok = false,
            }
        }
        let total: usize = out.values().map(PolicyDocument::size).sum();
        if total > limits::INLINE_POLICIES_SIZE_MAX {
            self.error(
                node.line,
                path,
                format!(
                    "inline policies add up to {total} characters (whitespace not counted); IAM allows {} per role",
                    limits::INLINE_POLICIES_SIZE_MAX
                ),
            );
            ok = false;
        }
        ok.then_some(out)
    }

    /// An ARN string, or `{ref: NAME}`.
    pub(super) fn policy_ref(&mut self, node: &Node, path: &FieldPath) -> Option<PolicyRef> {
        match &node.value {
            Value::Scalar { .. } => {
                let arn = self.string(node, path)?;
                self.check(node.line, path, limits::policy_arn(&arn))
                    .then_some(PolicyRef::Arn(arn))
            }
            Value::Map(_) => {
                let fields = self.mapping(node, path, &["ref"])?;
                let name_node = self.required(&fields, path, "ref")?;
                let p = path.key("ref");
                let name = self.string(name_node, &p)?;
                self.check(
                    name_node.line,
                    &p,
                    limits::name(&name, limits::POLICY_NAME_MAX),
                )
                .then_some(PolicyRef::Ref(name))
            }
            Value::Seq(_) => {
                self.error(
                    node.line,
                    path,
                    "must be a policy ARN or {ref: NAME}, not a list",
                );
                None
            }
        }
    }

    /// A YAML mapping, or a string holding JSON; grammar-checked for `kind`.
    pub(super) fn policy_document(
        &mut self,
        node: &Node,
        path: &FieldPath,
        kind: PolicyKind,
    ) -> Option<PolicyDocument> {
        let from_string = matches!(node.value, Value::Scalar { .. });
        let parsed = match &node.value {
            Value::Map(_) => PolicyDocument::from_value(to_json(node)),
            Value::Scalar { text, .. } if !node.is_null() => PolicyDocument::parse_json(text),
            _ => {
                self.error(
                    node.line,
                    path,
                    format!(
                        "must be a policy document (a mapping, or a string holding JSON), not {}",
                        node.type_name()
                    ),
                );
                return None;
            }
        };
        let doc = match parsed {
            Ok(doc) => doc,
            Err(PolicyError::Json {
                line,
                column,
                message,
            }) => {
                self.error(node.line, path, format!("invalid JSON in policy string (its line {line}, column {column}): {message}"));
                return None;
            }
            Err(e) => {
                self.error(node.line, path, e.to_string());
                return None;
            }
        };
        let errors = policy::check(doc.value(), kind);
        for e in &errors {
            // A JSON string has no lines of its own inside YAML: point at the string.
            let line = if from_string {
                node.line
            } else {
                node.line_at(&e.path)
            };
            self.error(line, &path.join(&e.path), e.message.clone());
        }
        errors.is_empty().then_some(doc)
    }
}

/// A YAML node as JSON, plain scalars typed by the core schema.
fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Scalar { text, plain: false } => Json::String(text.clone()),
        Value::Scalar { text, plain: true } => match core_scalar(text) {
            CoreScalar::Null => Json::Null,
            CoreScalar::Bool(b) => Json::Bool(b),
            CoreScalar::Int(i) => Json::from(i),
            CoreScalar::Float(f) => serde_json::Number::from_f64(f)
                .map_or_else(|| Json::String(text.clone()), Json::Number),
            CoreScalar::Str => Json::String(text.clone()),
        },
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}
