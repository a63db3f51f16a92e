//! Timestamps, run ids, and the collection of runs under
//! `<git-dir>/quire-ci/runs/`: listing and pruning.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::{RecordError, Result, RunMeta, RunState, META_FILE, STATE_FILE};
use crate::events::RunStatus;

/// How many runs `prune` keeps when the user does not say otherwise.
pub const DEFAULT_KEEP: usize = 50;

const TS_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

// The run id is the start time with the separators a file name can do
// without, so that fixed-width lexicographic order is start order.
const RUN_ID_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:3]Z");

/// Now, as every `ts` in the record is written: RFC 3339, UTC, millisecond
/// precision, e.g. `2026-11-24T21:43:38.123Z`.
pub fn now_ts() -> String {
    format_ts(OffsetDateTime::now_utc())
}

fn format_ts(t: OffsetDateTime) -> String {
    // Formatting a UTC time with a fixed description only fails for years
    // outside 0..=9999; fall back to RFC 3339 from the Debug form rather than panic.
    t.format(TS_FORMAT).unwrap_or_else(|_| format!("{t}"))
}

/// A fresh run id: `YYYYMMDDTHHMMSS.mmmZ-xxxx` (UTC start time, then 4 hex
/// digits of randomness so two runs started in the same millisecond differ).
/// Ids are fixed width, so sorting them as strings sorts runs by start
/// time; runs within the same millisecond sort arbitrarily.
pub fn new_run_id() -> String {
    let now = OffsetDateTime::now_utc();
    let stamp = now.format(RUN_ID_FORMAT).unwrap_or_else(|_| format!("{}", now.unix_timestamp()));
    format!("{stamp}-{:04x}", random_u16())
}

fn random_u16() -> u16 {
    // RandomState is seeded from the OS per process; mixing in the pid and
    // the clock keeps concurrent quire-ci processes apart without a rand dependency.
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i128(OffsetDateTime::now_utc().unix_timestamp_nanos());
    (h.finish() & 0xffff) as u16
}

/// True when `name` has the shape `new_run_id` produces. Pruning only ever
/// deletes directories with this shape, so a stray user directory under
/// the runs dir is never removed.
pub fn is_run_id(name: &str) -> bool {
    let b = name.as_bytes();
    // 20261124T214338.123Z-a3f9
    if b.len() != 25 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digits(0..8)
        && b[8] == b'T'
        && digits(9..15)
        && b[15] == b'.'
        && digits(16..19)
        && b[19] == b'Z'
        && b[20] == b'-'
        && b[21..25].iter().all(|c| c.is_ascii_hexdigit())
}

/// Where runs of the repository with this git dir are kept:
/// `<git-dir>/quire-ci/runs`. Inside `.git` so it is never snapshotted,
/// never committed, and never triggers `watch`.
pub fn runs_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("quire-ci").join("runs")
}

/// One line of `quire-ci logs` without a run argument.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunSummary {
    pub id: String,
    pub dir: PathBuf,
    pub started: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub dirty: bool,
    /// `None` when state.json is missing or unreadable (a run that crashed
    /// before its first state write).
    pub status: Option<RunStatus>,
    /// `None` while the run has not ended.
    pub duration_ms: Option<u64>,
    /// Its state still says `running` but the quire-ci that ran it is gone
    /// (killed, crashed): it will never end. Shown as `abandoned`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
}

/// The runs under `runs_dir`, newest first. A missing `runs_dir` is an
/// empty list; directories that are not runs (wrong name, no readable
/// meta.json) are left out rather than failing the whole listing.
pub fn list_runs(runs_dir: &Path) -> Result<Vec<RunSummary>> {
    let mut out = Vec::new();
    for (id, dir) in run_dirs(runs_dir)? {
        let Ok(meta) = read_json::<RunMeta>(&dir.join(META_FILE)) else {
            continue;
        };
        let state = read_json::<RunState>(&dir.join(STATE_FILE)).ok();
        let abandoned = state.as_ref().is_some_and(|s| s.status == RunStatus::Running) && !pid_alive(meta.pid);
        out.push(RunSummary {
            abandoned,
            id,
            dir,
            started: meta.started_at,
            git_ref: meta.git_ref,
            dirty: meta.dirty,
            status: state.as_ref().map(|s| s.status),
            duration_ms: state.and_then(|s| s.duration_ms),
        });
    }
    Ok(out)
}

/// Remove the oldest runs so that at most `keep` remain (plus any that are
/// still live). A run is live when its state says `running` and the pid
/// recorded in its meta.json is a process that exists; live runs are never
/// removed. Returns the ids removed, oldest last.
pub fn prune(runs_dir: &Path, keep: usize) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (id, dir) in run_dirs(runs_dir)?.into_iter().skip(keep) {
        if is_live(&dir) {
            continue;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| RecordError::io("remove old run", &dir, e))?;
        removed.push(id);
    }
    Ok(removed)
}

fn is_live(dir: &Path) -> bool {
    let Ok(state) = read_json::<RunState>(&dir.join(STATE_FILE)) else {
        return false;
    };
    if state.status != RunStatus::Running {
        return false;
    }
    match read_json::<RunMeta>(&dir.join(META_FILE)) {
        Ok(meta) => pid_alive(meta.pid),
        // Running but no owner on record: keep it, we cannot prove it dead.
        Err(_) => true,
    }
}

/// Whether a process with this pid exists. A recycled pid makes this
/// answer yes for a dead run; the cost is only that the run is kept.
#[cfg(unix)]
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks existence
    // and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub(crate) fn pid_alive(_pid: u32) -> bool {
    true
}

/// Run directories under `runs_dir`, newest first.
fn run_dirs(runs_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordError::io("list runs in", runs_dir, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RecordError::io("list runs in", runs_dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_run_id(&name) && entry.path().is_dir() {
            dirs.push((name, entry.path()));
        }
    }
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(dirs)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| RecordError::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::Json { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_has_millisecond_rfc3339_shape() {
        let t = time::macros::datetime!(2026-11-24 21:43:38.123456 UTC);
        assert_eq!(format_ts(t), "2026-11-24T21:43:38.123Z");
        let ts = now_ts();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'), "{ts}");
        let b = ts.as_bytes();
        assert!(b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[19] == b'.', "{ts}");
    }

    #[test]
    fn run_ids_have_the_documented_shape_and_sort_by_time() {
        let a = new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let b = new_run_id();
        assert!(is_run_id(&a), "{a}");
        assert!(is_run_id(&b), "{b}");
        assert!(a < b, "{a} should sort before {b}");
        assert!(!is_run_id("notes"));
        assert!(!is_run_id("20261124T214338.123Z-zzzz"));
    }

    #[test]
    fn own_pid_is_alive_and_a_huge_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
