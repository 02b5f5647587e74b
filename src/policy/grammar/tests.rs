//! IAM's policy grammar, rule by rule: documents accepted and refused, with their messages.
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
                && errors[0]
                    .contains("is not allowed in a trust policy: IAM allows only sts:AssumeRole, "),
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
        errors[0]
            .starts_with("Statement[0].Actions: unknown field `Actions`; did you mean `Action`?")
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
