//! `iam-warden convert DIR`: every manifest in the native shape, ACK's objects rewritten, so a
//! team can move from ACK's format on its own schedule. Variables are left as written.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ConvertArgs;
use crate::manifest::{ack, files, yaml};

/// One file's documents, converted, each with its Kubernetes identity when it was ACK's.
struct Converted {
    path: PathBuf,
    docs: Vec<(serde_json::Value, Option<crate::manifest::K8sName>)>,
}

impl Converted {
    fn jsons(&self) -> Vec<serde_json::Value> {
        self.docs.iter().map(|(d, _)| d.clone()).collect()
    }
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<u8> {
    refuse_out_inside(&args.dir, args.out.as_deref())?;
    let listing = files::find(&args.dir)
        .with_context(|| format!("cannot read manifests from {}", args.dir.display()))?;
    let mut errors = Vec::new();
    let mut converted = Vec::new();
    for (path, why) in &listing.refused {
        errors.push(format!("{}: {why}", path.display()));
    }
    for file in &listing.files {
        let text = match file.read() {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("{}: {e}", file.path.display()));
                continue;
            }
        };
        let (docs, syntax) = yaml::parse_documents(&text);
        if let Some(e) = syntax {
            errors.push(format!("{}:{}: {}", file.path.display(), e.line, e.message));
            continue;
        }
        let mut out = Vec::new();
        for root in docs.into_iter().filter_map(|d| d.root) {
            match ack::native_json(&root) {
                Ok(doc) => out.push(doc),
                Err(problems) => errors.extend(problems.into_iter().map(|(line, field, m)| {
                    format!("{}:{line}: {field}: {m}", file.path.display())
                })),
            }
        }
        converted.push(Converted {
            path: file.path.clone(),
            docs: out,
        });
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("convert: {} error(s); nothing written", errors.len());
        return Ok(EXIT_FAILED);
    }
    let mut all: Vec<_> = converted.iter().flat_map(|c| c.docs.clone()).collect();
    ack::resolve_refs(&mut all);
    let mut resolved = all.into_iter();
    for c in &mut converted {
        c.docs = resolved.by_ref().take(c.docs.len()).collect();
    }
    match &args.out {
        Some(out) => write_tree(&args.dir, out, &converted)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            for c in &converted {
                writeln!(stdout, "# {}", c.path.display())?;
                write!(stdout, "{}", crate::import::to_yaml(&c.jsons()))?;
            }
        }
    }
    Ok(EXIT_OK)
}

/// Files written into DIR (or below it) would be read back as a second declaration of
/// everything, or overwrite what they were converted from.
fn refuse_out_inside(dir: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let Some(out) = out else { return Ok(()) };
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot read manifests from {}", dir.display()))?;
    // The nearest part of `out` that exists, resolved, and the rest as written.
    let mut existing = out.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = std::fs::canonicalize(if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &existing
    })
    .unwrap_or(existing);
    resolved.extend(rest.iter().rev());
    if resolved.starts_with(&dir) {
        anyhow::bail!(
            "--out {} is inside DIR {}: write the converted files elsewhere",
            out.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Each file to the same relative path below `out`.
fn write_tree(dir: &Path, out: &Path, converted: &[Converted]) -> anyhow::Result<()> {
    for c in converted {
        let relative = c.path.strip_prefix(dir).unwrap_or(&c.path);
        let target = out.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, crate::import::to_yaml(&c.jsons()))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}
