//! Manifests across the accounts of an accounts file: which accounts a manifest applies to,
//! and `${account.name}` / `${account.id}`.

use super::*;

fn in_account(name: &str, id: &str) -> Variables {
    let mut v = Variables::default().for_account(name, id);
    v.set("env", name);
    v
}

fn selected(annotation: &str, vars: &Variables) -> FileReport {
    let text = role("r-${account.name}", "  tags: {env: \"${var.env}\"}\n").replace(
        "  name: r-${account.name}\n",
        &format!("  name: r-${{account.name}}\n  annotations: {{iam-warden/accounts: \"{annotation}\"}}\n"),
    );
    load_text_with(&text, vars)
}

#[test]
fn a_manifest_applies_to_the_accounts_its_annotation_selects() {
    for (annotation, account, applies) in [
        ("prod-*", "prod-eu", true),
        ("prod-*", "dev", false),
        ("prod-*,!prod-legacy", "prod-legacy", false),
        ("!dev", "stage", true),
        ("1111*", "anything", true),
        ("*", "dev", true),
    ] {
        let report = selected(annotation, &in_account(account, "111122223333"));
        assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
        assert_eq!(
            report.resources.len(),
            usize::from(applies),
            "{annotation} in {account}"
        );
    }
}

#[test]
fn an_account_a_manifest_skips_need_not_define_its_variables() {
    let mut bare = Variables::default().for_account("dev", "222222222222");
    let skipped = selected("prod", &bare);
    assert!(skipped.diagnostics.is_empty() && skipped.resources.is_empty());
    // Selected, the same undefined variable is an error.
    bare.set("unrelated", "x");
    let report = selected("dev", &bare);
    assert!(
        report.diagnostics[0]
            .message
            .contains("variable `env` is not defined")
    );
}

#[test]
fn account_built_ins_are_the_account_s() {
    let report = selected("*", &in_account("prod", "111111111111"));
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{report:?}")
    };
    assert_eq!(r.name, "r-prod");
    assert_eq!(r.tags["env"], "prod");
    let text = role("r", "  tags: {id: \"${account.id}\"}\n");
    let report = load_text_with(&text, &in_account("prod", "011111111111"));
    let [Resource::Role(r)] = report.resources.as_slice() else {
        panic!("{report:?}")
    };
    // As written: an id never becomes a number.
    assert_eq!(r.tags["id"], "011111111111");
}

#[test]
fn without_an_accounts_file_account_id_is_the_caller_s_and_account_name_is_an_error() {
    let vars = Variables::default();
    let text = role("r", "  tags: {id: \"${account.id}\"}\n");
    let report = load_text_with(&text, &vars);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert!(
        vars.builtins_read(),
        "the caller's id: loaded again once known"
    );
    let line = one_error(
        &role("r-${account.name}", ""),
        "metadata.name",
        "give one with --accounts FILE",
    );
    assert_eq!(line, 4);
    one_error(
        &role("r", "  tags: {x: \"${account.region}\"}\n"),
        "spec.tags.x",
        "is not a built-in variable (per account: ${account.name}, ${account.id})",
    );
}

#[test]
fn without_an_accounts_file_a_selector_matches_the_caller_s_account_id() {
    let vars = Variables::default();
    let text = role("r", "").replace(
        "  name: r\n",
        "  name: r\n  annotations: {iam-warden/accounts: \"9999*\"}\n",
    );
    let report = load_text_with(&text, &vars);
    assert!(
        report.resources.is_empty(),
        "placeholder id 000000000000 is not selected"
    );
    assert!(vars.builtins_read(), "judged again with the caller's id");
}

#[test]
fn a_malformed_selector_is_an_error_at_the_annotation() {
    let text = role("r", "").replace(
        "  name: r\n",
        "  name: r\n  annotations:\n    iam-warden/accounts: \"prod,,dev\"\n",
    );
    let line = one_error(
        &text,
        "metadata.annotations.iam-warden/accounts",
        "holds an empty item",
    );
    assert_eq!(line, 6);
}

#[test]
fn a_variable_in_the_accounts_annotation_is_an_error() {
    let mut vars = in_account("prod", "111111111111");
    vars.set("sel", "prod");
    let text = role("r", "").replace(
        "  name: r\n",
        "  name: r\n  annotations:\n    iam-warden/accounts: \"${var.sel}\"\n",
    );
    let report = load_text_with(&text, &vars);
    assert!(report.resources.is_empty());
    let [d] = report.diagnostics.as_slice() else {
        panic!("{:#?}", report.diagnostics)
    };
    assert_eq!(d.line, Some(6));
    assert_eq!(
        d.path.to_string(),
        "metadata.annotations.iam-warden/accounts"
    );
    assert!(d.message.contains("holds a variable"), "{}", d.message);
}

#[test]
fn a_document_for_other_accounts_is_reported_as_such() {
    let report = selected("dev", &in_account("prod", "111111111111"));
    assert!(report.resources.is_empty() && report.diagnostics.is_empty());
    assert_eq!(report.elsewhere, [(5, "dev".to_string())]);
}
