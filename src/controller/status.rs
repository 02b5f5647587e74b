//! What /status shows: every resource's state, last reconcile, last error, drift corrections
//! (kept per key in `keys`); and the file errors, bounded.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::contest::ContestReport;
use crate::manifest::{Diagnostic, Kind};
use crate::reconcile::ResourceState;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub kind: Kind,
    pub name: String,
    pub arn: Option<String>,
    pub state: ResourceState,
    /// RFC 3339.
    pub last_reconcile: Option<String>,
    pub last_error: Option<String>,
    pub drift_corrections: u64,
    /// Only while contested: the fields that keep changing and when the next correction is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contested: Option<ContestReport>,
    /// The last [`MAX_HISTORY`] drift corrections, oldest first (absent when there were none).
    #[serde(skip_serializing_if = "VecDeque::is_empty")]
    pub recent_corrections: VecDeque<Correction>,
}

/// Corrections kept per resource: enough to see a pattern, bounded for 10,000 resources.
pub const MAX_HISTORY: usize = 10;

/// One drift correction: when, what it changed back, and the diff of what it found (as the
/// text plan shows it), so that the record keeps what was wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correction {
    /// RFC 3339.
    pub at: String,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<String>,
}

/// A correction's diff is kept to this many lines of at most [`MAX_DIFF_LINE`] bytes: ten
/// corrections of thousands of resources stay small.
pub const MAX_DIFF_LINES: usize = 40;
pub const MAX_DIFF_LINE: usize = 300;

impl Correction {
    pub fn new(at: String, changes: Vec<String>, diff: Vec<String>) -> Correction {
        let more = diff.len().saturating_sub(MAX_DIFF_LINES);
        let mut diff: Vec<String> = diff
            .into_iter()
            .take(MAX_DIFF_LINES)
            .map(|l| clip_to(l, MAX_DIFF_LINE))
            .collect();
        if more > 0 {
            diff.push(format!("… and {more} more lines"));
        }
        Correction { at, changes, diff }
    }
}

impl ResourceStatus {
    /// Remembers a correction, forgetting the oldest beyond [`MAX_HISTORY`].
    pub fn record_correction(&mut self, c: Correction) {
        if self.recent_corrections.len() == MAX_HISTORY {
            self.recent_corrections.pop_front();
        }
        self.recent_corrections.push_back(c);
    }
}

/// The body of /status, whole: one type, whether the daemon knows its account yet or not.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    pub ready: bool,
    pub resources: Vec<ResourceStatus>,
    pub file_errors: Vec<String>,
    pub aws: super::conditions::AwsStatus,
    pub dir_error: Option<String>,
    pub values_error: Option<String>,
    /// Why `--max-prune` holds deletions back, while it does.
    pub prune_refused: Option<String>,
}

impl StatusBody {
    /// Before the account is known: nothing loaded, nothing reconciled.
    pub fn starting(aws: super::conditions::AwsStatus) -> StatusBody {
        StatusBody {
            ready: false,
            resources: Vec::new(),
            file_errors: Vec::new(),
            aws,
            dir_error: None,
            values_error: None,
            prune_refused: None,
        }
    }
}

/// One account of many on /status: its conditions and readiness (its resources are in the
/// body's one list, each named with its account).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    pub name: String,
    pub id: String,
    /// Why the account cannot be identified (its role cannot be assumed, …), while it cannot.
    pub unreachable: Option<String>,
    pub ready: bool,
    pub file_errors: Vec<String>,
    pub aws: super::conditions::AwsStatus,
    pub dir_error: Option<String>,
    pub values_error: Option<String>,
    pub prune_refused: Option<String>,
}

/// A resource of one of many accounts.
#[derive(Clone, Debug, Serialize)]
pub struct AccountResource {
    pub account: String,
    #[serde(flatten)]
    pub resource: ResourceStatus,
}

/// The body of /status with an accounts file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManyStatus {
    /// Every account that could be identified has finished its first pass.
    pub ready: bool,
    pub accounts: Vec<AccountStatus>,
    pub resources: Vec<AccountResource>,
}

impl ManyStatus {
    /// From each account's (name, id, why unreachable, status).
    pub fn new(
        of_accounts: impl IntoIterator<Item = (String, String, Option<String>, StatusBody)>,
    ) -> ManyStatus {
        let mut accounts = Vec::new();
        let mut resources = Vec::new();
        for (name, id, unreachable, status) in of_accounts {
            resources.extend(
                status
                    .resources
                    .into_iter()
                    .map(|resource| AccountResource {
                        account: name.clone(),
                        resource,
                    }),
            );
            accounts.push(AccountStatus {
                name,
                id,
                unreachable,
                ready: status.ready,
                file_errors: status.file_errors,
                aws: status.aws,
                dir_error: status.dir_error,
                values_error: status.values_error,
                prune_refused: status.prune_refused,
            });
        }
        ManyStatus {
            ready: accounts.iter().all(|a| a.ready || a.unreachable.is_some()),
            accounts,
            resources,
        }
    }
}

/// File errors shown per file at most; the rest are counted.
pub const MAX_ERRORS_PER_FILE: usize = 20;

/// One error line shown at most this long: a 90,000-character name quoted back must not
/// make a megabyte of /status or of the log.
pub const MAX_LINE: usize = 1000;

/// `line`, cut to [`MAX_LINE`] bytes (at a character boundary) with a count of the rest.
pub fn clip(line: String) -> String {
    clip_to(line, MAX_LINE)
}

fn clip_to(line: String, max: usize) -> String {
    let kept = crate::printable::prefix(&line, max);
    if kept.len() == line.len() {
        return line;
    }
    format!("{kept}… ({} more bytes)", line.len() - kept.len())
}

/// File errors shown in all at most: a thousand broken files cannot blow up the response.
pub const MAX_ERRORS: usize = 200;

/// The file errors for /status: at most [`MAX_ERRORS_PER_FILE`] per file and [`MAX_ERRORS`]
/// in all, then one line counting the rest.
pub fn bounded_file_errors(errors: &[Diagnostic]) -> Vec<String> {
    let mut out = per_file_bounded(errors);
    if out.len() > MAX_ERRORS {
        let files: std::collections::BTreeSet<&std::path::Path> =
            errors.iter().map(|d| d.file.as_path()).collect();
        let more = errors.len().saturating_sub(MAX_ERRORS);
        out.truncate(MAX_ERRORS);
        out.push(format!(
            "and {more} more errors ({} invalid files in all)",
            files.len()
        ));
    }
    out
}

fn per_file_bounded(errors: &[Diagnostic]) -> Vec<String> {
    let mut per_file: BTreeMap<&std::path::Path, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for d in errors {
        let n = per_file.entry(d.file.as_path()).or_default();
        *n += 1;
        if *n <= MAX_ERRORS_PER_FILE {
            out.push(clip(d.to_string()));
        }
    }
    for (file, n) in per_file {
        if n > MAX_ERRORS_PER_FILE {
            out.push(format!(
                "{}: and {} more errors",
                file.display(),
                n - MAX_ERRORS_PER_FILE
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_keeps_its_last_corrections_oldest_first() {
        let mut s = ResourceStatus {
            kind: Kind::Role,
            name: "r".into(),
            arn: None,
            state: ResourceState::InSync,
            last_reconcile: None,
            last_error: None,
            drift_corrections: 0,
            contested: None,
            recent_corrections: VecDeque::new(),
        };
        let body = serde_json::to_value(&s).unwrap();
        assert!(body.get("recentCorrections").is_none(), "absent while none");
        for i in 0..MAX_HISTORY + 3 {
            s.record_correction(Correction::new(
                format!("t{i}"),
                vec![format!("change {i}")],
                (0..50)
                    .map(|l| format!("+ line {l} {}", "x".repeat(400)))
                    .collect(),
            ));
        }
        let ats: Vec<&str> = s.recent_corrections.iter().map(|c| c.at.as_str()).collect();
        assert_eq!(ats.len(), MAX_HISTORY);
        assert_eq!((ats[0], ats[MAX_HISTORY - 1]), ("t3", "t12"));
        let body = serde_json::to_value(&s).unwrap();
        assert_eq!(body["recentCorrections"][0]["changes"][0], "change 3");
        let diff = &s.recent_corrections[0].diff;
        assert_eq!(diff.len(), MAX_DIFF_LINES + 1, "bounded, with a count");
        assert_eq!(diff[MAX_DIFF_LINES], "… and 10 more lines");
        assert!(diff[0].len() < MAX_DIFF_LINE + 40, "{}", diff[0].len());
    }

    #[test]
    fn a_long_error_line_is_clipped_at_a_character_boundary() {
        let long = format!("name `{}` is too long", "é".repeat(50_000));
        let clipped = clip(long.clone());
        assert!(clipped.len() < MAX_LINE + 40, "{}", clipped.len());
        assert!(clipped.ends_with(&format!("({} more bytes)", long.len() - 1000)));
        assert!(long.starts_with(clipped.split("…").next().unwrap()));
        assert_eq!(clip("short".into()), "short");
    }

    #[test]
    fn file_errors_are_capped_in_all_with_a_count_of_the_rest() {
        let errors: Vec<Diagnostic> = (0..1000)
            .flat_map(|f| {
                (0..21).map(move |i| Diagnostic::file(format!("f{f}.yaml"), format!("error {i}")))
            })
            .collect();
        let shown = bounded_file_errors(&errors);
        assert_eq!(shown.len(), MAX_ERRORS + 1);
        assert_eq!(
            shown.last().map(String::as_str),
            Some("and 20800 more errors (1000 invalid files in all)")
        );
    }

    #[test]
    fn file_errors_are_capped_per_file_with_a_count_of_the_rest() {
        let mut errors: Vec<Diagnostic> = (0..25)
            .map(|i| Diagnostic::file("big.yaml", format!("error {i}")))
            .collect();
        errors.push(Diagnostic::file("small.yaml", "one"));
        let shown = bounded_file_errors(&errors);
        assert_eq!(shown.len(), MAX_ERRORS_PER_FILE + 2, "{shown:?}");
        assert!(
            shown.contains(&"big.yaml: and 5 more errors".to_string()),
            "{shown:?}"
        );
        assert!(shown.iter().any(|l| l.contains("small.yaml")));
    }
}
