//! The validators of .venv-tools/ that tests run (scripts/test-env installs them); each panics
//! with the way forward when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo_root;

/// A program of .venv-tools/bin.
pub fn tool(name: &str) -> PathBuf {
    let path = repo_root().join(".venv-tools/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-env",
        path.display()
    );
    path
}

/// Validates the SARIF log at `path` against SARIF 2.1.0's published schema, offline;
/// returns it parsed.
pub fn assert_valid_sarif(path: &Path) -> serde_json::Value {
    let schema = repo_root().join(".venv-tools/share/sarif-schema-2.1.0.json");
    assert!(
        schema.exists(),
        "{} is missing: run scripts/test-env",
        schema.display()
    );
    // The schema's own `language` pattern is not valid ECMA-262 (`…]?$`); Python's dialect
    // reads it as OASIS meant.
    let out = Command::new(tool("check-jsonschema"))
        .args(["--regex-variant", "python", "--schemafile"])
        .arg(&schema)
        .arg(path)
        .output()
        .expect("run check-jsonschema");
    let text = std::fs::read_to_string(path).expect("read the SARIF log");
    assert!(
        out.status.success(),
        "{} is not valid SARIF 2.1.0:\n{}{}\n{text}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).expect("SARIF is JSON")
}
