//! The file watcher: a change that can alter the manifests becomes one debounced "reload".
//!
//! DIR is watched through its real path, and its parent too, so that the ways GitOps tools
//! update it are all seen: git-sync flips a symlink at DIR's own path, a ConfigMap volume swaps
//! its `..data` link inside DIR. When DIR's real path changes, the watches follow it.
//!
//! Only events that can change what the loader reads count ([`Scope::is_relevant`]): in the
//! parent, DIR's own entry; under DIR, `*.yaml`/`*.yml` files and entries that may hold them
//! (directories, links), never what sits inside a dot-directory (`.git/`) nor other files
//! (`README.md`). A busy neighbour of DIR or a busy log file inside it never queues work.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::time::Instant;
use tokio::sync::mpsc;

/// Quiet time after the last event before reloading: a git checkout or a ConfigMap update is
/// many events in a burst.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The longest a burst may postpone its reload: a file rewritten every 100 ms is still read.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// What the watcher looks at: DIR's entry in its parent, and DIR's real path.
#[derive(Debug)]
struct Scope {
    /// DIR as an absolute path whose parent is canonical (`/abs/parent/NAME`).
    entry: PathBuf,
    /// DIR's real path (links resolved), while it exists.
    real: Option<PathBuf>,
}

impl Scope {
    /// Whether a change at `path` can change what the loader reads.
    fn is_relevant(&self, path: &Path) -> bool {
        if path == self.entry || self.real.as_deref() == Some(path) {
            return true;
        }
        match self.real.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) => may_hold_manifests(rel, path),
            // Anything else in the parent directory: a neighbour, not DIR.
            None => false,
        }
    }
}

/// `rel` (under DIR) is a manifest file, or an entry that could hold or reach some.
fn may_hold_manifests(rel: &Path, path: &Path) -> bool {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, inside)) = names.split_last() else {
        return true;
    };
    // The loader skips dot-entries: nothing inside one matters (`.git/…`, a ConfigMap's
    // `..2024_…/`); a top-level link such as `..data` itself does (its swap is the update).
    if inside.iter().any(|n| n.to_string_lossy().starts_with('.')) {
        return false;
    }
    let meta = std::fs::symlink_metadata(path);
    let is_link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink());
    let last = Path::new(last);
    if last.to_string_lossy().starts_with('.') {
        // Skipped by the loader, except as the target of top-level links: a ConfigMap's
        // `..data` link swapped is the update itself.
        return is_link;
    }
    if matches!(
        last.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) {
        return true;
    }
    match meta {
        Ok(meta) => meta.is_dir() || is_link,
        // Gone: it may have been a directory of manifests, unless its name says it was a file
        // of another kind (`README.md`, `notes.txt`).
        Err(_) => last.extension().is_none(),
    }
}

/// DIR made absolute with a canonical parent, so that a relative DIR (`manifests`, `.`) is
/// watched exactly like an absolute one. `None` when DIR has no parent (`/`).
fn entry_of(dir: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(dir).ok()?;
    // `components()` drops `.` and trailing slashes; `..` is resolved by canonicalising.
    let mut normal: PathBuf = absolute.components().collect();
    if normal.ends_with("..") {
        normal = std::fs::canonicalize(&normal).unwrap_or(normal);
    }
    let name = normal.file_name()?.to_os_string();
    let parent = normal.parent()?;
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    Some(parent.join(name))
}

/// While DIR cannot be watched whole (a subdirectory unreadable, DIR missing), the watch is
/// tried again this often, and a reload follows once it holds: edits made meanwhile are read
/// within about a second of DIR becoming readable again, not at the next resync.
pub const RETRY: Duration = Duration::from_secs(1);

/// Watches `dir` until `reload` is closed; sends `()` once per burst of relevant changes. The
/// watching (stat, canonicalize, the recursive walk of DIR) runs on a thread of its own, never
/// on the async workers.
pub async fn watch(dir: PathBuf, reload: mpsc::UnboundedSender<()>) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("iam-warden-watch".into())
        .spawn(move || {
            watch_blocking(&dir, &reload);
            let _ = done_tx.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = done_rx.await;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the file watcher; changes are picked up at each resync only");
        }
    }
}

/// What the watch of DIR's real path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    /// Every directory under DIR.
    Whole,
    /// Not all of it (or nothing): tried again every [`RETRY`].
    Partly,
}

fn watch_blocking(dir: &Path, reload: &mpsc::UnboundedSender<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let (raw_tx, raw_rx) = std::sync::mpsc::channel::<Option<Vec<PathBuf>>>();
    let handler = move |event: notify::Result<notify::Event>| {
        // Reads (ours included) are not changes; errors and rescans may hide changes (`None`:
        // no path to judge by).
        match event {
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
            Ok(e) if !e.need_rescan() && !e.paths.is_empty() => {
                let _ = raw_tx.send(Some(e.paths));
            }
            _ => {
                let _ = raw_tx.send(None);
            }
        }
    };
    let mut watcher = match RecommendedWatcher::new(handler, notify::Config::default()) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch files; changes are picked up at each resync only");
            return;
        }
    };
    let Some(entry) = entry_of(dir) else {
        tracing::error!(dir = %dir.display(), "cannot watch DIR; changes are picked up at each resync only");
        return;
    };
    if let Some(parent) = entry.parent() {
        if let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive) {
            tracing::warn!(path = %parent.display(), error = %e, "cannot watch the parent of DIR");
        }
    }
    let mut scope = Scope { entry, real: None };
    let relevant = |scope: &Scope, paths: &Option<Vec<PathBuf>>| match paths {
        None => true,
        Some(paths) => paths.iter().any(|p| scope.is_relevant(p)),
    };
    let mut watched = follow(&mut watcher, dir, &mut scope.real, Watched::Whole);
    loop {
        // Wait for the first relevant event of a burst; while DIR is watched only in part,
        // try again every RETRY, and reload once the whole of it is watched again.
        loop {
            if reload.is_closed() {
                return;
            }
            match raw_rx.recv_timeout(RETRY) {
                Ok(paths) if relevant(&scope, &paths) => break,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if watched == Watched::Partly => {
                    watched = follow(&mut watcher, dir, &mut scope.real, watched);
                    if watched == Watched::Whole {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // Then for quiet (relevant events extend it), but never longer than MAX_WAIT in all.
        let deadline = Instant::now() + MAX_WAIT;
        let mut quiet = (Instant::now() + DEBOUNCE).min(deadline);
        loop {
            let wait = quiet.saturating_duration_since(Instant::now());
            match raw_rx.recv_timeout(wait) {
                Ok(paths) => {
                    if relevant(&scope, &paths) {
                        quiet = (Instant::now() + DEBOUNCE).min(deadline);
                    }
                    // A flood of events is always ready: the deadline must be checked here too.
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if reload.send(()).is_err() {
            return;
        }
        watched = follow(&mut watcher, dir, &mut scope.real, watched);
    }
}

/// Watches DIR's real path afresh. Done after every burst of events, because nothing cheaper
/// is reliable: a flipped symlink changes the real path, and a directory replaced at the same
/// path may even get the old inode number back, while the kernel has dropped the old watch.
/// When the recursive watch fails (a subdirectory cannot be read), DIR itself is still
/// watched, and the caller tries again. Says once when that starts and when it ends.
fn follow(
    watcher: &mut RecommendedWatcher,
    dir: &Path,
    watched: &mut Option<PathBuf>,
    before: Watched,
) -> Watched {
    if let Some(old) = watched.take() {
        let _ = watcher.unwatch(&old);
    }
    let Ok(real) = std::fs::canonicalize(dir) else {
        return Watched::Partly;
    };
    match watcher.watch(&real, RecursiveMode::Recursive) {
        Ok(()) => {
            if before == Watched::Partly {
                tracing::info!(path = %real.display(), "watching all of DIR again");
            }
            *watched = Some(real);
            Watched::Whole
        }
        Err(e) => {
            // Whatever the walk added before it failed goes; DIR's own entries stay seen.
            let _ = watcher.unwatch(&real);
            if watcher.watch(&real, RecursiveMode::NonRecursive).is_ok() {
                *watched = Some(real.clone());
            }
            if before == Watched::Whole {
                tracing::warn!(path = %real.display(), error = %e, "cannot watch all of DIR; trying again every second");
            }
            Watched::Partly
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scope(root: &Path) -> Scope {
        let dir = root.join("m");
        Scope {
            entry: entry_of(&dir).unwrap(),
            real: fs::canonicalize(&dir).ok(),
        }
    }

    #[test]
    fn only_dirs_own_entry_counts_in_its_parent() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("m")).unwrap();
        let root = fs::canonicalize(d.path()).unwrap();
        let s = scope(&root);
        assert!(s.is_relevant(&root.join("m")));
        assert!(!s.is_relevant(&root.join("busy.log")));
        assert!(!s.is_relevant(&root.join("m.tmp")));
    }

    #[test]
    fn under_dir_only_what_can_hold_manifests_counts() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("m");
        fs::create_dir_all(m.join("sub")).unwrap();
        fs::create_dir_all(m.join(".git/objects")).unwrap();
        fs::write(m.join("README.md"), "").unwrap();
        let root = fs::canonicalize(d.path()).unwrap();
        let s = scope(&root);
        let m = root.join("m");
        std::os::unix::fs::symlink("sub", m.join("..data")).unwrap();
        for yes in ["r.yaml", "sub/r.yml", "sub", "gone-dir", "..data"] {
            assert!(s.is_relevant(&m.join(yes)), "{yes}");
        }
        for no in [
            "README.md",
            ".git",
            ".git/index.lock",
            ".git/objects/ab",
            "..2026_01_01/r.yaml",
            ".r.yaml",
            ".r.yaml.tmp",
            "notes.txt",
        ] {
            assert!(!s.is_relevant(&m.join(no)), "{no}");
        }
    }

    #[test]
    fn a_relative_dir_gets_an_absolute_canonical_entry() {
        let entry = entry_of(Path::new("manifests")).unwrap();
        let cwd = fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
        assert_eq!(entry, cwd.join("manifests"));
        assert_eq!(entry_of(Path::new("manifests/")).unwrap(), entry);
        assert_eq!(entry_of(Path::new("./manifests/.")).unwrap(), entry);
        assert_eq!(entry_of(Path::new(".")).unwrap(), cwd);
    }
}
