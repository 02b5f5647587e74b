//! Grants that are dangerous whatever was meant, pointed out even where no guardrail forbids
//! them: a role anyone may assume, every action (or every IAM action) on every resource, and
//! `iam:PassRole` on every role.
//!
//! These are warnings, not errors: a break-glass admin role is legitimate. But each of them
//! turns one leaked credential into the whole account, so `validate` and `plan` say so, with
//! the field and the reason, every time. [`findings`] reads one document, purely;
//! `manifest::danger` applies it to a whole desired state.

use serde_json::Value;

use super::PolicyKind;
use crate::fieldpath::FieldPath;

/// What a dangerous statement grants, most sweeping first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// A trust policy that lets any principal (`*`, `{AWS: "*"}`, `{Federated: "*"}`, …)
    /// assume the role.
    AnyPrincipal,
    /// `*` on every resource.
    AllActions,
    /// Allow with NotAction on every resource: every action the list does not name.
    AllActionsExcept,
    /// `iam:*`, or a wildcard that covers it, on every resource.
    AllIamActions,
    /// `iam:PassRole`, or a wildcard that covers it, on every resource.
    PassRoleAnyRole,
}

impl Grant {
    /// Every grant, for catalogues of rules.
    pub const ALL: [Grant; 5] = [
        Grant::AnyPrincipal,
        Grant::AllActions,
        Grant::AllActionsExcept,
        Grant::AllIamActions,
        Grant::PassRoleAnyRole,
    ];

    /// Its stable rule id for code scanning: `danger/` and its name as JSON has it.
    pub fn rule(self) -> &'static str {
        match self {
            Grant::AnyPrincipal => "danger/any-principal",
            Grant::AllActions => "danger/all-actions",
            Grant::AllActionsExcept => "danger/all-actions-except",
            Grant::AllIamActions => "danger/all-iam-actions",
            Grant::PassRoleAnyRole => "danger/pass-role-any-role",
        }
    }

    /// Why this grant is dangerous, for a person.
    pub fn why(self) -> &'static str {
        match self {
            Grant::AnyPrincipal => {
                "any principal may assume this role (every AWS account, every identity provider)"
            }
            Grant::AllActions => "allows every action on every resource (administrator access)",
            Grant::AllActionsExcept => {
                "allows every action that NotAction does not name, on every resource"
            }
            Grant::AllIamActions => {
                "allows every IAM action on every resource: whoever holds it can grant \
                 themselves anything"
            }
            Grant::PassRoleAnyRole => {
                "allows iam:PassRole on every role: whoever holds it can hand any role, with \
                 all its permissions, to a service they control"
            }
        }
    }
}

/// AWS managed policies whose documents grant one of the sweeping [`Grant`]s, by name: a role
/// that attaches one by ARN holds that grant as surely as one that writes it inline.
const SWEEPING_AWS_MANAGED: &[(&str, Grant)] = &[
    ("AdministratorAccess", Grant::AllActions),
    ("PowerUserAccess", Grant::AllActionsExcept),
    ("IAMFullAccess", Grant::AllIamActions),
];

/// The sweeping grant of an AWS managed policy ARN (any partition), if it is one of those.
pub fn aws_managed_grant(arn: &str) -> Option<Grant> {
    let arn = crate::arn::Arn::parse(arn).ok()?;
    if !arn.is_aws_managed_policy() {
        return None;
    }
    let name = arn.name()?;
    SWEEPING_AWS_MANAGED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, grant)| *grant)
}

/// A dangerous statement of one document; `path` is relative to the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: FieldPath,
    pub grant: Grant,
    /// The statement has a Condition: it may narrow the grant, but it is all that does.
    pub conditional: bool,
}

/// The dangerous statements of one document.
pub fn findings(doc: &Value, kind: PolicyKind) -> Vec<Finding> {
    super::statements_at(doc, &FieldPath::default())
        .into_iter()
        .filter(|(_, s)| allows(s))
        .filter_map(|(path, s)| {
            let (at, grant) = match kind {
                PolicyKind::Trust => any_principal(s)?,
                PolicyKind::Identity => sweeping_action(s)?,
            };
            Some(Finding {
                path: path.join(&at),
                grant,
                conditional: s.get("Condition").is_some(),
            })
        })
        .collect()
}

fn allows(statement: &Value) -> bool {
    statement
        .get("Effect")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("allow"))
}

/// A string or a list of strings, each with its path below `field`.
fn strings<'v>(field: &FieldPath, value: &'v Value) -> Vec<(FieldPath, &'v str)> {
    match value {
        Value::String(s) => vec![(field.clone(), s.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((field.index(i), v.as_str()?)))
            .collect(),
        _ => Vec::new(),
    }
}

fn any_principal(statement: &Value) -> Option<(FieldPath, Grant)> {
    let field = FieldPath::default().key("Principal");
    match statement.get("Principal")? {
        Value::String(s) if s == "*" => Some((field, Grant::AnyPrincipal)),
        Value::Object(types) => types.iter().find_map(|(kind, ids)| {
            let at = field.key(kind.as_str());
            let (at, _) = strings(&at, ids).into_iter().find(|(_, id)| *id == "*")?;
            Some((at, Grant::AnyPrincipal))
        }),
        _ => None,
    }
}

/// The most sweeping grant of an identity statement on every resource, if any.
fn sweeping_action(statement: &Value) -> Option<(FieldPath, Grant)> {
    let root = FieldPath::default();
    let every_resource = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(r), _) => strings(&root, r).iter().any(|(_, r)| is_every_resource(r)),
        // Allow with NotResource: every resource but the ones named.
        (None, Some(_)) => true,
        (None, None) => false,
    };
    if !every_resource {
        return None;
    }
    if let Some(not) = statement.get("NotAction") {
        let field = root.key("NotAction");
        let excluded = strings(&field, not);
        // `NotAction: "*"` allows nothing.
        if excluded.iter().any(|(_, a)| covers_every_action(a)) {
            return None;
        }
        return Some((field, Grant::AllActionsExcept));
    }
    let actions = strings(&root.key("Action"), statement.get("Action")?);
    let most = |test: fn(&str) -> bool, grant: Grant| {
        actions
            .iter()
            .find(|(_, a)| test(&a.to_ascii_lowercase()))
            .map(|(at, _)| (at.clone(), grant))
    };
    most(covers_every_action, Grant::AllActions)
        .or_else(|| most(covers_every_iam_action, Grant::AllIamActions))
        .or_else(|| most(|a| glob("iam:passrole", a), Grant::PassRoleAnyRole))
}

/// `*` (or `**`…), and `arn:*`: every ARN is every resource.
fn is_every_resource(resource: &str) -> bool {
    resource.bytes().all(|b| b == b'*') || resource == "arn:*"
}

/// `*` and `*:*` (an action is always `service:name`). `action` is lower case.
fn covers_every_action(action: &str) -> bool {
    (!action.is_empty() && action.bytes().all(|b| b == b'*')) || action == "*:*"
}

/// A pattern that matches `iam:` followed by anything: it ends in `*`, and what comes before
/// matches a prefix of `iam:` (`iam:*`, `ia*`, `*:*`, `i?m:*`). `action` is lower case.
fn covers_every_iam_action(action: &str) -> bool {
    let Some(head) = action.strip_suffix('*') else {
        return false;
    };
    (0..="iam:".len()).any(|n| glob(&"iam:"[..n], head))
}

/// Whether the IAM wildcard `pattern` matches `text` (both lower case here).
fn glob(text: &str, pattern: &str) -> bool {
    super::glob::matches(pattern, text, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_grants_rule_id_is_its_json_name_under_danger() {
        for g in Grant::ALL {
            let name = serde_json::to_value(g).unwrap();
            assert_eq!(g.rule(), format!("danger/{}", name.as_str().unwrap()));
        }
    }

    fn trust(statement: Value) -> Vec<(String, Grant)> {
        let doc = json!({"Version": "2012-10-17", "Statement": [statement]});
        findings(&doc, PolicyKind::Trust)
            .into_iter()
            .map(|f| (f.path.to_string(), f.grant))
            .collect()
    }

    fn identity(statement: Value) -> Vec<(String, Grant)> {
        let doc = json!({"Version": "2012-10-17", "Statement": statement});
        findings(&doc, PolicyKind::Identity)
            .into_iter()
            .map(|f| (f.path.to_string(), f.grant))
            .collect()
    }

    fn one(path: &str, grant: Grant) -> Vec<(String, Grant)> {
        vec![(path.to_string(), grant)]
    }

    #[test]
    fn trust_policies_open_to_any_principal() {
        use Grant::AnyPrincipal;
        let allow = |principal: Value| json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal});
        let table: Vec<(Value, Vec<(String, Grant)>)> = vec![
            (
                allow(json!("*")),
                one("Statement[0].Principal", AnyPrincipal),
            ),
            (
                allow(json!({"AWS": "*"})),
                one("Statement[0].Principal.AWS", AnyPrincipal),
            ),
            (
                allow(json!({"AWS": ["arn:aws:iam::123456789012:root", "*"]})),
                one("Statement[0].Principal.AWS[1]", AnyPrincipal),
            ),
            (
                allow(json!({"Federated": "*"})),
                one("Statement[0].Principal.Federated", AnyPrincipal),
            ),
            (
                json!({"Effect": "allow", "Action": "sts:AssumeRole", "Principal": "*"}),
                one("Statement[0].Principal", AnyPrincipal),
            ),
            (allow(json!({"Service": "ecs-tasks.amazonaws.com"})), vec![]),
            (
                allow(json!({"AWS": "arn:aws:iam::123456789012:root"})),
                vec![],
            ),
            (allow(json!({"AWS": "123456789012"})), vec![]),
            (
                json!({"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": "*"}),
                vec![],
            ),
        ];
        for (statement, expected) in table {
            assert_eq!(trust(statement.clone()), expected, "{statement}");
        }
    }

    #[test]
    fn identity_statements_that_allow_too_much_on_every_resource() {
        use Grant::*;
        let allow = |action: Value, resource: Value| json!({"Effect": "Allow", "Action": action, "Resource": resource});
        let table: Vec<(Value, Vec<(String, Grant)>)> = vec![
            (
                allow(json!("*"), json!("*")),
                one("Statement.Action", AllActions),
            ),
            (
                allow(json!("*:*"), json!("*")),
                one("Statement.Action", AllActions),
            ),
            (
                allow(json!(["s3:GetObject", "*"]), json!(["arn:aws:s3:::b", "*"])),
                one("Statement.Action[1]", AllActions),
            ),
            (
                allow(json!("iam:*"), json!("*")),
                one("Statement.Action", AllIamActions),
            ),
            (
                allow(json!("IAM:*"), json!("*")),
                one("Statement.Action", AllIamActions),
            ),
            (
                allow(json!("ia*"), json!("*")),
                one("Statement.Action", AllIamActions),
            ),
            (
                allow(json!("i?m:*"), json!("*")),
                one("Statement.Action", AllIamActions),
            ),
            (
                allow(json!("iam:*"), json!("arn:*")),
                one("Statement.Action", AllIamActions),
            ),
            // The most sweeping grant of a statement is the one named.
            (
                allow(json!(["iam:PassRole", "iam:*", "*"]), json!("*")),
                one("Statement.Action[2]", AllActions),
            ),
            (
                allow(json!("iam:PassRole"), json!("*")),
                one("Statement.Action", PassRoleAnyRole),
            ),
            (
                allow(json!("IAM:passrole"), json!("*")),
                one("Statement.Action", PassRoleAnyRole),
            ),
            (
                allow(json!(["iam:GetRole", "iam:Pass*"]), json!("*")),
                one("Statement.Action[1]", PassRoleAnyRole),
            ),
            (
                allow(json!("iam:*Role"), json!("*")),
                one("Statement.Action", PassRoleAnyRole),
            ),
            (
                json!({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}),
                one("Statement.NotAction", AllActionsExcept),
            ),
            (
                json!({"Effect": "Allow", "Action": "iam:*", "NotResource": "arn:aws:iam::123456789012:role/x"}),
                one("Statement.Action", AllIamActions),
            ),
            // Not dangerous: named resources, narrow actions, Deny, NotAction "*".
            (allow(json!("*"), json!("arn:aws:s3:::bucket/*")), vec![]),
            (
                allow(
                    json!("iam:PassRole"),
                    json!("arn:aws:iam::123456789012:role/app"),
                ),
                vec![],
            ),
            (allow(json!("iam:Get*"), json!("*")), vec![]),
            (allow(json!("iam:*Policy"), json!("*")), vec![]),
            (allow(json!("s3:*"), json!("*")), vec![]),
            (
                allow(json!("ecr:GetAuthorizationToken"), json!("*")),
                vec![],
            ),
            (
                json!({"Effect": "Deny", "Action": "*", "Resource": "*"}),
                vec![],
            ),
            (
                json!({"Effect": "Allow", "NotAction": "*", "Resource": "*"}),
                vec![],
            ),
            (
                json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "arn:aws:s3:::b"}),
                vec![],
            ),
        ];
        for (statement, expected) in table {
            assert_eq!(identity(statement.clone()), expected, "{statement}");
        }
    }

    #[test]
    fn every_statement_is_read_and_conditions_are_noted() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
        ]});
        let found = findings(&doc, PolicyKind::Identity);
        let summary: Vec<(String, Grant, bool)> = found
            .into_iter()
            .map(|f| (f.path.to_string(), f.grant, f.conditional))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Statement[1].Action".into(), Grant::PassRoleAnyRole, true),
                ("Statement[2].Action".into(), Grant::AllActions, false),
            ]
        );
    }

    #[test]
    fn malformed_documents_find_nothing_and_never_panic() {
        for doc in [
            json!({}),
            json!({"Statement": 3}),
            json!({"Statement": [null, 1, "x", {"Effect": 1}]}),
            json!({"Statement": {"Effect": "Allow", "Action": {"a": 1}, "Resource": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Principal": ["*"]}}),
        ] {
            assert_eq!(findings(&doc, PolicyKind::Identity), vec![], "{doc}");
            assert_eq!(findings(&doc, PolicyKind::Trust), vec![], "{doc}");
        }
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        for (text, pattern, matches) in [
            ("iam:passrole", "iam:passrole", true),
            ("iam:passrole", "iam:pass*", true),
            ("iam:passrole", "*", true),
            ("iam:passrole", "iam:*role", true),
            ("iam:passrole", "iam:pass?ole", true),
            ("iam:passrole", "iam:pass", false),
            ("iam:passrole", "iam:get*", false),
            ("iam:passrole", "iam:passrole?", false),
            ("", "*", true),
            ("", "", true),
            ("a", "", false),
        ] {
            assert_eq!(glob(text, pattern), matches, "{text} ~ {pattern}");
        }
    }
}
