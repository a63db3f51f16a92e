//! The run's event stream: the one ordered sequence of facts that every
//! consumer (log.jsonl writer, terminal renderer, `--json`, summary, cache)
//! reads. Events are the very records written to log.jsonl (DESIGN.md §5),
//! so their serde form *is* the file format; see docs/log-format.md.
//!
//! Owns: event types and their JSON shape. Must not know about: the
//! terminal, Docker, Lua.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One line of a log.jsonl file, plus (in memory only) which job it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 UTC with millisecond precision: `2026-11-24T21:43:38.123Z`.
    pub ts: String,
    /// The event's place in the run's one stream: 1, 2, 3, ... in the order
    /// the emitter handed events out, across the run-level and every job's
    /// file, so a reader can merge the files back into the order they were
    /// shown (jobs running at once interleave). Transient events have none;
    /// records written before it existed have none (readers then splice).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<u64>,
    /// The job this event is about. Job-level kinds (sh-*, stdout, stderr,
    /// print) are written to `jobs/<job>/log.jsonl` *without* this key (the
    /// path says it); run-level kinds about a job (job-start, job-end) keep
    /// it; `--json` always writes it so a consumer can tell jobs apart.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub job: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Where a chunk of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A job's outcome (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
    /// Cut off by Ctrl-C, SIGTERM or a newer change (watch): neither the
    /// job's success nor its failure. quire-ci's addition to the outcomes.
    Canceled,
}

/// How much a `notice` matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Something the run did that the user may want to know (an orphan
    /// container reaped, a container kept and how to enter it).
    Info,
    /// Something went wrong that did not decide the run (a prune, the
    /// result cache, a teardown step, the record).
    Warning,
}

/// Where a [`EventKind::Phase`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseState {
    Start,
    /// Part of the way: `done`/`total`/`files` say how far.
    Progress,
    /// Finished; `duration_ms` says how long it took.
    End,
}

/// A run's status, as the server spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Error,
    Canceled,
    Superseded,
}

impl EventKind {
    /// Every `kind` spelling this build knows, server's and quire-ci's.
    /// Readers skip lines whose kind is not in this list (forward
    /// compatibility), so a line with a known kind but a bad shape can still
    /// be told apart from a line written by a newer quire-ci.
    pub const KINDS: &'static [&'static str] = &[
        "sh-start",
        "stdout",
        "stderr",
        "sh-exit",
        "print",
        "container-start",
        "container-died",
        "container-end",
        "run-start",
        "image",
        // Not "image-progress" nor "phase": they are transient, never in a
        // file, so a reader that met one would rightly skip it.
        "job-start",
        "job-end",
        "artifact",
        "notice",
        "problem",
        "cache-hit",
        "run-end",
    ];

    /// The `kind` string this event is written with.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ShStart { .. } => "sh-start",
            EventKind::Stdout { .. } => "stdout",
            EventKind::Stderr { .. } => "stderr",
            EventKind::ShExit { .. } => "sh-exit",
            EventKind::Print { .. } => "print",
            EventKind::ContainerStart { .. } => "container-start",
            EventKind::ContainerDied { .. } => "container-died",
            EventKind::ContainerEnd { .. } => "container-end",
            EventKind::RunStart { .. } => "run-start",
            EventKind::Image { .. } => "image",
            EventKind::ImageProgress { .. } => "image-progress",
            EventKind::JobStart {} => "job-start",
            EventKind::JobEnd { .. } => "job-end",
            EventKind::Artifact { .. } => "artifact",
            EventKind::Notice { .. } => "notice",
            EventKind::Problem { .. } => "problem",
            EventKind::CacheHit { .. } => "cache-hit",
            EventKind::Phase { .. } => "phase",
            EventKind::RunEnd { .. } => "run-end",
        }
    }

    /// True for kinds that only matter while they happen (pull progress,
    /// the run's phases): shown live and printed by `--json`, never written
    /// to log.jsonl, so a replay shows only the events around them.
    pub fn is_transient(&self) -> bool {
        matches!(self, EventKind::ImageProgress { .. } | EventKind::Phase { .. })
    }

    /// True for kinds that live in a job's own log.jsonl.
    pub fn is_job_level(&self) -> bool {
        matches!(
            self,
            EventKind::ShStart { .. }
                | EventKind::Stdout { .. }
                | EventKind::Stderr { .. }
                | EventKind::ShExit { .. }
                | EventKind::Print { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    // ---- job level (jobs/<id>/log.jsonl); the server's kinds ----
    ShStart {
        n: u32,
        /// A string (run through `sh -c`) or an argv array, as given.
        cmd: Value,
    },
    Stdout {
        n: u32,
        data: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        encoding: Option<String>,
    },
    Stderr {
        n: u32,
        data: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        encoding: Option<String>,
    },
    ShExit {
        n: u32,
        exit: i64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<String>,
        duration_ms: u64,
    },
    // ---- job level; quire-ci's additions ----
    /// `print` from inside a run-fn.
    Print {
        data: String,
    },

    // ---- run level (log.jsonl); the server's kinds ----
    ContainerStart {
        image: String,
        #[serde(rename = "container-id")]
        container_id: String,
    },
    ContainerDied {
        reason: String,
    },
    ContainerEnd {
        status: RunStatus,
    },

    // ---- run level; quire-ci's additions ----
    RunStart {
        #[serde(rename = "run-id")]
        run_id: String,
        #[serde(rename = "ref")]
        git_ref: String,
        sha: Option<String>,
        tree: String,
        dirty: bool,
        /// The jobs this run will consider, in execution order.
        jobs: Vec<String>,
        /// The run directory (absolute), so a reader can point at it.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        dir: Option<String>,
    },
    /// Image resolution / pull / build progress worth recording.
    Image {
        image: String,
        /// `present`, `pulling`, `pulled`, `building`, `built`.
        action: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// Progress of an image pull, per layer, as the engine reports it.
    /// Transient: see [`EventKind::is_transient`].
    ImageProgress {
        image: String,
        /// The layer; absent for whole-image messages.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        layer: Option<String>,
        /// The engine's words: `Downloading`, `Extracting`, `Pull complete`, ...
        status: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        current: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        total: Option<u64>,
    },
    /// A job begins (its id is in `Event::job`).
    JobStart {},
    /// A job ends (its id is in `Event::job`).
    JobEnd {
        outcome: Outcome,
        duration_ms: u64,
        /// Why it was skipped or failed, in words.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
        /// The file `line` is in (`.quire/ci.fnl`, or a module under
        /// `.quire/`); absent in records written before it existed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        file: Option<String>,
        /// Line of the failure, when known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        line: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        outputs: Option<Value>,
    },
    /// A path copied out of /work (a job's `:artifacts`, or `--artifact`);
    /// `job` is the job that declared it, absent for `--artifact`.
    Artifact {
        /// As declared, relative to /work.
        path: String,
        /// Where it went on the host (absolute), when copied.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        dest: Option<String>,
        /// Bytes of regular files copied.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        bytes: Option<u64>,
        /// Why it was not copied (absent in /work, outside /work, ...).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
    },
    /// Something the run did or noticed besides its jobs: an orphan
    /// container reaped, the container kept (with the command to enter
    /// it), a warning, a teardown problem. `job` is set when it is about
    /// one job. `code` is a stable kebab-case name (`orphan-reaped`,
    /// `container-kept`, `teardown-failed`, ...; docs/log-format.md lists
    /// them); `message` is the words a user reads.
    Notice {
        level: Level,
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        help: Option<String>,
    },
    /// One problem found in ci.fnl (or a `.quire/` module) while the run
    /// evaluated it: one event per problem, all of them, before `run-end`.
    Problem {
        /// The diagnostic code (`quire_ci::...`).
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        file: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        line: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        column: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        help: Option<String>,
    },
    /// The run was not run: the result cache holds a green run of the same
    /// tree, ci.fnl, image, jobs and ref. Written to no record (no run
    /// directory is made); shown live and by `--json`.
    CacheHit {
        /// The green run reused.
        #[serde(rename = "run-id")]
        run_id: String,
        tree: String,
    },
    /// A step of the run besides its jobs, as it happens: `snapshot`,
    /// `upload` (the tree into the container), `create`, `start`,
    /// `compile`, `evaluate`, `teardown`, ... (docs/log-format.md lists
    /// them). It drives the live view's progress for long silent steps and
    /// `-v`'s timings. Transient: see [`EventKind::is_transient`].
    Phase {
        phase: String,
        state: PhaseState,
        /// Bytes done so far (progress and end), when the step counts them.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        done: Option<u64>,
        /// Bytes in all, when known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        total: Option<u64>,
        /// Files done so far, when the step counts them.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        files: Option<u64>,
        /// How long the step took (on `end`).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        duration_ms: Option<u64>,
    },
    RunEnd {
        status: RunStatus,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
        /// The error's diagnostic code (`quire_ci::engine::unreachable`),
        /// for an infrastructure or usage error; absent otherwise and in
        /// records written before it existed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        code: Option<String>,
        /// What to do about the error, as the diagnostic's help line says it.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        help: Option<String>,
    },
}
