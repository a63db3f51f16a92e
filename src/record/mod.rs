//! The run record: one run directory on disk (DESIGN.md §5) — `meta.json`,
//! `state.json`, the run-level `log.jsonl` and `jobs/<job-id>/log.jsonl` —
//! its writer, its replay reader, run ids, listing and pruning of old runs.
//! The format is specified in docs/log-format.md.
//!
//! Owns: the run directory and every file in it. Must not know about: the
//! terminal, Docker, Lua, or secrets (events arrive here already redacted;
//! see `crate::redact`).

mod output;
mod reader;
mod runs;
mod state;
mod writer;

pub use output::{data_bytes, decode_data, output_event, Utf8Carry};
pub use reader::{read_log, read_run, RecordedRun};
pub use runs::{is_run_id, list_runs, new_run_id, now_ts, prune, runs_dir, RunSummary, DEFAULT_KEEP};
pub use state::{JobState, JobStatus, RunState};
pub use writer::{RunMeta, RunRecord};

use std::path::PathBuf;

/// Why a run directory could not be written or read. Every variant names the
/// file it is about, so the user knows where to look.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(quire_ci::record::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("run directory {} already holds a run (meta.json exists)", path.display())]
    #[diagnostic(code(quire_ci::record::exists), help("pick an empty directory for --out, or remove the old run"))]
    AlreadyExists { path: PathBuf },

    #[error("{} is not valid JSON: {source}", path.display())]
    #[diagnostic(code(quire_ci::record::json))]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}:{line}: {message}", path.display())]
    #[diagnostic(
        code(quire_ci::record::bad_line),
        help("only a torn last line is tolerated; this line is damaged mid-file")
    )]
    BadLine { path: PathBuf, line: usize, message: String },
}

impl RecordError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RecordError::Io { action, path: path.into(), source }
    }
}

pub type Result<T, E = RecordError> = std::result::Result<T, E>;

/// File names inside a run directory, in one place so the writer, the
/// reader and pruning cannot drift apart.
pub(crate) const META_FILE: &str = "meta.json";
pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const LOG_FILE: &str = "log.jsonl";
pub(crate) const JOBS_DIR: &str = "jobs";
