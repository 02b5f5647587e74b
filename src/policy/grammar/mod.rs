//! The policy grammar, checked before anything is sent to IAM.
//!
//! IAM would reject most of these mistakes itself, but only at apply time, one at a time, and
//! moto (the test server) accepts several that AWS rejects. Checking here gives every mistake at
//! once, with its field path, in `validate` and CI.

use serde_json::{Map, Value};

use super::json_type_name;
use crate::fieldpath::FieldPath;
use crate::suggest::unknown_field;

/// Which grammar applies: identity policies (inline and managed) name resources and no
/// principal; trust policies (a role's assume-role policy) name a principal and no resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Trust,
}

/// A grammar mistake at `path`, relative to the document root.
#[derive(Clone, Debug, PartialEq)]
pub struct GrammarError {
    pub path: FieldPath,
    pub message: String,
}

const TOP_FIELDS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
const PRINCIPAL_TYPES: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];
pub const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];

/// Every grammar mistake in `doc`.
pub fn check(doc: &Value, kind: PolicyKind) -> Vec<GrammarError> {
    let mut errors = Errors(Vec::new());
    let root = FieldPath::default();
    let Value::Object(map) = doc else {
        errors.add(
            &root,
            format!("must be a mapping, not {}", json_type_name(doc)),
        );
        return errors.0;
    };
    errors.unknown_fields(&root, map, TOP_FIELDS);
    match map.get("Version") {
        None => errors.add(
            &root.key("Version"),
            format!("is required (one of {})", VERSIONS.join(", ")),
        ),
        Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => {}
        Some(v) => errors.add(
            &root.key("Version"),
            format!("must be one of {}, not {}", VERSIONS.join(", "), show(v)),
        ),
    }
    if let Some(id) = map.get("Id") {
        if !id.is_string() {
            errors.add(
                &root.key("Id"),
                format!("must be a string, not {}", json_type_name(id)),
            );
        }
    }
    let path = root.key("Statement");
    match map.get("Statement") {
        None => errors.add(
            &path,
            "is required: a statement or a list of statements".into(),
        ),
        Some(Value::Array(items)) if items.is_empty() => {
            errors.add(&path, "must hold at least one statement".into())
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                statement(&mut errors, &path.index(i), item, kind);
            }
            duplicate_sids(&mut errors, &path, items);
        }
        Some(single) => statement(&mut errors, &path, single, kind),
    }
    characters(&mut errors, &root, doc);
    errors.0
}

/// IAM's character set for documents and descriptions: tab, newline, carriage return and
/// U+0020 to U+00FF.
pub fn is_iam_text_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}')
}

/// Every key and string of the document in IAM's character set.
fn characters(errors: &mut Errors, path: &FieldPath, value: &Value) {
    let bad = |s: &str| s.chars().find(|c| !is_iam_text_char(*c));
    let message = |c: char| {
        format!(
            "holds {c:?} (U+{:04X}): IAM allows only tab, newline, carriage return and U+0020 to U+00FF in a policy",
            c as u32
        )
    };
    match value {
        Value::String(s) => {
            if let Some(c) = bad(s) {
                errors.add(path, message(c));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                characters(errors, &path.index(i), item);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let p = path.key(k.as_str());
                if let Some(c) = bad(k) {
                    errors.add(&p, message(c));
                }
                characters(errors, &p, item);
            }
        }
        _ => {}
    }
}

struct Errors(Vec<GrammarError>);

impl Errors {
    fn add(&mut self, path: &FieldPath, message: String) {
        self.0.push(GrammarError {
            path: path.clone(),
            message,
        });
    }

    fn unknown_fields(&mut self, path: &FieldPath, map: &Map<String, Value>, allowed: &[&str]) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.add(&path.key(key.as_str()), unknown_field(key, allowed));
            }
        }
    }
}

fn statement(errors: &mut Errors, path: &FieldPath, value: &Value, kind: PolicyKind) {
    let Value::Object(map) = value else {
        errors.add(
            path,
            format!(
                "a statement must be a mapping, not {}",
                json_type_name(value)
            ),
        );
        return;
    };
    errors.unknown_fields(path, map, STATEMENT_FIELDS);
    if let Some(sid) = map.get("Sid") {
        match sid.as_str() {
            Some(s) if s.chars().all(|c| c.is_ascii_alphanumeric()) => {}
            Some(s) => errors.add(
                &path.key("Sid"),
                format!(
                    "`{s}` is not allowed: a Sid holds only letters and digits (A-Z, a-z, 0-9)"
                ),
            ),
            None => errors.add(
                &path.key("Sid"),
                format!("must be a string, not {}", json_type_name(sid)),
            ),
        }
    }
    match map.get("Effect") {
        None => errors.add(&path.key("Effect"), "is required (Allow or Deny)".into()),
        // IAM reads Effect case-sensitively: `allow` is refused.
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(e) => errors.add(
            &path.key("Effect"),
            format!("must be Allow or Deny (case matters), not {}", show(e)),
        ),
    }

    if let Some((field, v)) = exactly_one(errors, path, map, "Action", "NotAction") {
        for (p, s) in strings(errors, &path.key(field), v) {
            if !is_action(s) {
                errors.add(
                    &p,
                    format!("`{s}` is not an action: write `service:ActionName` (wildcards * and ? allowed) or `*`"),
                );
            } else if kind == PolicyKind::Trust && field == "Action" && !is_trust_action(s) {
                errors.add(
                    &p,
                    format!(
                        "`{s}` is not allowed in a trust policy: IAM allows only {}",
                        TRUST_ACTIONS.join(", ")
                    ),
                );
            }
        }
    }

    match kind {
        PolicyKind::Identity => {
            for field in ["Principal", "NotPrincipal"] {
                if map.contains_key(field) {
                    let hint = if field == "Principal" {
                        "Principal belongs in a trust policy"
                    } else {
                        "an identity policy applies to whoever it is attached to"
                    };
                    errors.add(
                        &path.key(field),
                        format!("is not allowed in an identity policy ({hint})"),
                    );
                }
            }
            if let Some((field, v)) = exactly_one(errors, path, map, "Resource", "NotResource") {
                for (p, s) in strings(errors, &path.key(field), v) {
                    if s != "*" && !s.starts_with("arn:") {
                        errors.add(
                            &p,
                            format!("`{s}` is not a resource: write an ARN (`arn:…`) or `*`"),
                        );
                    }
                }
            }
        }
        PolicyKind::Trust => {
            for field in ["Resource", "NotResource"] {
                if map.contains_key(field) {
                    errors.add(
                        &path.key(field),
                        "is not allowed in a trust policy (the resource is the role itself)"
                            .to_string(),
                    );
                }
            }
            if map.contains_key("NotPrincipal") {
                errors.add(
                    &path.key("NotPrincipal"),
                    "is not allowed in a trust policy (IAM refuses it there): name the principals \
                     with Principal"
                        .to_string(),
                );
            }
            match map.get("Principal") {
                Some(v) => principal(errors, &path.key("Principal"), v),
                None if !map.contains_key("NotPrincipal") => {
                    errors.add(&path.key("Principal"), "is required".to_string())
                }
                None => {}
            }
        }
    }

    if let Some(c) = map.get("Condition") {
        condition(errors, &path.key("Condition"), c);
    }
}

/// Exactly one of two exclusive fields, which is returned; reports none or both.
fn exactly_one<'v>(
    errors: &mut Errors,
    path: &FieldPath,
    map: &'v Map<String, Value>,
    a: &'static str,
    b: &'static str,
) -> Option<(&'static str, &'v Value)> {
    match (map.get(a), map.get(b)) {
        (Some(v), None) => Some((a, v)),
        (None, Some(v)) => Some((b, v)),
        (None, None) => {
            errors.add(&path.key(a), format!("is required (or {b})"));
            None
        }
        (Some(_), Some(_)) => {
            errors.add(&path.key(b), format!("cannot be used together with {a}"));
            None
        }
    }
}

/// The strings of a field that takes a string or a non-empty list of strings.
fn strings<'v>(
    errors: &mut Errors,
    path: &FieldPath,
    value: &'v Value,
) -> Vec<(FieldPath, &'v str)> {
    match value {
        Value::String(s) => vec![(path.clone(), s.as_str())],
        Value::Array(items) if items.is_empty() => {
            errors.add(path, "must not be an empty list".into());
            Vec::new()
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(s) => Some((path.index(i), s.as_str())),
                other => {
                    errors.add(
                        &path.index(i),
                        format!("must be a string, not {}", json_type_name(other)),
                    );
                    None
                }
            })
            .collect(),
        other => {
            errors.add(
                path,
                format!(
                    "must be a string or a list of strings, not {}",
                    json_type_name(other)
                ),
            );
            Vec::new()
        }
    }
}

fn principal(errors: &mut Errors, path: &FieldPath, value: &Value) {
    match value {
        Value::String(s) if s == "*" => {}
        Value::Object(map) if map.is_empty() => errors.add(
            path,
            format!(
                "must name at least one principal ({})",
                PRINCIPAL_TYPES.join(", ")
            ),
        ),
        Value::Object(map) => {
            errors.unknown_fields(path, map, PRINCIPAL_TYPES);
            for (kind, ids) in map {
                for (p, id) in strings(errors, &path.key(kind.as_str()), ids) {
                    if kind == "Service" && !is_service_name(id) {
                        errors.add(
                            &p,
                            format!("`{id}` is not a service principal: write a name such as ecs-tasks.amazonaws.com (letters, digits, `.` and `-`)"),
                        );
                    }
                }
            }
        }
        other => errors.add(
            path,
            format!(
                "must be `*` or a mapping of {} to principals, not {}",
                PRINCIPAL_TYPES.join("/"),
                show(other)
            ),
        ),
    }
}

fn is_service_name(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn condition(errors: &mut Errors, path: &FieldPath, value: &Value) {
    let Value::Object(operators) = value else {
        errors.add(
            path,
            format!(
                "must be a mapping of operator to keys, not {}",
                json_type_name(value)
            ),
        );
        return;
    };
    for (operator, keys) in operators {
        let op_path = path.key(operator.as_str());
        let Value::Object(keys) = keys else {
            errors.add(
                &op_path,
                format!(
                    "must be a mapping of condition key to values, not {}",
                    json_type_name(keys)
                ),
            );
            continue;
        };
        for (key, values) in keys {
            let items: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for item in items {
                if matches!(item, Value::Object(_) | Value::Array(_) | Value::Null) {
                    errors.add(
                        &op_path.key(key.as_str()),
                        format!(
                            "condition values are strings, numbers or booleans, not {}",
                            json_type_name(item)
                        ),
                    );
                }
            }
        }
    }
}

fn duplicate_sids(errors: &mut Errors, path: &FieldPath, items: &[Value]) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(sid) = item
            .get("Sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if seen.contains(&sid) {
            errors.add(
                &path.index(i).key("Sid"),
                format!("`{sid}` is used by two statements; a Sid must be unique"),
            );
        }
        seen.push(sid);
    }
}

/// What a trust policy statement may allow: assuming the role, and what goes with it (IAM
/// refuses a trust policy with any other action: "Trust Policy statement actions can only
/// be …").
pub const TRUST_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
    "sts:TagSession",
    "sts:SetSourceIdentity",
    "sts:SetContext",
];

/// One of [`TRUST_ACTIONS`] (ignoring case, as IAM does), or an `sts:` pattern that matches
/// one of them (`sts:AssumeRole*`). `*` and other services' actions are refused.
fn is_trust_action(s: &str) -> bool {
    let Some((service, _)) = s.split_once(':') else {
        return false;
    };
    service.eq_ignore_ascii_case("sts")
        && TRUST_ACTIONS
            .iter()
            .any(|a| super::glob::matches(s, a, true))
}

/// `*`, or `service:Action` where both parts may hold the wildcards `*` and `?`.
pub fn is_action(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((service, action)) = s.split_once(':') else {
        return false;
    };
    let service_ok = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '*' | '?'));
    let action_ok = !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_'));
    service_ok && action_ok
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => json_type_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests;
