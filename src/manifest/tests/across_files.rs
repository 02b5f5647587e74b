//! Loading a directory and resolving values: files, links, duplicates across files, refs,
//! variables and numbers as written, and the reload cache.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn a_directory_is_loaded_recursively_with_dot_entries_skipped_and_links_read_once() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "roles/a.yaml", &role("a", ""));
    write(d.path(), "policies/deep/p.yml", &policy("p", ""));
    write(d.path(), ".git/ignored.yaml", "not: [valid");
    write(d.path(), "notes.txt", "not yaml");
    symlink(d.path().join("roles/a.yaml"), d.path().join("link.yaml")).unwrap();
    let loaded = load(d.path(), &Variables::default()).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.files, 2);
    assert_eq!(loaded.state.roles.len(), 1);
    assert_eq!(loaded.state.policies.len(), 1);
}

#[test]
fn duplicates_across_files_name_both_places() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", &role("same", ""));
    write(
        d.path(),
        "b.yaml",
        &format!("# comment\n{}", role("same", "")),
    );
    let loaded = load(d.path(), &Variables::default()).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1);
    let msg = loaded.diagnostics[0].to_string();
    assert!(
        msg.contains("b.yaml:2: metadata.name: Role `same` is declared twice (also at "),
        "{msg}"
    );
    assert!(msg.contains("a.yaml:1)"), "{msg}");
}

#[test]
fn names_that_differ_only_in_case_are_duplicates() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", &role("MyRole", ""));
    write(d.path(), "b.yaml", &role("myrole", ""));
    write(d.path(), "c.yaml", &policy("Shared", ""));
    write(d.path(), "d.yaml", &policy("SHARED", ""));
    let loaded = load(d.path(), &Variables::default()).unwrap();
    let msgs: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].contains("b.yaml:1: metadata.name: Role `myrole` is declared twice (also at "),
        "{msgs:?}"
    );
    assert!(
        msgs[0].contains("a.yaml:1, as `MyRole`: IAM names ignore case)"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("Policy `SHARED` is declared twice"),
        "{msgs:?}"
    );
}

#[test]
fn tag_keys_that_differ_only_in_case_are_one_key_and_the_owner_key_is_reserved_in_any_case() {
    let text = role("r", "  tags:\n    Team: a\n    team: b\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("spec.tags.team: tag key `team` is the same key as `Team`"),
        "{errs:?}"
    );
    one_error(
        &role("r", "  tags:\n    Iam-Warden/Owner: me\n"),
        "spec.tags.Iam-Warden/Owner",
        "is set by iam-warden",
    );
}

#[test]
fn refs_name_policies_ignoring_case() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.yaml", &policy("App-Policy", ""));
    write(
        d.path(),
        "r.yaml",
        &role("r", "  managedPolicies:\n    - ref: app-policy\n"),
    );
    let loaded = load(d.path(), &Variables::default()).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
}

#[test]
fn documents_descriptions_and_paths_that_iam_refuses_are_refused_first() {
    one_error(
        &role("r", "  description: \"snow \\u2603\"\n"),
        "spec.description",
        "U+2603",
    );
    one_error(
        &policy("p", "  description: \"bell \\a\"\n"),
        "spec.description",
        "U+0007",
    );
    let line = one_error(&role("r", "  path: /a//b/\n"), "spec.path", "empty segment");
    assert_eq!(line, 12);
    one_error(
        &policy("p", "").replace("Resource: \"*\"", "Resource: \"arn:aws:s3:::b/\\u2603\""),
        "spec.document.Statement[0].Resource",
        "U+2603",
    );
    let trust = role("r", "").replace("Principal:", "NotPrincipal:");
    one_error(
        &trust,
        "spec.assumeRolePolicy.Statement[0].NotPrincipal",
        "not allowed in a trust policy",
    );
    let effect = role("r", "").replace("Effect: Allow", "Effect: allow");
    one_error(
        &effect,
        "spec.assumeRolePolicy.Statement[0].Effect",
        "case matters",
    );
}

#[test]
fn a_role_and_a_policy_may_share_a_name() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.yaml",
        &format!("{}\n---\n{}", role("x", ""), policy("x", "")),
    );
    assert!(
        load(d.path(), &Variables::default())
            .unwrap()
            .diagnostics
            .is_empty()
    );
}

#[test]
fn refs_must_name_a_declared_policy() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.yaml",
        &role(
            "a",
            "  managedPolicies: [{ref: p}]\n  permissionsBoundary: {ref: q}\n",
        ),
    );
    write(d.path(), "p.yaml", &policy("p", ""));
    let loaded = load(d.path(), &Variables::default()).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1, "{:#?}", loaded.diagnostics);
    let msg = loaded.diagnostics[0].to_string();
    assert!(msg.contains("spec.permissionsBoundary: {ref: q} names a Policy that no manifest declares (declared: p)"), "{msg}");
}

fn trust_with_condition(condition: &str) -> String {
    role("r", "").replace(
        "        Action: sts:AssumeRole\n",
        &format!("        Action: sts:AssumeRole\n        Condition:\n{condition}"),
    )
}

fn condition_value(r: &DesiredRole, operator: &str, key: &str) -> serde_json::Value {
    r.assume_role_policy.value()["Statement"][0]["Condition"][operator][key].clone()
}

#[test]
fn a_substituted_value_is_a_string_exactly_as_written() {
    let mut vars = Variables::default();
    vars.set("account_id", "012345678901");
    vars.set("ext", "123456789012345678901234");
    let text = trust_with_condition(
        "          StringEquals:\n            aws:SourceAccount: ${var.account_id}\n            sts:ExternalId: ${var.ext}\n",
    );
    let report = load_text_with(&text, &vars);
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    assert_eq!(
        condition_value(r, "StringEquals", "aws:SourceAccount"),
        serde_json::json!("012345678901")
    );
    assert_eq!(
        condition_value(r, "StringEquals", "sts:ExternalId"),
        serde_json::json!("123456789012345678901234")
    );
    assert!(r.assume_role_policy.to_json().contains(r#""012345678901""#));
}

#[test]
fn an_unquoted_number_must_reach_iam_exactly_as_written() {
    for written in [
        "012345678901",
        "123456789012345678901234",
        "9007199254740993",
        "1.10",
        "1e3",
        "0.10000000000000000001",
    ] {
        let text = trust_with_condition(&format!(
            "          StringEquals:\n            aws:SourceAccount: {written}\n"
        ));
        let report = load_text(&text);
        assert_eq!(
            report.diagnostics.len(),
            1,
            "{written}: {:#?}",
            report.diagnostics
        );
        let d = &report.diagnostics[0];
        assert_eq!(
            d.path.to_string(),
            "spec.assumeRolePolicy.Statement[0].Condition.StringEquals.aws:SourceAccount"
        );
        assert!(d.message.contains("quote it"), "{written}: {}", d.message);
        assert!(d.message.contains(written), "{}", d.message);
        assert_eq!(d.line, Some(14), "{d}");
    }
    // Numbers JSON keeps exactly are fine, and so is the same value quoted.
    for ok in [
        "10",
        "-3",
        "1.5",
        "[100.01, 200.2]",
        "0.30000000000000004",
        "\"1.5\"",
        "\"012345678901\"",
    ] {
        let text = trust_with_condition(&format!(
            "          NumericLessThan:\n            aws:MultiFactorAuthAge: {ok}\n"
        ));
        assert!(load_text(&text).diagnostics.is_empty(), "{ok}");
    }
}

#[test]
fn numbers_in_a_json_string_document_must_round_trip_exactly() {
    let doc = |n: &str| {
        format!(
            "  inlinePolicies:\n    p: '{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Action\": \"s3:ListBucket\", \"Resource\": \"*\", \"Condition\": {{\"NumericLessThan\": {{\"s3:max-keys\": {n}}}}}}}]}}'\n"
        )
    };
    for ok in ["10", "1.5", "100.01"] {
        let report = load_text(&role("r", &doc(ok)));
        assert!(
            report.diagnostics.is_empty(),
            "{ok}: {:?}",
            report.diagnostics
        );
    }
    for bad in ["1.10", "1e3", "123456789012345678901234"] {
        let line = one_error(
            &role("r", &doc(bad)),
            "spec.inlinePolicies.p.Statement[0].Condition.NumericLessThan.s3:max-keys",
            &format!("`{bad}` would not reach IAM as written"),
        );
        assert_eq!(line, 13, "the line of the string");
    }
    one_error(
        &role("r", &doc("012")),
        "spec.inlinePolicies.p",
        "quote numbers such as account ids",
    );
}

#[test]
fn a_json_string_document_with_a_duplicate_key_is_refused() {
    let text = role(
        "r",
        "  inlinePolicies:\n    p: '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Deny\", \"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"}]}'\n",
    );
    one_error(
        &text,
        "spec.inlinePolicies.p.Statement[0].Effect",
        "duplicate key `Effect`",
    );
}

#[test]
fn a_variable_may_name_a_condition_key_but_no_other_key_of_a_document() {
    let mut vars = Variables::default();
    vars.set("k", "NotAction");
    let yaml = role(
        "r",
        "  inlinePolicies:\n    p:\n      Version: \"2012-10-17\"\n      Statement:\n        - {Effect: Allow, \"${var.k}\": \"s3:GetObject\", Resource: \"*\"}\n",
    );
    let report = load_text_with(&yaml, &vars);
    assert!(
        report.diagnostics.iter().any(|d| d.path.to_string()
            == "spec.inlinePolicies.p.Statement[0].${var.k}"
            && d.message.contains("allowed only for condition keys")),
        "{:#?}",
        report.diagnostics
    );
    let json = role(
        "r",
        "  inlinePolicies:\n    p: '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"${var.k}\": \"s3:GetObject\", \"Resource\": \"*\"}]}'\n",
    );
    let report = load_text_with(&json, &vars);
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("allowed only for condition keys")),
        "{:#?}",
        report.diagnostics
    );
    // Tags and inline policy names are no document keys.
    vars.set("team", "team");
    let tags = role("r", "  tags:\n    ${var.team}: data\n");
    assert!(load_text_with(&tags, &vars).diagnostics.is_empty());
}

#[test]
fn iam_wardens_own_annotations_are_checked_whatever_their_case() {
    for key in ["Iam-Warden/Adopt", "iam-warden/adpot"] {
        let text = role("r", "").replace(
            "metadata:\n  name: r\n",
            &format!("metadata:\n  name: r\n  annotations: {{{key}: \"true\"}}\n"),
        );
        let d = load_text(&text).diagnostics;
        assert_eq!(d.len(), 1, "{key}: {d:#?}");
        assert!(
            d[0].message.contains("did you mean `iam-warden/adopt`"),
            "{}",
            d[0].message
        );
    }
    let other = role("r", "").replace(
        "metadata:\n  name: r\n",
        "metadata:\n  name: r\n  annotations: {example.com/owner: me}\n",
    );
    assert!(load_text(&other).diagnostics.is_empty());
}

#[test]
fn variables_in_mapping_keys_are_substituted_and_checked() {
    let mut vars = Variables::default();
    vars.set("oidc", "oidc.eks.eu-west-1.amazonaws.com/id/ABC");
    let text = trust_with_condition(
        "          StringEquals:\n            \"${var.oidc}:sub\": system:serviceaccount:ns:sa\n",
    );
    let report = load_text_with(&text, &vars);
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    assert_eq!(
        condition_value(
            r,
            "StringEquals",
            "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"
        ),
        serde_json::json!("system:serviceaccount:ns:sa")
    );
    let report = load_text(&text);
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    assert!(
        report.diagnostics[0]
            .message
            .contains("variable `oidc` is not defined")
    );
    assert_eq!(
        report.diagnostics[0].path.to_string(),
        "spec.assumeRolePolicy.Statement[0].Condition.StringEquals.${var.oidc}:sub"
    );
    // Two keys that become one are a duplicate.
    vars.set("a", "k");
    let dup = role("r", "  tags:\n    ${var.a}: x\n    k: y\n");
    let report = load_text_with(&dup, &vars);
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("duplicate key `k`")),
        "{:#?}",
        report.diagnostics
    );
}

#[test]
fn a_value_cannot_change_the_structure_of_a_json_string_document() {
    let mut vars = Variables::default();
    vars.set(
        "svc",
        r#"ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}, {"Effect": "Allow", "Principal": {"AWS": "*"#,
    );
    // Into an AWS principal, whose values are not checked for shape: the value stays one
    // string in the one statement written.
    let aws = "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata:\n  name: r\nspec:\n  assumeRolePolicy: '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"${var.svc}\"}, \"Action\": \"sts:AssumeRole\"}]}'\n";
    let report = load_text_with(aws, &vars);
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    let statements = r.assume_role_policy.value()["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["Principal"]["AWS"],
        serde_json::json!(vars.get("svc").unwrap())
    );
    // Into a service principal: refused, since it is no service name.
    let text = aws.replace("\"AWS\"", "\"Service\"");
    let report = load_text_with(&text, &vars);
    assert!(report.resources.is_empty());
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("is not a service principal")),
        "{:#?}",
        report.diagnostics
    );
    vars.set("name", "ecs-tasks.amazonaws.com");
    let report = load_text_with(&text.replace("${var.svc}", "${var.name}"), &vars);
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    assert_eq!(
        r.assume_role_policy.value()["Statement"][0]["Principal"]["Service"],
        serde_json::json!("ecs-tasks.amazonaws.com")
    );
}

#[test]
fn a_cached_reload_equals_reading_every_file_again_and_keeps_only_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| fs::write(d.join(name), text).unwrap();
    write("a.yaml", &role("a", "  description: one\n"));
    write("b.yaml", &policy("b", ""));
    write("c.yaml", "kind: Role\nmetadata: {name: c}\n");
    let mut cache = ParseCache::default();
    let mut vars = Variables::default();
    let guardrails = NoRules;
    let same = |cache: &mut ParseCache, vars: &Variables| {
        let cached = load_dir_cached(d, vars, &guardrails, cache)
            .unwrap()
            .expect("a change since the last load");
        assert_eq!(cached, load_dir_guarded(d, vars, &guardrails).unwrap());
        cached
    };
    let first = same(&mut cache, &vars);
    assert_eq!(first.len(), 3);
    assert!(!first[2].is_valid());
    // Only the valid files are kept for the next reload; an invalid one counts as a change.
    assert_eq!(cache.files.len(), 2);
    assert_eq!(same(&mut cache, &vars), first);
    fs::remove_file(d.join("c.yaml")).unwrap();
    assert_eq!(same(&mut cache, &vars).len(), 2);
    assert_eq!(
        load_dir_cached(d, &vars, &guardrails, &mut cache).unwrap(),
        None
    );
    write("c.yaml", "kind: Role\nmetadata: {name: c}\n");
    // An edit, a new file, a removed one.
    write("a.yaml", &role("a", "  description: two\n"));
    write("d.yaml", &role("d", "  description: ${var.what}\n"));
    fs::remove_file(d.join("b.yaml")).unwrap();
    let edited = same(&mut cache, &vars);
    assert!(!edited[2].is_valid(), "an unset variable is an error");
    assert_eq!(cache.files.len(), 1);
    // New values: every file is checked with them.
    vars.set("what", "three");
    let valued = same(&mut cache, &vars);
    assert!(
        valued.iter().filter(|r| r.is_valid()).count() == 2,
        "{valued:?}"
    );
    assert_eq!(cache.files.len(), 2);
    // A file that disappears is a change, valid or not.
    fs::remove_file(d.join("c.yaml")).unwrap();
    assert_eq!(same(&mut cache, &vars).len(), 2);
    fs::remove_file(d.join("d.yaml")).unwrap();
    assert_eq!(same(&mut cache, &vars).len(), 1);
    assert_eq!(
        load_dir_cached(d, &vars, &guardrails, &mut cache).unwrap(),
        None
    );
}
