//! The file watcher: any change under DIR (or to DIR itself) becomes one debounced "reload".
//!
//! DIR is watched through its real path, and its parent too, so that the ways GitOps tools
//! update it are all seen: git-sync flips a symlink at DIR's own path, a ConfigMap volume swaps
//! its `..data` link inside DIR. When DIR's real path changes, the watches follow it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last event before reloading: a git checkout or a ConfigMap update is
/// many events in a burst.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches `dir` until `reload` is closed; sends `()` once per burst of changes.
pub async fn watch(dir: PathBuf, reload: mpsc::UnboundedSender<()>) {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
    let handler = move |event: notify::Result<notify::Event>| {
        // Reads (ours included) are not changes; errors and rescans may hide changes.
        let is_read = matches!(&event, Ok(e) if matches!(e.kind, EventKind::Access(_)));
        if !is_read {
            let _ = raw_tx.send(());
        }
    };
    let mut watcher = match RecommendedWatcher::new(handler, notify::Config::default()) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch files; changes are picked up at each resync only");
            return;
        }
    };
    let mut watched: Option<PathBuf> = None;
    let parent = dir
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = &parent {
        if let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive) {
            tracing::warn!(path = %parent.display(), error = %e, "cannot watch the parent of DIR");
        }
    }
    loop {
        follow(&mut watcher, &dir, &mut watched);
        if raw_rx.recv().await.is_none() {
            return;
        }
        loop {
            match tokio::time::timeout(DEBOUNCE, raw_rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        if reload.send(()).is_err() {
            return;
        }
    }
}

/// Watches DIR's real path afresh. Done after every burst of events, because nothing cheaper
/// is reliable: a flipped symlink changes the real path, and a directory replaced at the same
/// path may even get the old inode number back, while the kernel has dropped the old watch.
fn follow(watcher: &mut RecommendedWatcher, dir: &Path, watched: &mut Option<PathBuf>) {
    if let Some(old) = watched.take() {
        let _ = watcher.unwatch(&old);
    }
    let Ok(real) = std::fs::canonicalize(dir) else {
        return;
    };
    match watcher.watch(&real, RecursiveMode::Recursive) {
        Ok(()) => *watched = Some(real),
        Err(e) => tracing::warn!(path = %real.display(), error = %e, "cannot watch DIR"),
    }
}
