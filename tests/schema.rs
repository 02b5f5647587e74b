//! The JSON Schema (`iam-warden schema`, deploy/schema/) against the decoder: the same fields at
//! every level, no more and no fewer, and the committed copy equal to what the binary prints.
//! CI validates the example manifests against the committed copy (scripts/check-deploy).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use iam_warden::manifest::fields::{
    INSTANCE_PROFILE_FIELDS, METADATA_FIELDS, OIDC_PROVIDER_FIELDS, POLICY_FIELDS, ROLE_FIELDS,
    TOP_FIELDS,
};
use iam_warden::manifest::schema::{json_schema, json_schema_text};
use serde_json::Value;

const COMMITTED: &str = "deploy/schema/iam-warden.schema.json";

/// The property names of the object schema at `pointer`, which must refuse any other.
fn properties(schema: &Value, pointer: &str) -> BTreeSet<String> {
    let object = schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("the schema has no {pointer}"));
    assert_eq!(
        object["additionalProperties"],
        Value::Bool(false),
        "{pointer} must refuse unknown fields, as the decoder does"
    );
    object["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{pointer} has no properties"))
        .keys()
        .cloned()
        .collect()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

#[test]
fn the_schema_has_exactly_the_fields_the_decoder_accepts() {
    let schema = json_schema();
    for (pointer, fields) in [
        ("", TOP_FIELDS),
        ("/definitions/metadata", METADATA_FIELDS),
        ("/definitions/roleSpec", ROLE_FIELDS),
        ("/definitions/policySpec", POLICY_FIELDS),
        ("/definitions/instanceProfileSpec", INSTANCE_PROFILE_FIELDS),
        ("/definitions/oidcProviderSpec", OIDC_PROVIDER_FIELDS),
    ] {
        assert_eq!(
            properties(&schema, pointer),
            set(fields),
            "schema at `{pointer}` vs the decoder's fields"
        );
    }
}

#[test]
fn each_kind_is_checked_against_its_own_spec() {
    let schema = json_schema();
    let rules: Vec<(String, String)> = schema["allOf"]
        .as_array()
        .expect("allOf")
        .iter()
        .map(|rule| {
            (
                rule["if"]["properties"]["kind"]["const"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                rule["then"]["properties"]["spec"]["$ref"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("Role".into(), "#/definitions/roleSpec".into()),
            ("Policy".into(), "#/definitions/policySpec".into()),
            (
                "InstanceProfile".into(),
                "#/definitions/instanceProfileSpec".into()
            ),
            (
                "OpenIDConnectProvider".into(),
                "#/definitions/oidcProviderSpec".into()
            )
        ]
    );
}

#[test]
fn the_committed_schema_is_what_iam_warden_schema_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_iam-warden"))
        .arg("schema")
        .output()
        .expect("run iam-warden schema");
    assert!(out.status.success(), "iam-warden schema failed: {out:?}");
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(printed, json_schema_text());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == printed,
        "{COMMITTED} is out of date; refresh it with\n  cargo run -q -- schema > {COMMITTED}"
    );
}

const COMMITTED_ACCOUNTS: &str = "deploy/schema/iam-warden-accounts.schema.json";

#[test]
fn the_accounts_schema_has_the_parser_s_fields_and_is_committed() {
    use iam_warden::manifest::accounts::{
        ACCOUNT_FIELDS, ORGANIZATION_FIELDS, TOP_FIELDS as ACCOUNTS_TOP,
    };
    use iam_warden::manifest::schema::{accounts_json_schema, accounts_json_schema_text};
    let schema = accounts_json_schema();
    assert_eq!(properties(&schema, ""), set(ACCOUNTS_TOP));
    assert_eq!(
        properties(&schema, "/definitions/account"),
        set(ACCOUNT_FIELDS)
    );
    assert_eq!(
        properties(&schema, "/definitions/organization"),
        set(ORGANIZATION_FIELDS)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_iam-warden"))
        .args(["schema", "--accounts"])
        .output()
        .expect("run iam-warden schema --accounts");
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(printed, accounts_json_schema_text());
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED_ACCOUNTS))
            .unwrap_or_default();
    assert!(
        committed == printed,
        "{COMMITTED_ACCOUNTS} is out of date; refresh it with\n  cargo run -q -- schema --accounts > {COMMITTED_ACCOUNTS}"
    );
}
