//! Finding and reading manifest files under DIR, exactly as the contract says.
//!
//! Recursive; `*.yaml` and `*.yml`; entries whose name starts with `.` are skipped (this skips
//! the `..data` / `..2024_…` folders of a ConfigMap volume, whose top-level links are followed
//! instead); a file reached twice through links is read once; a link loop ends the walk.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files larger than this are refused: no manifest is that big, and the daemon must not be
/// made to read a huge file into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    // The io error is shown here, not chained as a source, so that it is printed once.
    #[error("cannot read directory {}: {error}", path.display())]
    Dir {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Every manifest file below `dir`, sorted, each real file once (by the first path that
/// reaches it). Unreadable subdirectories are skipped; an unreadable `dir` is an error.
pub fn find(dir: &Path) -> Result<Vec<PathBuf>, FilesError> {
    let root = fs::canonicalize(dir).map_err(|error| FilesError::Dir {
        path: dir.to_path_buf(),
        error,
    })?;
    if !root.is_dir() {
        return Err(FilesError::Dir {
            path: dir.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut seen_dirs = HashSet::from([root]);
    let mut seen_files = HashSet::new();
    let mut out = Vec::new();
    walk(dir, &mut seen_dirs, &mut seen_files, &mut out, true)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    seen_dirs: &mut HashSet<PathBuf>,
    seen_files: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    is_root: bool,
) -> Result<(), FilesError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if is_root => {
            return Err(FilesError::Dir {
                path: dir.to_path_buf(),
                error,
            });
        }
        Err(_) => return Ok(()),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        // Follows links; a dangling link is skipped.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let Ok(real) = fs::canonicalize(&path) else {
            continue;
        };
        if meta.is_dir() {
            if seen_dirs.insert(real) {
                walk(&path, seen_dirs, seen_files, out, false)?;
            }
        } else if meta.is_file() && is_manifest_name(&path) && seen_files.insert(real) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// A file's text: at most [`MAX_FILE_BYTES`], valid UTF-8.
pub fn read(path: &Path) -> Result<String, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "file is larger than {} KiB; a manifest file must be smaller",
            MAX_FILE_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "file is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(dir: &Path) -> Vec<String> {
        find(dir)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn finds_yaml_and_yml_recursively_and_skips_other_files() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        for f in [
            "x.yaml",
            "a/y.yml",
            "a/b/z.yaml",
            "readme.md",
            "a/values.json",
        ] {
            fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(names(d.path()), ["a/b/z.yaml", "a/y.yml", "x.yaml"]);
    }

    #[test]
    fn skips_dot_entries() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(".git")).unwrap();
        fs::write(d.path().join(".git/config.yaml"), "").unwrap();
        fs::write(d.path().join(".hidden.yaml"), "").unwrap();
        fs::write(d.path().join("role.yaml"), "").unwrap();
        assert_eq!(names(d.path()), ["role.yaml"]);
    }

    #[test]
    fn reads_configmap_volumes_through_their_top_level_links_once() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("..2024_01_01_00_00_00.000");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("agent.yaml"), "").unwrap();
        symlink("..2024_01_01_00_00_00.000", d.path().join("..data")).unwrap();
        symlink("..data/agent.yaml", d.path().join("agent.yaml")).unwrap();
        assert_eq!(names(d.path()), ["agent.yaml"]);
    }

    #[test]
    fn a_file_linked_twice_is_read_once_and_link_loops_end() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        fs::write(d.path().join("real/r.yaml"), "").unwrap();
        symlink("real", d.path().join("alias")).unwrap();
        symlink("..", d.path().join("real/up")).unwrap();
        symlink("missing.yaml", d.path().join("dangling.yaml")).unwrap();
        assert_eq!(names(d.path()), ["alias/r.yaml"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(find(&d.path().join("nope")).is_err());
    }

    #[test]
    fn refuses_big_and_non_utf8_files() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.yaml");
        fs::write(&big, vec![b'#'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert!(read(&big).unwrap_err().contains("larger than 1024 KiB"));
        let bin = d.path().join("bin.yaml");
        fs::write(&bin, [b'a', 0xff, b'b']).unwrap();
        assert!(read(&bin).unwrap_err().contains("not valid UTF-8"));
        let ok = d.path().join("ok.yaml");
        fs::write(&ok, "a: 1\n").unwrap();
        assert_eq!(read(&ok).unwrap(), "a: 1\n");
    }
}
