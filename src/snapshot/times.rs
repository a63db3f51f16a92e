//! File times for the tar: times that move when content moves.
//!
//! Build tools (cargo, make, ninja) decide by mtime whether an output in a
//! kept cache (`--cache-volume`) is still fresh. A tar with mtime 0 makes
//! every source look older than any output, so an edited file is never
//! rebuilt: a false green. A run therefore stamps its snapshot:
//!
//! * the first run of a repository gives each file its natural time: the
//!   working tree's own mtime (whole seconds) for a working-tree
//!   snapshot, the commit's committer time for a commit snapshot (what
//!   `git archive` does);
//! * later runs consult a ledger (`<git-dir>/quire-ci/mtimes`) of what the
//!   previous run delivered: a path whose content is the same keeps the time
//!   it was given then, so nothing is rebuilt needlessly; a path whose content
//!   differs, or that is new, gets the run's start time rounded *up* to the
//!   next second, later than any output an earlier run can have written.
//!
//! The ledger makes mixed runs safe: a hook run of an old commit after a
//! working-tree run, or a checkout of an older branch, still moves the times
//! of every file whose content moved, which commit times alone do not.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use gix::bstr::{BString, ByteSlice};
use gix::ObjectId;

use super::{Snapshot, SnapshotError, Source};

/// The decided times, parallel to the snapshot's entries.
#[derive(Debug)]
pub(super) struct Stamps {
    pub files: Vec<i64>,
    /// Every directory entry of the tar.
    pub dirs: i64,
}

/// How the times of one stamping were decided, per entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StampReport {
    /// Given their natural time (no ledger yet).
    pub natural: usize,
    /// Same content as the previous run delivered: its time kept.
    pub kept: usize,
    /// Content moved (or a new path): the run's time.
    pub moved: usize,
}

/// Where a repository's ledger lives, beside its run records.
pub fn mtime_ledger_path(git_dir: &Path) -> PathBuf {
    git_dir.join("quire-ci").join("mtimes")
}

impl Snapshot {
    /// Decides the mtime of every entry of the tar (see the module docs).
    /// `ledger`: the ledger file, read and rewritten under a lock; `None`
    /// gives natural times only. `now`: the run's start.
    pub fn stamp_times(&mut self, ledger: Option<&Path>, now: SystemTime) -> Result<StampReport, SnapshotError> {
        let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        // Strictly later than anything written up to `now`, also for tools
        // that compare whole seconds (busybox `test -nt`).
        let moved_time = now_secs + 1;
        let _lock = match ledger {
            Some(path) => Some(Lock::take(path)?),
            None => None,
        };
        let previous = match ledger {
            Some(path) => read_ledger(path)?,
            None => Ledger::default(),
        };
        let mut report = StampReport::default();
        let mut files = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let time = match previous.paths.get(&entry.path) {
                Some((id, time)) if *id == entry.id => {
                    report.kept += 1;
                    *time
                }
                Some(_) => {
                    report.moved += 1;
                    moved_time
                }
                None if previous.seen => {
                    report.moved += 1;
                    moved_time
                }
                None => {
                    report.natural += 1;
                    self.natural_time(entry.source, &entry.path).unwrap_or(moved_time)
                }
            };
            files.push(time);
        }
        let dirs = files.iter().copied().max().or(self.commit_time).unwrap_or(moved_time);
        if let Some(path) = ledger {
            write_ledger(path, self.entries.iter().zip(&files).map(|(e, t)| (&e.path, e.id, *t)))?;
        }
        self.stamps = Some(std::sync::Arc::new(Stamps { files, dirs }));
        Ok(report)
    }

    /// The working tree's mtime in whole seconds (as tar and `git archive`
    /// carry it) or the commit time. Only the first run of a repository uses
    /// it; rounding up would make a build done in the same second as the
    /// edit look stale on the next run.
    fn natural_time(&self, source: Source, path: &BString) -> Option<i64> {
        match source {
            Source::Object => self.commit_time,
            Source::Worktree => {
                let full = self.worktree_path(path).ok()?;
                let modified = std::fs::symlink_metadata(full).ok()?.modified().ok()?;
                let d = modified.duration_since(UNIX_EPOCH).ok()?;
                Some(d.as_secs() as i64)
            }
        }
    }

    /// The mtime of entry `index` in the tar, and of directories.
    pub(super) fn entry_mtime(&self, index: usize) -> u64 {
        self.stamps.as_ref().and_then(|s| s.files.get(index)).map_or(0, |t| (*t).max(0) as u64)
    }

    pub(super) fn dir_mtime(&self) -> u64 {
        self.stamps.as_ref().map_or(0, |s| s.dirs.max(0) as u64)
    }
}

/// What earlier runs delivered. `seen`: some run wrote the ledger (even if
/// every record is damaged), so an unknown path is a new one.
#[derive(Default)]
struct Ledger {
    seen: bool,
    paths: HashMap<BString, (ObjectId, i64)>,
}

/// `<id> <mtime> <path>\0` records; a missing file is an empty ledger, a
/// damaged record is skipped (the path then counts as moved: safe).
fn read_ledger(path: &Path) -> Result<Ledger, SnapshotError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ledger::default()),
        Err(source) => return Err(SnapshotError::Ledger { path: path.to_owned(), source }),
    };
    let mut out = HashMap::new();
    for record in bytes.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let mut parts = record.splitn(3, |b| *b == b' ');
        let (Some(id), Some(time), Some(p)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(id) = ObjectId::from_hex(id) else { continue };
        let Some(time) = time.to_str().ok().and_then(|t| t.parse::<i64>().ok()) else { continue };
        out.insert(BString::from(p), (id, time));
    }
    Ok(Ledger { seen: !bytes.is_empty(), paths: out })
}

fn write_ledger<'a>(
    path: &Path,
    records: impl Iterator<Item = (&'a BString, ObjectId, i64)>,
) -> Result<(), SnapshotError> {
    let err = |source| SnapshotError::Ledger { path: path.to_owned(), source };
    let mut buf = Vec::new();
    for (p, id, time) in records {
        write!(buf, "{id} {time} ").map_err(err)?;
        buf.extend_from_slice(p);
        buf.push(0);
    }
    if std::fs::read(path).is_ok_and(|old| old == buf) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &buf).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// An exclusive `flock` on `<ledger>.lock`, so two runs of one repository
/// (watch and the hook) read and rewrite the ledger one after the other.
struct Lock(std::fs::File);

impl Lock {
    fn take(ledger: &Path) -> Result<Lock, SnapshotError> {
        let err = |source| SnapshotError::Ledger { path: ledger.to_owned(), source };
        if let Some(dir) = ledger.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(ledger.with_extension("lock"))
            .map_err(err)?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; it touches no memory of ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above; closing the file would release it too.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}
