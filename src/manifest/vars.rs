//! `${var.NAME}` substitution, and the values it draws on (`--values FILE`, `--var NAME=VALUE`).
//!
//! Only `${var.…}` is ours: every other `${...}` is an IAM policy variable such as
//! `${aws:username}` and passes through untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PREFIX: &str = "${var.";

/// Variable values; later sources win.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables(BTreeMap<String, String>);

#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error("cannot read values file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("values file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("--var `{0}`: expected NAME=VALUE")]
    BadVar(String),
}

impl Variables {
    /// Values files in order, then `--var` assignments (which win over every file).
    pub fn load(values_files: &[PathBuf], assignments: &[String]) -> Result<Self, VarsError> {
        let mut vars = Variables::default();
        for path in values_files {
            let text = std::fs::read_to_string(path).map_err(|error| VarsError::Read {
                path: path.clone(),
                error,
            })?;
            vars.merge_yaml(path, &text)?;
        }
        for a in assignments {
            let (name, value) = a
                .split_once('=')
                .filter(|(n, _)| is_name(n))
                .ok_or_else(|| VarsError::BadVar(a.clone()))?;
            vars.set(name, value);
        }
        Ok(vars)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn merge_yaml(&mut self, path: &Path, text: &str) -> Result<(), VarsError> {
        let invalid = |message: String| VarsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let map = match value {
            serde_yaml::Value::Null => return Ok(()),
            serde_yaml::Value::Mapping(map) => map,
            _ => return Err(invalid("must be a mapping of NAME: value".into())),
        };
        for (k, v) in map {
            let name = match k {
                serde_yaml::Value::String(s) if is_name(&s) => s,
                other => {
                    return Err(invalid(format!(
                        "`{}` is not a variable name (letters, digits, `_` and `-`)",
                        scalar_text(&other).unwrap_or_else(|| "a non-string key".into())
                    )));
                }
            };
            let value = scalar_text(&v)
                .ok_or_else(|| invalid(format!("`{name}` must be a string, number or boolean")))?;
            self.0.insert(name, value);
        }
        Ok(())
    }
}

fn scalar_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Replaces every `${var.NAME}` in `text`. Errors name each undefined or malformed reference.
pub fn substitute(text: &str, vars: &Variables) -> Result<String, Vec<String>> {
    if !text.contains(PREFIX) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PREFIX.len()..];
        let Some(end) = after.find('}') else {
            errors.push(format!("`{}` is not closed with `}}`", &rest[start..]));
            rest = "";
            break;
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(value) if is_name(name) => out.push_str(value),
            _ if !is_name(name) => errors.push(format!(
                "`${{var.{name}}}`: `{name}` is not a variable name (letters, digits, `_` and `-`)"
            )),
            _ => errors.push(format!(
                "variable `{name}` is not defined (give it with --values FILE or --var {name}=VALUE)"
            )),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        let mut v = Variables::default();
        for (k, val) in pairs {
            v.set(k, val);
        }
        v
    }

    #[test]
    fn replaces_every_reference_and_keeps_iam_variables() {
        let v = vars(&[("bucket", "staging"), ("region", "eu-west-1")]);
        assert_eq!(
            substitute(
                "arn:aws:s3:::${var.bucket}/${aws:username}/${var.region}",
                &v
            )
            .unwrap(),
            "arn:aws:s3:::staging/${aws:username}/eu-west-1"
        );
        assert_eq!(
            substitute("${ec2:SourceInstanceARN}", &v).unwrap(),
            "${ec2:SourceInstanceARN}"
        );
    }

    #[test]
    fn undefined_names_are_errors_naming_the_variable() {
        let errs = substitute("${var.a}-${var.b}", &vars(&[("a", "1")])).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("variable `b` is not defined"), "{errs:?}");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(substitute("${var.open", &Variables::default()).is_err());
        assert!(substitute("${var.}", &Variables::default()).is_err());
        assert!(substitute("${var.a b}", &vars(&[("a b", "x")])).is_err());
    }

    #[test]
    fn later_sources_win_and_var_beats_values_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.yaml");
        let second = dir.path().join("b.yaml");
        std::fs::write(
            &first,
            "region: eu-west-1\nbucket: one\naccount: 123456789012\n",
        )
        .unwrap();
        std::fs::write(&second, "bucket: two\nenabled: true\n").unwrap();
        let v = Variables::load(&[first, second], &["region=us-east-1".into()]).unwrap();
        assert_eq!(v.get("region"), Some("us-east-1"));
        assert_eq!(v.get("bucket"), Some("two"));
        assert_eq!(v.get("account"), Some("123456789012"));
        assert_eq!(v.get("enabled"), Some("true"));
    }

    #[test]
    fn bad_values_files_and_assignments_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.yaml");
        std::fs::write(&list, "- a\n").unwrap();
        assert!(matches!(
            Variables::load(&[list], &[]),
            Err(VarsError::Invalid { .. })
        ));
        let nested = dir.path().join("nested.yaml");
        std::fs::write(&nested, "a: {b: c}\n").unwrap();
        assert!(matches!(
            Variables::load(&[nested], &[]),
            Err(VarsError::Invalid { .. })
        ));
        let missing = dir.path().join("missing.yaml");
        assert!(matches!(
            Variables::load(&[missing], &[]),
            Err(VarsError::Read { .. })
        ));
        assert!(matches!(
            Variables::load(&[], &["novalue".into()]),
            Err(VarsError::BadVar(_))
        ));
        let v = Variables::load(&[], &["k=a=b".into()]).unwrap();
        assert_eq!(v.get("k"), Some("a=b"));
    }
}
