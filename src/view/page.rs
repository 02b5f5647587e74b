//! The daemon's `/` for a person with a port-forward: one small HTML page, no script, no
//! external asset, refreshing itself. It shows what `iam-warden status` shows: the
//! conditions, the accounts, the resources by state (the urgent ones first, in-sync folded),
//! and the last errors and corrections.

use std::fmt::Write;
use std::time::SystemTime;

use super::{Resource, Status, ago, clip};

/// Seconds between refreshes.
pub const REFRESH_SECS: u32 = 10;

/// Rows shown per table at most: a page for 10,000 resources stays small.
const MAX_ROWS: usize = 500;

/// Errors and corrections listed at most.
const MAX_RECENT: usize = 20;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #d0d7de;vertical-align:top}\
th{background:#f6f8fa}code{font-size:.95em}td code{white-space:nowrap}.muted{color:#656d76}\
.s{display:inline-block;padding:0 .5em;border-radius:1em;font-weight:600;white-space:nowrap}\
.error,.conflict{background:#ffebe9;color:#a40e26}.contested{background:#fff1e5;color:#953800}\
.drifted{background:#fff8c5;color:#7d4e00}.pending{background:#ddf4ff;color:#0550ae}\
.in-sync{background:#dafbe1;color:#116329}\
.cond{padding:.4em .7em;margin:.3em 0;border-left:4px solid #cf222e;background:#ffebe9}\
.cond.mild{border-color:#bf8700;background:#fff8c5}.ok{border-color:#1a7f37;background:#dafbe1}";

/// The page for `status`, rendered at `now`.
pub fn render(status: &Status, now: SystemTime) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>iam-warden{}</title><style>{STYLE}</style></head><body>\n",
        if status.exit_code() == 0 {
            ""
        } else {
            " (attention)"
        }
    );
    let counts: Vec<String> = status
        .counts()
        .iter()
        .map(|(s, n)| format!("<span class=\"s {s}\">{n} {s}</span>"))
        .collect();
    let _ = writeln!(
        out,
        "<h1>iam-warden</h1><p>{} · {} {} {} · <span class=\"muted\">{} · refreshes every {REFRESH_SECS}s · <a href=\"/status\">/status</a> · <a href=\"/metrics\">/metrics</a></span></p>",
        if status.ready {
            "ready"
        } else {
            "first pass in progress"
        },
        status.resources.len(),
        if status.resources.len() == 1 {
            "resource"
        } else {
            "resources"
        },
        counts.join(" "),
        humantime::format_rfc3339_seconds(now),
    );
    conditions(&mut out, status);
    if status.many() {
        accounts(&mut out, status);
    }
    resources(&mut out, status, now);
    recent(&mut out, status, now);
    out.push_str("</body></html>\n");
    out
}

fn conditions(out: &mut String, status: &Status) {
    out.push_str("<h2>Conditions</h2>\n");
    let conditions = status.conditions();
    if conditions.is_empty() {
        out.push_str("<div class=\"cond ok\">AWS reachable, every manifest valid.</div>\n");
    }
    for c in conditions {
        let _ = writeln!(
            out,
            "<div class=\"cond{}\">{}</div>",
            if c.severe { "" } else { " mild" },
            html(&clip(&c.text, 2000))
        );
    }
}

fn accounts(out: &mut String, status: &Status) {
    out.push_str("<h2>Accounts</h2>\n<table><tr><th>Account</th><th>Id</th><th>State</th><th>AWS</th></tr>\n");
    for a in &status.accounts {
        let state = match (&a.unreachable, a.ready) {
            (Some(_), _) => "<span class=\"s error\">unreachable</span>",
            (None, true) => "<span class=\"s in-sync\">ready</span>",
            (None, false) => "<span class=\"s pending\">first pass</span>",
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{state}</td><td>{}</td></tr>",
            html(a.name.as_deref().unwrap_or("")),
            html(a.id.as_deref().unwrap_or("")),
            if a.aws.reachable { "ok" } else { "unreachable" }
        );
    }
    out.push_str("</table>\n");
}

fn resources(out: &mut String, status: &Status, now: SystemTime) {
    let (fine, attention): (Vec<&Resource>, Vec<&Resource>) = status
        .by_urgency()
        .into_iter()
        .partition(|r| r.state == "in-sync");
    out.push_str("<h2>Needs attention</h2>\n");
    if attention.is_empty() && status.conditions().iter().any(|c| c.severe) {
        // AWS unreachable or files invalid: the last states known may be old.
        out.push_str("<p class=\"muted\">No resource reports a problem, but the conditions above may keep their states from being current.</p>\n");
    } else if attention.is_empty() {
        out.push_str("<p class=\"muted\">Nothing: every resource is in sync.</p>\n");
    } else {
        table(out, &attention, status.many(), now);
    }
    let _ = writeln!(
        out,
        "<details><summary><h2 style=\"display:inline\">In sync ({})</h2></summary>",
        fine.len()
    );
    table(out, &fine, status.many(), now);
    out.push_str("</details>\n");
}

fn table(out: &mut String, rows: &[&Resource], many: bool, now: SystemTime) {
    out.push_str("<table><tr>");
    if many {
        out.push_str("<th>Account</th>");
    }
    out.push_str("<th>Kind</th><th>Name</th><th>State</th><th>Last reconcile</th><th>Corrections</th><th>Last error</th></tr>\n");
    for r in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        if many {
            let _ = write!(out, "<td>{}</td>", html(r.account.as_deref().unwrap_or("")));
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td><code>{}</code></td><td><span class=\"s {}\">{}</span></td><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            html(&r.kind),
            html(&r.name),
            html(&r.state),
            html(&r.state),
            html(r.last_reconcile.as_deref().unwrap_or("")),
            ago(r.last_reconcile.as_deref(), now),
            r.drift_corrections,
            html(
                &r.last_error
                    .as_deref()
                    .map(|e| clip(e, 300))
                    .unwrap_or_default()
            ),
        );
    }
    out.push_str("</table>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">… and {} more; <code>iam-warden status</code> lists them all.</p>",
            rows.len() - MAX_ROWS
        );
    }
}

/// The last errors and the last corrections across resources, newest first.
fn recent(out: &mut String, status: &Status, now: SystemTime) {
    let label = |r: &Resource| match &r.account {
        Some(a) => format!("{a}/{}/{}", r.kind, r.name),
        None => format!("{}/{}", r.kind, r.name),
    };
    let mut errors: Vec<(&Resource, &str)> = status
        .resources
        .iter()
        .filter_map(|r| r.last_error.as_deref().map(|e| (r, e)))
        .collect();
    errors.sort_by(|a, b| b.0.last_reconcile.cmp(&a.0.last_reconcile));
    out.push_str("<h2>Last errors</h2>\n");
    if errors.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for (r, e) in errors.iter().take(MAX_RECENT) {
            let _ = writeln!(
                out,
                "<li><code>{}</code> <span class=\"muted\">{}</span>: {}</li>",
                html(&label(r)),
                ago(r.last_reconcile.as_deref(), now),
                html(&clip(e, 1000))
            );
        }
        out.push_str("</ul>\n");
    }
    let mut corrections: Vec<(&Resource, &super::Correction)> = status
        .resources
        .iter()
        .flat_map(|r| r.recent_corrections.iter().map(move |c| (r, c)))
        .collect();
    corrections.sort_by(|a, b| b.1.at.cmp(&a.1.at));
    out.push_str("<h2>Last corrections</h2>\n");
    if corrections.is_empty() {
        out.push_str("<p class=\"muted\">None: no drift corrected since the daemon started.</p>\n");
        return;
    }
    out.push_str("<ul>\n");
    for (r, c) in corrections.iter().take(MAX_RECENT) {
        let _ = writeln!(
            out,
            "<li><code>{}</code> <span class=\"muted\">{}</span>: {}</li>",
            html(&label(r)),
            ago(Some(&c.at), now),
            html(&clip(&c.changes.join("; "), 1000))
        );
    }
    out.push_str("</ul>\n");
}

/// Text for HTML, in elements and in attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
