//! `${var.NAME}`, `${aws.NAME}` and `${account.NAME}` substitution, and the values it draws
//! on (`--values FILE`, an account's values, `--var NAME=VALUE`, and the caller's identity).
//!
//! Only `${var.…}`, `${aws.…}` and `${account.…}` are ours: every other `${...}` is an IAM policy variable such
//! as `${aws:username}` (a colon, not a dot) and passes through untouched. A value is inserted
//! as written and never expanded again, so a value can never name another variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::yaml;

const VAR_PREFIX: &str = "${var.";
const AWS_PREFIX: &str = "${aws.";
const ACCOUNT_PREFIX: &str = "${account.";
/// The per-account built-ins, `${account.NAME}`.
pub const ACCOUNT_BUILTINS: &[&str] = &["name", "id"];
/// The built-in variables, `${aws.NAME}`.
pub const BUILTINS: &[&str] = &["account_id", "partition", "region"];

/// The built-in variables' values: the caller's account and partition and the SDK's region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builtins {
    pub account_id: String,
    pub partition: String,
    pub region: String,
}

impl Builtins {
    /// What `validate` (which makes no AWS call) checks with: names are checked, and the
    /// values are shaped like real ones so the rest of a document is checked as usual.
    pub fn placeholder() -> Builtins {
        Builtins {
            account_id: "000000000000".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
        }
    }

    /// The values for `account` (`${aws.account_id}`, `${aws.partition}`) and the SDK's
    /// `region`.
    pub fn new(account: &crate::arn::Account, region: &str) -> Builtins {
        Builtins {
            account_id: account.id.clone(),
            partition: account.partition.clone(),
            region: region.to_string(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "account_id" => Some(&self.account_id),
            "partition" => Some(&self.partition),
            "region" => Some(&self.region),
            _ => None,
        }
    }
}

/// Variable values; later sources win. Built-ins are placeholders until the caller's identity
/// is known (see [`Variables::with_builtins`]).
#[derive(Clone, Debug)]
pub struct Variables {
    values: BTreeMap<String, String>,
    builtins: Builtins,
    /// The account of the accounts file these values are for (`None`: no `--accounts`).
    account: Option<AccountScope>,
    /// Set when a substitution read a built-in: a load checked with placeholders must then be
    /// done again with the caller's identity (otherwise its result stands). Shared by clones;
    /// not part of equality.
    builtins_read: Arc<AtomicBool>,
}

impl PartialEq for Variables {
    fn eq(&self, other: &Variables) -> bool {
        self.values == other.values
            && self.builtins == other.builtins
            && self.account == other.account
    }
}

impl Default for Variables {
    fn default() -> Self {
        Variables {
            values: BTreeMap::new(),
            builtins: Builtins::placeholder(),
            account: None,
            builtins_read: Arc::default(),
        }
    }
}

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
    #[error(
        "variable `{0}` ({1}): its value holds `${{`; values are inserted as written and never \
         expanded again, so a value cannot refer to another variable"
    )]
    Nested(String, String),
}

impl Variables {
    /// Values files in order, then `--var` assignments (which win over every file).
    pub fn load(values_files: &[PathBuf], assignments: &[String]) -> Result<Self, VarsError> {
        Variables::load_layers(values_files, &BTreeMap::new(), assignments)
    }

    /// Values files in order, then `inline` values (an account's), then `--var` assignments.
    pub fn load_layers(
        values_files: &[PathBuf],
        inline: &BTreeMap<String, String>,
        assignments: &[String],
    ) -> Result<Self, VarsError> {
        let mut vars = Variables::default();
        let nested = |vars: &Variables, source: String| match vars
            .values
            .iter()
            .find(|(_, v)| v.contains("${"))
        {
            Some((name, _)) => Err(VarsError::Nested(name.clone(), source)),
            None => Ok(()),
        };
        for path in values_files {
            let text = std::fs::read_to_string(path).map_err(|error| VarsError::Read {
                path: path.clone(),
                error,
            })?;
            vars.merge_yaml(path, &text)?;
            nested(&vars, format!("from {}", path.display()))?;
        }
        vars.values
            .extend(inline.iter().map(|(k, v)| (k.clone(), v.clone())));
        for a in assignments {
            let (name, value) = a
                .split_once('=')
                .filter(|(n, _)| is_name(n))
                .ok_or_else(|| VarsError::BadVar(a.clone()))?;
            vars.set(name, value);
        }
        nested(&vars, "from --var".into())?;
        Ok(vars)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The same values, with the built-ins of the caller's identity.
    pub fn with_builtins(mut self, builtins: Builtins) -> Variables {
        self.builtins = builtins;
        self
    }

    pub fn builtins(&self) -> &Builtins {
        &self.builtins
    }

    /// The same values, for the account `name` (`id`) of the accounts file.
    pub fn for_account(mut self, name: &str, id: &str) -> Variables {
        self.account = Some(AccountScope {
            name: name.to_string(),
            id: id.to_string(),
        });
        self
    }

    /// The (name, id) an `iam-warden/accounts` selector is matched against here. Without an
    /// accounts file: no name, and the caller's account id (a built-in read).
    pub fn selected_as(&self) -> (&str, &str) {
        match &self.account {
            Some(a) => (&a.name, &a.id),
            None => {
                self.builtins_read.store(true, Ordering::Relaxed);
                ("", &self.builtins.account_id)
            }
        }
    }

    /// Whether any substitution with these values (or a clone of them) read a built-in.
    pub fn builtins_read(&self) -> bool {
        self.builtins_read.load(Ordering::Relaxed)
    }

    /// A values file: a mapping of NAME to a scalar, each value taken as written (`1.10`
    /// stays `1.10`, `012` stays `012`), so that it reaches IAM exactly so.
    fn merge_yaml(&mut self, path: &Path, text: &str) -> Result<(), VarsError> {
        let invalid = |line: usize, message: String| VarsError::Invalid {
            path: path.to_path_buf(),
            message: if line > 0 {
                format!("line {line}: {message}")
            } else {
                message
            },
        };
        let (docs, syntax) = yaml::parse_documents(text);
        if let Some(e) = syntax {
            return Err(invalid(e.line, e.message));
        }
        let mut roots = docs.into_iter().filter_map(|d| d.root);
        let Some(root) = roots.next() else {
            return Ok(());
        };
        if let Some(extra) = roots.next() {
            return Err(invalid(extra.line, "must hold one document".into()));
        }
        let yaml::Value::Map(entries) = root.value else {
            return Err(invalid(
                root.line,
                "must be a mapping of NAME: value".into(),
            ));
        };
        for (key, value) in entries {
            if !is_name(&key.name) {
                return Err(invalid(
                    key.line,
                    format!(
                        "`{}` is not a variable name (letters, digits, `_` and `-`)",
                        key.name
                    ),
                ));
            }
            match value.value {
                yaml::Value::Scalar { text, .. } if !value.is_null() => {
                    self.values.insert(key.name, text);
                }
                _ => {
                    return Err(invalid(
                        value.line,
                        format!("`{}` must be a string, number or boolean", key.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The account of the accounts file that a load is for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AccountScope {
    pub name: String,
    pub id: String,
}

/// Letters, digits, `_` and `-`: a variable's name, and an account's.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `text` refers to any of our variables (and so becomes a string once substituted).
pub fn has_reference(text: &str) -> bool {
    text.contains(VAR_PREFIX) || text.contains(AWS_PREFIX) || text.contains(ACCOUNT_PREFIX)
}

/// Replaces every `${var.NAME}` and `${aws.NAME}` in `text`. Errors name each undefined or
/// malformed reference.
pub fn substitute(text: &str, vars: &Variables) -> Result<String, Vec<String>> {
    if !has_reference(text) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some((start, prefix)) = next_reference(rest) {
        out.push_str(&rest[..start]);
        let after = &rest[start + prefix.len()..];
        let Some(end) = after.find('}') else {
            errors.push(format!("`{}` is not closed with `}}`", &rest[start..]));
            rest = "";
            break;
        };
        let name = &after[..end];
        match lookup(prefix, name, vars) {
            Ok(value) => out.push_str(value),
            Err(e) => errors.push(e),
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

/// The first reference in `text`: its byte offset and which prefix it has.
fn next_reference(text: &str) -> Option<(usize, &'static str)> {
    [VAR_PREFIX, AWS_PREFIX, ACCOUNT_PREFIX]
        .into_iter()
        .filter_map(|p| text.find(p).map(|i| (i, p)))
        .min_by_key(|(i, _)| *i)
}

fn lookup<'v>(prefix: &str, name: &str, vars: &'v Variables) -> Result<&'v str, String> {
    if prefix == ACCOUNT_PREFIX {
        return match (name, &vars.account) {
            ("name", Some(a)) => Ok(&a.name),
            ("id", Some(a)) => Ok(&a.id),
            ("id", None) => {
                vars.builtins_read.store(true, Ordering::Relaxed);
                Ok(&vars.builtins.account_id)
            }
            ("name", None) => Err(
                "`${account.name}` names an account of the accounts file: give one with \
                 --accounts FILE (without it, `${account.id}` is the caller's account)"
                    .to_string(),
            ),
            _ => Err(format!(
                "`${{account.{name}}}` is not a built-in variable (per account: {})",
                ACCOUNT_BUILTINS
                    .iter()
                    .map(|b| format!("${{account.{b}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    if prefix == AWS_PREFIX {
        vars.builtins_read.store(true, Ordering::Relaxed);
        return vars.builtins.get(name).ok_or_else(|| {
            format!(
                "`${{aws.{name}}}` is not a built-in variable (built-ins: {})",
                BUILTINS
                    .iter()
                    .map(|b| format!("${{aws.{b}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    if !is_name(name) {
        return Err(format!(
            "`${{var.{name}}}`: `{name}` is not a variable name (letters, digits, `_` and `-`)"
        ));
    }
    vars.get(name).ok_or_else(|| {
        format!(
            "variable `{name}` is not defined (give it with --values FILE or --var {name}=VALUE)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_built_in_is_remembered_by_every_clone() {
        let mut v = Variables::default();
        v.set("team", "data");
        let clone = v.clone();
        substitute("${var.team}-${aws:username}", &v).unwrap();
        assert!(!clone.builtins_read(), "no built-in read yet");
        substitute("arn:${aws.partition}:iam::", &v).unwrap();
        assert!(clone.builtins_read() && v.builtins_read());
        assert!(!Variables::default().builtins_read());
        // Not part of equality: a parse cache keyed by values is unaffected.
        assert_eq!(v, {
            let mut w = Variables::default();
            w.set("team", "data");
            w
        });
    }

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
    fn built_in_variables_are_the_callers_identity_and_placeholders_until_known() {
        let v = vars(&[]);
        assert_eq!(
            substitute("arn:${aws.partition}:iam::${aws.account_id}:root", &v).unwrap(),
            "arn:aws:iam::000000000000:root"
        );
        let v = v.with_builtins(Builtins {
            account_id: "210987654321".into(),
            partition: "aws-cn".into(),
            region: "cn-north-1".into(),
        });
        assert_eq!(
            substitute("${aws.partition}/${aws.account_id}/${aws.region}", &v).unwrap(),
            "aws-cn/210987654321/cn-north-1"
        );
        let errs = substitute("${aws.acount_id}", &v).unwrap_err();
        assert!(errs[0].contains("not a built-in variable"), "{errs:?}");
        // IAM's own variables use a colon and pass through.
        assert_eq!(substitute("${aws:userid}", &v).unwrap(), "${aws:userid}");
    }

    #[test]
    fn a_value_holding_a_reference_is_an_error_naming_the_variable() {
        for assignment in ["x=${var.y}", "x=a${aws.account_id}", "x=${aws:username}"] {
            let err = Variables::load(&[], &["y=1".into(), assignment.into()]).unwrap_err();
            assert!(
                matches!(&err, VarsError::Nested(n, from) if n == "x" && from == "from --var"),
                "{err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.yaml");
        std::fs::write(&file, "svc: \"${var.other}\"\n").unwrap();
        assert!(matches!(
            Variables::load(&[file], &[]),
            Err(VarsError::Nested(n, from)) if n == "svc" && from.contains("v.yaml")
        ));
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
    fn values_from_a_file_are_taken_exactly_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.yaml");
        std::fs::write(
            &file,
            "a: 1.10\nb: 0x1F\nc: 1e3\nd: +12\ne: True\nf: 012345678901\ng: 123456789012345678901234\nh: \"quoted\"\n",
        )
        .unwrap();
        let v = Variables::load(&[file], &[]).unwrap();
        for (name, expected) in [
            ("a", "1.10"),
            ("b", "0x1F"),
            ("c", "1e3"),
            ("d", "+12"),
            ("e", "True"),
            ("f", "012345678901"),
            ("g", "123456789012345678901234"),
            ("h", "quoted"),
        ] {
            assert_eq!(v.get(name), Some(expected), "{name}");
        }
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
