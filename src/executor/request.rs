//! What a run is asked to do: every setting from the command line, the hook
//! or watch, in one struct, with the defaults of a plain `quire-ci run`.
//!
//! Owns: `RunRequest` and the settings derived from it (the cache key's
//! settings, the cache volume's name, `-j`). Must not know about: how a run
//! goes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::cancel::Cancel;
use crate::emitter::EventSink;
use crate::engine::PullPolicy;
use crate::sandbox::Limits;
use crate::snapshot::PushFacts;

use super::DEFAULT_EXCERPT_LINES;

/// What was pushed, for a run of a commit instead of the working tree.
#[derive(Debug, Clone)]
pub struct PushedCommit {
    pub sha: String,
    pub facts: PushFacts,
    /// The repository, when the caller has it open already (the hook):
    /// the snapshot is read from it rather than opening it again.
    pub repo: Option<gix::ThreadSafeRepository>,
}

/// Everything a run needs to know before it starts.
pub struct RunRequest {
    pub repo_dir: PathBuf,
    /// None: the working tree. Some: a pushed commit (pre-push hook).
    pub pushed: Option<PushedCommit>,
    pub selected: Vec<String>,
    /// `--ref`: rehearse a push to another ref.
    pub git_ref: Option<String>,
    /// `--event`: fields that override the `:quire/push` table.
    pub event: Option<serde_json::Map<String, Json>>,
    pub image_override: Option<String>,
    pub pull: PullPolicy,
    pub keep: bool,
    /// The runs directory (`--out`); default `<git-dir>/quire-ci/runs`.
    pub runs_dir: Option<PathBuf>,
    pub secrets: BTreeMap<String, String>,
    pub limits: Limits,
    pub cancel: Cancel,
    /// Extra sinks (terminal, --json) beside the run record.
    pub sinks: Vec<Box<dyn EventSink>>,
    /// Filled with the container id while one exists (for a forced exit).
    pub live_container: Arc<Mutex<Option<String>>>,
    /// `--no-cache`: run even when the result cache has a green run with
    /// the same inputs (the new result is still stored).
    pub no_cache: bool,
    /// Called right after a job fails, while its container is still up
    /// (`--shell-on-failure`); the run goes on when it returns.
    pub on_job_failed: Option<OnJobFailed>,
    /// `--cache-volume`: mount [`cache_volume_name`] at /cache.
    pub cache_volume: bool,
    /// `--memory`: the container's memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// `--skip` and the hook's own list: jobs never run here, each with
    /// where the user said so (shown in the skip reason).
    pub skip: BTreeMap<String, String>,
    /// The pre-push hook started this run: hints name what the hook reads
    /// (the environment), not flags it cannot take.
    pub in_hook: bool,
    /// `--with-git`: a minimal `.git` in /work holding the snapshot's commit.
    pub with_git: bool,
    /// `--excerpt-lines`: how many last lines a failure shows.
    pub excerpt_lines: usize,
    /// `--network` / `QUIRE_CI_NETWORK`: the container's network mode
    /// (`bridge`, `none`, `host` or a network's name); None: the engine's default.
    pub network: Option<String>,
    /// `-v`: say which engine was chosen and why.
    pub verbose: bool,
    /// `--image-map FROM=TO`: images replaced in ci.image and Dockerfile `FROM`s.
    pub image_map: Vec<(String, String)>,
    /// `--artifact`: paths in /work copied out at the end of the run.
    pub artifacts: Vec<String>,
    /// `--artifacts-dir`: where artifacts go; default `<run dir>/artifacts`.
    pub artifacts_dir: Option<PathBuf>,
    /// `-j/--jobs`: how many jobs may run at once (0: one per CPU).
    pub parallel: usize,
    /// `--fail-fast`: a failure cancels the running jobs and starts no more.
    pub fail_fast: bool,
    /// `--keep-runs`: how many run records are kept; older ones are pruned.
    pub keep_runs: usize,
    /// `watch`: the container kept ready between runs (src/executor/warm.rs).
    pub warm: Option<super::Warm>,
}

impl RunRequest {
    /// A run of `repo_dir`'s working tree with every default: all jobs, the
    /// ref HEAD is on, `--pull missing`, the default limits, no secrets,
    /// no sinks but the record, the result cache consulted.
    pub fn new(repo_dir: impl Into<PathBuf>) -> RunRequest {
        RunRequest {
            repo_dir: repo_dir.into(),
            pushed: None,
            selected: vec![],
            git_ref: None,
            event: None,
            image_override: None,
            pull: PullPolicy::Missing,
            keep: false,
            runs_dir: None,
            secrets: BTreeMap::new(),
            limits: Limits::default(),
            cancel: Cancel::default(),
            sinks: vec![],
            live_container: Arc::new(Mutex::new(None)),
            no_cache: false,
            on_job_failed: None,
            cache_volume: false,
            memory_limit: None,
            skip: BTreeMap::new(),
            in_hook: false,
            with_git: false,
            excerpt_lines: DEFAULT_EXCERPT_LINES,
            network: None,
            verbose: false,
            artifacts: vec![],
            artifacts_dir: None,
            image_map: vec![],
            parallel: 1,
            fail_fast: false,
            keep_runs: super::KEEP_RUNS,
            warm: None,
        }
    }
}

/// `-j N` as a number of jobs at once: 0 is one per CPU.
pub fn effective_parallel(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        n
    }
}

/// The engine volume `--cache-volume` mounts at /cache: one per repository
/// (by its path), named so `docker volume ls` shows whose it is.
pub fn cache_volume_name(repo_dir: &Path) -> String {
    let path = repo_dir.canonicalize().unwrap_or_else(|_| repo_dir.to_path_buf());
    let base: String = path
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
                .collect()
        })
        .unwrap_or_default();
    let hash = Sha256::digest(path.to_string_lossy().as_bytes());
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("quire-ci-cache-{}{hex}", if base.is_empty() { String::new() } else { format!("{base}-") })
}

/// See [`RunRequest::on_job_failed`].
pub type OnJobFailed = Box<dyn Fn(&FailedJob)>;

/// A failed job and where its state still lives, for `on_job_failed`.
pub struct FailedJob {
    pub job: String,
    /// The container's name (usable with the docker CLI).
    pub container: String,
    /// The engine endpoint, e.g. `unix:///var/run/docker.sock`.
    pub endpoint: String,
    /// The docker CLI's global flags that reach that engine
    /// (`--context NAME` or `-H HOST`).
    pub docker_args: Vec<String>,
}

/// The run settings that can change a result, for the cache key: a green
/// run under one of them says nothing about a run under another. (The
/// image is in the key by id; `--pull` only decides which id that is.)
pub(super) fn outcome_settings(req: &RunRequest) -> Vec<(String, String)> {
    vec![
        ("memory".into(), req.memory_limit.map_or("none".into(), |m| m.to_string())),
        ("cache-volume".into(), req.cache_volume.to_string()),
        // `--with-git` changes what jobs see.
        ("with-git".into(), req.with_git.to_string()),
        ("image-map".into(), req.image_map.iter().map(|(f, t)| format!("{f}={t}")).collect::<Vec<_>>().join("\0")),
        // What is copied out is part of what the run promises.
        ("artifacts".into(), req.artifacts.join("\0")),
        ("lua-memory".into(), req.limits.memory.to_string()),
        ("eval-timeout".into(), format!("{:?}", req.limits.eval_timeout)),
        ("job-lua-timeout".into(), format!("{:?}", req.limits.run_fn_budget)),
    ]
}
