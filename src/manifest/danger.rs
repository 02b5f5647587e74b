//! Dangerous grants across a whole desired state: [`warnings`] applies
//! `policy::danger::findings` to every document a manifest declares and says where it was
//! declared (pure); [`locate`] only sharpens the lines from the files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::{DesiredState, Kind, files, yaml};
use crate::fieldpath::FieldPath;
use crate::policy::PolicyKind;
use crate::policy::danger::{Grant, aws_managed_grant, findings};

/// A dangerous grant in the desired state, where it was declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub kind: Kind,
    pub name: String,
    pub file: PathBuf,
    /// The line of the field where known, else of the resource's document.
    pub line: usize,
    /// From the document root: `spec.inlinePolicies.admin.Statement[0].Action`.
    pub path: FieldPath,
    pub grant: Grant,
    pub conditional: bool,
    /// The AWS managed policy, attached by ARN, that grants it (none: a statement does).
    pub via: Option<String>,
}

impl Warning {
    pub fn message(&self) -> String {
        let mut message = self.grant.why().to_string();
        if let Some(via) = &self.via {
            message.push_str(&format!(" (through the AWS managed policy {via})"));
        }
        if self.conditional {
            message.push_str("; only its Condition limits that");
        }
        message
    }
}

/// `warning: FILE:LINE: FIELD.PATH: message`, the shape of `validate`'s errors.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "warning: {}:{}: {}: {}",
            crate::printable::printable(&self.file.display().to_string()),
            self.line,
            self.path,
            self.message()
        )
    }
}

/// In `plan --output json`: `{kind, name, file, line, path, grant, message}`.
impl serde::Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "kind": self.kind,
            "name": self.name,
            "file": self.file.display().to_string(),
            "line": self.line,
            "path": self.path.to_string(),
            "grant": self.grant,
            "message": self.message(),
        })
        .serialize(s)
    }
}

/// Every dangerous grant of the desired state, sorted by file, line and field.
pub fn warnings(state: &DesiredState) -> Vec<Warning> {
    let mut out = Vec::new();
    let spec = FieldPath::default().key("spec");
    for role in state.roles.values() {
        let mut add = |at: FieldPath, doc: &Value, kind: PolicyKind| {
            out.extend(findings(doc, kind).into_iter().map(|f| Warning {
                kind: Kind::Role,
                name: role.name.clone(),
                file: role.origin.file.clone(),
                line: role.origin.line,
                path: at.join(&f.path),
                grant: f.grant,
                conditional: f.conditional,
                via: None,
            }));
        };
        let trust = role.assume_role_policy.value();
        add(spec.key("assumeRolePolicy"), trust, PolicyKind::Trust);
        for (name, doc) in &role.inline_policies {
            let at = spec.key("inlinePolicies").key(name.as_str());
            add(at, doc.value(), PolicyKind::Identity);
        }
        // AWS managed policies attached by ARN that grant as much as a sweeping statement.
        // The list is kept sorted, not as written: the warning names the field and the ARN.
        for r in &role.managed_policies {
            let super::PolicyRef::Arn(arn) = r else {
                continue;
            };
            if let Some(grant) = aws_managed_grant(arn) {
                out.push(Warning {
                    kind: Kind::Role,
                    name: role.name.clone(),
                    file: role.origin.file.clone(),
                    line: role.origin.line,
                    path: spec.key("managedPolicies"),
                    grant,
                    conditional: false,
                    via: Some(arn.clone()),
                });
            }
        }
    }
    for policy in state.policies.values() {
        let doc = policy.document.value();
        out.extend(
            findings(doc, PolicyKind::Identity)
                .into_iter()
                .map(|f| Warning {
                    kind: Kind::Policy,
                    name: policy.name.clone(),
                    file: policy.origin.file.clone(),
                    line: policy.origin.line,
                    path: spec.key("document").join(&f.path),
                    grant: f.grant,
                    conditional: f.conditional,
                    via: None,
                }),
        );
    }
    sort(&mut out);
    out
}

fn sort(warnings: &mut [Warning]) {
    warnings.sort_by_cached_key(|w| (w.file.clone(), w.line, w.path.to_string(), w.grant));
}

/// Replaces each warning's line (its resource's) with the line of its field, read again from
/// its file. Where the file cannot be read or the field is not found (a document written as a
/// JSON string has one line), the line stays as it was.
pub fn locate(warnings: &mut [Warning]) {
    let mut by_file: BTreeMap<PathBuf, Vec<&mut Warning>> = BTreeMap::new();
    for w in warnings.iter_mut() {
        by_file.entry(w.file.clone()).or_default().push(w);
    }
    for (file, warnings) in by_file {
        let Ok(text) = files::read(&file) else {
            continue;
        };
        let (docs, _) = yaml::parse_documents(&text);
        for w in warnings {
            let root = docs
                .iter()
                .filter_map(|d| d.root.as_ref())
                .find(|root| root.line == w.line);
            if let Some(root) = root {
                w.line = root.line_at(&w.path);
            }
        }
    }
    sort(warnings);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> crate::policy::PolicyDocument {
        crate::policy::PolicyDocument::from_value(value).unwrap()
    }

    fn origin(line: usize) -> crate::manifest::Origin {
        crate::manifest::Origin {
            file: "m.yaml".into(),
            line,
            k8s: None,
        }
    }

    #[test]
    fn warnings_name_the_resource_its_file_and_the_field_from_the_document_root() {
        use crate::manifest::{DesiredPolicy, DesiredRole};
        let open_trust = json!({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"}}});
        let safe_trust = json!({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"}}});
        let admin = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let role = |name: &str, trust: &Value, inline: Vec<(&str, &Value)>, line| DesiredRole {
            name: name.into(),
            path: "/".into(),
            description: String::new(),
            max_session_duration: 3600,
            permissions_boundary: None,
            assume_role_policy: doc(trust.clone()),
            managed_policies: Vec::new(),
            inline_policies: inline
                .into_iter()
                .map(|(n, d)| (n.to_string(), doc(d.clone())))
                .collect(),
            tags: BTreeMap::new(),
            annotations: BTreeMap::new(),
            origin: origin(line),
        };
        let mut state = DesiredState::default();
        for r in [
            role("open", &open_trust, vec![], 1),
            role("admin", &safe_trust, vec![("all", &admin)], 20),
            role("fine", &safe_trust, vec![], 40),
        ] {
            state.roles.insert(r.name.clone(), r);
        }
        let passrole = json!({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": "iam:Pass*", "Resource": "*"}});
        state.policies.insert(
            "deploy".into(),
            DesiredPolicy {
                name: "deploy".into(),
                path: "/".into(),
                description: String::new(),
                document: doc(passrole),
                tags: BTreeMap::new(),
                annotations: BTreeMap::new(),
                origin: origin(60),
            },
        );
        let shown: Vec<String> = warnings(&state).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                format!(
                    "warning: m.yaml:1: spec.assumeRolePolicy.Statement.Principal.AWS: {}",
                    Grant::AnyPrincipal.why()
                ),
                format!(
                    "warning: m.yaml:20: spec.inlinePolicies.all.Statement[0].Action: {}",
                    Grant::AllActions.why()
                ),
                format!(
                    "warning: m.yaml:60: spec.document.Statement.Action: {}",
                    Grant::PassRoleAnyRole.why()
                ),
            ]
        );
        let json = serde_json::to_value(&warnings(&state)[2]).unwrap();
        assert_eq!(
            json,
            json!({"kind": "Policy", "name": "deploy", "file": "m.yaml", "line": 60,
                   "path": "spec.document.Statement.Action", "grant": "pass-role-any-role",
                   "message": Grant::PassRoleAnyRole.why()})
        );
    }

    /// The warnings of one manifest file holding `text`, not located yet, and the directory
    /// that holds the file (`locate` reads it again).
    fn warnings_of(text: &str) -> (tempfile::TempDir, Vec<Warning>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.yaml"), text).unwrap();
        let vars = crate::manifest::Variables::default();
        let loaded = crate::manifest::load(dir.path(), &vars).unwrap();
        assert_eq!(loaded.diagnostics, vec![]);
        let found = warnings(&loaded.state);
        (dir, found)
    }

    #[test]
    fn locate_points_at_the_line_of_the_field() {
        let text = "apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: open}
spec:
  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement:
      - Effect: Allow
        Action: sts:AssumeRole
        Principal:
          AWS: \"*\"
";
        let (_dir, mut found) = warnings_of(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 1, "the resource's line until located");
        locate(&mut found);
        assert_eq!(found[0].line, 11);
        assert!(
            found[0]
                .to_string()
                .contains("r.yaml:11: spec.assumeRolePolicy")
        );
    }

    #[test]
    fn sweeping_aws_managed_policies_attached_by_arn_are_warned_of() {
        let text = "apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: admin}
spec:
  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement: [{Effect: Allow, Action: sts:AssumeRole, Principal: {Service: ec2.amazonaws.com}}]
  managedPolicies:
    - arn:aws:iam::aws:policy/ReadOnlyAccess
    - arn:aws:iam::aws:policy/AdministratorAccess
    - arn:aws-us-gov:iam::aws:policy/IAMFullAccess
    - arn:aws:iam::aws:policy/PowerUserAccess
    - arn:aws:iam::123456789012:policy/AdministratorAccess
";
        let (_dir, mut found) = warnings_of(text);
        locate(&mut found);
        let mut shown: Vec<(usize, String, Grant)> = found
            .iter()
            .map(|w| (w.line, w.via.clone().unwrap_or_default(), w.grant))
            .collect();
        shown.sort_by_key(|(_, _, grant)| *grant);
        // A customer policy that happens to share the name is not AWS's.
        assert_eq!(
            shown,
            vec![
                (
                    9,
                    "arn:aws:iam::aws:policy/AdministratorAccess".into(),
                    Grant::AllActions
                ),
                (
                    9,
                    "arn:aws:iam::aws:policy/PowerUserAccess".into(),
                    Grant::AllActionsExcept
                ),
                (
                    9,
                    "arn:aws-us-gov:iam::aws:policy/IAMFullAccess".into(),
                    Grant::AllIamActions
                ),
            ]
        );
        assert!(
            found[0]
                .to_string()
                .ends_with("r.yaml:9: spec.managedPolicies: allows every action on every resource (administrator access) (through the AWS managed policy arn:aws:iam::aws:policy/AdministratorAccess)"),
            "{}",
            found[0]
        );
        assert!(found.iter().any(|w| w.message().ends_with(
            "(through the AWS managed policy arn:aws:iam::aws:policy/AdministratorAccess)"
        )));
    }
}
