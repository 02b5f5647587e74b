//! One validation error, in the form `FILE:LINE: FIELD.PATH: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fieldpath::FieldPath;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; `None` where the error is about the file as a whole.
    pub line: Option<usize>,
    pub path: FieldPath,
    pub message: String,
    /// Which rule it breaks: a stable id for code scanning (SARIF's `ruleId`), one of
    /// [`rules`] or a guardrail's `guardrail/…`.
    pub rule: &'static str,
}

/// The rule ids of errors that are not guardrails. Stable: code scanning tracks findings by
/// them, so an id is never renamed or reused.
pub mod rules {
    /// The file cannot be read as a manifest file (unreadable, too large, a link out of DIR).
    pub const FILE: &str = "file";
    /// The YAML itself is malformed.
    pub const YAML_SYNTAX: &str = "yaml-syntax";
    /// A field is unknown, missing or malformed, a variable unresolved, or a value breaks one
    /// of IAM's rules.
    pub const MANIFEST: &str = "manifest";
    /// An ACK object iam-warden cannot read as written.
    pub const ACK: &str = "ack";
    /// Across documents: a resource declared twice, a `{ref}` to nothing, one url twice.
    pub const REFERENCE: &str = "reference";
    /// The accounts file (`--accounts`).
    pub const ACCOUNTS: &str = "accounts";
    /// A warning: a manifest's `iam-warden/accounts` selects none of the accounts.
    pub const UNSELECTED: &str = "unselected-manifest";
}

impl Diagnostic {
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: None,
            path: FieldPath::default(),
            message: message.into(),
            rule: rules::FILE,
        }
    }

    /// The same error, breaking `rule`.
    pub fn breaking(mut self, rule: &'static str) -> Diagnostic {
        self.rule = rule;
        self
    }
}

/// Errors kept per file. A file with more is wrong throughout, and a hostile one (a megabyte of
/// `{}` documents, four errors each) must not fill memory and the log with messages.
pub const MAX_PER_FILE: usize = 100;

/// Keeps the first [`MAX_PER_FILE`] of a file's `diags`, and says so when there were more or
/// when the rest of the file was not checked (`unchecked`).
pub fn limit_per_file(diags: &mut Vec<Diagnostic>, file: &Path, unchecked: bool) {
    if diags.len() > MAX_PER_FILE || unchecked {
        diags.truncate(MAX_PER_FILE);
        diags.push(Diagnostic::file(
            file,
            format!("more than {MAX_PER_FILE} errors; the rest of this file is not checked"),
        ));
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote the manifest: a newline or an escape in it must not reach a terminal
        // or a CI log as such.
        let show = |t: &str| crate::printable::printable(t).into_owned();
        write!(f, "{}", show(&self.file.display().to_string()))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.0.is_empty() {
            write!(f, ": {}", show(&self.path.to_string()))?;
        }
        write!(f, ": {}", show(&self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_keeps_its_first_errors_and_says_that_there_were_more() {
        let many = |n: usize| -> Vec<Diagnostic> {
            (0..n)
                .map(|i| Diagnostic::file("a.yaml", format!("error {i}")))
                .collect()
        };
        let mut diags = many(MAX_PER_FILE);
        limit_per_file(&mut diags, Path::new("a.yaml"), false);
        assert_eq!(
            diags,
            many(MAX_PER_FILE),
            "exactly the limit: all kept, no note"
        );
        let mut diags = many(MAX_PER_FILE + 5);
        limit_per_file(&mut diags, Path::new("a.yaml"), false);
        assert_eq!(diags.len(), MAX_PER_FILE + 1);
        assert_eq!(diags[..MAX_PER_FILE], many(MAX_PER_FILE)[..]);
        assert!(diags[MAX_PER_FILE].message.contains("more than 100 errors"));
        let mut diags = many(MAX_PER_FILE);
        limit_per_file(&mut diags, Path::new("a.yaml"), true);
        assert_eq!(
            diags.len(),
            MAX_PER_FILE + 1,
            "documents left unchecked are said"
        );
    }

    #[test]
    fn renders_file_line_path_and_message() {
        let d = Diagnostic {
            file: "manifests/a.yaml".into(),
            line: Some(12),
            path: FieldPath::default().key("spec").key("path"),
            message: "must begin and end with `/`".into(),
            rule: rules::MANIFEST,
        };
        assert_eq!(
            d.to_string(),
            "manifests/a.yaml:12: spec.path: must begin and end with `/`"
        );
        assert_eq!(
            Diagnostic::file("x.yaml", "too big").to_string(),
            "x.yaml: too big"
        );
    }
}
