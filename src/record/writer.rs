//! Writing a run directory: meta.json once, log lines append-only and
//! flushed per event, state.json replaced atomically.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{RecordError, Result, RunState, JOBS_DIR, LOG_FILE, META_FILE, STATE_FILE};
use crate::events::{Event, EventKind};

/// The whole of `meta.json`: facts fixed when the run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunMeta {
    pub run_id: String,
    /// The repository's working tree (absolute path).
    pub repo: PathBuf,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// HEAD's commit; `None` in a repository without commits.
    pub sha: Option<String>,
    /// The snapshot's content id (git tree id).
    pub tree: String,
    pub dirty: bool,
    /// The image, when known at start (it may be resolved later; the
    /// container-start event always names it).
    pub image: Option<String>,
    /// sha256 of ci.fnl as run, hex.
    pub ci_fnl_hash: String,
    pub quire_ci_version: String,
    pub started_at: String,
    /// The quire-ci process that owns the run; pruning keeps a `running`
    /// run whose owner is alive.
    pub pid: u32,
    /// Anything else a caller wants to keep (e.g. the trigger, the command line).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An open run directory being written. Dropping it closes the files; every
/// line is already on disk by then.
#[derive(Debug)]
pub struct RunRecord {
    dir: PathBuf,
    run_log: File,
    // One handle per job, opened at its first event: reopening per output
    // chunk would cost a path lookup and an open per chunk.
    job_logs: HashMap<String, File>,
    state: RunState,
    /// The line being written, reused: a 256 KiB output chunk is encoded
    /// without growing a fresh buffer for it.
    line: Vec<u8>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The largest line buffer kept between events.
const LINE_BUFFER_KEEP: usize = 1024 * 1024;

impl RunRecord {
    /// Make the run directory `dir` (the run's own directory, not the runs
    /// dir), write meta.json once and the initial state.json (`running`).
    /// Fails if `dir` already holds a run.
    pub fn create(dir: &Path, meta: &RunMeta) -> Result<RunRecord> {
        std::fs::create_dir_all(dir.join(JOBS_DIR)).map_err(|e| RecordError::io("create run directory", dir, e))?;

        let meta_path = dir.join(META_FILE);
        let mut meta_file = match OpenOptions::new().write(true).create_new(true).open(&meta_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RecordError::AlreadyExists { path: dir.to_owned() })
            }
            Err(e) => return Err(RecordError::io("create", meta_path, e)),
        };
        let mut bytes =
            serde_json::to_vec_pretty(meta).map_err(|source| RecordError::Json { path: meta_path.clone(), source })?;
        bytes.push(b'\n');
        meta_file.write_all(&bytes).map_err(|e| RecordError::io("write", &meta_path, e))?;

        let log_path = dir.join(LOG_FILE);
        let run_log = open_append(&log_path).map_err(|e| RecordError::io("open", &log_path, e))?;

        let record = RunRecord {
            dir: dir.to_owned(),
            run_log,
            job_logs: HashMap::new(),
            state: RunState::new(meta.run_id.clone(), meta.started_at.clone()),
            line: Vec::new(),
        };
        let state_path = dir.join(STATE_FILE);
        record.replace_state().map_err(|e| RecordError::io("write", state_path, e))?;
        Ok(record)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The one call an executor needs per event: append it to its log and
    /// fold it into state.json (rewritten only when the state changed).
    pub fn record(&mut self, ev: &Event) -> io::Result<()> {
        self.append(ev)?;
        if self.state.apply(ev) {
            self.write_state()?;
        }
        Ok(())
    }

    /// Append one event as one line: run-level kinds to `log.jsonl`,
    /// job-level kinds to `jobs/<job>/log.jsonl` without the `job` key (the
    /// path carries it). The line and its newline go out in one write so a
    /// crash leaves at most a torn last line.
    pub fn append(&mut self, ev: &Event) -> io::Result<()> {
        let job_level = ev.kind.is_job_level();
        let line =
            Line { ts: &ev.ts, seq: ev.seq, job: if job_level { None } else { ev.job.as_deref() }, kind: &ev.kind };
        let mut bytes = std::mem::take(&mut self.line);
        bytes.clear();
        serde_json::to_writer(&mut bytes, &line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let result = self.write_line(job_level, ev, &bytes);
        // Kept for the next line, unless one huge event grew it.
        if bytes.capacity() <= LINE_BUFFER_KEEP {
            self.line = bytes;
        }
        result
    }

    fn write_line(&mut self, job_level: bool, ev: &Event, bytes: &[u8]) -> io::Result<()> {
        if !job_level {
            let file = &mut self.run_log;
            return file.write_all(bytes).and_then(|()| file.flush()).map_err(|e| naming(e, &self.dir.join(LOG_FILE)));
        }
        let Some(job) = ev.job.as_deref() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {} event must name its job", ev.kind.name()),
            ));
        };
        // The path is made only to name it in an error.
        let path = |dir: &Path| dir.join(JOBS_DIR).join(job).join(LOG_FILE);
        let file = job_log(&self.dir, &mut self.job_logs, job).map_err(|e| naming(e, &path(&self.dir)))?;
        file.write_all(bytes).and_then(|()| file.flush()).map_err(|e| naming(e, &path(&self.dir)))
    }

    /// Change the state by hand (for facts no event carries) and write it.
    pub fn update_state(&mut self, change: impl FnOnce(&mut RunState)) -> io::Result<()> {
        change(&mut self.state);
        self.write_state()
    }

    /// Replace state.json atomically: write a temporary file in the same
    /// directory, then rename it over the old one, so a concurrent reader
    /// sees the old state or the new one, never a mix. (No fsync: this
    /// guards against crashes of quire-ci, not power loss.)
    fn write_state(&self) -> io::Result<()> {
        self.replace_state().map_err(|e| naming(e, &self.dir.join(STATE_FILE)))
    }

    fn replace_state(&self) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let tmp = self.dir.join(format!(
            ".{STATE_FILE}.{}.{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            std::fs::rename(&tmp, self.dir.join(STATE_FILE))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The job's log handle, opened at its first event.
fn job_log<'a>(run_dir: &Path, logs: &'a mut HashMap<String, File>, job: &str) -> io::Result<&'a mut File> {
    if !logs.contains_key(job) {
        check_job_dir_name(job)?;
        let dir = run_dir.join(JOBS_DIR).join(job);
        std::fs::create_dir_all(&dir)?;
        let file = open_append(&dir.join(LOG_FILE))?;
        logs.insert(job.to_owned(), file);
    }
    logs.get_mut(job).ok_or_else(|| io::Error::other("job log handle vanished"))
}

/// The on-disk shape of an event: `ts`, then `seq` and `job` when kept,
/// then `kind` and its keys. Borrowing avoids cloning output data per chunk.
#[derive(Serialize)]
struct Line<'a> {
    ts: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
    #[serde(flatten)]
    kind: &'a EventKind,
}

/// io::Error carries no path; the user needs to know which file failed.
fn naming(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A job id becomes a directory name; pipeline validation already forbids
/// `/`, but the record must not be the one place a bad id escapes the run dir.
fn check_job_dir_name(job: &str) -> io::Result<()> {
    if job.is_empty() || job == "." || job == ".." || job.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("job id {job:?} cannot be used as a directory name"),
        ));
    }
    Ok(())
}
