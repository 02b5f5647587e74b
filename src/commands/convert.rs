//! `iam-warden convert DIR`: every manifest in the native shape, ACK's objects rewritten, so a
//! team can move from ACK's format on its own schedule. Variables are left as written.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ConvertArgs;
use crate::manifest::{ack, files, yaml};

/// One file's documents, converted.
struct Converted {
    path: PathBuf,
    docs: Vec<serde_json::Value>,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<u8> {
    let listing = files::find(&args.dir)
        .with_context(|| format!("cannot read manifests from {}", args.dir.display()))?;
    let mut errors = Vec::new();
    let mut converted = Vec::new();
    // (kind, Kubernetes name, IAM name) of every ACK object whose names differ.
    let mut aliases = Vec::new();
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
                Ok((json, alias)) => {
                    if let Some(alias) = alias {
                        let kind = json["kind"].as_str().unwrap_or_default().to_string();
                        let name = json["metadata"]["name"].as_str().unwrap_or_default();
                        aliases.push((kind, alias, name.to_string()));
                    }
                    out.push(json);
                }
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
    let mut all: Vec<serde_json::Value> = converted.iter().flat_map(|c| c.docs.clone()).collect();
    ack::resolve_refs(&mut all, &aliases);
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
                write!(stdout, "{}", crate::import::to_yaml(&c.docs))?;
            }
        }
    }
    Ok(EXIT_OK)
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
        std::fs::write(&target, crate::import::to_yaml(&c.docs))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}
