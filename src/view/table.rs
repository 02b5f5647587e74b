//! `iam-warden status` as text: conditions first, then one row per resource, the most urgent
//! first, like `kubectl get`.

use std::fmt::Write;
use std::time::SystemTime;

use super::{Resource, Status, ago, clip};

/// Errors shown this wide at most: the whole one is in `status KIND/NAME`.
const ERROR_WIDTH: usize = 80;

/// The overview: a summary line, the conditions, the accounts (with several), the resources.
pub fn overview(status: &Status, now: SystemTime) -> String {
    let mut out = String::new();
    let counts: Vec<String> = status
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = writeln!(
        out,
        "{}; {} {}{}",
        if status.ready {
            "ready"
        } else {
            "not ready (first pass)"
        },
        status.resources.len(),
        if status.resources.len() == 1 {
            "resource"
        } else {
            "resources"
        },
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        }
    );
    for c in status.conditions() {
        let _ = writeln!(out, "{} {}", if c.severe { "!" } else { "~" }, c.text);
    }
    if status.many() {
        out.push('\n');
        let rows: Vec<Vec<String>> = status
            .accounts
            .iter()
            .map(|a| {
                let state = if a.unreachable.is_some() {
                    "unreachable"
                } else if a.ready {
                    "ready"
                } else {
                    "first pass"
                };
                vec![
                    a.name.clone().unwrap_or_default(),
                    a.id.clone().unwrap_or_default(),
                    state.to_string(),
                    if a.aws.reachable { "ok" } else { "unreachable" }.to_string(),
                ]
            })
            .collect();
        columns(&mut out, &["ACCOUNT", "ID", "STATE", "AWS"], &rows);
    }
    out.push('\n');
    let resources = status.by_urgency();
    let many = status.many();
    let rows: Vec<Vec<String>> = resources
        .iter()
        .map(|r| {
            let mut row = Vec::new();
            if many {
                row.push(r.account.clone().unwrap_or_default());
            }
            row.extend([
                r.kind.clone(),
                r.name.clone(),
                r.state.clone(),
                ago(r.last_reconcile.as_deref(), now),
                r.drift_corrections.to_string(),
                r.last_error
                    .as_deref()
                    .map(|e| clip(e, ERROR_WIDTH))
                    .unwrap_or_default(),
            ]);
            row
        })
        .collect();
    let mut headers = Vec::new();
    if many {
        headers.push("ACCOUNT");
    }
    headers.extend([
        "KIND",
        "NAME",
        "STATE",
        "LAST RECONCILE",
        "CORRECTIONS",
        "LAST ERROR",
    ]);
    columns(&mut out, &headers, &rows);
    out
}

/// One resource, whole: its fields, its whole last error and its history of corrections.
pub fn detail(r: &Resource, now: SystemTime) -> String {
    let mut out = String::new();
    let name = match &r.account {
        Some(a) => format!("{a}/{}/{}", r.kind, r.name),
        None => format!("{}/{}", r.kind, r.name),
    };
    let _ = writeln!(out, "{name}");
    let _ = writeln!(out, "  state:            {}", r.state);
    if let Some(arn) = &r.arn {
        let _ = writeln!(out, "  arn:              {arn}");
    }
    let _ = writeln!(
        out,
        "  last reconcile:   {}{}",
        ago(r.last_reconcile.as_deref(), now),
        r.last_reconcile
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  drift corrections: {}", r.drift_corrections);
    if let Some(e) = &r.last_error {
        let _ = writeln!(out, "  last error:       {e}");
    }
    if let Some(c) = &r.contested {
        let _ = writeln!(out, "  contested:        {c}");
    }
    if r.recent_corrections.is_empty() {
        let _ = writeln!(out, "  corrections:      none");
    } else {
        let _ = writeln!(out, "  corrections (oldest first):");
        for c in &r.recent_corrections {
            let _ = writeln!(out, "    {} ({})", c.at, ago(Some(&c.at), now));
            for change in &c.changes {
                let _ = writeln!(out, "      - {change}");
            }
            for line in &c.diff {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    out
}

/// Left-aligned columns two spaces apart, the last one unpadded.
fn columns(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = width[i] - cell.chars().count() + 2;
                text.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, headers.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}
