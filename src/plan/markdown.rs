//! A plan as a pull-request comment a reviewer reads in ten seconds: what is risky first, one
//! summary line (per account), a table of what changes, and each resource's diff folded away.
//! Pure, and bounded: GitHub refuses a comment over 65,536 characters, so details are left out,
//! with a note, before that.

use std::fmt::Write;

use super::change::{Change, Finding, ResourcePlan};
use super::render;

/// The first line of every comment: a bot finds its own comment by it and edits it in place.
pub const MARKER: &str = "<!-- iam-warden:plan -->";

/// GitHub's limit is 65,536 characters; bytes are never fewer, and a little is kept spare.
pub const LIMIT: usize = 65_000;

/// Callouts shown at most; the rest are counted.
const MAX_CALLOUTS: usize = 30;

/// Bytes of one quoted text (a message, a file's place, an error) at most: a manifest's or a
/// server's text can be any length.
const MAX_TEXT: usize = 300;

/// Room the head (summary and callouts) leaves for the table's header and its note.
const HEAD_ROOM: usize = 1_000;

/// One account's plan (the only one without an accounts file).
pub struct Section<'a> {
    /// (name, id) with an accounts file.
    pub account: Option<(&'a str, &'a str)>,
    pub plans: &'a [ResourcePlan],
    /// (resource, error) of what could not be observed.
    pub failures: Vec<(String, String)>,
    /// Why the whole account could not be planned.
    pub error: Option<String>,
}

/// What needs a reviewer's eye before the diff: dangerous grants, guardrail violations and
/// errors, each `file:line` and its message.
pub struct Callout {
    pub error: bool,
    pub place: String,
    pub message: String,
}

/// The comment for a plan.
pub fn comment(sections: &[Section], callouts: &[Callout]) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{MARKER}\n### iam-warden plan\n");
    summary(&mut head, sections);
    conflicts(&mut head, sections);
    callout_block(&mut head, callouts);
    let mut head = bounded(head, "plan");
    let rows: Vec<Row> = sections.iter().flat_map(rows).collect();
    if rows.is_empty() {
        head.push_str("Everything is in sync: no changes.\n");
        return head;
    }
    assemble(head, &rows)
}

/// The comment when the manifests are invalid: nothing was planned.
pub fn invalid(callouts: &[Callout]) -> String {
    let mut out = String::new();
    let errors = callouts.iter().filter(|c| c.error).count();
    let _ = writeln!(
        out,
        "{MARKER}\n### iam-warden plan\n\n**Invalid manifests: {errors} {}; nothing was planned.**\n",
        if errors == 1 { "error" } else { "errors" }
    );
    callout_block(&mut out, callouts);
    bounded(out, "validate")
}

/// The comment when planning failed as a whole (AWS unreachable, the account unknown):
/// nothing was planned, and an older comment must not stand for the current state.
pub fn failed(why: &str) -> String {
    format!(
        "{MARKER}\n### iam-warden plan\n\n> [!CAUTION]\n> **The plan failed; nothing was planned.**\n> {}\n",
        cell(&clip(why, 10 * MAX_TEXT))
    )
}

/// `text` cut at a line's end to leave [`HEAD_ROOM`] under [`LIMIT`], with a note that says
/// which command shows the rest: the callouts of a thousand files must not make GitHub refuse
/// the comment, and with it the news that the manifests are broken.
fn bounded(text: String, command: &str) -> String {
    if text.len() + HEAD_ROOM <= LIMIT {
        return text;
    }
    let budget = LIMIT - 2 * HEAD_ROOM;
    let end = crate::printable::prefix(&text, budget)
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let mut out = text[..end].to_string();
    let _ = writeln!(
        out,
        "\n> [!NOTE]\n> Truncated to stay under GitHub's 65,536-character limit. Run \
         `iam-warden {command}` to see it all.\n"
    );
    out
}

fn summary(out: &mut String, sections: &[Section]) {
    if let [one] = sections
        && one.account.is_none()
    {
        let _ = writeln!(
            out,
            "**Plan: {}.**\n",
            render::totals(one.plans, one.failures.len())
        );
        return;
    }
    let _ = writeln!(out, "| Account | Plan |\n|---|---|");
    for s in sections {
        let (name, id) = s.account.unwrap_or(("(caller)", ""));
        let plan = match &s.error {
            Some(e) => format!("❗ cannot plan: {}", cell(&clip(e, MAX_TEXT))),
            None => render::totals(s.plans, s.failures.len()),
        };
        let _ = writeln!(out, "| **{}** `{id}` | {plan} |", cell(name));
    }
    let all: Vec<ResourcePlan> = sections
        .iter()
        .flat_map(|s| s.plans.iter().cloned())
        .collect();
    let failures = sections.iter().map(|s| s.failures.len()).sum();
    let unplanned = sections.iter().filter(|s| s.error.is_some()).count();
    let _ = writeln!(
        out,
        "\n**Plan: {} in {} {}{}.**",
        render::totals(&all, failures),
        sections.len(),
        if sections.len() == 1 {
            "account"
        } else {
            "accounts"
        },
        if unplanned > 0 {
            format!(" ({unplanned} could not be planned)")
        } else {
            String::new()
        }
    );
    out.push('\n');
}

/// Resources in conflict, first: `plan` passes with them (exit 2), but `apply` leaves them
/// alone and fails.
fn conflicts(out: &mut String, sections: &[Section]) {
    let blocked: Vec<String> = sections
        .iter()
        .flat_map(|s| {
            s.plans
                .iter()
                .filter(|p| p.is_blocked())
                .map(move |p| match s.account {
                    Some((a, _)) => format!("{a}/{}/{}", p.kind, p.name),
                    None => format!("{}/{}", p.kind, p.name),
                })
        })
        .collect();
    if blocked.is_empty() {
        return;
    }
    let shown: Vec<String> = blocked
        .iter()
        .take(MAX_CALLOUTS)
        .map(|b| format!("`{}`", code(&clip(b, MAX_TEXT))))
        .collect();
    let more = blocked.len().saturating_sub(MAX_CALLOUTS);
    let _ = writeln!(
        out,
        "> [!CAUTION]\n> **In conflict** ({}): {}{}. `apply` leaves {} alone and fails until the conflict is resolved (see the table).\n",
        blocked.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        if blocked.len() == 1 { "it" } else { "them" },
    );
}

fn callout_block(out: &mut String, callouts: &[Callout]) {
    for (error, title) in [(true, "Errors"), (false, "Dangerous grants and warnings")] {
        let these: Vec<&Callout> = callouts.iter().filter(|c| c.error == error).collect();
        if these.is_empty() {
            continue;
        }
        let kind = if error { "CAUTION" } else { "WARNING" };
        let _ = writeln!(out, "> [!{kind}]\n> **{title}** ({})", these.len());
        for c in these.iter().take(MAX_CALLOUTS) {
            let _ = writeln!(
                out,
                "> - `{}` {}",
                code(&clip(&c.place, MAX_TEXT)),
                cell(&clip(&c.message, MAX_TEXT))
            );
        }
        if these.len() > MAX_CALLOUTS {
            let _ = writeln!(
                out,
                "> - … and {} more (`iam-warden validate` lists them all)",
                these.len() - MAX_CALLOUTS
            );
        }
        out.push('\n');
    }
}

/// One changed (or conflicting, or failed) resource.
struct Row {
    icon: &'static str,
    what: String,
    resource: String,
    /// Its diff, as the text plan shows it; empty for a failure.
    detail: String,
}

fn rows(section: &Section) -> Vec<Row> {
    let account = section.account.map(|(name, _)| name);
    let label = |p: &ResourcePlan| match account {
        Some(a) => format!("{a}/{}/{}", p.kind, p.name),
        None => format!("{}/{}", p.kind, p.name),
    };
    let mut out: Vec<Row> = section
        .plans
        .iter()
        .filter(|p| !p.changes.is_empty() || !p.findings.is_empty())
        .map(|p| {
            let (icon, what) = verdict(p);
            let detail = render::body(p);
            Row {
                icon,
                what,
                resource: label(p),
                detail: detail.trim_end().to_string(),
            }
        })
        .collect();
    out.extend(section.failures.iter().map(|(who, error)| Row {
        icon: "❗",
        what: format!("could not be observed: {error}"),
        resource: who.clone(),
        detail: String::new(),
    }));
    out
}

/// The icon and the words of a resource's row.
fn verdict(p: &ResourcePlan) -> (&'static str, String) {
    if p.is_blocked() {
        let why: Vec<String> = p
            .findings
            .iter()
            .filter(|f| f.blocks())
            .map(|f| f.to_string())
            .collect();
        return ("⛔", format!("conflict: {}", why.join("; ")));
    }
    let fields = || {
        let mut seen: Vec<String> = Vec::new();
        for c in &p.changes {
            let s = render::summary(c);
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen.join("; ")
    };
    if p.observe_only && !p.changes.is_empty() {
        return ("👁️", format!("drifted, observe-only: {}", fields()));
    }
    if p.changes.iter().any(Change::is_delete) {
        return ("➖", "delete".into());
    }
    if let Some(Finding::PruneScheduled { .. }) = p.findings.first() {
        return ("⏳", "delete after the grace period".into());
    }
    if p.changes.first().is_some_and(Change::is_create) {
        return ("➕", "create".into());
    }
    ("🔄", format!("update: {}", fields()))
}

/// Head, table and details, within [`LIMIT`]: rows and then details are left out from the
/// end, and a note says how many.
fn assemble(head: String, rows: &[Row]) -> String {
    // Room for the note, whatever its numbers.
    const NOTE: usize = 400;
    let mut out = head;
    out.push_str("| | Resource | Change |\n|:-:|---|---|\n");
    let mut shown_rows = 0;
    for r in rows {
        let line = format!(
            "| {} | `{}` | {} |\n",
            r.icon,
            code(&clip(&r.resource, MAX_TEXT)),
            cell(&clip(&r.what, MAX_TEXT))
        );
        if out.len() + line.len() + NOTE > LIMIT {
            break;
        }
        out.push_str(&line);
        shown_rows += 1;
    }
    out.push('\n');
    let mut shown_details = 0;
    let with_detail: Vec<&Row> = rows[..shown_rows]
        .iter()
        .filter(|r| !r.detail.is_empty())
        .collect();
    for r in &with_detail {
        let block = details(r);
        if out.len() + block.len() + NOTE > LIMIT {
            break;
        }
        out.push_str(&block);
        shown_details += 1;
    }
    let all_details = rows.iter().filter(|r| !r.detail.is_empty()).count();
    if shown_rows < rows.len() || shown_details < all_details {
        let _ = writeln!(
            out,
            "\n> [!NOTE]\n> Truncated to stay under GitHub's 65,536-character limit: the table shows \
             {shown_rows} of {} resources and {shown_details} of {all_details} diffs. Run \
             `iam-warden plan` to see the whole plan.",
            rows.len(),
        );
    }
    out
}

/// A folded diff: `+`/`-` lines coloured by GitHub, `~` (changed) shown as `!`.
fn details(r: &Row) -> String {
    let mut diff = String::new();
    for line in r.detail.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let marker = body.chars().next().filter(|_| {
            let mut c = body.chars();
            matches!(c.next(), Some('+' | '-' | '~' | '!')) && c.next() == Some(' ')
        });
        match marker {
            Some(m) => {
                let m = if m == '~' { '!' } else { m };
                let _ = writeln!(
                    diff,
                    "{m}{}{}",
                    " ".repeat(indent.saturating_sub(1)),
                    &body[2..]
                );
            }
            // Aligned with the marked lines: the marker takes the place of one space.
            None => {
                let _ = writeln!(diff, " {}", line.strip_prefix(' ').unwrap_or(line));
            }
        }
    }
    let fence = fence_for(&diff);
    format!(
        "<details><summary><code>{}</code> {}</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n",
        html(&r.resource),
        r.icon,
    )
}

/// A code fence longer than any run of backticks in `text`, so no policy text can close it.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Text for a table cell: one line, no column breaks, no HTML.
fn cell(text: &str) -> String {
    // A backtick would open a code span, in which the other escapes show as written.
    html(&crate::printable::printable(
        &text.replace(['\n', '\r'], " "),
    ))
    .replace('|', "\\|")
    .replace('`', "\\`")
    .replace('*', "\\*")
    .replace('_', "\\_")
    // A zero-width space keeps `@user` and `@org/team` from notifying anyone.
    .replace('@', "@\u{200b}")
}

/// Text for inside a code span: backticks would end it.
fn code(text: &str) -> String {
    crate::printable::printable(text)
        .replace('`', "'")
        .replace('|', "\\|")
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, max: usize) -> String {
    let kept = crate::printable::prefix(text, max);
    if kept.len() == text.len() {
        return text.to_string();
    }
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::Kind;
    use crate::policy::PolicyDocument;

    fn doc(action: &str) -> PolicyDocument {
        PolicyDocument::from_value(serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]
        }))
        .unwrap()
    }

    fn update(name: &str, before: &str, after: &str) -> ResourcePlan {
        let mut p = ResourcePlan::new(Kind::Policy, name, None);
        p.changes.push(Change::CreatePolicyVersion {
            delete_first: None,
            before: doc(before),
            after: doc(after),
        });
        p
    }

    fn one(plans: &[ResourcePlan]) -> Section<'_> {
        Section {
            account: None,
            plans,
            failures: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn a_comment_starts_with_its_marker_then_the_summary_then_the_callouts() {
        let plans = [update("p", "s3:GetObject", "s3:*")];
        let callouts = [Callout {
            error: false,
            place: "m/p.yaml:7".into(),
            message: "allows every action".into(),
        }];
        let c = comment(&[one(&plans)], &callouts);
        assert!(c.starts_with(&format!("{MARKER}\n")), "{c}");
        let summary = c.find("**Plan: 0 to create, 1 to update").unwrap();
        let warning = c.find("> [!WARNING]").unwrap();
        let table = c
            .find("| 🔄 | `Policy/p` | update: new default document version |")
            .unwrap();
        assert!(summary < warning && warning < table, "{c}");
        assert!(c.contains("> - `m/p.yaml:7` allows every action"), "{c}");
    }

    #[test]
    fn each_diff_is_folded_with_its_markers_at_the_start_of_the_line() {
        let plans = [update("p", "s3:GetObject", "s3:PutObject")];
        let c = comment(&[one(&plans)], &[]);
        assert!(
            c.contains("<details><summary><code>Policy/p</code> 🔄</summary>"),
            "{c}"
        );
        assert!(
            c.contains("```diff\n! document (new default version)\n"),
            "{c}"
        );
        assert!(
            c.contains("\n-     {\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\""),
            "{c}"
        );
        assert!(
            c.contains("\n+     {\"Effect\":\"Allow\",\"Action\":\"s3:PutObject\""),
            "{c}"
        );
    }

    #[test]
    fn in_sync_says_so_and_shows_no_table() {
        let plans = [ResourcePlan::new(Kind::Role, "r", None)];
        let c = comment(&[one(&plans)], &[]);
        assert!(c.contains("Everything is in sync"), "{c}");
        assert!(!c.contains("| Resource |"), "{c}");
    }

    #[test]
    fn backticks_in_a_document_cannot_close_its_fence() {
        let plans = [update("p", "s3:GetObject", "s3:```x")];
        let c = comment(&[one(&plans)], &[]);
        assert!(c.contains("````diff\n"), "{c}");
        assert!(c.contains("\n````\n"), "{c}");
    }

    #[test]
    fn several_accounts_get_a_row_each_and_their_resources_are_named_with_the_account() {
        let prod = [update("p", "a:B", "a:C")];
        let sections = [
            Section {
                account: Some(("prod", "111111111111")),
                plans: &prod,
                failures: Vec::new(),
                error: None,
            },
            Section {
                account: Some(("dev", "222222222222")),
                plans: &[],
                failures: Vec::new(),
                error: Some("cannot assume role x".into()),
            },
        ];
        let c = comment(&sections, &[]);
        assert!(
            c.contains("| **prod** `111111111111` | 0 to create, 1 to update"),
            "{c}"
        );
        assert!(
            c.contains("| **dev** `222222222222` | ❗ cannot plan: cannot assume role x |"),
            "{c}"
        );
        assert!(c.contains("`prod/Policy/p`"), "{c}");
    }

    #[test]
    fn a_huge_plan_stays_under_the_limit_and_says_what_it_left_out() {
        let plans: Vec<ResourcePlan> = (0..3000)
            .map(|i| {
                let mut p = ResourcePlan::new(Kind::Role, &format!("role-{i:04}"), None);
                p.changes.push(Change::SetTags {
                    tags: BTreeMap::from([("team".to_string(), "x".repeat(200))]),
                    before: BTreeMap::new(),
                });
                p
            })
            .collect();
        let c = comment(&[one(&plans)], &[]);
        assert!(c.len() <= LIMIT, "{}", c.len());
        assert!(c.chars().count() <= 65_536);
        assert!(
            c.contains("> [!NOTE]\n> Truncated"),
            "{}",
            &c[c.len() - 500..]
        );
        assert!(c.contains("`Role/role-0000`"));
        // What is shown is whole: every opened block is closed.
        assert_eq!(
            c.matches("<details>").count(),
            c.matches("</details>").count()
        );
        let shown_rows = c.matches("| 🔄 |").count();
        let shown_diffs = c.matches("<details>").count();
        let note = &c[c.find("Truncated").unwrap()..];
        assert!(
            note.contains(&format!(
                "the table shows {shown_rows} of 3000 resources and {shown_diffs} of 3000 diffs"
            )),
            "{note}"
        );
    }

    #[test]
    fn callouts_of_any_length_stay_under_the_limit() {
        // Forty files, each quoting a name of 18,000 characters back in its error, which
        // escaping makes five times longer still.
        let callouts: Vec<Callout> = (0..40)
            .map(|i| Callout {
                error: i % 2 == 0,
                place: format!("m/{}.yaml:3", "f".repeat(5_000)),
                message: format!("metadata.name: `{}` is too long", "&".repeat(18_000)),
            })
            .collect();
        let c = invalid(&callouts);
        assert!(c.len() <= LIMIT, "{}", c.len());
        assert!(
            c.contains("**Invalid manifests: 20 errors"),
            "{}",
            &c[..300]
        );
        let plans: Vec<ResourcePlan> = (0..50)
            .map(|i| ResourcePlan::new(Kind::Role, &format!("r{i}"), None))
            .map(|mut p| {
                p.changes.push(Change::SetTags {
                    tags: BTreeMap::from([("t".to_string(), "v".to_string())]),
                    before: BTreeMap::new(),
                });
                p
            })
            .collect();
        let c = comment(&[one(&plans)], &callouts);
        assert!(c.len() <= LIMIT, "{}", c.len());
        assert!(
            c.contains("> [!NOTE]\n> Truncated"),
            "{}",
            &c[c.len() - 600..]
        );
        // A line is never cut in its middle: every callout shown ends with its clipped message.
        let shown: Vec<&str> = c.lines().filter(|l| l.starts_with("> - `")).collect();
        assert!(!shown.is_empty());
        assert!(shown.iter().all(|l| l.ends_with('…')), "{shown:?}");
    }

    #[test]
    fn a_failure_of_any_length_stays_under_the_limit() {
        let c = failed(&format!("AccessDenied: {}", "no\u{202e}".repeat(60_000)));
        assert!(c.len() <= LIMIT, "{}", c.len());
        assert!(c.contains("**The plan failed; nothing was planned.**"));
        assert!(c.contains("AccessDenied: no\\u{202e}no"), "{}", &c[..400]);
        assert!(!c.contains('\u{202e}'));
    }

    #[test]
    fn a_small_plan_is_not_truncated() {
        let plans = [update("p", "a:B", "a:C")];
        assert!(!comment(&[one(&plans)], &[]).contains("Truncated"));
    }

    #[test]
    fn table_cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(cell("a|b\n<script>"), "a\\|b &lt;script&gt;");
        assert_eq!(cell("unknown field `x|y`"), "unknown field \\`x\\|y\\`");
        assert_eq!(
            cell("**b** @octocat _i_"),
            "\\*\\*b\\*\\* @\u{200b}octocat \\_i\\_"
        );
        assert_eq!(code("x`y|z"), "x'y\\|z");
    }

    #[test]
    fn invalid_manifests_say_nothing_was_planned_and_list_the_errors() {
        let c = invalid(&[Callout {
            error: true,
            place: "m/a.yaml:3".into(),
            message: "spec.path: must begin with `/`".into(),
        }]);
        assert!(c.starts_with(MARKER));
        assert!(
            c.contains("**Invalid manifests: 1 error; nothing was planned.**"),
            "{c}"
        );
        assert!(
            c.contains(
                "> [!CAUTION]\n> **Errors** (1)\n> - `m/a.yaml:3` spec.path: must begin with \\`/\\`"
            ),
            "{c}"
        );
    }
}
