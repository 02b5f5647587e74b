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
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(statement: Value) -> Vec<String> {
        messages(
            &json!({"Version": "2012-10-17", "Statement": statement}),
            PolicyKind::Identity,
        )
    }

    fn trust(statement: Value) -> Vec<String> {
        messages(
            &json!({"Version": "2012-10-17", "Statement": statement}),
            PolicyKind::Trust,
        )
    }

    fn messages(doc: &Value, kind: PolicyKind) -> Vec<String> {
        check(doc, kind)
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    fn ok_identity() -> Value {
        json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "arn:aws:s3:::b/*"})
    }

    fn ok_trust() -> Value {
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}})
    }

    #[test]
    fn accepts_well_formed_identity_and_trust_policies() {
        assert_eq!(identity(json!([ok_identity()])), Vec::<String>::new());
        assert_eq!(identity(ok_identity()), Vec::<String>::new());
        assert_eq!(trust(json!([ok_trust()])), Vec::<String>::new());
        let star = json!({"Effect": "Deny", "NotAction": "*", "NotResource": "*", "Sid": "Deny1"});
        assert_eq!(identity(json!([star])), Vec::<String>::new());
        let doc = json!({"Version": "2008-10-17", "Statement": [ok_identity()]});
        assert!(messages(&doc, PolicyKind::Identity).is_empty());
    }

    #[test]
    fn version_must_be_one_of_the_two_iam_versions() {
        let doc = json!({"Version": "2012-10-18", "Statement": [ok_identity()]});
        assert_eq!(
            messages(&doc, PolicyKind::Identity),
            ["Version: must be one of 2012-10-17, 2008-10-17, not `2012-10-18`"]
        );
        let doc = json!({"Statement": [ok_identity()]});
        assert_eq!(
            messages(&doc, PolicyKind::Identity),
            ["Version: is required (one of 2012-10-17, 2008-10-17)"]
        );
    }

    #[test]
    fn effect_must_be_allow_or_deny() {
        let mut s = ok_identity();
        s["Effect"] = json!("Permit");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].Effect: must be Allow or Deny (case matters), not `Permit`"]
        );
        for wrong_case in ["allow", "DENY", "aLLow"] {
            let mut s = ok_identity();
            s["Effect"] = json!(wrong_case);
            assert_eq!(
                identity(json!([s])),
                [format!(
                    "Statement[0].Effect: must be Allow or Deny (case matters), not `{wrong_case}`"
                )]
            );
        }
        let mut s = ok_identity();
        s.as_object_mut().unwrap().remove("Effect");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].Effect: is required (Allow or Deny)"]
        );
    }

    #[test]
    fn exactly_one_of_action_and_not_action() {
        let mut s = ok_identity();
        s["NotAction"] = json!("s3:PutObject");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].NotAction: cannot be used together with Action"]
        );
        let mut s = ok_identity();
        s.as_object_mut().unwrap().remove("Action");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].Action: is required (or NotAction)"]
        );
    }

    #[test]
    fn identity_policies_need_exactly_one_of_resource_and_not_resource() {
        let mut s = ok_identity();
        s.as_object_mut().unwrap().remove("Resource");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].Resource: is required (or NotResource)"]
        );
        let mut s = ok_identity();
        s["NotResource"] = json!("*");
        assert_eq!(
            identity(json!([s])),
            ["Statement[0].NotResource: cannot be used together with Resource"]
        );
    }

    #[test]
    fn actions_must_look_like_service_colon_action() {
        let mut s = ok_identity();
        s["Action"] = json!([
            "s3:GetObject",
            "GetObject",
            "s3:",
            "ecr-public:Get*",
            "s3:Get Object"
        ]);
        assert_eq!(
            identity(json!([s])),
            [
                "Statement[0].Action[1]: `GetObject` is not an action: write `service:ActionName` (wildcards * and ? allowed) or `*`",
                "Statement[0].Action[2]: `s3:` is not an action: write `service:ActionName` (wildcards * and ? allowed) or `*`",
                "Statement[0].Action[4]: `s3:Get Object` is not an action: write `service:ActionName` (wildcards * and ? allowed) or `*`",
            ]
        );
        assert!(is_action("*") && is_action("iam:*Role?") && !is_action("s3") && !is_action(":x"));
    }

    #[test]
    fn identity_policies_carry_no_principal() {
        let mut s = ok_identity();
        s["Principal"] = json!("*");
        assert_eq!(
            identity(json!([s])),
            [
                "Statement[0].Principal: is not allowed in an identity policy (Principal belongs in a trust policy)"
            ]
        );
    }

    #[test]
    fn trust_policies_allow_only_stss_assume_tag_and_set_actions() {
        for ok in [
            json!("sts:AssumeRole"),
            json!("STS:assumerolewithwebidentity"),
            json!([
                "sts:AssumeRoleWithSAML",
                "sts:TagSession",
                "sts:SetSourceIdentity"
            ]),
            json!("sts:SetContext"),
            json!("sts:AssumeRole*"),
        ] {
            let mut s = ok_trust();
            s["Action"] = ok.clone();
            assert_eq!(trust(json!([s])), Vec::<String>::new(), "{ok}");
        }
        for (bad, at) in [
            (json!("*"), "Statement[0].Action"),
            (json!("sqs:SendMessage"), "Statement[0].Action"),
            (json!("sts:GetCallerIdentity"), "Statement[0].Action"),
            (json!(["sts:AssumeRole", "iam:*"]), "Statement[0].Action[1]"),
            (json!("sts:Get*"), "Statement[0].Action"),
        ] {
            let mut s = ok_trust();
            s["Action"] = bad.clone();
            let errors = trust(json!([s]));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(
                errors[0].starts_with(&format!("{at}: `"))
                    && errors[0].contains(
                        "is not allowed in a trust policy: IAM allows only sts:AssumeRole, "
                    ),
                "{bad}: {errors:?}"
            );
        }
        // The same actions are fine in an identity policy.
        assert_eq!(
            identity(json!([{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn trust_policies_need_a_principal_and_no_resource() {
        let mut s = ok_trust();
        s.as_object_mut().unwrap().remove("Principal");
        assert_eq!(trust(json!([s])), ["Statement[0].Principal: is required"]);
        let mut s = ok_trust();
        s["Resource"] = json!("*");
        assert_eq!(
            trust(json!([s])),
            [
                "Statement[0].Resource: is not allowed in a trust policy (the resource is the role itself)"
            ]
        );
        let mut s = ok_trust();
        s.as_object_mut().unwrap().remove("Principal");
        s["NotPrincipal"] = json!({"AWS": "arn:aws:iam::123456789012:root"});
        assert_eq!(
            trust(json!([s])),
            [
                "Statement[0].NotPrincipal: is not allowed in a trust policy (IAM refuses it there): name the principals with Principal"
            ]
        );
    }

    #[test]
    fn service_principals_are_service_names() {
        for ok in [
            "ecs-tasks.amazonaws.com",
            "states.eu-west-1.amazonaws.com",
            "ec2.amazonaws.com.cn",
        ] {
            let mut s = ok_trust();
            s["Principal"] = json!({"Service": ok});
            assert_eq!(trust(json!([s])), Vec::<String>::new(), "{ok}");
        }
        let mut s = ok_trust();
        s["Principal"] = json!({"Service": ["ecs-tasks.amazonaws.com", "x\"}, {\"AWS\": \"*"]});
        assert_eq!(
            trust(json!([s])),
            [
                "Statement[0].Principal.Service[1]: `x\"}, {\"AWS\": \"*` is not a service principal: write a name such as ecs-tasks.amazonaws.com (letters, digits, `.` and `-`)"
            ]
        );
    }

    #[test]
    fn documents_hold_only_iams_characters() {
        let mut s = ok_identity();
        s["Sid"] = json!("Ok");
        s["Resource"] = json!("arn:aws:s3:::b/caf\u{e9}\t*");
        assert_eq!(identity(json!([s])), Vec::<String>::new());
        let mut s = ok_identity();
        s["Resource"] = json!("arn:aws:s3:::b/\u{2603}");
        assert_eq!(
            identity(json!([s])),
            [
                "Statement[0].Resource: holds '\u{2603}' (U+2603): IAM allows only tab, newline, carriage return and U+0020 to U+00FF in a policy"
            ]
        );
        let mut s = ok_identity();
        s["Condition"] = json!({"StringEquals": {"aws:PrincipalTag/\u{1}x": "y"}});
        let errors = identity(json!([s]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "Statement[0].Condition.StringEquals.aws:PrincipalTag/\u{1}x: holds '\\u{1}'"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn principals_are_star_or_known_principal_types() {
        let mut s = ok_trust();
        s["Principal"] = json!({"Servce": "ec2.amazonaws.com"});
        assert_eq!(
            trust(json!([s])),
            [
                "Statement[0].Principal.Servce: unknown field `Servce`; did you mean `Service`? (allowed: AWS, Service, Federated, CanonicalUser)"
            ]
        );
        let mut s = ok_trust();
        s["Principal"] = json!("ecs-tasks.amazonaws.com");
        assert_eq!(trust(json!([s])).len(), 1);
        let mut s = ok_trust();
        s["Principal"] = json!({"AWS": []});
        assert_eq!(
            trust(json!([s])),
            ["Statement[0].Principal.AWS: must not be an empty list"]
        );
    }

    #[test]
    fn resources_are_arns_or_star() {
        let mut s = ok_identity();
        s["Resource"] = json!(["arn:aws:s3:::b", "my-bucket", 7]);
        assert_eq!(
            identity(json!([s])),
            [
                "Statement[0].Resource[2]: must be a string, not a number",
                "Statement[0].Resource[1]: `my-bucket` is not a resource: write an ARN (`arn:…`) or `*`",
            ]
        );
    }

    #[test]
    fn unknown_statement_fields_suggest_the_right_one() {
        let mut s = ok_identity();
        s["Actions"] = json!("s3:GetObject");
        let errors = identity(json!([s]));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "Statement[0].Actions: unknown field `Actions`; did you mean `Action`?"
            )
        );
    }

    #[test]
    fn sids_are_alphanumeric_and_unique() {
        let mut a = ok_identity();
        a["Sid"] = json!("read-only");
        assert_eq!(
            identity(json!([a])),
            [
                "Statement[0].Sid: `read-only` is not allowed: a Sid holds only letters and digits (A-Z, a-z, 0-9)"
            ]
        );
        let mut a = ok_identity();
        a["Sid"] = json!("Same");
        assert_eq!(
            identity(json!([a.clone(), a])),
            ["Statement[1].Sid: `Same` is used by two statements; a Sid must be unique"]
        );
        let mut e = ok_identity();
        e["Sid"] = json!("");
        assert!(identity(json!([e.clone(), e])).is_empty());
    }

    #[test]
    fn statement_must_be_present_and_non_empty() {
        let doc = json!({"Version": "2012-10-17", "Statement": []});
        assert_eq!(
            messages(&doc, PolicyKind::Identity),
            ["Statement: must hold at least one statement"]
        );
        let doc = json!({"Version": "2012-10-17"});
        assert_eq!(
            messages(&doc, PolicyKind::Identity),
            ["Statement: is required: a statement or a list of statements"]
        );
        assert_eq!(
            identity(json!(["x"])),
            ["Statement[0]: a statement must be a mapping, not a string"]
        );
    }

    #[test]
    fn conditions_are_operator_key_value_mappings() {
        let mut s = ok_identity();
        s["Condition"] = json!({"Bool": {"aws:SecureTransport": true}, "NumericLessThan": {"s3:max-keys": [10, "20"]}});
        assert!(identity(json!([s])).is_empty());
        let mut s = ok_identity();
        s["Condition"] = json!({"StringEquals": "x"});
        assert_eq!(
            identity(json!([s])),
            [
                "Statement[0].Condition.StringEquals: must be a mapping of condition key to values, not a string"
            ]
        );
        let mut s = ok_identity();
        s["Condition"] = json!({"StringEquals": {"k": {"nested": 1}}});
        assert_eq!(identity(json!([s])).len(), 1);
    }
}
