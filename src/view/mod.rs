//! A daemon's `/status` as people look at it: read from its JSON (the one contract the client
//! and the page share, one account or many), judged (what needs attention, the exit code of
//! `iam-warden status`), and shown as a text table (`table`) or one small HTML page (`page`).
//! Pure: the caller fetches the JSON or builds it in-process.

pub mod page;
pub mod table;

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;

/// One resource as /status shows it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// With an accounts file.
    #[serde(default)]
    pub account: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub arn: Option<String>,
    pub state: String,
    #[serde(default)]
    pub last_reconcile: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub drift_corrections: u64,
    #[serde(default)]
    pub contested: Option<Value>,
    #[serde(default)]
    pub recent_corrections: Vec<Correction>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Correction {
    pub at: String,
    pub changes: Vec<String>,
    /// What was found and put back, as the text plan shows it.
    #[serde(default)]
    pub diff: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Aws {
    #[serde(default = "yes")]
    pub reachable: bool,
    #[serde(default)]
    pub last_error: Option<String>,
}

fn yes() -> bool {
    true
}

/// One account's conditions (the only one, unnamed, without an accounts file).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub unreachable: Option<String>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub file_errors: Vec<String>,
    #[serde(default)]
    pub aws: Aws,
    #[serde(default)]
    pub dir_error: Option<String>,
    #[serde(default)]
    pub values_error: Option<String>,
    #[serde(default)]
    pub prune_refused: Option<String>,
}

/// The whole of /status, either shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub ready: bool,
    /// One (unnamed) without an accounts file.
    pub accounts: Vec<Account>,
    pub resources: Vec<Resource>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a /status answer of iam-warden")]
pub struct NotStatus(#[from] serde_json::Error);

impl Status {
    /// Reads /status: `{ready, accounts, resources}` with an accounts file, else one account's
    /// fields and its resources at the top.
    pub fn from_json(mut value: Value) -> Result<Status, NotStatus> {
        use serde::de::Error;
        make_printable(&mut value);
        let Value::Object(mut top) = value else {
            return Err(NotStatus(serde_json::Error::custom(
                "expected a JSON object",
            )));
        };
        // Taken apart rather than copied: /status of 10,000 resources is megabytes.
        let mut field = |name: &str| top.remove(name).unwrap_or(Value::Null);
        let ready: bool = serde_json::from_value(field("ready"))?;
        let resources: Vec<Resource> = serde_json::from_value(field("resources"))?;
        let accounts = match top.remove("accounts") {
            Some(accounts) => serde_json::from_value(accounts)?,
            None => {
                let mut own: Account = serde_json::from_value(Value::Object(top))?;
                own.ready = ready;
                vec![own]
            }
        };
        Ok(Status {
            ready,
            accounts,
            resources,
        })
    }

    /// Resources, the most urgent first, then by account, kind and name.
    pub fn by_urgency(&self) -> Vec<&Resource> {
        let mut all: Vec<&Resource> = self.resources.iter().collect();
        all.sort_by(|a, b| {
            (urgency(&a.state), &a.account, &a.kind, &a.name).cmp(&(
                urgency(&b.state),
                &b.account,
                &b.kind,
                &b.name,
            ))
        });
        all
    }

    pub fn many(&self) -> bool {
        self.accounts.iter().any(|a| a.name.is_some())
    }

    /// What keeps the daemon from doing its work, one line each: AWS unreachable, invalid
    /// files, an account that cannot be assumed, prune held back.
    pub fn conditions(&self) -> Vec<Condition> {
        let mut out = Vec::new();
        for a in &self.accounts {
            let of = a
                .name
                .as_ref()
                .map(|n| format!("account {n}: "))
                .unwrap_or_default();
            let mut add = |severe: bool, text: String| {
                out.push(Condition {
                    severe,
                    text: format!("{of}{text}"),
                })
            };
            if let Some(why) = &a.unreachable {
                // Its resources are not known until it is: none of them is listed.
                add(
                    true,
                    format!(
                        "cannot be reached, its resources unknown: {}",
                        clip(why, 300)
                    ),
                );
            } else if !a.aws.reachable {
                let why = a.aws.last_error.as_deref().unwrap_or("no answer");
                add(true, format!("AWS unreachable: {}", clip(why, 300)));
            }
            if let Some(e) = &a.dir_error {
                add(true, format!("manifest directory: {e}"));
            }
            if let Some(e) = &a.values_error {
                add(true, format!("values: {e}"));
            }
            if let Some(first) = a.file_errors.first() {
                // The first error and a count: all of them are in `status --output json`.
                let n = a.file_errors.len();
                add(
                    true,
                    format!(
                        "invalid manifests: {}{}",
                        clip(first, 300),
                        match n {
                            1 => String::new(),
                            n => format!(" (and {} more)", n - 1),
                        }
                    ),
                );
            }
            if let Some(why) = &a.prune_refused {
                add(false, format!("prune held back: {why}"));
            }
        }
        out
    }

    /// (state, count) in the order states are shown, the most urgent first; only states held.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        STATES
            .iter()
            .map(|s| (*s, self.resources.iter().filter(|r| r.state == *s).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// `iam-warden status`'s exit code: 1 errors or conflicts (or a condition that stops work),
    /// 2 drift or pending (or not ready yet), 0 all in sync.
    pub fn exit_code(&self) -> u8 {
        exit_code_of(self.resources.iter(), self.ready, self.conditions())
    }

    /// Where the resources whose `ACCOUNT/KIND/NAME` or `KIND/NAME` is `wanted` (kinds and names
    /// ignoring case, as IAM's names do) are in `resources`, which keeps /status's order, so
    /// that `--output json` can print the daemon's own entries.
    pub fn positions_of(&self, wanted: &str) -> Vec<usize> {
        let names = |r: &Resource| {
            let short = format!("{}/{}", r.kind, r.name);
            let long = r.account.as_ref().map(|a| format!("{a}/{short}"));
            (short, long)
        };
        (0..self.resources.len())
            .filter(|i| {
                let (short, long) = names(&self.resources[*i]);
                wanted.eq_ignore_ascii_case(&short)
                    || long.is_some_and(|l| wanted.eq_ignore_ascii_case(&l))
            })
            .collect()
    }
}

/// A condition, and whether it stops work (severe) or only holds something back.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub severe: bool,
    pub text: String,
}

/// States, the most urgent first.
pub const STATES: [&str; 6] = [
    "error",
    "conflict",
    "contested",
    "drifted",
    "pending",
    "in-sync",
];

/// How urgent a state is (0 most); unknown states (a newer daemon's) just before in-sync.
pub fn urgency(state: &str) -> usize {
    STATES
        .iter()
        .position(|s| *s == state)
        .unwrap_or(STATES.len() - 1)
}

pub fn exit_code_of<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
    ready: bool,
    conditions: Vec<Condition>,
) -> u8 {
    let mut code = if ready { 0 } else { 2 };
    if conditions.iter().any(|c| c.severe) {
        return 1;
    }
    for r in resources {
        match r.state.as_str() {
            "error" | "conflict" => return 1,
            "in-sync" => {}
            _ => code = 2,
        }
    }
    code
}

/// `12s ago`, `3m ago`, `2h ago`, `4d ago` from an RFC 3339 time; the time itself when it
/// cannot be read, `never` without one.
pub fn ago(time: Option<&str>, now: SystemTime) -> String {
    let Some(time) = time else {
        return "never".into();
    };
    let Ok(then) = humantime::parse_rfc3339_weak(time) else {
        return time.to_string();
    };
    let secs = now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

pub use crate::printable::printable;

/// Every string of an answer, keys too, made printable once, where it comes in: `--listen` may
/// reach a server that is not the daemon, and nothing it says may drive a terminal, whichever
/// view shows it.
fn make_printable(value: &mut Value) {
    use std::borrow::Cow;
    match value {
        Value::String(s) => {
            if let Cow::Owned(escaped) = printable(s) {
                *s = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_printable),
        Value::Object(fields) => {
            fields.values_mut().for_each(make_printable);
            if fields.keys().any(|k| matches!(printable(k), Cow::Owned(_))) {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(k, v)| (printable(&k).into_owned(), v))
                    .collect();
            }
        }
        _ => {}
    }
}

/// `text` cut to `max` characters with `…`, on one line.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = printable(&text.replace(['\n', '\r'], " ")).into_owned();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
