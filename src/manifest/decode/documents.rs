//! Policy documents, managed policy lists and `{ref: NAME}` inside a manifest: grammar-checked,
//! size-checked, with errors that point into the document.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Decoder, Fields};
use crate::fieldpath::FieldPath;
use crate::manifest::limits;
use crate::manifest::model::PolicyRef;
use crate::manifest::vars::{Variables, has_reference, substitute};
use crate::manifest::yaml::{self, CoreScalar, Node, Value, core_scalar};
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
            Value::Map(_) => {
                if !self.numbers_as_written(node, path) {
                    return None;
                }
                let mut value = Node::to_json(node);
                if kind == PolicyKind::Trust {
                    self.provider_refs(node.line, path, &mut value)?;
                }
                PolicyDocument::from_value(value)
            }
            Value::Scalar { text, .. } if !node.is_null() => {
                match self.json_document(node.line, path, text) {
                    Some(mut value) => {
                        if kind == PolicyKind::Trust {
                            self.provider_refs(node.line, path, &mut value)?;
                        }
                        PolicyDocument::from_value(value)
                    }
                    None => return None,
                }
            }
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

    /// `Federated: {ref: NAME}` in a trust policy: a declared OIDC provider, its ARN filled in
    /// by the planner (which knows the account). Anything else shaped as a mapping there is
    /// left to the grammar, which refuses it.
    fn provider_refs(&mut self, line: usize, path: &FieldPath, value: &mut Json) -> Option<()> {
        let mut bad = Vec::new();
        crate::manifest::model::for_federated(value, &mut |v| {
            let Json::Object(fields) = v else { return };
            match (fields.len(), fields.get("ref")) {
                (1, Some(Json::String(name))) => {
                    if limits::name(name, limits::POLICY_NAME_MAX).is_err() {
                        bad.push(format!("{{ref: {name}}} must name an OpenIDConnectProvider manifest"));
                    }
                    *v = Json::String(crate::manifest::model::provider_ref_marker(name));
                }
                _ => bad.push("a Federated principal is an ARN string or {ref: NAME} of an OpenIDConnectProvider manifest".to_string()),
            }
        });
        for message in &bad {
            self.error(line, path, message.clone());
        }
        bad.is_empty().then_some(())
    }

    /// A document written as a string of JSON: parsed first, then variables are substituted
    /// into its string values (and condition keys), so a value cannot add a statement or
    /// close a string. Its text is read once more as YAML (JSON is YAML's flow style) for
    /// what a JSON parser forgets: duplicate keys and numbers as written.
    fn json_document(&mut self, line: usize, path: &FieldPath, text: &str) -> Option<Json> {
        let mut value: Json = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let message = match PolicyError::from_json(&e) {
                    PolicyError::Json {
                        line,
                        column,
                        message,
                    } => format!(
                        "invalid JSON in policy string (its line {line}, column {column}): {message}{}",
                        json_hint(text, &message)
                    ),
                    other => other.to_string(),
                };
                self.error(line, path, message);
                return None;
            }
        };
        let mut ok = true;
        let (docs, syntax) = yaml::parse_documents(text);
        match (docs.into_iter().next().and_then(|d| d.root), syntax) {
            (_, Some(e)) if e.message.starts_with("duplicate key") => {
                self.error(line, &path.join(&e.path), e.message);
                ok = false;
            }
            (Some(root), None) => {
                // Numbers checked with their text, which the JSON value no longer has.
                let before = self.diags.len();
                ok &= self.numbers_as_written(&Node { line, ..root }, path);
                for d in &mut self.diags[before..] {
                    d.line = Some(line);
                }
            }
            _ => {}
        }
        let mut errors = Vec::new();
        substitute_json(&mut value, &FieldPath::default(), self.vars, &mut errors);
        for (p, message) in &errors {
            self.error(line, &path.join(p), message.clone());
        }
        (ok && errors.is_empty()).then_some(value)
    }

    /// Plain numbers in a document reach IAM as JSON numbers, which IAM's grammar allows. Only
    /// a number whose JSON text is exactly what was written, and that JSON readers keep
    /// exactly, is one (`10`, `1.5`, `100.01`); anything that cannot round-trip
    /// (`012345678901`, `1.10`, `1e3`, integers beyond 2^53) must be quoted.
    fn numbers_as_written(&mut self, node: &Node, path: &FieldPath) -> bool {
        match &node.value {
            Value::Scalar { text, plain: true } => match number_as_json(text) {
                Some(json) if json != *text || !exact_in_json(text) => {
                    let reads = if json == *text {
                        String::new()
                    } else {
                        format!(" (it reads as {json})")
                    };
                    self.error(
                        node.line,
                        path,
                        format!(
                            "`{text}` would not reach IAM as written{reads}: only a number that \
                             JSON keeps exactly as written can stay unquoted; quote it \
                             (\"{text}\") to keep it a string"
                        ),
                    );
                    false
                }
                _ => true,
            },
            Value::Scalar { .. } => true,
            Value::Seq(items) => {
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    ok &= self.numbers_as_written(item, &path.index(i));
                }
                ok
            }
            Value::Map(entries) => {
                let mut ok = true;
                for (key, value) in entries {
                    ok &= self.numbers_as_written(value, &path.key(key.name.as_str()));
                }
                ok
            }
        }
    }
}

/// The JSON text a plain YAML scalar becomes when it is a number, `None` when it is not one.
fn number_as_json(text: &str) -> Option<String> {
    match core_scalar(text) {
        CoreScalar::Int(i) => Some(i.to_string()),
        CoreScalar::Float(f) => Some(
            serde_json::Number::from_f64(f).map_or_else(|| text.to_string(), |n| n.to_string()),
        ),
        _ => None,
    }
}

/// Integers beyond 2^53 lose digits in most JSON readers (IAM's included, as doubles).
const JSON_SAFE_INTEGER: u64 = 1 << 53;

fn exact_in_json(text: &str) -> bool {
    match core_scalar(text) {
        CoreScalar::Int(i) => i.unsigned_abs() <= JSON_SAFE_INTEGER,
        // Its JSON text was compared with what was written; it must also be a finite number.
        CoreScalar::Float(f) => f.is_finite(),
        _ => true,
    }
}

/// What a variable in a document's key outside a condition gets: a value must never name a
/// statement's fields (`${var.k}: …` turning into `NotAction`).
pub(super) const KEY_VARIABLES: &str = "a variable in a policy document's key is allowed only for condition keys (Condition.OPERATOR.KEY), so that a value never changes what a statement means";

/// Whether keys of the mapping at `path` (inside a document) are condition keys: the path
/// ends in `Condition.OPERATOR`.
pub(super) fn is_condition_key(path: &FieldPath) -> bool {
    use crate::fieldpath::Seg;
    matches!(path.0.as_slice(), [.., Seg::Key(c), Seg::Key(_)] if c == "Condition")
}

/// A hint for JSON mistakes users make in policy strings.
fn json_hint(text: &str, message: &str) -> &'static str {
    if message.contains("invalid number") {
        "; quote numbers such as account ids (\"012345678901\")"
    } else if message.contains("expected value") && text.contains("${") {
        "; a ${var.NAME} in JSON goes inside quotes (\"${var.NAME}\")"
    } else {
        ""
    }
}

/// Substitutes variables into every string value and condition key of a parsed JSON
/// document.
fn substitute_json(
    value: &mut Json,
    path: &FieldPath,
    vars: &Variables,
    errors: &mut Vec<(FieldPath, String)>,
) {
    match value {
        Json::String(s) if has_reference(s) => match substitute(s, vars) {
            Ok(resolved) => *s = resolved,
            Err(es) => errors.extend(es.into_iter().map(|e| (path.clone(), e))),
        },
        Json::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_json(item, &path.index(i), vars, errors);
            }
        }
        Json::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                let key = if has_reference(&key) && !is_condition_key(path) {
                    errors.push((path.key(key.as_str()), KEY_VARIABLES.to_string()));
                    key
                } else if has_reference(&key) {
                    match substitute(&key, vars) {
                        Ok(resolved) => resolved,
                        Err(es) => {
                            errors.extend(es.into_iter().map(|e| (path.key(key.as_str()), e)));
                            key
                        }
                    }
                } else {
                    key
                };
                let p = path.key(key.as_str());
                substitute_json(&mut item, &p, vars, errors);
                if map.insert(key.clone(), item).is_some() {
                    errors.push((
                        p,
                        format!("duplicate key `{key}` once variables are substituted"),
                    ));
                }
            }
        }
        _ => {}
    }
}
