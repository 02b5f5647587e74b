use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;

fn at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339(rfc3339).unwrap()
}

fn one_account() -> Value {
    json!({
        "ready": true,
        "resources": [
            {"kind": "Role", "name": "app", "arn": "arn:aws:iam::123456789012:role/app", "state": "in-sync",
             "lastReconcile": "2026-12-02T10:00:00Z", "lastError": null, "driftCorrections": 2,
             "recentCorrections": [{"at": "2026-12-02T09:59:00Z", "changes": ["set tags team=data (was x)"]}]},
            {"kind": "Policy", "name": "p", "arn": null, "state": "error",
             "lastReconcile": "2026-12-02T09:59:50Z", "lastError": "AccessDenied: no", "driftCorrections": 0},
            {"kind": "Role", "name": "hand", "arn": null, "state": "conflict",
             "lastReconcile": null, "lastError": "exists without an iam-warden/owner tag", "driftCorrections": 0},
        ],
        "fileErrors": [],
        "aws": {"reachable": true, "lastError": null},
        "dirError": null, "valuesError": null, "pruneRefused": null,
    })
}

#[test]
fn reads_one_accounts_status_as_one_unnamed_account() {
    let s = Status::from_json(one_account()).unwrap();
    assert!(s.ready && !s.many());
    assert_eq!(s.accounts.len(), 1);
    assert_eq!(s.resources.len(), 3);
    assert_eq!(
        s.resources[0].recent_corrections[0].changes,
        ["set tags team=data (was x)"]
    );
    assert_eq!(s.counts(), [("error", 1), ("conflict", 1), ("in-sync", 1)]);
    // Positions are /status's own, so `--output json` prints the daemon's entry.
    assert_eq!(s.positions_of("role/HAND"), [2]);
    assert_eq!(one_account()["resources"][2]["name"], "hand");
    assert!(s.positions_of("Role/p").is_empty(), "p is a Policy");
}

#[test]
fn reads_many_accounts_with_their_conditions() {
    let s = Status::from_json(json!({
        "ready": false,
        "accounts": [
            {"name": "prod", "id": "111111111111", "unreachable": null, "ready": true, "fileErrors": [],
             "aws": {"reachable": true, "lastError": null}, "dirError": null, "valuesError": null, "pruneRefused": null},
            {"name": "dev", "id": "222222222222", "unreachable": "AssumeRole arn:aws:iam::222222222222:role/x: AccessDenied",
             "ready": false, "fileErrors": ["m/a.yaml:3: spec.path: bad"], "aws": {"reachable": false, "lastError": "timeout"},
             "dirError": null, "valuesError": null, "pruneRefused": "12 deletions, --max-prune 10"},
        ],
        "resources": [{"account": "prod", "kind": "Role", "name": "app", "state": "drifted", "driftCorrections": 0}],
    }))
    .unwrap();
    assert!(s.many());
    let texts: Vec<String> = s.conditions().into_iter().map(|c| c.text).collect();
    assert_eq!(
        texts,
        [
            "account dev: cannot be reached, its resources unknown: AssumeRole arn:aws:iam::222222222222:role/x: AccessDenied",
            "account dev: invalid manifests: m/a.yaml:3: spec.path: bad",
            "account dev: prune held back: 12 deletions, --max-prune 10",
        ],
        "one line for an account that cannot be reached, not also `AWS unreachable`"
    );
    let mut many_errors = s.clone();
    many_errors.accounts[1].file_errors = (0..180)
        .map(|i| format!("f{i}.yaml:1: {}", "x".repeat(2000)))
        .collect();
    let errors = &many_errors.conditions()[1].text;
    assert!(errors.ends_with("… (and 179 more)"), "{errors}");
    assert!(errors.len() < 400, "one bounded line: {}", errors.len());
    assert_eq!(s.positions_of("prod/role/APP").len(), 1);
    assert_eq!(s.positions_of("Role/app").len(), 1);
    assert!(s.positions_of("dev/Role/app").is_empty());
}

#[test]
fn anything_else_is_not_a_status() {
    assert!(Status::from_json(json!({"hello": 1})).is_err());
    assert!(Status::from_json(json!([])).is_err());
}

#[test]
fn the_exit_code_is_1_for_errors_and_conflicts_2_for_drift_or_pending_0_in_sync() {
    let r = |state: &str| Resource {
        account: None,
        kind: "Role".into(),
        name: "r".into(),
        arn: None,
        state: state.into(),
        last_reconcile: None,
        last_error: None,
        drift_corrections: 0,
        contested: None,
        recent_corrections: Vec::new(),
    };
    let code = |states: &[&str], ready: bool| {
        let rs: Vec<Resource> = states.iter().map(|s| r(s)).collect();
        exit_code_of(&rs, ready, Vec::new())
    };
    assert_eq!(code(&["in-sync", "in-sync"], true), 0);
    assert_eq!(code(&[], true), 0);
    assert_eq!(code(&["in-sync", "drifted"], true), 2);
    assert_eq!(code(&["pending"], true), 2);
    assert_eq!(code(&["contested"], true), 2);
    assert_eq!(code(&["in-sync"], false), 2, "not ready yet");
    assert_eq!(code(&["drifted", "error"], true), 1);
    assert_eq!(code(&["conflict", "pending"], true), 1);
    let severe = vec![Condition {
        severe: true,
        text: "AWS unreachable".into(),
    }];
    assert_eq!(exit_code_of(&[r("in-sync")], true, severe), 1);
    let mild = vec![Condition {
        severe: false,
        text: "prune held back".into(),
    }];
    assert_eq!(exit_code_of(&[r("in-sync")], true, mild), 0);
}

#[test]
fn ages_read_like_kubectls() {
    let now = at("2026-12-02T10:00:00Z");
    assert_eq!(ago(Some("2026-12-02T09:59:48Z"), now), "12s ago");
    assert_eq!(ago(Some("2026-12-02T09:57:00Z"), now), "3m ago");
    assert_eq!(ago(Some("2026-12-02T08:00:00Z"), now), "2h ago");
    assert_eq!(ago(Some("2026-11-28T10:00:00Z"), now), "4d ago");
    assert_eq!(ago(None, now), "never");
    assert_eq!(ago(Some("yesterday"), now), "yesterday");
    // A clock a little behind the daemon's is not negative.
    assert_eq!(ago(Some("2026-12-02T10:00:05Z"), now), "0s ago");
}

#[test]
fn the_table_puts_the_urgent_first_and_clips_errors() {
    let mut v = one_account();
    v["resources"][1]["lastError"] = json!("x".repeat(500));
    let s = Status::from_json(v).unwrap();
    let text = table::overview(&s, at("2026-12-02T10:00:00Z"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "ready; 3 resources: 1 error, 1 conflict, 1 in-sync"
    );
    let header = lines.iter().position(|l| l.starts_with("KIND")).unwrap();
    assert!(lines[header + 1].starts_with("Policy  p "), "{text}");
    assert!(lines[header + 2].starts_with("Role    hand"), "{text}");
    assert!(lines[header + 3].starts_with("Role    app "), "{text}");
    assert!(lines[header + 1].contains("10s ago"), "{text}");
    assert!(lines[header + 1].ends_with('…'), "{text}");
    assert!(lines[header + 1].len() < 200, "{text}");
}

#[test]
fn the_detail_shows_the_history_of_corrections() {
    let s = Status::from_json(one_account()).unwrap();
    let app = &s.resources[s.positions_of("role/app")[0]];
    let text = table::detail(app, at("2026-12-02T10:00:00Z"));
    assert!(text.starts_with("Role/app\n"), "{text}");
    assert!(text.contains("drift corrections: 2"), "{text}");
    assert!(
        text.contains("    2026-12-02T09:59:00Z (1m ago)\n      - set tags team=data (was x)\n"),
        "{text}"
    );
}

#[test]
fn a_server_that_is_not_the_daemon_cannot_drive_the_terminal() {
    // `--listen` may reach the wrong pod: every field it answers is escaped, once, as it is
    // read, whichever view shows it.
    let mut v = one_account();
    v["resources"][0]["kind"] = json!("Ro\u{1b}[2Jle");
    v["resources"][0]["name"] = json!("app\u{1b}]0;pwned\u{7}\r\nfake row");
    v["resources"][0]["state"] = json!("in-sync\u{1b}[5m");
    v["resources"][0]["arn"] = json!("arn\u{202e}x");
    v["resources"][0]["lastReconcile"] = json!("soon\u{1b}[31m");
    v["resources"][0]["recentCorrections"][0]["at"] = json!("then\u{9b}1m");
    v["resources"][0]["contested"] = json!({"fie\u{1b}[2Jld": ["x\u{202e}"]});
    let s = Status::from_json(v).unwrap();
    let now = at("2026-12-02T10:00:00Z");
    let r = &s.resources[0];
    for text in [table::overview(&s, now), table::detail(r, now)] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{text:?}"
        );
        assert!(!text.contains("\nfake row"), "{text}");
    }
    assert!(
        table::overview(&s, now).contains("app\\u{1b}]0;pwned\\u{7}\\r\\nfake row"),
        "{}",
        table::overview(&s, now)
    );
}

#[test]
fn the_page_is_self_contained_refreshes_and_escapes_what_it_shows() {
    let mut v = one_account();
    v["resources"][1]["lastError"] = json!("<script>alert(1)</script> & \"quotes\"");
    let s = Status::from_json(v).unwrap();
    let page = page::render(&s, at("2026-12-02T10:00:00Z"));
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(
        !page.contains("<script"),
        "no script of ours nor of a value"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
    for external in ["src=", "http://", "https://", "@import", "url("] {
        assert!(!page.contains(external), "{external} in the page");
    }
    // Urgent resources before the folded in-sync ones; errors and corrections listed.
    let attention = page.find("Needs attention").unwrap();
    assert!(page.find("<code>p</code>").unwrap() > attention);
    assert!(page.find("<code>app</code>").unwrap() > page.find("In sync (1)").unwrap());
    assert!(page.contains("<h2>Last errors</h2>"));
    assert!(page.contains(
        "<code>Role/app</code> <span class=\"muted\">1m ago</span>: set tags team=data (was x)"
    ));
}

#[test]
fn a_page_of_many_resources_stays_small() {
    let resources: Vec<Value> = (0..10_000)
        .map(|i| json!({"kind": "Role", "name": format!("role-{i}"), "state": "in-sync", "driftCorrections": 0}))
        .collect();
    let s = Status::from_json(
        json!({"ready": true, "resources": resources, "aws": {"reachable": true}}),
    )
    .unwrap();
    let page = page::render(&s, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    assert!(page.len() < 200_000, "{}", page.len());
    assert!(page.contains("… and 9500 more"));
}
