//! Writes manifests as YAML that every reader takes the same way: a string that a YAML 1.1
//! reader (PyYAML, many CI tools) or a 1.2 reader could take for anything else (`2012-10-17`
//! is a date to 1.1, `yes`/`on` booleans, `012` a number) is double-quoted; plain only what
//! reads as the same string everywhere. Our own writer, so the deprecated serde_yaml is not
//! needed to write four kinds of value.

use serde_json::Value;

/// Documents as one YAML stream, each after `---`.
pub fn to_yaml(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        block(&mut out, doc, 0);
    }
    out
}

/// `v` as the body of a block at `indent`: mapping entries, sequence items, or one scalar.
fn block(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                pad(out, indent);
                out.push_str(&string(k));
                out.push(':');
                after_key(out, v, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                pad(out, indent);
                out.push('-');
                after_dash(out, item, indent);
            }
        }
        other => {
            pad(out, indent);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn after_key(out: &mut String, v: &Value, indent: usize) {
    if is_block(v) {
        out.push('\n');
        block(out, v, indent + 2);
    } else {
        out.push(' ');
        out.push_str(&inline(v));
        out.push('\n');
    }
}

/// A sequence item: a mapping starts on the dash's line, its other entries under the first.
fn after_dash(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (i, (k, v)) in m.iter().enumerate() {
                if i == 0 {
                    out.push(' ');
                } else {
                    pad(out, indent + 2);
                }
                out.push_str(&string(k));
                out.push(':');
                after_key(out, v, indent + 2);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            block(out, v, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Words YAML 1.1 reads as booleans or null (1.2 as null or booleans for some of them).
const NOT_STRINGS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
];

/// `s` plain where every reader takes it for this very string, else double-quoted (a JSON
/// string is a valid YAML double-quoted scalar).
fn string(s: &str) -> String {
    let mut chars = s.chars();
    let plain = match chars.next() {
        // Starts with a letter, `/` or `_`: never a number, date, alias, tag or indicator.
        Some(c) if c.is_ascii_alphabetic() || c == '/' || c == '_' => {
            s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '_' | '.' | '/' | ':' | '@' | '+' | '=' | '-')
            }) && !s.ends_with(':')
                && !NOT_STRINGS.contains(&s)
        }
        _ => false,
    };
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;
    use serde_json::json;

    /// What our own YAML reader makes of the text, as JSON.
    fn read_back(text: &str) -> Vec<Value> {
        let (docs, error) = yaml::parse_documents(text);
        assert_eq!(error, None, "{text}");
        docs.iter()
            .filter_map(|d| d.root.as_ref().map(yaml::Node::to_json))
            .collect()
    }

    #[test]
    fn strings_any_reader_would_take_for_something_else_are_quoted() {
        for s in [
            "2012-10-17",
            "2008-10-17",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "null",
            "~",
            "",
            "012345678901",
            "0x1F",
            "1e3",
            "-1",
            ".inf",
            "*",
            "*:*",
            "&a",
            "!tag",
            "@x",
            "a: b",
            "a #b",
            "key:",
            "- x",
            "a,b",
            " lead",
            "trail ",
            "multi\nline",
            "tab\there",
            "${aws:username}",
            "arn:aws:s3:::bucket/*",
        ] {
            let text = string(s);
            assert!(text.starts_with('"'), "{s:?} written plain as {text}");
            assert_eq!(read_back(&format!("k: {text}\n"))[0]["k"], json!(s));
        }
        for s in [
            "Version",
            "arn:aws:iam::123456789012:role/agent/x",
            "s3:GetObject",
            "iam-warden/owner",
            "ecs-tasks.amazonaws.com",
            "Allow",
            "team",
        ] {
            assert_eq!(string(s), s, "{s} quoted needlessly");
        }
    }

    #[test]
    fn what_is_written_reads_back_as_the_same_value() {
        let doc = json!({
            "apiVersion": "iamwarden/v1alpha1",
            "kind": "Role",
            "metadata": {"name": "x", "annotations": {"iam-warden/adopt": "true"}},
            "spec": {
                "path": "/agent/",
                "description": "A role: \"quoted\", with # and\nnewlines",
                "maxSessionDuration": 3600,
                "assumeRolePolicy": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:root"]},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": "012345"},
                                      "Bool": {"aws:SecureTransport": "true"},
                                      "NumericLessThan": {"s3:max-keys": 10}}
                    }]
                },
                "managedPolicies": [],
                "inlinePolicies": {},
                "tags": {"team": "data", "yes": "no"},
                "nested": [[1, 2], [], [{"a": null}], {"b": [true, false]}],
            }
        });
        let text = to_yaml(&[doc.clone(), json!({"kind": "Policy"})]);
        assert!(text.contains("Version: \"2012-10-17\""), "{text}");
        assert_eq!(
            read_back(&text),
            vec![doc, json!({"kind": "Policy"})],
            "{text}"
        );
    }
}
