//! Plans as people read them: a diff per resource (`+` create, `~` update, `-` remove), policy
//! documents as a statement-level diff, and a one-line summary.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::change::{Change, Finding, ResourcePlan};
use crate::manifest::danger::Warning;
use crate::policy::PolicyDocument;

/// One line saying what a change does, for logs.
pub fn summary(change: &Change) -> String {
    match change {
        Change::CreateRole { path, .. } => format!("create role at path {path}"),
        Change::CreatePolicy { path, .. } => format!("create policy at path {path}"),
        Change::UpdateAssumeRolePolicy { .. } => "update assumeRolePolicy".into(),
        // Both fields travel together in UpdateRole; only what differs is named.
        Change::UpdateRole {
            description,
            max_session_duration,
        } => {
            let mut parts = Vec::new();
            if description.0 != description.1 {
                parts.push(format!(
                    "description {:?} -> {:?}",
                    description.0, description.1
                ));
            }
            if max_session_duration.0 != max_session_duration.1 {
                parts.push(format!(
                    "maxSessionDuration {} -> {}",
                    max_session_duration.0, max_session_duration.1
                ));
            }
            parts.join(", ")
        }
        Change::PutPermissionsBoundary { before, after } => {
            format!(
                "permissionsBoundary {} -> {after}",
                before.as_deref().unwrap_or("(none)")
            )
        }
        Change::DeletePermissionsBoundary { before } => {
            format!("remove permissionsBoundary {before}")
        }
        Change::PutInlinePolicy {
            name, before: None, ..
        } => format!("add inline policy {name}"),
        Change::PutInlinePolicy { name, .. } => format!("update inline policy {name}"),
        Change::DeleteInlinePolicy { name, .. } => format!("delete inline policy {name}"),
        Change::AttachManagedPolicy { arn } => format!("attach {arn}"),
        Change::DetachManagedPolicy { arn } => format!("detach {arn}"),
        Change::CreatePolicyVersion { delete_first, .. } => match delete_first {
            Some(v) => format!("new default document version (deleting oldest version {v} first)"),
            None => "new default document version".into(),
        },
        Change::SetTags { tags, before } => {
            let each: Vec<String> = tags
                .iter()
                .map(|(k, v)| match before.get(k) {
                    Some(old) => format!("{k}={v} (was {old})"),
                    None => format!("{k}={v}"),
                })
                .collect();
            format!("set tags {}", each.join(", "))
        }
        Change::RemoveTags { keys: removed } => format!("remove tags {}", keys(removed)),
        Change::DeleteRole => "delete role (no manifest declares it; --prune)".into(),
        Change::DeletePolicy => "delete policy (no manifest declares it; --prune)".into(),
        Change::CreateInstanceProfile { path, .. } => {
            format!("create instance profile at path {path}")
        }
        Change::AddRoleToInstanceProfile { role } => format!("add role {role}"),
        Change::RemoveRoleFromInstanceProfile { role } => format!("remove role {role}"),
        Change::DeleteInstanceProfile => {
            "delete instance profile (no manifest declares it; --prune)".into()
        }
        Change::CreateOpenIDConnectProvider { url, .. } => format!("create OIDC provider {url}"),
        Change::AddClientId { client_id } => format!("add client id {client_id}"),
        Change::RemoveClientId { client_id } => format!("remove client id {client_id}"),
        Change::UpdateThumbprints { after, .. } => format!("thumbprints -> {}", list(after)),
        Change::DeleteOpenIDConnectProvider => {
            "delete OIDC provider (no manifest declares it; --prune)".into()
        }
    }
}

fn list(items: &std::collections::BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn keys(map: &BTreeMap<String, String>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Dangerous grants of the desired state, one `warning: FILE:LINE: FIELD.PATH: why` line each,
/// and a blank line after them.
pub fn warnings(warnings: &[Warning]) -> String {
    let mut out = String::new();
    for w in warnings {
        let _ = writeln!(out, "{w}");
    }
    if !warnings.is_empty() {
        out.push('\n');
    }
    out
}

/// The whole plan as text.
pub fn text(plans: &[ResourcePlan]) -> String {
    text_in(plans, None)
}

/// [`text`], each resource named `ACCOUNT/Kind/name` when it is one of many accounts'.
pub fn text_in(plans: &[ResourcePlan], account: Option<&str>) -> String {
    let mut out = String::new();
    for plan in plans
        .iter()
        .filter(|p| !p.changes.is_empty() || !p.findings.is_empty())
    {
        let _ = match account {
            Some(a) => writeln!(out, "{a}/{}/{}", plan.kind, plan.name),
            None => writeln!(out, "{} {}", plan.kind, plan.name),
        };
        out.push_str(&body(plan));
        out.push('\n');
    }
    out
}

/// One resource's part of [`text`] without the line naming it: its findings and changes, a
/// line each (the pull-request comment and a correction's history show it under their own
/// heading).
pub fn body(plan: &ResourcePlan) -> String {
    let mut out = String::new();
    if plan.observe_only && !plan.changes.is_empty() {
        let _ = writeln!(
            out,
            "  ! observe-only (iam-warden/mode: observe): drift shown, nothing is applied"
        );
    }
    for finding in &plan.findings {
        let _ = writeln!(out, "  ! {finding}");
    }
    for change in &plan.changes {
        change_text(&mut out, change);
    }
    out
}

fn change_text(out: &mut String, change: &Change) {
    match change {
        Change::CreateRole {
            path,
            description,
            max_session_duration,
            assume_role_policy,
            permissions_boundary,
            tags,
        } => {
            let _ = writeln!(
                out,
                "  + create role (path {path}, maxSessionDuration {max_session_duration})"
            );
            if !description.is_empty() {
                let _ = writeln!(out, "      description: {description:?}");
            }
            if let Some(b) = permissions_boundary {
                let _ = writeln!(out, "      permissionsBoundary: {b}");
            }
            document_lines(out, "assumeRolePolicy", None, assume_role_policy);
            tag_lines(out, tags);
        }
        Change::CreatePolicy {
            path,
            description,
            document,
            tags,
        } => {
            let _ = writeln!(out, "  + create policy (path {path})");
            if !description.is_empty() {
                let _ = writeln!(out, "      description: {description:?}");
            }
            document_lines(out, "document", None, document);
            tag_lines(out, tags);
        }
        Change::UpdateAssumeRolePolicy { before, after } => {
            let _ = writeln!(out, "  ~ assumeRolePolicy");
            document_lines(out, "", Some(before), after);
        }
        Change::UpdateRole {
            description,
            max_session_duration,
        } => {
            if description.0 != description.1 {
                let _ = writeln!(
                    out,
                    "  ~ description: {:?} -> {:?}",
                    description.0, description.1
                );
            }
            if max_session_duration.0 != max_session_duration.1 {
                let _ = writeln!(
                    out,
                    "  ~ maxSessionDuration: {} -> {}",
                    max_session_duration.0, max_session_duration.1
                );
            }
        }
        Change::PutPermissionsBoundary {
            before: None,
            after,
        } => {
            let _ = writeln!(out, "  + permissionsBoundary: {after}");
        }
        Change::PutPermissionsBoundary {
            before: Some(before),
            after,
        } => {
            let _ = writeln!(out, "  ~ permissionsBoundary: {before} -> {after}");
        }
        Change::DeletePermissionsBoundary { before } => {
            let _ = writeln!(out, "  - permissionsBoundary: {before}");
        }
        Change::PutInlinePolicy {
            name,
            before: None,
            after,
        } => {
            let _ = writeln!(out, "  + inlinePolicies.{name}");
            document_lines(out, "", None, after);
        }
        Change::PutInlinePolicy {
            name,
            before: Some(before),
            after,
        } => {
            let _ = writeln!(out, "  ~ inlinePolicies.{name}");
            document_lines(out, "", Some(before), after);
        }
        Change::DeleteInlinePolicy { name, .. } => {
            let _ = writeln!(out, "  - inlinePolicies.{name}");
        }
        Change::AttachManagedPolicy { arn } => {
            let _ = writeln!(out, "  + managedPolicies: {arn}");
        }
        Change::DetachManagedPolicy { arn } => {
            let _ = writeln!(out, "  - managedPolicies: {arn}");
        }
        Change::CreatePolicyVersion {
            delete_first,
            before,
            after,
        } => {
            let _ = writeln!(out, "  ~ document (new default version)");
            if let Some(v) = delete_first {
                let _ = writeln!(
                    out,
                    "      (5 versions exist: the oldest non-default one, {v}, is deleted first)"
                );
            }
            document_lines(out, "", Some(before), after);
        }
        Change::SetTags { tags, before } => {
            for (k, v) in tags {
                match before.get(k) {
                    Some(old) => writeln!(out, "  ~ tags.{k}: {old:?} -> {v:?}"),
                    None => writeln!(out, "  + tags.{k}: {v:?}"),
                }
                .ok();
            }
        }
        Change::RemoveTags { keys } => {
            for (k, v) in keys {
                let _ = writeln!(out, "  - tags.{k}: {v:?}");
            }
        }
        Change::DeleteRole
        | Change::DeletePolicy
        | Change::DeleteInstanceProfile
        | Change::DeleteOpenIDConnectProvider => {
            let _ = writeln!(out, "  - {}", summary(change));
        }
        Change::CreateOpenIDConnectProvider {
            url,
            client_ids,
            thumbprints,
            tags,
        } => {
            let _ = writeln!(out, "  + create OIDC provider {url}");
            let _ = writeln!(out, "      clientIDs: {}", list(client_ids));
            match thumbprints {
                Some(t) => writeln!(out, "      thumbprints: {}", list(t)),
                None => writeln!(out, "      thumbprints: (IAM's own)"),
            }
            .ok();
            tag_lines(out, tags);
        }
        Change::AddClientId { client_id } => {
            let _ = writeln!(out, "  + clientIDs: {client_id}");
        }
        Change::RemoveClientId { client_id } => {
            let _ = writeln!(out, "  - clientIDs: {client_id}");
        }
        Change::UpdateThumbprints { before, after } => {
            let _ = writeln!(
                out,
                "  ~ thumbprints: [{}] -> [{}]",
                list(before),
                list(after)
            );
        }
        Change::CreateInstanceProfile { path, tags } => {
            let _ = writeln!(out, "  + create instance profile (path {path})");
            tag_lines(out, tags);
        }
        Change::AddRoleToInstanceProfile { role } => {
            let _ = writeln!(out, "  + role: {role}");
        }
        Change::RemoveRoleFromInstanceProfile { role } => {
            let _ = writeln!(out, "  - role: {role}");
        }
    }
}

fn tag_lines(out: &mut String, tags: &BTreeMap<String, String>) {
    for (k, v) in tags {
        let _ = writeln!(out, "      tags.{k}: {v:?}");
    }
}

/// Statements only before get `-`, only after get `+`; unchanged ones are not shown.
fn document_lines(
    out: &mut String,
    label: &str,
    before: Option<&PolicyDocument>,
    after: &PolicyDocument,
) {
    if !label.is_empty() {
        let _ = writeln!(out, "      {label}:");
    }
    let old = before.map(PolicyDocument::statements).unwrap_or_default();
    let new = after.statements();
    let has = |list: &[(String, String)], canon: &str| list.iter().any(|(c, _)| c == canon);
    for (canon, written) in &old {
        if !has(&new, canon) {
            let _ = writeln!(out, "      - {written}");
        }
    }
    for (canon, written) in &new {
        if !has(&old, canon) {
            let _ = writeln!(out, "      + {written}");
        }
    }
    let (old_v, new_v) = (
        before.and_then(|b| b.value().get("Version")),
        after.value().get("Version"),
    );
    if before.is_some() && old_v != new_v {
        let show =
            |v: Option<&serde_json::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
        let _ = writeln!(out, "      ~ Version: {} -> {}", show(old_v), show(new_v));
    }
}

/// `Plan: 2 to create, 1 to update, 0 in sync, 1 conflict.`
pub fn totals(plans: &[ResourcePlan], failed: usize) -> String {
    let mut create = 0;
    let mut update = 0;
    let mut delete = 0;
    let mut later = 0;
    let mut in_sync = 0;
    let mut conflict = 0;
    let mut observed = 0;
    for p in plans {
        let deletes = p.changes.iter().any(Change::is_delete);
        let scheduled = p
            .findings
            .iter()
            .any(|f| matches!(f, Finding::PruneScheduled { .. }));
        if p.is_blocked() {
            conflict += 1;
        } else if p.observe_only && !p.changes.is_empty() {
            observed += 1;
        } else if deletes {
            delete += 1;
        } else if scheduled {
            later += 1;
        } else if p.changes.first().is_some_and(Change::is_create) {
            create += 1;
        } else if p.changes.is_empty() {
            in_sync += 1;
        } else {
            update += 1;
        }
    }
    let mut line = format!(
        "{create} to create, {update} to update, {delete} to delete, {in_sync} in sync, {conflict} in conflict"
    );
    if later > 0 {
        let _ = write!(line, ", {later} to delete after the grace period");
    }
    if observed > 0 {
        let _ = write!(line, ", {observed} drifted but observe-only");
    }
    if failed > 0 {
        let _ = write!(line, ", {failed} could not be observed");
    }
    line
}
