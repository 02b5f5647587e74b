//! SARIF 2.1.0, the format code scanning reads (GitHub, GitLab, Azure DevOps): one run of
//! iam-warden whose results are the findings of validate or plan, each at its file, line and
//! column under a stable rule id.

use serde_json::{Value, json};

use super::findings::{Finding, Level};
use crate::guardrails::rules as guardrail;
use crate::manifest::diagnostic::rules;
use crate::policy::danger::Grant;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Rules of plan's conflicts: the manifest is fine, but the account holds something it may not
/// change.
pub mod conflict {
    pub const NOT_OWNED: &str = "conflict/not-owned";
    pub const IMMUTABLE: &str = "conflict/immutable";
    pub const OTHER_PARTITION: &str = "conflict/other-partition";
}

/// Every rule a result can name, with what it means. Results refer to them by index, and code
/// scanning shows the description beside each alert.
fn catalogue() -> Vec<(&'static str, &'static str, Level)> {
    let mut all = vec![
        (
            rules::FILE,
            "The file cannot be read as a manifest file",
            Level::Error,
        ),
        (rules::YAML_SYNTAX, "The YAML is malformed", Level::Error),
        (
            rules::MANIFEST,
            "A field is unknown, missing or malformed, a variable is unresolved, or a value \
             breaks one of IAM's rules",
            Level::Error,
        ),
        (
            rules::ACK,
            "An ACK object iam-warden cannot read as written",
            Level::Error,
        ),
        (
            rules::REFERENCE,
            "Across documents: a resource declared twice, a {ref} to nothing, one OIDC url twice",
            Level::Error,
        ),
        (
            rules::ACCOUNTS,
            "The accounts file is invalid",
            Level::Error,
        ),
        (
            rules::UNSELECTED,
            "The manifest's iam-warden/accounts selects none of the accounts",
            Level::Warning,
        ),
        (
            guardrail::REQUIRE_PERMISSIONS_BOUNDARY,
            "Guardrail: every role must carry the required permissions boundary",
            Level::Error,
        ),
        (
            guardrail::ALLOWED_PATH_PREFIX,
            "Guardrail: roles and policies must live under an allowed path",
            Level::Error,
        ),
        (
            guardrail::DENY_ACTION,
            "Guardrail: an Allow statement grants a denied action",
            Level::Error,
        ),
        (
            guardrail::DENY_TRUST_PRINCIPAL,
            "Guardrail: a trust policy allows a denied principal",
            Level::Error,
        ),
        (
            guardrail::ALLOWED_TRUST_ACCOUNT,
            "Guardrail: a trust policy names an account outside the allowed ones",
            Level::Error,
        ),
        (
            guardrail::ALLOWED_OIDC_PROVIDER_URL,
            "Guardrail: an OIDC provider url outside the allowed ones",
            Level::Error,
        ),
        (
            conflict::NOT_OWNED,
            "The resource exists in the account without this owner's tag: left alone",
            Level::Error,
        ),
        (
            conflict::IMMUTABLE,
            "A field IAM cannot change in place differs: the resource is left alone",
            Level::Error,
        ),
        (
            conflict::OTHER_PARTITION,
            "An ARN names another partition than the account's",
            Level::Error,
        ),
    ];
    all.extend(
        Grant::ALL
            .iter()
            .map(|g| (g.rule(), g.why(), Level::Warning)),
    );
    all
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

/// The SARIF log of `findings`.
pub fn log(findings: &[Finding]) -> Value {
    let catalogue = catalogue();
    let rules: Vec<Value> = catalogue
        .iter()
        .map(|(id, text, l)| {
            json!({
                "id": id,
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": level(*l)},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.level),
                "message": {"text": f.described()},
                "locations": [{"physicalLocation": location(f)}],
            });
            if let Some(i) = catalogue.iter().position(|(id, _, _)| *id == f.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(accounts) = &f.accounts {
                result["properties"] = json!({"accounts": accounts});
            }
            result
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "iam-warden",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "utf16CodeUnits",
            "results": results,
        }],
    })
}

/// The SARIF log of a run that could not look at all (DIR missing, AWS unreachable): no
/// results, and the reason as the invocation's notification, so that an upload still finds a
/// valid log that says the run failed.
pub fn failed(why: &str) -> Value {
    let mut log = log(&[]);
    log["runs"][0]["invocations"] = json!([{
        "executionSuccessful": false,
        "toolExecutionNotifications": [{"level": "error", "message": {"text": why}}],
    }]);
    log
}

/// A relative path is relative to the checkout, as code scanning wants it (`%SRCROOT%`); an
/// absolute one becomes a `file:` URI. A finding about a whole file points at its first line.
fn location(f: &Finding) -> Value {
    let path = f.file.to_string_lossy().replace('\\', "/");
    let encoded: String = percent_encoding::utf8_percent_encode(&path, URI_PATH).to_string();
    let artifact = if f.file.is_absolute() {
        json!({"uri": format!("file://{encoded}")})
    } else {
        json!({"uri": encoded.trim_start_matches("./"), "uriBaseId": "%SRCROOT%"})
    };
    let mut region = json!({"startLine": f.line.unwrap_or(1)});
    if let Some(c) = f.column {
        region["startColumn"] = json!(c);
    }
    json!({"artifactLocation": artifact, "region": region})
}

/// What a URI path may not hold as is; `/` stays.
const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &'static str, file: &str) -> Finding {
        Finding {
            rule,
            level: Level::Error,
            file: file.into(),
            line: Some(4),
            column: Some(3),
            path: "spec.path".into(),
            message: "must begin with `/`".into(),
            accounts: None,
        }
    }

    #[test]
    fn a_failed_run_is_a_valid_log_that_says_why() {
        let log = failed("cannot read manifests/: no such directory");
        let run = &log["runs"][0];
        assert_eq!(run["results"], json!([]));
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
        assert_eq!(
            run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"],
            "cannot read manifests/: no such directory"
        );
    }

    #[test]
    fn every_rule_id_is_catalogued_once() {
        let ids: Vec<&str> = catalogue().iter().map(|(id, _, _)| *id).collect();
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        for g in Grant::ALL {
            assert!(ids.contains(&g.rule()));
        }
    }

    #[test]
    fn a_result_points_at_its_rule_file_line_and_column() {
        let log = log(&[finding(guardrail::DENY_ACTION, "manifests/a b.yaml")]);
        let run = &log["runs"][0];
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "guardrail/deny-action");
        let i = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            run["tool"]["driver"]["rules"][i]["id"],
            "guardrail/deny-action"
        );
        let loc = &result["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "manifests/a%20b.yaml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(loc["region"]["startLine"], 4);
        assert_eq!(loc["region"]["startColumn"], 3);
        assert_eq!(result["message"]["text"], "spec.path: must begin with `/`");
    }

    #[test]
    fn a_whole_file_finding_points_at_its_first_line_and_an_absolute_path_is_a_file_uri() {
        let mut f = finding(rules::FILE, "/tmp/x/a.yaml");
        f.line = None;
        f.column = None;
        let log = log(&[f]);
        let loc = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "file:///tmp/x/a.yaml");
        assert_eq!(loc["region"], json!({"startLine": 1}));
    }
}
