//! Finding and reading manifest files under DIR, exactly as the contract says.
//!
//! Recursive; `*.yaml` and `*.yml`; entries whose name starts with `.` are skipped (this skips
//! the `..data` / `..2024_…` folders of a ConfigMap volume, whose top-level links are followed
//! instead); a file reached twice through links is read once.
//!
//! DIR is hostile input too. DIR itself may be a link (git-sync flips one): it is resolved once,
//! and the walk stays inside what it resolved to. A link inside DIR is followed only while its
//! target stays inside DIR; a link out of DIR, a link loop, a dangling link, an entry that cannot
//! be read and a manifest name that is not a regular file (a FIFO would block the read forever)
//! are each refused with an error naming the entry, never skipped: a skipped entry would look
//! like the removal of what it declared.

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

/// Why an entry under DIR was not read. Each one makes the load invalid.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("symbolic link points outside {} (to {}); not followed", dir.display(), target.display())]
    OutsideDir { dir: PathBuf, target: PathBuf },
    #[error("symbolic link loop: it points to {}, a directory that contains it; not followed", target.display())]
    Loop { target: PathBuf },
    #[error("symbolic link cannot be resolved: {error}")]
    Unresolvable { error: std::io::Error },
    #[error("cannot read directory: {error}")]
    UnreadableDir { error: std::io::Error },
    #[error("cannot read: {error}")]
    Unreadable { error: std::io::Error },
    #[error("not a regular file (a FIFO, socket or device); refusing to read it")]
    NotAFile,
}

/// A manifest file found under DIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The path as reached from DIR (`DIR/a/b.yaml`): what messages show, stable across
    /// git-sync's flips of DIR.
    pub path: PathBuf,
    /// Its resolved path inside the resolved DIR: what is read, so that a link changed after the
    /// walk cannot lead the read out of DIR.
    pub real: PathBuf,
    /// Its metadata when listed: a reload skips reading a file whose stamp has not moved.
    pub stamp: Stamp,
}

/// What a file's metadata says about its content: device, inode, size, and the times of its
/// last write and status change (nanoseconds). A write moves the times; a replaced file (a
/// ConfigMap or git-sync swap) changes the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the last write was at least `margin` before `when`: a file written in the same
    /// tick as it was read could change again without its times moving (on a file system with
    /// coarse times), so such a stamp proves nothing.
    pub fn settled_before(&self, when: std::time::SystemTime, margin: std::time::Duration) -> bool {
        let written = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::new(
                u64::try_from(self.mtime.0.max(self.ctime.0)).unwrap_or(0),
                0,
            ))
            .unwrap_or(std::time::UNIX_EPOCH);
        written + margin + std::time::Duration::from_secs(1) <= when
    }
}

impl ManifestFile {
    /// The file's text: see [`read`].
    pub fn read(&self) -> Result<String, String> {
        read(&self.real)
    }
}

/// What [`find`] found under DIR.
#[derive(Debug, Default)]
pub struct Listing {
    /// Sorted by path; each real file once (by the first path that reaches it).
    pub files: Vec<ManifestFile>,
    /// Entries that were not read, each with why, by path as reached from DIR.
    pub refused: Vec<(PathBuf, Refusal)>,
}

/// Every manifest file below `dir`, and every entry that had to be refused. An unreadable `dir`
/// is an error.
pub fn find(dir: &Path) -> Result<Listing, FilesError> {
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
    let entries = read_dir(&root).map_err(|error| FilesError::Dir {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut walk = Walk {
        dir,
        seen_dirs: HashSet::from([root.clone()]),
        seen_files: HashSet::new(),
        ancestors: vec![root.clone()],
        listing: Listing::default(),
    };
    walk.entries(entries, &root, dir);
    walk.listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    walk.listing.refused.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(walk.listing)
}

struct Walk<'a> {
    /// DIR as given, for messages.
    dir: &'a Path,
    seen_dirs: HashSet<PathBuf>,
    seen_files: HashSet<PathBuf>,
    /// The real paths of the directories being walked, DIR's first: a link to one is a loop.
    ancestors: Vec<PathBuf>,
    listing: Listing,
}

impl Walk<'_> {
    fn refuse(&mut self, shown: PathBuf, why: Refusal) {
        self.listing.refused.push((shown, why));
    }

    /// Walks the directory whose real path is `real` (no link in it) and which DIR reaches as
    /// `shown`.
    fn dir(&mut self, real: PathBuf, shown: PathBuf) {
        match read_dir(&real) {
            Ok(entries) => {
                self.ancestors.push(real.clone());
                self.entries(entries, &real, &shown);
                self.ancestors.pop();
            }
            Err(error) => self.refuse(shown, Refusal::UnreadableDir { error }),
        }
    }

    fn entries(&mut self, names: Vec<std::ffi::OsString>, real_dir: &Path, shown_dir: &Path) {
        for name in names {
            let (real, shown) = (real_dir.join(&name), shown_dir.join(&name));
            let meta = match fs::symlink_metadata(&real) {
                Ok(meta) => meta,
                Err(error) => {
                    self.refuse(shown, Refusal::Unreadable { error });
                    continue;
                }
            };
            if meta.file_type().is_symlink() {
                self.link(&real, shown);
            } else if meta.is_dir() {
                if self.seen_dirs.insert(real.clone()) {
                    self.dir(real, shown);
                }
            } else {
                self.file(real, shown, &meta);
            }
        }
    }

    /// Follows the link at `real` if it stays inside DIR.
    fn link(&mut self, real: &Path, shown: PathBuf) {
        let target = match fs::canonicalize(real).and_then(|t| Ok((fs::metadata(&t)?, t))) {
            Ok((meta, target)) => (meta, target),
            Err(error) => {
                // A dangling link may be a directory of manifests that vanished: refusing it
                // keeps their resources from looking removed.
                self.refuse(shown, Refusal::Unresolvable { error });
                return;
            }
        };
        let (meta, target) = target;
        let inside = self
            .ancestors
            .first()
            .is_some_and(|root| target.starts_with(root));
        if !meta.is_dir() && !is_manifest_name(&shown) {
            // Never read, wherever it points (a README linked from elsewhere).
            return;
        }
        if !inside {
            let dir = self.dir.to_path_buf();
            self.refuse(shown, Refusal::OutsideDir { dir, target });
        } else if meta.is_dir() {
            if self.ancestors.contains(&target) {
                self.refuse(shown, Refusal::Loop { target });
            } else if self.seen_dirs.insert(target.clone()) {
                self.dir(target, shown);
            }
        } else {
            self.file(target, shown, &meta);
        }
    }

    fn file(&mut self, real: PathBuf, shown: PathBuf, meta: &fs::Metadata) {
        if !is_manifest_name(&shown) {
            return;
        }
        if !meta.is_file() {
            self.refuse(shown, Refusal::NotAFile);
        } else if self.seen_files.insert(real.clone()) {
            self.listing.files.push(ManifestFile {
                path: shown,
                real,
                stamp: Stamp::of(meta),
            });
        }
    }
}

/// The names in `dir` that do not start with `.`, sorted. Any error while listing is an error:
/// a partial listing would look like removed files.
fn read_dir(dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    #[cfg(test)]
    tests::injected_read_dir_error(dir)?;
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if !name.to_string_lossy().starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
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
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // The text before the bad byte is valid: its lines and characters place it.
        let before = String::from_utf8_lossy(&bytes[..at]);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(
            "file is not valid UTF-8: line {line}, column {column} (byte offset {at}) holds 0x{:02x}",
            bytes[at]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn a_stamp_is_trusted_only_once_its_last_write_has_settled() {
        let at = |secs: i64| Stamp {
            dev: 1,
            ino: 2,
            len: 3,
            mtime: (secs, 0),
            ctime: (secs, 0),
        };
        let read = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let margin = std::time::Duration::from_secs(2);
        assert!(at(990).settled_before(read, margin));
        assert!(
            !at(999).settled_before(read, margin),
            "written just before the read"
        );
        assert!(
            !at(1000).settled_before(read, margin),
            "written in the read's second"
        );
        let mut status_changed = at(990);
        status_changed.ctime = (1000, 0);
        assert!(!status_changed.settled_before(read, margin));
    }

    use super::*;
    use std::cell::RefCell;
    use std::os::unix::fs::symlink;

    thread_local! {
        /// A directory whose listing fails with "permission denied" (tests run as root, where
        /// permissions do not deny anything).
        static UNREADABLE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }

    pub(super) fn injected_read_dir_error(dir: &Path) -> std::io::Result<()> {
        UNREADABLE.with(|u| match &*u.borrow() {
            Some(bad) if bad == dir => {
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            }
            _ => Ok(()),
        })
    }

    fn names(dir: &Path) -> Vec<String> {
        let listing = find(dir).unwrap();
        assert!(listing.refused.is_empty(), "{:?}", listing.refused);
        listing
            .files
            .iter()
            .map(|f| f.path.strip_prefix(dir).unwrap().display().to_string())
            .collect()
    }

    /// Each refused entry, relative to `dir`, with its message.
    fn refused(dir: &Path) -> Vec<(String, String)> {
        find(dir)
            .unwrap()
            .refused
            .iter()
            .map(|(p, why)| {
                let p = p.strip_prefix(dir).unwrap().display().to_string();
                (p, why.to_string())
            })
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
        fs::write(data.join("agent.yaml"), "a: 1\n").unwrap();
        symlink("..2024_01_01_00_00_00.000", d.path().join("..data")).unwrap();
        symlink("..data/agent.yaml", d.path().join("agent.yaml")).unwrap();
        assert_eq!(names(d.path()), ["agent.yaml"]);
        let file = &find(d.path()).unwrap().files[0];
        assert_eq!(file.real, data.canonicalize().unwrap().join("agent.yaml"));
        assert_eq!(file.read().unwrap(), "a: 1\n");
    }

    #[test]
    fn a_dir_that_is_a_link_is_resolved_once_and_named_as_given() {
        // git-sync: DIR is a link to the current revision, flipped on every sync.
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("rev-1")).unwrap();
        fs::write(d.path().join("rev-1/role.yaml"), "").unwrap();
        symlink("rev-1", d.path().join("current")).unwrap();
        let dir = d.path().join("current");
        assert_eq!(names(&dir), ["role.yaml"]);
        let file = &find(&dir).unwrap().files[0];
        assert_eq!(file.path, dir.join("role.yaml"));
        let real = d.path().canonicalize().unwrap().join("rev-1/role.yaml");
        assert_eq!(file.real, real);
    }

    #[test]
    fn a_link_to_a_hidden_version_dir_inside_dir_is_followed() {
        // git-sync's other layout: DIR holds `.worktrees/<hash>` and a link to it.
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(".worktrees/abc/sub")).unwrap();
        fs::write(d.path().join(".worktrees/abc/sub/role.yaml"), "").unwrap();
        symlink(".worktrees/abc", d.path().join("current")).unwrap();
        assert_eq!(names(d.path()), ["current/sub/role.yaml"]);
    }

    #[test]
    fn a_dir_linked_twice_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        fs::write(d.path().join("real/r.yaml"), "").unwrap();
        symlink("real", d.path().join("alias")).unwrap();
        symlink("real/r.yaml", d.path().join("r-too.yaml")).unwrap();
        assert_eq!(names(d.path()), ["alias/r.yaml"]);
    }

    #[test]
    fn links_out_of_dir_are_refused_and_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join("x.yaml"), "").unwrap();
        fs::write(other.path().join("notes.md"), "").unwrap();
        symlink("/", d.path().join("root")).unwrap();
        symlink(other.path(), d.path().join("other")).unwrap();
        symlink(other.path().join("x.yaml"), d.path().join("x.yaml")).unwrap();
        symlink(other.path().join("notes.md"), d.path().join("notes.md")).unwrap();
        fs::write(d.path().join("ok.yaml"), "").unwrap();
        let listing = find(d.path()).unwrap();
        let files: Vec<_> = listing.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(files, [d.path().join("ok.yaml")]);
        let refused = refused(d.path());
        let paths: Vec<&str> = refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["other", "root", "x.yaml"], "notes.md is never read");
        let outside = format!("points outside {}", d.path().display());
        for (path, why) in &refused {
            assert!(why.contains(&outside), "{path}: {why}");
        }
        assert!(refused[1].1.contains("(to /)"), "{:?}", refused[1]);
    }

    #[test]
    fn link_loops_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        fs::write(d.path().join("real/r.yaml"), "").unwrap();
        symlink("..", d.path().join("real/up")).unwrap();
        symlink(".", d.path().join("self")).unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let refused = refused(d.path());
        let paths: Vec<&str> = refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a", "b", "real/up", "self"]);
        assert!(refused[2].1.contains("symbolic link loop"), "{refused:?}");
        assert!(refused[3].1.contains("symbolic link loop"), "{refused:?}");
        // a -> b -> a cannot be resolved at all.
        assert!(refused[0].1.contains("cannot be resolved"), "{refused:?}");
        let files = find(d.path()).unwrap().files;
        assert_eq!(files.len(), 1, "{files:?}");
    }

    #[test]
    fn a_dangling_link_is_refused_not_skipped() {
        let d = tempfile::tempdir().unwrap();
        symlink("missing.yaml", d.path().join("dangling.yaml")).unwrap();
        symlink("gone-revision", d.path().join("current")).unwrap();
        let refused = refused(d.path());
        let paths: Vec<&str> = refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["current", "dangling.yaml"]);
        assert!(refused[0].1.starts_with("symbolic link cannot be resolved"));
    }

    #[test]
    fn a_fifo_with_a_manifest_name_is_refused_not_read() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
        symlink("pipe.yaml", d.path().join("link.yaml")).unwrap();
        let refused = refused(d.path());
        assert_eq!(
            refused,
            [
                ("link.yaml".into(), Refusal::NotAFile.to_string()),
                ("pipe.yaml".into(), Refusal::NotAFile.to_string()),
            ]
        );
    }

    #[test]
    fn an_unreadable_subdirectory_is_refused_not_skipped() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("sub/r.yaml"), "").unwrap();
        fs::write(d.path().join("top.yaml"), "").unwrap();
        let sub = d.path().canonicalize().unwrap().join("sub");
        UNREADABLE.with(|u| *u.borrow_mut() = Some(sub));
        let refused = refused(d.path());
        UNREADABLE.with(|u| *u.borrow_mut() = None);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "sub");
        assert!(
            refused[0].1.starts_with("cannot read directory:"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_missing_or_unreadable_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(find(&d.path().join("nope")).is_err());
        UNREADABLE.with(|u| *u.borrow_mut() = Some(d.path().canonicalize().unwrap()));
        let result = find(d.path());
        UNREADABLE.with(|u| *u.borrow_mut() = None);
        assert!(matches!(result, Err(FilesError::Dir { .. })));
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
        let bad = d.path().join("bad.yaml");
        fs::write(&bad, b"a: 1\nb: \xc3\xa9\xff\n").unwrap();
        assert_eq!(
            read(&bad).unwrap_err(),
            "file is not valid UTF-8: line 2, column 5 (byte offset 10) holds 0xff"
        );
        let ok = d.path().join("ok.yaml");
        fs::write(&ok, "a: 1\n").unwrap();
        assert_eq!(read(&ok).unwrap(), "a: 1\n");
    }
}
