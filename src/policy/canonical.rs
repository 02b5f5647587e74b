//! The canonical form of a policy document: two documents mean the same to IAM exactly when
//! their canonical forms are equal.
//!
//! A false difference here costs a write to IAM on every resync, forever; a false equivalence
//! leaves drift in place. So each rule below is one that IAM documents (or visibly applies when
//! it stores a document), and nothing else is folded: `Version`, `Sid` and resource ARNs compare
//! exactly.

use serde_json::{Map, Value};

/// The canonical form of `doc`. Object keys come out sorted at every level, so equal forms also
/// serialise to equal strings.
pub fn canonical(doc: &Value) -> Value {
    let Value::Object(map) = doc else {
        return sorted(doc);
    };
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "Statement" => statements(value),
            _ => sorted(value),
        };
        out.insert(key.clone(), value);
    }
    sorted(&Value::Object(out))
}

/// A single statement object and a one-element list are the same; order of statements does not
/// matter, nor does a statement written twice.
fn statements(value: &Value) -> Value {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut out: Vec<Value> = items.into_iter().map(statement).collect();
    sort_dedup(&mut out);
    Value::Array(out)
}

fn statement(value: &Value) -> Value {
    let Value::Object(map) = value else {
        return sorted(value);
    };
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "Effect" => effect(value),
            "Action" | "NotAction" => string_set(value, |s| s.to_ascii_lowercase()),
            "Resource" | "NotResource" => string_set(value, str::to_string),
            "Principal" | "NotPrincipal" => principal(value),
            "Condition" => condition(value),
            _ => sorted(value),
        };
        out.insert(key.clone(), value);
    }
    sorted(&Value::Object(out))
}

fn effect(value: &Value) -> Value {
    match value.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("allow") => Value::from("Allow"),
        Some("deny") => Value::from("Deny"),
        _ => value.clone(),
    }
}

/// A string or a list of strings, as a sorted list without duplicates, each mapped by `norm`.
/// Anything else is left as it is (the grammar check reports it).
fn string_set(value: &Value, norm: impl Fn(&str) -> String) -> Value {
    let strings: Option<Vec<&str>> = match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    match strings {
        Some(strings) => {
            let mut out: Vec<Value> = strings.into_iter().map(|s| Value::from(norm(s))).collect();
            sort_dedup(&mut out);
            Value::Array(out)
        }
        None => sorted(value),
    }
}

/// `"*"` is `{"AWS": "*"}`; a bare 12-digit account id is that account's root ARN in whatever
/// partition the account lives (IAM rewrites it so when it stores the policy).
fn principal(value: &Value) -> Value {
    match value {
        Value::String(s) if s == "*" => {
            let mut out = Map::new();
            out.insert("AWS".into(), Value::Array(vec![Value::from("*")]));
            Value::Object(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (kind, ids) in map {
                let ids = if kind == "AWS" {
                    string_set(ids, account_root)
                } else {
                    string_set(ids, str::to_string)
                };
                out.insert(kind.clone(), ids);
            }
            sorted(&Value::Object(out))
        }
        other => sorted(other),
    }
}

/// IAM's partitions: an account's root is the same principal written in any of them.
const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov"];

fn account_root(id: &str) -> String {
    let account = match crate::arn::Arn::parse(id) {
        Ok(arn)
            if PARTITIONS.contains(&arn.partition)
                && arn.service == "iam"
                && arn.region.is_empty()
                && arn.resource == "root" =>
        {
            arn.account
        }
        _ => id,
    };
    if crate::arn::is_account_id(account) {
        // Partition-neutral: the canonical form is compared, never sent.
        format!("account-root:{account}")
    } else {
        id.to_string()
    }
}

/// Condition values: a scalar is a one-element list, booleans and numbers are their strings.
fn condition(value: &Value) -> Value {
    let Value::Object(operators) = value else {
        return sorted(value);
    };
    let mut out = Map::new();
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            out.insert(operator.clone(), sorted(keys));
            continue;
        };
        let mut canon_keys = Map::new();
        for (key, values) in keys {
            let items: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            let mut strings: Vec<Value> = items
                .into_iter()
                .map(|v| match v {
                    Value::Bool(b) => Value::from(b.to_string()),
                    Value::Number(n) => Value::from(n.to_string()),
                    other => sorted(other),
                })
                .collect();
            sort_dedup(&mut strings);
            canon_keys.insert(key.clone(), Value::Array(strings));
        }
        out.insert(operator.clone(), sorted(&Value::Object(canon_keys)));
    }
    sorted(&Value::Object(out))
}

/// A copy with object keys sorted at every level.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(map.len());
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn sort_dedup(items: &mut Vec<Value>) {
    // Every element is already canonical (keys sorted), so its JSON text is a total order.
    let mut keyed: Vec<(String, Value)> = items.drain(..).map(|v| (v.to_string(), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    items.extend(keyed.into_iter().map(|(_, v)| v));
}

#[cfg(test)]
mod tests {
    use crate::policy::PolicyDocument;
    use serde_json::{Value, json};

    fn doc(statement: Value) -> PolicyDocument {
        PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": statement}))
            .unwrap()
    }

    fn allow(extra: Value) -> Value {
        let mut s = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    }

    /// Asserts equivalence in both directions.
    fn same(a: &PolicyDocument, b: &PolicyDocument) {
        assert!(a.is_equivalent(b), "expected equivalent:\n{a:?}\n{b:?}");
        assert!(
            b.is_equivalent(a),
            "expected equivalent (reversed):\n{b:?}\n{a:?}"
        );
    }

    fn differ(a: &PolicyDocument, b: &PolicyDocument) {
        assert!(!a.is_equivalent(b), "expected different:\n{a:?}\n{b:?}");
        assert!(
            !b.is_equivalent(a),
            "expected different (reversed):\n{b:?}\n{a:?}"
        );
    }

    #[test]
    fn url_encoded_document_equals_its_decoded_form() {
        let plain = doc(json!([allow(json!({}))]));
        let encoded: String = percent_encoding::utf8_percent_encode(
            &plain.to_json(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        same(&plain, &PolicyDocument::from_iam(&encoded).unwrap());
    }

    #[test]
    fn json_whitespace_and_key_order_do_not_matter() {
        let a = PolicyDocument::parse_json(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        )
        .unwrap();
        let b = PolicyDocument::parse_json(
            "{\n  \"Statement\": [ {\"Resource\": \"*\",\n \"Action\": \"s3:GetObject\", \"Effect\": \"Allow\"} ],\n  \"Version\": \"2012-10-17\"\n}",
        )
        .unwrap();
        same(&a, &b);
    }

    #[test]
    fn a_single_statement_object_equals_a_one_element_list() {
        same(&doc(allow(json!({}))), &doc(json!([allow(json!({}))])));
    }

    #[test]
    fn a_string_equals_a_one_element_list_in_every_listed_field() {
        for field in ["Action", "NotAction", "Resource", "NotResource"] {
            let a = doc(json!([allow(json!({field: "s3:x"}))]));
            let b = doc(json!([allow(json!({field: ["s3:x"]}))]));
            same(&a, &b);
        }
        let a = doc(json!([allow(
            json!({"Principal": {"Service": "ecs-tasks.amazonaws.com"}})
        )]));
        let b = doc(json!([allow(
            json!({"Principal": {"Service": ["ecs-tasks.amazonaws.com"]}})
        )]));
        same(&a, &b);
        let a = doc(json!([allow(
            json!({"Condition": {"StringEquals": {"aws:SourceAccount": "1"}}})
        )]));
        let b = doc(json!([allow(
            json!({"Condition": {"StringEquals": {"aws:SourceAccount": ["1"]}}})
        )]));
        same(&a, &b);
    }

    #[test]
    fn order_inside_lists_and_of_statements_does_not_matter() {
        let a = doc(json!([allow(
            json!({"Action": ["s3:A", "s3:B"], "Resource": ["arn:1", "arn:2"]})
        )]));
        let b = doc(json!([allow(
            json!({"Action": ["s3:B", "s3:A"], "Resource": ["arn:2", "arn:1"]})
        )]));
        same(&a, &b);
        let s1 = allow(json!({"Sid": "One"}));
        let s2 = allow(json!({"Sid": "Two", "Effect": "Deny"}));
        same(&doc(json!([s1.clone(), s2.clone()])), &doc(json!([s2, s1])));
        let c1 = json!({"Condition": {"StringEquals": {"k": ["b", "a"]}}});
        let c2 = json!({"Condition": {"StringEquals": {"k": ["a", "b"]}}});
        same(&doc(json!([allow(c1)])), &doc(json!([allow(c2)])));
        let p1 = json!({"Principal": {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]}});
        let p2 = json!({"Principal": {"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::111111111111:root"]}});
        same(&doc(json!([allow(p1)])), &doc(json!([allow(p2)])));
    }

    #[test]
    fn effect_case_does_not_matter() {
        same(
            &doc(json!([allow(json!({"Effect": "allow"}))])),
            &doc(json!([allow(json!({}))])),
        );
        same(
            &doc(json!([allow(json!({"Effect": "DENY"}))])),
            &doc(json!([allow(json!({"Effect": "Deny"}))])),
        );
    }

    #[test]
    fn action_case_does_not_matter() {
        let a = doc(json!([allow(json!({"Action": "S3:getobject"}))]));
        same(&a, &doc(json!([allow(json!({"Action": "s3:GetObject"}))])));
        let b = doc(json!([allow(json!({"NotAction": ["IAM:*"]}))]));
        same(&b, &doc(json!([allow(json!({"NotAction": "iam:*"}))])));
    }

    #[test]
    fn an_account_id_equals_its_root_arn_in_principals() {
        let a = doc(json!([allow(
            json!({"Principal": {"AWS": "123456789012"}})
        )]));
        let b = doc(json!([allow(
            json!({"Principal": {"AWS": "arn:aws:iam::123456789012:root"}})
        )]));
        same(&a, &b);
        let a = doc(json!([allow(
            json!({"NotPrincipal": {"AWS": ["123456789012"]}})
        )]));
        let b = doc(json!([allow(
            json!({"NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"}})
        )]));
        same(&a, &b);
    }

    #[test]
    fn an_account_id_equals_its_root_arn_in_every_partition() {
        let bare = doc(json!([allow(
            json!({"Principal": {"AWS": "123456789012"}})
        )]));
        for partition in ["aws", "aws-cn", "aws-us-gov"] {
            let root = doc(json!([allow(
                json!({"Principal": {"AWS": format!("arn:{partition}:iam::123456789012:root")}})
            )]));
            same(&bare, &root);
            differ(
                &root,
                &doc(json!([allow(
                    json!({"Principal": {"AWS": format!("arn:{partition}:iam::210987654321:root")}})
                )])),
            );
            // A user or role is not the account.
            differ(
                &bare,
                &doc(json!([allow(
                    json!({"Principal": {"AWS": format!("arn:{partition}:iam::123456789012:user/u")}})
                )])),
            );
        }
        differ(
            &bare,
            &doc(json!([allow(
                json!({"Principal": {"AWS": "arn:aws-xx:iam::123456789012:root"}})
            )])),
        );
    }

    #[test]
    fn a_star_principal_equals_aws_star() {
        let a = doc(json!([allow(json!({"Principal": "*"}))]));
        same(&a, &doc(json!([allow(json!({"Principal": {"AWS": "*"}}))])));
        same(
            &a,
            &doc(json!([allow(json!({"Principal": {"AWS": ["*"]}}))])),
        );
    }

    #[test]
    fn booleans_and_numbers_in_conditions_equal_their_strings() {
        let a = doc(json!([allow(
            json!({"Condition": {"Bool": {"aws:SecureTransport": true}}})
        )]));
        let b = doc(json!([allow(
            json!({"Condition": {"Bool": {"aws:SecureTransport": "true"}}})
        )]));
        same(&a, &b);
        let a = doc(json!([allow(
            json!({"Condition": {"NumericLessThanEquals": {"s3:max-keys": 10}}})
        )]));
        let b = doc(json!([allow(
            json!({"Condition": {"NumericLessThanEquals": {"s3:max-keys": ["10"]}}})
        )]));
        same(&a, &b);
    }

    #[test]
    fn version_compares_exactly() {
        let a = doc(json!([allow(json!({}))]));
        let mut b = a.value().clone();
        b["Version"] = json!("2008-10-17");
        differ(&a, &PolicyDocument::from_value(b).unwrap());
    }

    #[test]
    fn sid_compares_exactly() {
        differ(
            &doc(json!([allow(json!({"Sid": "ReadOnly"}))])),
            &doc(json!([allow(json!({"Sid": "readonly"}))])),
        );
        differ(
            &doc(json!([allow(json!({"Sid": ""}))])),
            &doc(json!([allow(json!({}))])),
        );
    }

    #[test]
    fn resource_arns_compare_exactly() {
        differ(
            &doc(json!([allow(json!({"Resource": "arn:aws:s3:::Bucket/*"}))])),
            &doc(json!([allow(json!({"Resource": "arn:aws:s3:::bucket/*"}))])),
        );
        differ(
            &doc(json!([allow(json!({"NotResource": "arn:aws:s3:::a"}))])),
            &doc(json!([allow(json!({"NotResource": "arn:aws:s3:::b"}))])),
        );
    }

    #[test]
    fn different_effects_actions_and_fields_differ() {
        let base = doc(json!([allow(json!({}))]));
        differ(&base, &doc(json!([allow(json!({"Effect": "Deny"}))])));
        differ(
            &base,
            &doc(json!([allow(json!({"Action": "s3:PutObject"}))])),
        );
        differ(
            &base,
            &doc(json!([allow(
                json!({"Action": ["s3:GetObject", "s3:PutObject"]})
            )])),
        );
        let not_action = json!({"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"});
        differ(&base, &doc(json!([not_action])));
        differ(
            &base,
            &doc(json!([allow(json!({})), allow(json!({"Sid": "Extra"}))])),
        );
    }

    #[test]
    fn different_principals_differ() {
        let service = doc(json!([allow(
            json!({"Principal": {"Service": "ecs-tasks.amazonaws.com"}})
        )]));
        differ(
            &service,
            &doc(json!([allow(
                json!({"Principal": {"Service": "ec2.amazonaws.com"}})
            )])),
        );
        differ(
            &service,
            &doc(json!([allow(
                json!({"Principal": {"AWS": "ecs-tasks.amazonaws.com"}})
            )])),
        );
        // Service names are not account ids: case is kept.
        differ(
            &service,
            &doc(json!([allow(
                json!({"Principal": {"Service": "ECS-tasks.amazonaws.com"}})
            )])),
        );
        let account = doc(json!([allow(
            json!({"Principal": {"AWS": "123456789012"}})
        )]));
        differ(
            &account,
            &doc(json!([allow(
                json!({"Principal": {"AWS": "arn:aws:iam::210987654321:root"}})
            )])),
        );
        differ(&account, &doc(json!([allow(json!({"Principal": "*"}))])));
        differ(
            &doc(json!([allow(json!({"Principal": "*"}))])),
            &doc(json!([allow(json!({"NotPrincipal": "*"}))])),
        );
    }

    #[test]
    fn different_condition_values_differ() {
        let a = doc(json!([allow(
            json!({"Condition": {"Bool": {"aws:SecureTransport": true}}})
        )]));
        differ(
            &a,
            &doc(json!([allow(
                json!({"Condition": {"Bool": {"aws:SecureTransport": "false"}}})
            )])),
        );
        differ(
            &a,
            &doc(json!([allow(
                json!({"Condition": {"BoolIfExists": {"aws:SecureTransport": true}}})
            )])),
        );
        differ(&a, &doc(json!([allow(json!({}))])));
        let n = doc(json!([allow(
            json!({"Condition": {"NumericEquals": {"k": 10}}})
        )]));
        differ(
            &n,
            &doc(json!([allow(
                json!({"Condition": {"NumericEquals": {"k": "11"}}})
            )])),
        );
    }

    #[test]
    fn statements_come_sorted_by_their_canonical_form() {
        let a = doc(json!([
            allow(json!({"Sid": "B"})),
            allow(json!({"Sid": "A"}))
        ]));
        let stmts: Vec<String> = a.statements().into_iter().map(|(c, _)| c).collect();
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0] < stmts[1]);
        assert!(stmts[0].contains("\"Sid\":\"A\""));
    }
}
