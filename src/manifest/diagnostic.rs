//! One validation error, in the form `FILE:LINE: FIELD.PATH: message`.

use std::fmt;
use std::path::PathBuf;

use crate::fieldpath::FieldPath;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; `None` where the error is about the file as a whole.
    pub line: Option<usize>,
    pub path: FieldPath,
    pub message: String,
}

impl Diagnostic {
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: None,
            path: FieldPath::default(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.0.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_path_and_message() {
        let d = Diagnostic {
            file: "manifests/a.yaml".into(),
            line: Some(12),
            path: FieldPath::default().key("spec").key("path"),
            message: "must begin and end with `/`".into(),
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
