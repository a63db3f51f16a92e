//! Watching the working tree for `quire-ci watch` (DESIGN.md §7): which
//! file-system events count as a change, and when a burst of them is over.
//!
//! Owns: the notify watcher (inotify, or polling when the inotify limit is
//! hit), the path filter (`.git/`, git-ignored paths, the run directory,
//! editor temp files), and the debounce (a quiet period, a cap on the total
//! wait, and no run while `index.lock` says git is mid-checkout). Must not
//! know about: how a run works inside — commands/watch.rs starts and
//! supersedes runs; this room only says "something changed".

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{ErrorKind, Event, EventKind, RecursiveMode, Watcher as _};

/// However steadily changes keep coming, a run starts this long after the
/// first one (or 10× the debounce, if that is longer): a stream of events (a
/// long formatter run, a log file that a tool keeps appending to outside
/// `.gitignore`) cannot delay it forever.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// The cap on one burst's wait for a given quiet period.
pub fn max_wait(quiet: Duration) -> Duration {
    MAX_WAIT.max(quiet * 10)
}

/// How long a run waits for git to drop `index.lock` (a checkout or rebase
/// in progress). Past this the lock is taken to be stale and the run starts.
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(30);

/// Poll interval of the fallback watcher.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Set to 1 to use the polling watcher even when inotify works.
pub const FORCE_POLL_ENV: &str = "QUIRE_CI_WATCH_POLL";

/// Set to 0 to keep no container ready between runs (src/executor/warm.rs).
pub const NO_WARM_ENV: &str = "QUIRE_CI_WATCH_WARM";

/// Which watcher is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Native,
    Poll,
}

/// A running watcher; dropping it stops watching.
pub struct TreeWatcher {
    _inner: Box<dyn notify::Watcher + Send>,
    pub backend: Backend,
    pub events: Receiver<notify::Result<Event>>,
    /// Why the native watcher was not used, for the user.
    pub warning: Option<String>,
}

/// True when a watcher error means "the OS will not give us more inotify
/// watches or instances": the case the polling watcher is for.
pub fn needs_poll(err: &notify::Error) -> bool {
    match &err.kind {
        ErrorKind::MaxFilesWatch => true,
        ErrorKind::Io(e) => matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE)),
        ErrorKind::Generic(s) => {
            let s = s.to_lowercase();
            s.contains("too many") || s.contains("max_user_watches") || s.contains("no space left")
        }
        _ => false,
    }
}

/// Watches `root` recursively: natively, or by polling when `force_poll`
/// or when the native watcher hits the inotify limits.
pub fn watch(root: &Path, force_poll: bool) -> Result<TreeWatcher, notify::Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    let why = if force_poll {
        format!("{FORCE_POLL_ENV}=1: polling for changes every {} ms", POLL_INTERVAL.as_millis())
    } else {
        let native = notify::RecommendedWatcher::new(tx.clone(), notify::Config::default())
            .and_then(|mut w| w.watch(root, RecursiveMode::Recursive).map(|()| w));
        match native {
            Ok(w) => {
                return Ok(TreeWatcher { _inner: Box::new(w), backend: Backend::Native, events: rx, warning: None })
            }
            Err(e) if needs_poll(&e) => format!(
                "cannot watch {} with inotify ({e}); polling every {} ms instead. \
                 To raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 \
                 (persist it in /etc/sysctl.d/)",
                root.display(),
                POLL_INTERVAL.as_millis()
            ),
            Err(e) => return Err(e),
        }
    };
    let mut poll = notify::PollWatcher::new(tx, notify::Config::default().with_poll_interval(POLL_INTERVAL))?;
    poll.watch(root, RecursiveMode::Recursive)?;
    Ok(TreeWatcher { _inner: Box::new(poll), backend: Backend::Poll, events: rx, warning: Some(why) })
}

/// Editor droppings that are never part of a change: vim's swap files and
/// its `4913` write test, backup files (`*~`), emacs lock files (`.#*`),
/// `*.tmp`.
pub fn is_editor_temp(name: &str) -> bool {
    name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp")
}

/// Decides which paths count as a change to the working tree.
pub struct PathFilter {
    root: PathBuf,
    /// Directories whose contents never count (the run directory, `--out`).
    ignored_dirs: Vec<PathBuf>,
    repo: Option<gix::Repository>,
    /// Directories found ignored (or not), so a build writing thousands of
    /// files under an ignored `target/` costs one lookup, not thousands.
    /// Cleared whenever a `.gitignore` changes.
    dirs: RefCell<HashMap<PathBuf, bool>>,
}

impl PathFilter {
    pub fn new(root: &Path, ignored_dirs: Vec<PathBuf>) -> PathFilter {
        PathFilter {
            root: root.to_path_buf(),
            ignored_dirs,
            repo: gix::discover(root).ok(),
            dirs: RefCell::new(HashMap::new()),
        }
    }

    /// True when a change to `path` may change the snapshot.
    pub fn counts(&self, path: &Path) -> bool {
        if self.ignored_dirs.iter().any(|d| path.starts_with(d)) {
            return false;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            // Outside the work tree (a symlinked watch path): be safe.
            return true;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        if rel.components().any(|c| c.as_os_str() == ".git") {
            return false;
        }
        if let Some(name) = rel.file_name().and_then(|n| n.to_str()) {
            if is_editor_temp(name) {
                return false;
            }
            if name == ".gitignore" {
                self.dirs.borrow_mut().clear();
            }
        }
        !self.git_ignored(rel, path)
    }

    /// `.gitignore`, `.git/info/exclude` and `core.excludesFile`, as git
    /// reads them; a path below an ignored directory is ignored too. Read
    /// afresh on each call so an edited `.gitignore` takes effect at once.
    fn git_ignored(&self, rel: &Path, abs: &Path) -> bool {
        let Some(repo) = &self.repo else { return false };
        let parts: Vec<_> = rel.components().collect();
        {
            let dirs = self.dirs.borrow();
            let mut prefix = PathBuf::new();
            for part in &parts[..parts.len().saturating_sub(1)] {
                prefix.push(part);
                if dirs.get(&prefix) == Some(&true) {
                    return true;
                }
            }
        }
        let Ok(index) = repo.index_or_empty() else { return false };
        let Ok(mut stack) =
            repo.excludes(&index, None, gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped)
        else {
            return false;
        };
        // Check every ancestor as a directory: git does not descend into an
        // ignored directory, so nothing below it can be in a snapshot.
        let mut prefix = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            prefix.push(part);
            let is_last = i + 1 == parts.len();
            if !is_last && self.dirs.borrow().get(&prefix) == Some(&false) {
                continue;
            }
            let is_dir = !is_last || abs.is_dir();
            let mode = if is_dir { Some(gix::index::entry::Mode::DIR) } else { None };
            let excluded = match stack.at_path(&prefix, mode) {
                Ok(p) => p.is_excluded(),
                Err(_) => return false,
            };
            if is_dir {
                self.dirs.borrow_mut().insert(prefix.clone(), excluded);
            }
            if excluded {
                return true;
            }
        }
        false
    }

    /// True when `event` is a change (not a read) to a path that counts.
    pub fn event_counts(&self, event: &Event) -> bool {
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        // A rescan request (inotify queue overflow) means "anything may have
        // changed".
        if event.need_rescan() || event.paths.is_empty() {
            return true;
        }
        event.paths.iter().any(|p| self.counts(p))
    }
}

/// Waits for a burst of changes to end: returns once `quiet` passes with no
/// counting event, or [`max_wait`] after `first`; then, while `index_lock`
/// exists (git is mid-checkout), keeps waiting (up to `MAX_LOCK_WAIT`) and
/// takes the events of that wait into the burst (`on_lock` is told once it
/// starts waiting for git). Returns false when the watcher is gone.
pub fn settle(
    events: &Receiver<notify::Result<Event>>,
    filter: &PathFilter,
    first: Instant,
    quiet: Duration,
    index_lock: &Path,
    mut on_error: impl FnMut(&notify::Error),
    on_lock: impl Fn(),
) -> bool {
    let lock_deadline = first + MAX_LOCK_WAIT;
    let cap = first + max_wait(quiet);
    loop {
        let mut last = Instant::now();
        loop {
            let now = Instant::now();
            let until_cap = cap.saturating_duration_since(now);
            let until_quiet = (last + quiet).saturating_duration_since(now);
            let wait = until_cap.min(until_quiet);
            if wait.is_zero() {
                break;
            }
            match events.recv_timeout(wait) {
                Ok(Ok(ev)) => {
                    if filter.event_counts(&ev) {
                        last = Instant::now();
                    }
                }
                Ok(Err(e)) => on_error(&e),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        if !index_lock.exists() || Instant::now() >= lock_deadline {
            return true;
        }
        // git is writing the tree: wait for it, then for quiet again.
        on_lock();
        while index_lock.exists() && Instant::now() < lock_deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_limits_pick_polling_and_other_errors_do_not() {
        assert!(needs_poll(&notify::Error::new(ErrorKind::MaxFilesWatch)));
        assert!(needs_poll(&notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC))));
        assert!(needs_poll(&notify::Error::io(std::io::Error::from_raw_os_error(libc::EMFILE))));
        assert!(needs_poll(&notify::Error::generic("Too many open files")));
        assert!(needs_poll(&notify::Error::generic("raise fs.inotify.max_user_watches")));
        assert!(!needs_poll(&notify::Error::path_not_found()));
        assert!(!needs_poll(&notify::Error::io(std::io::Error::from_raw_os_error(libc::EACCES))));
    }

    #[test]
    fn forced_poll_uses_the_poll_watcher_and_sees_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = watch(dir.path(), true).expect("poll watcher");
        assert_eq!(w.backend, Backend::Poll);
        assert!(w.warning.as_deref().is_some_and(|m| m.contains(FORCE_POLL_ENV)));
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(dir.path().join("a.txt"), "x").expect("write");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut saw = false;
        while Instant::now() < deadline && !saw {
            if let Ok(Ok(ev)) = w.events.recv_timeout(Duration::from_millis(200)) {
                saw = ev.paths.iter().any(|p| p.ends_with("a.txt"));
            }
        }
        assert!(saw, "the poll watcher reported no event for a.txt");
    }

    #[test]
    fn a_stream_of_changes_is_cut_off_at_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let filter = PathFilter::new(dir.path(), vec![]);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().join("f");
        let feeder = std::thread::spawn(move || {
            // An event every 50 ms for 5 s: never 200 ms of quiet.
            for _ in 0..100 {
                let ev = Event::new(EventKind::Modify(notify::event::ModifyKind::Any)).add_path(path.clone());
                if tx.send(Ok(ev)).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let first = Instant::now();
        let lock = dir.path().join("no-index.lock");
        assert!(settle(&rx, &filter, first, Duration::from_millis(200), &lock, |_| {}, || {}));
        let took = first.elapsed();
        assert!(took >= MAX_WAIT && took < MAX_WAIT + Duration::from_millis(500), "settled after {took:?}");
        drop(rx);
        let _ = feeder.join();
    }

    #[test]
    fn editor_temp_files_are_recognised() {
        for n in [".main.rs.swp", "main.rs~", ".#main.rs", "4913", "x.tmp"] {
            assert!(is_editor_temp(n), "{n}");
        }
        for n in ["main.rs", "ci.fnl", "4914", "tmp"] {
            assert!(!is_editor_temp(n), "{n}");
        }
    }

    #[test]
    fn filter_ignores_git_dir_gitignored_run_dir_and_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canon");
        let ok = std::process::Command::new("git").args(["init", "-q"]).current_dir(&root).status().expect("git");
        assert!(ok.success());
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").expect("write");
        std::fs::create_dir_all(root.join("target/debug")).expect("mkdir");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        let runs = root.join("out-runs");
        let f = PathFilter::new(&root, vec![runs.clone()]);
        assert!(f.counts(&root.join("src/main.rs")));
        assert!(f.counts(&root.join(".gitignore")));
        assert!(!f.counts(&root.join(".git/index")));
        assert!(!f.counts(&root.join("target/debug/app")));
        assert!(!f.counts(&root.join("target")));
        assert!(!f.counts(&root.join("build.log")));
        assert!(!f.counts(&root.join("src/.main.rs.swp")));
        assert!(!f.counts(&runs.join("x/log.jsonl")));
        // The ignored directory is remembered; a new .gitignore forgets it.
        assert_eq!(f.dirs.borrow().get(Path::new("target")), Some(&true));
        assert!(!f.counts(&root.join("target/debug/other")));
        assert!(f.counts(&root.join("src/.gitignore")));
        assert_eq!(f.dirs.borrow().get(Path::new("target")), None);
    }
}
