//! The executor: one run of a pipeline, from snapshot to teardown
//! (DESIGN.md §4). It strings the rooms together — snapshot, pipeline,
//! engine, runtime — and reports everything as events through the emitter.
//!
//! Owns: the order of a run, job scheduling and skip rules, run status,
//! image resolution, the run container's lifetime, cancellation. Must not
//! know about: how events are shown or stored (sinks do that).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::Value;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::cache::{self, CacheKey, ResultCache};
use crate::emitter::{Emitter, EventSink};
use crate::engine::{Engine, EngineError, ExecSpec, PullPolicy, RunContainer, RunContainerSpec};
use crate::events::{EventKind, Outcome, RunStatus, Stream};
use crate::pipeline::{self, Invalid, Pipeline, RepoFiles};
use crate::record::{self, RunMeta, RunRecord};
use crate::redact::Redactor;
use crate::runtime::{self, Abort, RunInputs, SecretValues, ShHost, ShReply, ShRequest, SH_CAPTURE_LIMIT};
use crate::sandbox::Limits;
use crate::snapshot::{PushFacts, Snapshot};

/// The image used when neither ci.fnl, `.quire/Dockerfile`, `--image` nor
/// `QUIRE_CI_IMAGE` names one.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// How many last lines of a failure are shown by default (`--excerpt-lines`).
pub const DEFAULT_EXCERPT_LINES: usize = 15;

/// How many runs are kept per repository; older ones are pruned.
pub const KEEP_RUNS: usize = 50;

/// Asks a run to stop, from any thread (signal handler, watcher).
#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    reason: Arc<Mutex<(RunStatus, String)>>,
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(false);
        Cancel {
            flag: Arc::new(AtomicBool::new(false)),
            reason: Arc::new(Mutex::new((RunStatus::Canceled, String::new()))),
            tx: Arc::new(tx),
        }
    }
}

impl Cancel {
    /// Stops the run; `status` is `Canceled` or `Superseded`.
    pub fn cancel(&self, status: RunStatus, reason: impl Into<String>) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            if let Ok(mut r) = self.reason.lock() {
                *r = (status, reason.into());
            }
        }
        self.tx.send_replace(true);
    }
    pub fn is_canceled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    fn status_and_reason(&self) -> (RunStatus, String) {
        self.reason.lock().map(|r| r.clone()).unwrap_or((RunStatus::Canceled, "canceled".into()))
    }
    /// Resolves once the run is asked to stop.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// What was pushed, for a run of a commit instead of the working tree.
#[derive(Debug, Clone)]
pub struct PushedCommit {
    pub sha: String,
    pub facts: PushFacts,
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

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: Option<String>,
    pub dir: Option<PathBuf>,
    pub status: RunStatus,
    pub exit_code: i32,
    pub tree: Option<String>,
    /// Set when the run never got going (bad input, engine, image).
    pub error: Option<RunError>,
    /// True when nothing ran because a green run with the same inputs
    /// exists (see cache.rs); `run_id` and `dir` then name that run.
    pub cache_hit: bool,
}

/// A run that could not start or had to stop, for the user.
#[derive(Debug, Clone)]
pub enum RunError {
    /// ci.fnl did not compile or validate (exit 2).
    Invalid { problems: Vec<crate::diagnostic::Problem>, sources: crate::diagnostic::Sources },
    /// Bad usage: unknown job names, unreadable --event (exit 2).
    Usage(String),
    /// The engine, the image, the container (exit 3).
    Infra(String),
}

/// The files of a snapshot, for evaluating ci.fnl as it is in the snapshot.
struct SnapshotFiles(Rc<Snapshot>);

impl RepoFiles for SnapshotFiles {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.0.read_file(path).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Runs a pipeline. Blocks the calling thread (which must not be a tokio
/// worker); engine calls go through `rt`.
pub fn execute(rt: &tokio::runtime::Handle, mut req: RunRequest) -> RunOutcome {
    let started = Instant::now();
    let fail = |error: RunError, tree: Option<String>| {
        let exit_code = match &error {
            RunError::Invalid { .. } | RunError::Usage(_) => crate::commands::exit::BAD_INPUT,
            RunError::Infra(_) => crate::commands::exit::INFRA,
        };
        RunOutcome {
            run_id: None,
            dir: None,
            status: RunStatus::Error,
            exit_code,
            tree,
            error: Some(error),
            cache_hit: false,
        }
    };

    // The engine is reached (and leftovers of dead quire-ci processes reaped)
    // on the runtime while the snapshot and the compile happen here.
    let mut engine = EngineLink::start(rt, req.verbose);

    // 1. Snapshot.
    let snapshot = match &req.pushed {
        // An `--out` inside the working tree is never part of the snapshot.
        None => Snapshot::of_worktree(&req.repo_dir).and_then(|s| match &req.runs_dir {
            Some(out) => s.excluding(out),
            None => Ok(s),
        }),
        Some(p) => Snapshot::of_commit(&req.repo_dir, &p.sha),
    };
    let snapshot = match snapshot {
        Ok(mut s) => {
            stamp_times(&mut s);
            Rc::new(s)
        }
        Err(e) => return fail(RunError::Usage(format!("cannot snapshot {}: {e}", req.repo_dir.display())), None),
    };
    let tree = snapshot.tree_id();
    let facts = match &req.pushed {
        Some(p) => Ok(p.facts.clone()),
        None => crate::snapshot::push_facts_for_worktree(&snapshot),
    };
    let facts = match facts {
        Ok(f) => f,
        Err(e) => return fail(RunError::Usage(format!("cannot read git facts: {e}")), Some(tree)),
    };

    // 2. Compile + register, from the snapshot.
    let compile_cache =
        Rc::new(crate::compile_cache::CompileCache::at(crate::compile_cache::cache_dir(snapshot.git_dir())));
    let evaluated =
        pipeline::evaluate_with(Rc::new(SnapshotFiles(snapshot.clone())), req.limits, Some(compile_cache.clone()));
    if req.verbose {
        compile_cache.report().iter().for_each(|l| eprintln!("quire-ci: {l}"));
    }

    let runs_dir = req.runs_dir.clone().unwrap_or_else(|| record::runs_dir(snapshot.git_dir()));
    let git_ref = req.git_ref.clone().unwrap_or_else(|| facts.git_ref.clone());

    // The result cache, checked before any record or container exists: a
    // hit costs the snapshot, the compile and one engine call (image id).
    let result_cache = ResultCache::at(cache::cache_dir(snapshot.git_dir()));
    let partial_key = match &evaluated {
        Ok(p) => select_jobs(p, &req.selected).ok().map(|jobs| CacheKey {
            tree: tree.clone(),
            ci_fnl_hash: p.source_hash.clone(),
            image_id: String::new(),
            // A run that skipped a job does not vouch for it.
            jobs: jobs.into_iter().filter(|j| !req.skip.contains_key(j)).collect(),
            git_ref: git_ref.clone(),
            event: req.event.as_ref().map(|e| Json::Object(e.clone()).to_string()),
            secret_names: req.secrets.keys().cloned().collect(),
            settings: outcome_settings(&req),
        }),
        Err(_) => None,
    };
    // A run that is to copy artifacts into a directory the user named must
    // run: a cached green run would copy nothing there.
    if let (Some(key), Ok(p), false, false, None) =
        (&partial_key, &evaluated, req.no_cache, req.keep, &req.artifacts_dir)
    {
        if let Some(image_id) = present_image_id(rt, engine.get(rt).ok(), &req, p, &snapshot) {
            let key = CacheKey { image_id, ..key.clone() };
            if let Some(green) = result_cache.lookup(&key).filter(|id| runs_dir.join(id).is_dir()) {
                return RunOutcome {
                    dir: Some(runs_dir.join(&green)),
                    run_id: Some(green),
                    status: RunStatus::Succeeded,
                    exit_code: crate::commands::exit::OK,
                    tree: Some(tree),
                    error: None,
                    cache_hit: true,
                };
            }
        }
    }

    // The record exists from here on, whatever happens next.
    let run_id = record::new_run_id();
    let dir = runs_dir.join(&run_id);
    let ci_hash = match &evaluated {
        Ok(p) => p.source_hash.clone(),
        Err(_) => snapshot
            .read_file(pipeline::CI_FNL)
            .ok()
            .flatten()
            .map(|b| format!("{:x}", Sha256::digest(&b)))
            .unwrap_or_default(),
    };
    let declared_image = evaluated.as_ref().ok().and_then(|p| p.image.as_ref().map(|i| i.name.clone()));
    let meta = RunMeta {
        run_id: run_id.clone(),
        repo: req.repo_dir.clone(),
        git_ref: git_ref.clone(),
        sha: facts.sha.clone(),
        tree: tree.clone(),
        dirty: snapshot.dirty(),
        image: declared_image,
        ci_fnl_hash: ci_hash,
        quire_ci_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: record::now_ts(),
        pid: std::process::id(),
        extra: [("jobs".to_string(), Json::from(effective_parallel(req.parallel)))].into_iter().collect(),
    };
    // A job name that is not in ci.fnl (`run biuld`, `--skip pubish`) is
    // bad usage, like a mistyped flag: said before anything is recorded.
    if let Ok(p) = &evaluated {
        if let Err(msg) = select_jobs(p, &req.selected).and_then(|_| check_skips(p, &req.skip)) {
            return fail(RunError::Usage(msg), Some(tree));
        }
    }
    let record = match RunRecord::create(&dir, &meta) {
        Ok(r) => r,
        Err(e) => return fail(RunError::Infra(format!("cannot create the run record: {e}")), Some(tree)),
    };
    let redactor = Redactor::new(req.secrets.values().cloned().collect());
    let mut emitter = Emitter::new(redactor);
    emitter.add_sink(Box::new(RecordSink { record, warned: false }));
    for s in req.sinks.drain(..) {
        emitter.add_sink(s);
    }
    let emitter = Rc::new(RefCell::new(emitter));

    let mut outcome = RunOutcome {
        run_id: Some(run_id.clone()),
        dir: Some(dir.clone()),
        status: RunStatus::Error,
        exit_code: crate::commands::exit::INFRA,
        tree: Some(tree.clone()),
        error: None,
        cache_hit: false,
    };

    let pipeline = match evaluated {
        Ok(p) => p,
        Err(Invalid { problems, sources }) => {
            let msg = problems.first().map(|p| p.message.clone()).unwrap_or_default();
            let more = if problems.len() > 1 { format!(" (and {} more)", problems.len() - 1) } else { String::new() };
            emit_run_start(&emitter, &dir, &run_id, &git_ref, &facts, &tree, snapshot.dirty(), vec![]);
            finish_run(&emitter, RunStatus::Error, started, Some(format!("{msg}{more}")));
            outcome.exit_code = crate::commands::exit::BAD_INPUT;
            outcome.error = Some(RunError::Invalid { problems, sources });
            return outcome;
        }
    };

    // Which jobs: the ones asked for and their ancestors, in run order.
    let selected =
        match select_jobs(&pipeline, &req.selected).and_then(|s| check_skips(&pipeline, &req.skip).map(|()| s)) {
            Ok(s) => s,
            Err(msg) => {
                emit_run_start(&emitter, &dir, &run_id, &git_ref, &facts, &tree, snapshot.dirty(), vec![]);
                finish_run(&emitter, RunStatus::Error, started, Some(msg.clone()));
                outcome.exit_code = crate::commands::exit::BAD_INPUT;
                outcome.error = Some(RunError::Usage(msg));
                return outcome;
            }
        };
    emit_run_start(&emitter, &dir, &run_id, &git_ref, &facts, &tree, snapshot.dirty(), selected.clone());
    if req.artifacts_dir.is_none() {
        req.artifacts_dir = Some(dir.join("artifacts"));
    }

    let mut resolved_image = None;
    let ran = match engine.get(rt) {
        Ok(e) => run_in_container(
            rt,
            &e,
            &req,
            &pipeline,
            &snapshot,
            &selected,
            &facts,
            &git_ref,
            &run_id,
            &emitter,
            &mut resolved_image,
        ),
        Err(e) => Err(e),
    };
    let (status, error) = match ran {
        Ok(status) => (status, None),
        Err(e) => (RunStatus::Error, Some(e)),
    };
    let status = if req.cancel.is_canceled() {
        // A failure caused by tearing down is the cancel, not a failure; and
        // a run interrupted before its end (even in its teardown, after its
        // last job passed) is not green: it exits 130 and is never cached.
        req.cancel.status_and_reason().0
    } else {
        status
    };
    finish_run(
        &emitter,
        status,
        started,
        error.clone().or_else(|| req.cancel.is_canceled().then(|| req.cancel.status_and_reason().1)),
    );
    outcome.status = status;
    outcome.exit_code = match status {
        RunStatus::Succeeded => crate::commands::exit::OK,
        RunStatus::Failed => crate::commands::exit::JOB_FAILED,
        RunStatus::Canceled | RunStatus::Superseded => crate::commands::exit::INTERRUPTED,
        RunStatus::Error | RunStatus::Running => crate::commands::exit::INFRA,
    };
    outcome.error = error.map(RunError::Infra);
    if let (RunStatus::Succeeded, Some(key), Some(image)) = (status, partial_key, resolved_image) {
        if let Ok(e) = engine.get(rt) {
            store_green(rt, &e, &result_cache, key, &image, &run_id);
        }
    }
    if let Err(e) = record::prune(&runs_dir, KEEP_RUNS) {
        eprintln!("quire-ci: warning: pruning old runs in {}: {e}", runs_dir.display());
    }
    // Cache entries vouch for a run by its record: drop those whose record went.
    if let Err(e) = result_cache.retain(|id| runs_dir.join(id).is_dir()) {
        eprintln!("quire-ci: warning: pruning the result cache: {e}");
    }
    outcome
}

/// Gives the snapshot's files times that move when their content moves (see
/// src/snapshot/times.rs), so mtime-deciding builds in a kept /cache rebuild
/// what changed. Without a usable ledger, natural times still apply.
fn stamp_times(snapshot: &mut Snapshot) {
    let ledger = crate::snapshot::mtime_ledger_path(snapshot.git_dir());
    let now = std::time::SystemTime::now();
    if let Err(e) = snapshot.stamp_times(Some(&ledger), now) {
        eprintln!(
            "quire-ci: warning: {e}: {}; files get their own times this run",
            e.source().map(|s| s.to_string()).unwrap_or_default()
        );
        let _ = snapshot.stamp_times(None, now);
    }
}

#[allow(clippy::too_many_arguments)] // the run-start event's facts, each from elsewhere
fn emit_run_start(
    emitter: &Rc<RefCell<Emitter>>,
    dir: &Path,
    run_id: &str,
    git_ref: &str,
    facts: &PushFacts,
    tree: &str,
    dirty: bool,
    jobs: Vec<String>,
) {
    emitter.borrow_mut().emit(
        None,
        EventKind::RunStart {
            run_id: run_id.to_string(),
            git_ref: git_ref.to_string(),
            sha: facts.sha.clone(),
            tree: tree.to_string(),
            dirty,
            jobs,
            dir: Some(dir.display().to_string()),
        },
    );
}

fn finish_run(emitter: &Rc<RefCell<Emitter>>, status: RunStatus, started: Instant, error: Option<String>) {
    let mut e = emitter.borrow_mut();
    e.emit(None, EventKind::RunEnd { status, duration_ms: started.elapsed().as_millis() as u64, error });
    e.finish();
}

/// The selected jobs plus their ancestors, in run order. Unknown names are
/// a usage error listing what exists.
pub fn select_jobs(p: &Pipeline, wanted: &[String]) -> Result<Vec<String>, String> {
    if wanted.is_empty() {
        return Ok(p.jobs.iter().map(|j| j.id.clone()).collect());
    }
    let unknown: Vec<&String> = wanted.iter().filter(|w| p.job(w).is_none()).collect();
    if !unknown.is_empty() {
        let have: Vec<String> = p.jobs.iter().map(|j| j.id.clone()).collect();
        let names: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
        return Err(format!("no job named {} in .quire/ci.fnl (jobs: {})", names.join(", "), have.join(", ")));
    }
    let mut keep: HashSet<String> = wanted.iter().cloned().collect();
    for w in wanted {
        keep.extend(p.ancestors(w));
    }
    Ok(p.jobs.iter().filter(|j| keep.contains(&j.id)).map(|j| j.id.clone()).collect())
}

/// Every job named to skip must exist: a misspelt `--skip` would otherwise
/// run the very job it was meant to keep off this machine.
fn check_skips(p: &Pipeline, skip: &BTreeMap<String, String>) -> Result<(), String> {
    let unknown: Vec<String> =
        skip.iter().filter(|(j, _)| p.job(j).is_none()).map(|(j, from)| format!("{j:?} (from {from})")).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let have: Vec<String> = p.jobs.iter().map(|j| j.id.clone()).collect();
    Err(format!("cannot skip {}: no such job in .quire/ci.fnl (jobs: {})", unknown.join(", "), have.join(", ")))
}

/// Image resolution (DESIGN.md §2): ci.image → .quire/Dockerfile →
/// --image / QUIRE_CI_IMAGE → the default. Returns (image to run, events).
fn resolve_image(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    pipeline: &Pipeline,
    snapshot: &Rc<Snapshot>,
    emitter: &Rc<RefCell<Emitter>>,
) -> Result<String, String> {
    let (tag, from_dockerfile) = image_choice(req, pipeline, snapshot);
    // `--image` on the command line that loses to ci.image or the
    // Dockerfile is said, not ignored; QUIRE_CI_IMAGE is a machine-wide
    // fallback, so it loses silently (docs/running.md).
    if let Some(flag) =
        req.image_override.as_ref().filter(|f| std::env::var("QUIRE_CI_IMAGE").ok().as_ref() != Some(*f))
    {
        let winner = match &pipeline.image {
            Some(decl) => Some(format!("ci.fnl declares ci.image {:?}", decl.name)),
            None if from_dockerfile => Some("there is a .quire/Dockerfile".to_string()),
            None => None,
        };
        if let Some(winner) = winner {
            eprintln!("quire-ci: warning: --image {flag} does not apply: {winner} (to replace an image, use --image-map FROM={flag})");
        }
    }
    if !from_dockerfile {
        return pull(rt, engine, &tag, req.pull, &req.cancel, emitter);
    }
    if let Ok(Some(_)) = rt.block_on(engine.image_id(&tag)) {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: tag.clone(), action: "present".into(), detail: None });
        return Ok(tag);
    }
    emitter.borrow_mut().emit(
        None,
        EventKind::Image { image: tag.clone(), action: "building".into(), detail: Some(".quire/Dockerfile".into()) },
    );
    let mapped =
        snapshot.read_file(".quire/Dockerfile").ok().flatten().and_then(|d| map_dockerfile(&req.image_map, &d));
    let tar: Box<dyn std::io::Read + Send> = match &mapped {
        Some(dockerfile) => Box::new(std::io::Cursor::new(context_with_dockerfile(snapshot, dockerfile.as_bytes())?)),
        None => Box::new(snapshot.tar_reader().map_err(|e| format!("cannot stream the snapshot for the build: {e}"))?),
    };
    let em = emitter.clone();
    let tag2 = tag.clone();
    let tail = Rc::new(RefCell::new(BuildTail::new(req.excerpt_lines)));
    let tail2 = tail.clone();
    let built = until_canceled(
        rt,
        &req.cancel,
        engine.build_image(tar, ".quire/Dockerfile", &tag, move |line| {
            // The builder colours its stderr lines; the record keeps text.
            let line = crate::text::plain_text(&line);
            tail2.borrow_mut().push(&line);
            em.borrow_mut()
                .emit(None, EventKind::Image { image: tag2.clone(), action: "build".into(), detail: Some(line) });
        }),
    )?;
    match built {
        Ok(_) => {
            emitter
                .borrow_mut()
                .emit(None, EventKind::Image { image: tag.clone(), action: "built".into(), detail: None });
            Ok(tag)
        }
        Err(e) => {
            let tail = tail.borrow();
            emitter.borrow_mut().emit(
                None,
                EventKind::Image { image: tag.clone(), action: "build-failed".into(), detail: tail.step.clone() },
            );
            Err(tail.explain(&crate::text::plain_text(&e.to_string())))
        }
    }
}

/// Runs `work` (a pull, a build) until it ends or the run is canceled; a
/// cancel drops the request, which makes the engine stop the pull or build.
fn until_canceled<T>(
    rt: &tokio::runtime::Handle,
    cancel: &Cancel,
    work: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    rt.block_on(async {
        tokio::select! {
            r = work => Ok(r),
            _ = cancel.wait() => Err(cancel.status_and_reason().1),
        }
    })
}

/// The step a `.quire/Dockerfile` build is at and its last output lines,
/// for the message when it fails (the whole output is in the record).
struct BuildTail {
    step: Option<String>,
    lines: std::collections::VecDeque<String>,
    keep: usize,
}

impl BuildTail {
    fn new(keep: usize) -> BuildTail {
        BuildTail { step: None, lines: Default::default(), keep }
    }

    fn push(&mut self, line: &str) {
        let t = line.trim();
        if t.starts_with("Step ") {
            self.step = Some(t.to_string());
            self.lines.clear();
        } else if !(t.is_empty() || t.starts_with("---> ") || t.starts_with("Removing intermediate container")) {
            self.lines.push_back(line.trim_end().to_string());
            while self.lines.len() > self.keep {
                self.lines.pop_front();
            }
        }
    }

    /// The engine's message, then the failing step and what it printed last.
    fn explain(&self, message: &str) -> String {
        let mut out = message.to_string();
        if let Some(step) = &self.step {
            out.push_str(&format!("\n  failing step: {step}"));
        }
        if !self.lines.is_empty() {
            out.push_str(&format!(
                "\n  its last {} line{}:",
                self.lines.len(),
                if self.lines.len() == 1 { "" } else { "s" }
            ));
            for l in &self.lines {
                out.push_str(&format!("\n    {l}"));
            }
        }
        out.push_str("\n  the whole build: quire-ci logs, or run with -v");
        out
    }
}

/// Which image a run uses (DESIGN.md §2 order), and whether it is built
/// from `.quire/Dockerfile` rather than pulled.
fn image_choice(req: &RunRequest, pipeline: &Pipeline, snapshot: &Snapshot) -> (String, bool) {
    if let Some(decl) = &pipeline.image {
        return (map_image(&req.image_map, &decl.name), false);
    }
    match snapshot.read_file(".quire/Dockerfile") {
        Ok(Some(dockerfile)) => {
            let dockerfile = map_dockerfile(&req.image_map, &dockerfile).map(String::into_bytes).unwrap_or(dockerfile);
            (dockerfile_tag(&req.repo_dir, &dockerfile, &snapshot.tree_id()), true)
        }
        _ => (fallback_image(req), false),
    }
}

/// `--image-map FROM=TO` (like act's `-P`): the image to use for `name`.
pub fn map_image(map: &[(String, String)], name: &str) -> String {
    map.iter().find(|(from, _)| from == name).map_or_else(|| name.to_string(), |(_, to)| to.clone())
}

/// The Dockerfile with every `FROM` image the map names replaced (flags and
/// `AS name` kept); `None` when nothing is mapped.
pub fn map_dockerfile(map: &[(String, String)], dockerfile: &[u8]) -> Option<String> {
    if map.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(dockerfile);
    let mut changed = false;
    let out: Vec<String> = text
        .split('\n')
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                if let Some(i) = words.iter().skip(1).position(|w| !w.starts_with("--")).map(|i| i + 1) {
                    let mapped = map_image(map, words[i]);
                    if mapped != words[i] {
                        changed = true;
                        let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
                        words[i] = mapped;
                        return words.join(" ");
                    }
                }
            }
            line.to_string()
        })
        .collect();
    changed.then(|| out.join("\n"))
}

/// The build context with `.quire/Dockerfile` replaced by `dockerfile` (the
/// mapped one), in memory.
fn context_with_dockerfile(snapshot: &Snapshot, dockerfile: &[u8]) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("cannot rewrite the build context for --image-map: {e}");
    let reader = snapshot.tar_reader().map_err(|e| format!("cannot stream the snapshot for the build: {e}"))?;
    let mut archive = tar::Archive::new(reader);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let mut header = entry.header().clone();
        let path = entry.path().map_err(err)?.into_owned();
        if path == Path::new(".quire/Dockerfile") {
            header.set_size(dockerfile.len() as u64);
            header.set_cksum();
            out.append(&header, dockerfile).map_err(err)?;
        } else if header.entry_type() == tar::EntryType::Symlink {
            let target = entry.link_name().map_err(err)?.map(|t| t.into_owned()).unwrap_or_default();
            out.append_link(&mut header, &path, target).map_err(err)?;
        } else {
            out.append_data(&mut header, &path, &mut entry).map_err(err)?;
        }
    }
    out.into_inner().map_err(err)
}

/// `--image` / `QUIRE_CI_IMAGE`, else the default.
fn fallback_image(req: &RunRequest) -> String {
    req.image_override
        .clone()
        .or_else(|| std::env::var("QUIRE_CI_IMAGE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

/// The run settings that can change a result, for the cache key: a green
/// run under one of them says nothing about a run under another. (The
/// image is in the key by id; `--pull` only decides which id that is.)
fn outcome_settings(req: &RunRequest) -> Vec<(String, String)> {
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

/// What the connecting task gives: the engine and its warnings, or why not.
type Connected = Result<(Engine, Vec<String>), String>;

/// The engine connection, made on a runtime task from the start of a run.
struct EngineLink {
    task: Option<tokio::task::JoinHandle<Connected>>,
    engine: Option<Result<Engine, String>>,
}

impl EngineLink {
    fn start(rt: &tokio::runtime::Handle, verbose: bool) -> EngineLink {
        let task = rt.spawn(async move {
            let engine = Engine::connect().await.map_err(|e| e.to_string())?;
            if verbose {
                eprintln!("quire-ci: engine: {}", engine.chosen().describe());
            }
            let reaped = engine.reap_orphans().await.unwrap_or_default();
            Ok((engine, reaped))
        });
        EngineLink { task: Some(task), engine: None }
    }

    /// Waits for the connection (once) and hands out the engine.
    fn get(&mut self, rt: &tokio::runtime::Handle) -> Result<Engine, String> {
        if let Some(task) = self.task.take() {
            let joined = rt.block_on(task).unwrap_or_else(|e| Err(format!("connecting to the engine failed: {e}")));
            self.engine = Some(joined.map(|(engine, reaped)| {
                for c in reaped {
                    eprintln!("quire-ci: removed container {c} left behind by a quire-ci that is gone");
                }
                engine
            }));
        }
        self.engine.clone().unwrap_or_else(|| Err("no engine connection".to_string()))
    }
}

/// The id of the image this run would use, if it is already present —
/// without pulling or building anything. `None` (no cache lookup) when the
/// engine is unreachable, the image is absent, or `--pull always` asks for
/// a possibly newer image.
fn present_image_id(
    rt: &tokio::runtime::Handle,
    engine: Option<Engine>,
    req: &RunRequest,
    pipeline: &Pipeline,
    snapshot: &Snapshot,
) -> Option<String> {
    let engine = engine?;
    if req.pull == PullPolicy::Always {
        return None;
    }
    let (name, _) = image_choice(req, pipeline, snapshot);
    rt.block_on(engine.image_id(&name)).ok().flatten()
}

/// Stores a green run in the result cache. The image is looked up again:
/// it may have been pulled or built by this very run.
fn store_green(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    cache: &ResultCache,
    key: CacheKey,
    image: &str,
    run_id: &str,
) {
    let image_id = rt.block_on(engine.image_id(image)).ok().flatten();
    let Some(image_id) = image_id else { return };
    if let Err(e) = cache.store(&CacheKey { image_id, ..key }, run_id) {
        eprintln!("quire-ci: warning: cannot record the green run in the result cache: {e}");
    }
}

/// The tag for an image built from `.quire/Dockerfile`: a hash of the
/// Dockerfile, plus the snapshot's tree when the Dockerfile copies files in
/// (COPY/ADD), so the image is rebuilt exactly when its inputs may differ.
pub fn dockerfile_tag(repo_dir: &Path, dockerfile: &[u8], tree: &str) -> String {
    let mut h = Sha256::new();
    h.update(dockerfile);
    let text = String::from_utf8_lossy(dockerfile);
    let copies = text.lines().any(|l| {
        let w = l.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        w == "COPY" || w == "ADD"
    });
    if copies {
        h.update(tree.as_bytes());
    }
    let name: String = repo_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if name.is_empty() { "repo" } else { name };
    format!("quire-ci-local/{name}:{}", &format!("{:x}", h.finalize())[..16])
}

fn pull(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    name: &str,
    policy: PullPolicy,
    cancel: &Cancel,
    emitter: &Rc<RefCell<Emitter>>,
) -> Result<String, String> {
    let present = rt.block_on(engine.image_id(name)).ok().flatten().is_some();
    if present && policy != PullPolicy::Always {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: name.to_string(), action: "present".into(), detail: None });
        return Ok(name.to_string());
    }
    if policy != PullPolicy::Never {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: name.to_string(), action: "pulling".into(), detail: None });
    }
    let on_progress = |p: crate::engine::PullProgress| {
        let kind = EventKind::ImageProgress {
            image: name.to_string(),
            layer: p.layer,
            status: p.status,
            current: p.current.and_then(|c| u64::try_from(c).ok()),
            total: p.total.and_then(|t| u64::try_from(t).ok()),
        };
        emitter.borrow_mut().emit(None, kind);
    };
    match until_canceled(rt, cancel, engine.ensure_image(name, policy, on_progress))? {
        Ok(_) => {
            if policy != PullPolicy::Never {
                emitter
                    .borrow_mut()
                    .emit(None, EventKind::Image { image: name.to_string(), action: "pulled".into(), detail: None });
            }
            Ok(name.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The `:quire/push` table: the server's keys plus the locals' `:dirty` and
/// `:tree`, then `--ref` and `--event` applied.
fn push_table(
    lua: &mlua::Lua,
    facts: &PushFacts,
    git_ref: &str,
    overridden: bool,
    tree: &str,
    dirty: bool,
    event: Option<&serde_json::Map<String, Json>>,
) -> mlua::Result<mlua::Table> {
    let (branch, tag) = if overridden {
        (
            git_ref.strip_prefix("refs/heads/").map(str::to_string),
            git_ref.strip_prefix("refs/tags/").map(str::to_string),
        )
    } else {
        (facts.branch.clone(), facts.tag.clone())
    };
    let mut m = serde_json::Map::new();
    m.insert("sha".into(), facts.sha.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("ref".into(), Json::String(git_ref.to_string()));
    m.insert("branch".into(), branch.map(Json::String).unwrap_or(Json::Null));
    m.insert("tag".into(), tag.map(Json::String).unwrap_or(Json::Null));
    m.insert("previous-sha".into(), facts.previous_sha.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("files-changed".into(), Json::Array(facts.files_changed.iter().cloned().map(Json::String).collect()));
    m.insert("pusher".into(), facts.pusher.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("commit-message".into(), facts.commit_message.clone().map(Json::String).unwrap_or(Json::Null));
    m.insert("pushed-at".into(), Json::String(facts.pushed_at.clone()));
    m.insert("dirty".into(), Json::Bool(dirty));
    m.insert("tree".into(), Json::String(tree.to_string()));
    if let Some(ev) = event {
        for (k, v) in ev {
            m.insert(k.clone(), v.clone());
        }
    }
    match runtime::json_to_lua(lua, &Json::Object(m))? {
        Value::Table(t) => Ok(t),
        _ => lua.create_table(),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_in_container(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    pipeline: &Pipeline,
    snapshot: &Rc<Snapshot>,
    selected: &[String],
    facts: &PushFacts,
    git_ref: &str,
    run_id: &str,
    emitter: &Rc<RefCell<Emitter>>,
    resolved_image: &mut Option<String>,
) -> Result<RunStatus, String> {
    if req.cancel.is_canceled() {
        return Ok(req.cancel.status_and_reason().0);
    }
    let image = resolve_image(rt, engine, req, pipeline, snapshot, emitter)?;
    *resolved_image = Some(image.clone());
    let spec = RunContainerSpec {
        image: image.clone(),
        run_id: run_id.to_string(),
        repo_path_label: req.repo_dir.display().to_string(),
        keep: req.keep,
        cache_volume: req.cache_volume.then(|| cache_volume_name(&req.repo_dir)),
        memory_limit: req.memory_limit,
        network: req.network.clone(),
        ..RunContainerSpec::default()
    };
    let container = rt.block_on(engine.create_stopped_run_container(&spec)).map_err(|e| e.to_string())?;
    if let Ok(mut live) = req.live_container.lock() {
        *live = Some(container.id.clone());
    }
    // Teardown, always: this guard removes the container however we leave.
    let guard = Teardown {
        rt: rt.clone(),
        engine: engine.clone(),
        container: container.clone(),
        keep: req.keep,
        live: req.live_container.clone(),
    };

    // The snapshot goes in while the container starts: the engine takes an
    // archive into a created container, and the two overlap. Links that
    // climb out of the repository are made afterwards, by `ln -s` (the
    // engine's unpacker refuses them), so they arrive as git stores them.
    let outside = snapshot.links_out_of_tree().map_err(|e| format!("cannot read the snapshot's links: {e}"))?;
    let tar = if outside.is_empty() {
        snapshot.tar_reader()
    } else {
        snapshot.without_paths(&outside.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()).tar_reader()
    }
    .map_err(|e| format!("cannot stream the snapshot: {e}"))?;
    let (started, uploaded) = rt.block_on(async {
        tokio::join!(engine.start_run_container(&container), async {
            tokio::select! {
                r = engine.upload(&container, tar) => Some(r),
                _ = req.cancel.wait() => None,
            }
        })
    });
    started.map_err(|e| e.to_string())?;
    emitter
        .borrow_mut()
        .emit(None, EventKind::ContainerStart { image: image.clone(), container_id: container.id.clone() });
    let status = match uploaded {
        None => (req.cancel.status_and_reason().0, None),
        Some(Err(e)) => {
            // The engine refusing the archive is not the container dying: it
            // is running (it just started), and the message says what failed.
            if let EngineError::ContainerDied { reason, .. } = &e {
                emitter.borrow_mut().emit(None, EventKind::ContainerDied { reason: reason.clone() });
            }
            emitter.borrow_mut().emit(None, EventKind::ContainerEnd { status: RunStatus::Error });
            return Err(format!("uploading the snapshot into /work failed: {e}"));
        }
        Some(Ok(())) => match make_links(rt, engine, &container, &outside)
            .and_then(|()| upload_dotgit(rt, engine, req, snapshot, git_ref, run_id, &container))
        {
            Err(e) => (RunStatus::Error, Some(e)),
            Ok(()) => run_jobs(rt, req, pipeline, selected, facts, git_ref, snapshot, engine, &container, emitter),
        },
    };
    emitter.borrow_mut().emit(None, EventKind::ContainerEnd { status: status.0 });
    drop(guard);
    if req.keep {
        eprintln!(
            "quire-ci: kept container {} (image {image}); get a shell in it with:\n  {}\nremove it with:\n  {}",
            container.name,
            engine.chosen().docker_command(&["exec", "-it", "-w", "/work", &container.name, "sh"]),
            engine.chosen().docker_command(&["rm", "-f", &container.name])
        );
    }
    match status.1 {
        Some(err) => Err(err),
        None => Ok(status.0),
    }
}

/// How long removing the run's container may take: an engine that accepts
/// the request and never answers (frozen, overloaded) must not keep a
/// canceled run, or a finished one, from ending.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Makes the links of [`Snapshot::links_out_of_tree`] in /work, each with
/// its target byte for byte, in one exec; an error names the link.
fn make_links(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    container: &RunContainer,
    links: &[(String, Vec<u8>)],
) -> Result<(), String> {
    if links.is_empty() {
        return Ok(());
    }
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        r#"while [ $# -gt 0 ]; do case "$2" in */*) mkdir -p -- "${2%/*}" || exit 1;; esac; ln -s -- "$1" "$2" || { echo "$2" >&2; exit 1; }; shift 2; done"#.to_string(),
        "sh".to_string(),
    ];
    for (path, target) in links {
        let Ok(target) = String::from_utf8(target.clone()) else {
            return Err(format!(
                "the symbolic link {path} points at a name that is not UTF-8, which quire-ci cannot make in /work"
            ));
        };
        argv.push(target);
        argv.push(path.clone());
    }
    let spec = ExecSpec { argv, env: vec![], cwd: None };
    let mut err = Vec::new();
    let out = rt
        .block_on(engine.exec(container, &spec, |stream, bytes| {
            if stream == Stream::Stderr {
                err.extend_from_slice(bytes);
            }
        }))
        .map_err(|e| format!("making the symbolic links that point out of the repository failed: {e}"))?;
    if out.exit != 0 {
        let said = String::from_utf8_lossy(&err).trim().to_string();
        return Err(format!(
            "cannot make the symbolic link(s) that point out of the repository in /work ({}): {said}",
            links.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// `--with-git`: the minimal `.git` (src/snapshot/dotgit.rs) into /work,
/// with the branch the run is for.
#[allow(clippy::too_many_arguments)]
fn upload_dotgit(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    snapshot: &Snapshot,
    git_ref: &str,
    run_id: &str,
    container: &RunContainer,
) -> Result<(), String> {
    if !req.with_git {
        return Ok(());
    }
    let branch = git_ref.strip_prefix("refs/heads/");
    let scratch = snapshot.git_dir().join("quire-ci").join(format!("dotgit-{run_id}"));
    let tar = snapshot
        .dotgit_tar(&scratch, branch)
        .map_err(|e| format!("cannot build the .git for /work (--with-git): {e}"))?;
    rt.block_on(engine.upload(container, std::io::Cursor::new(tar)))
        .map_err(|e| format!("uploading .git (--with-git) failed: {e}"))
}

struct Teardown {
    rt: tokio::runtime::Handle,
    engine: Engine,
    container: RunContainer,
    keep: bool,
    live: Arc<Mutex<Option<String>>>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if !self.keep {
            let removed = self.rt.block_on(async {
                match tokio::time::timeout(TEARDOWN_DEADLINE, self.engine.remove(&self.container)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("the engine did not answer within {} s", TEARDOWN_DEADLINE.as_secs())),
                }
            });
            if let Err(e) = removed {
                eprintln!(
                    "quire-ci: warning: could not remove container {name}: {e}\n  the next quire-ci run removes it once the engine answers again (or: docker rm -f {name})",
                    name = self.container.name
                );
            }
        }
        if let Ok(mut live) = self.live.lock() {
            *live = None;
        }
    }
}

/// Runs the selected jobs in order. Returns the run status and, for an
/// infrastructure failure, its message.
#[allow(clippy::too_many_arguments)]
fn run_jobs(
    rt: &tokio::runtime::Handle,
    req: &RunRequest,
    pipeline: &Pipeline,
    selected: &[String],
    facts: &PushFacts,
    git_ref: &str,
    snapshot: &Rc<Snapshot>,
    engine: &Engine,
    container: &RunContainer,
    emitter: &Rc<RefCell<Emitter>>,
) -> (RunStatus, Option<String>) {
    let push = match push_table(
        &pipeline.lua,
        facts,
        git_ref,
        req.git_ref.is_some(),
        &snapshot.tree_id(),
        snapshot.dirty(),
        req.event.as_ref(),
    ) {
        Ok(t) => t,
        Err(e) => return (RunStatus::Error, Some(format!("cannot build the :quire/push table: {e}"))),
    };
    pipeline.clock.watch_cancel(req.cancel.flag.clone(), "the run was canceled");
    let host: Rc<dyn ShHost> = Rc::new(EngineHost {
        rt: rt.clone(),
        engine: engine.clone(),
        container: container.clone(),
        emitter: emitter.clone(),
        counters: RefCell::new(HashMap::new()),
        cancel: req.cancel.clone(),
    });
    let secrets: SecretValues = Rc::new(req.secrets.clone());
    let mut inputs = RunInputs { push, outputs: HashMap::new() };
    // Jobs that failed, or were skipped because something upstream failed.
    let mut blocked: HashMap<String, String> = HashMap::new();
    let mut any_failed = false;
    let mut stop: Option<(RunStatus, String)> = None;

    for id in selected {
        let Some(job) = pipeline.job(id) else { continue };
        if let Some((_, why)) = &stop {
            emitter.borrow_mut().emit(
                Some(id),
                EventKind::JobEnd {
                    outcome: Outcome::Skipped,
                    duration_ms: 0,
                    reason: Some(format!("not run: {why}")),
                    file: None,
                    line: None,
                    outputs: None,
                },
            );
            blocked.insert(id.clone(), why.clone());
            continue;
        }
        if let Some(from) = req.skip.get(id) {
            emitter.borrow_mut().emit(
                Some(id),
                EventKind::JobEnd {
                    outcome: Outcome::Skipped,
                    duration_ms: 0,
                    reason: Some(format!("skipped by {from}")),
                    file: None,
                    line: None,
                    outputs: None,
                },
            );
            blocked.insert(id.clone(), "skipped".into());
            inputs.outputs.insert(id.clone(), Value::Nil);
            continue;
        }
        if let Some(up) = job.inputs.iter().find(|i| blocked.contains_key(*i)) {
            let reason =
                format!("skipped because :{up} {}", if blocked[up] == "failed" { "failed" } else { "did not run" });
            emitter.borrow_mut().emit(
                Some(id),
                EventKind::JobEnd {
                    outcome: Outcome::Skipped,
                    duration_ms: 0,
                    reason: Some(reason),
                    file: None,
                    line: None,
                    outputs: None,
                },
            );
            blocked.insert(id.clone(), "blocked".into());
            inputs.outputs.insert(id.clone(), Value::Nil);
            continue;
        }
        emitter.borrow_mut().emit(Some(id), EventKind::JobStart {});
        let em = emitter.clone();
        let job_id = id.clone();
        pipeline.set_print_sink(move |line| em.borrow_mut().emit(Some(&job_id), EventKind::Print { data: line }));
        let started = Instant::now();
        let result = runtime::run_job(pipeline, job, &inputs, &secrets, host.clone());
        pipeline.set_print_sink(|line| eprintln!("ci.fnl: {line}"));
        let duration_ms = started.elapsed().as_millis() as u64;
        let reason = match (&result.reason, req.in_hook) {
            (Some(r), true) => Some(hook_secret_hint(r)),
            (r, _) => r.clone(),
        };
        emitter.borrow_mut().emit(
            Some(id),
            EventKind::JobEnd {
                outcome: result.outcome,
                duration_ms,
                reason,
                file: result.at.as_ref().map(|(f, _)| f.clone()),
                line: result.at.as_ref().map(|(_, l)| *l),
                outputs: result.outputs.clone(),
            },
        );
        if result.abort.is_none() && !req.cancel.is_canceled() {
            let declared = declared_artifacts(result.outputs.as_ref());
            copy_artifacts(rt, engine, container, Some(id), &declared, req, emitter);
        }
        if result.outcome == Outcome::Failed && result.abort.is_none() && !req.cancel.is_canceled() {
            if let Some(hook) = &req.on_job_failed {
                hook(&FailedJob {
                    job: id.clone(),
                    container: container.name.clone(),
                    endpoint: engine.endpoint().to_string(),
                    docker_args: engine.chosen().docker_args(),
                });
            }
        }
        match result.outcome {
            Outcome::Failed => {
                any_failed = true;
                blocked.insert(id.clone(), "failed".into());
                inputs.outputs.insert(id.clone(), result.value.clone());
            }
            _ => {
                inputs.outputs.insert(id.clone(), result.value.clone());
            }
        }
        match result.abort {
            Some(Abort::ContainerDied(reason)) => {
                emitter.borrow_mut().emit(None, EventKind::ContainerDied { reason: reason.clone() });
                stop = Some((RunStatus::Error, format!("the container died ({reason})")));
            }
            Some(Abort::Engine(reason)) => stop = Some((RunStatus::Error, format!("engine error: {reason}"))),
            Some(Abort::Canceled(reason)) => stop = Some((req.cancel.status_and_reason().0, reason)),
            Some(Abort::Refused(_)) | None => {
                if req.cancel.is_canceled() {
                    let (st, why) = req.cancel.status_and_reason();
                    stop = Some((st, why));
                }
            }
        }
    }
    if stop.is_none() && !req.cancel.is_canceled() {
        copy_artifacts(rt, engine, container, None, &req.artifacts, req, emitter);
    }
    match stop {
        Some((RunStatus::Error, why)) => (RunStatus::Error, Some(why)),
        Some((st, _)) => (st, None),
        None if any_failed => (RunStatus::Failed, None),
        None => (RunStatus::Succeeded, None),
    }
}

/// The runtime's missing-secret message names `run`'s flags; in the pre-push
/// hook, which git starts without flags of ours, name what the hook reads.
fn hook_secret_hint(reason: &str) -> String {
    let Some(at) = reason.find(" is not provided: pass --secret ") else { return reason.to_string() };
    let Some(start) = reason[..at].rfind("secret ") else { return reason.to_string() };
    let name = &reason[start + "secret ".len()..at];
    let end = reason[at..].find("--secrets-file").map_or(reason.len(), |i| at + i + "--secrets-file".len());
    format!(
        "{}secret {name} is not provided: the pre-push hook takes no flags; set QUIRE_SECRET_{name} in the environment you run `git push` in, or put {name}=… in a dotenv file and name it in QUIRE_CI_SECRETS_FILE (or never run the job here: QUIRE_CI_HOOK_SKIP_JOBS){}",
        &reason[..start],
        &reason[end..]
    )
}

/// A run-fn's `:artifacts`: a list of paths (strings) in /work.
fn declared_artifacts(outputs: Option<&Json>) -> Vec<String> {
    match outputs.and_then(|o| o.get("artifacts")) {
        Some(Json::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        Some(Json::String(one)) => vec![one.clone()],
        _ => vec![],
    }
}

/// `path` as a relative path inside /work (`dist/x`, `./dist/x` and
/// `/work/dist/x` are the same), or why it is not one.
fn artifact_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() { p.strip_prefix("/work").map_err(|_| "not inside /work".to_string())? } else { p };
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir => {}
            _ => return Err("must stay inside /work (no ..)".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names /work itself; name a file or directory in it".into());
    }
    Ok(out)
}

/// Copies `paths` out of /work into the artifacts directory, keeping their
/// place under /work (`dist/x.whl` → `<dir>/dist/x.whl`), one `artifact`
/// event each. Never fails the run: a path that cannot be copied is an
/// event with its error.
fn copy_artifacts(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    container: &RunContainer,
    job: Option<&str>,
    paths: &[String],
    req: &RunRequest,
    emitter: &Rc<RefCell<Emitter>>,
) {
    let Some(root) = req.artifacts_dir.as_deref() else { return };
    for path in paths {
        let copied = artifact_path(path).and_then(|rel| {
            let tar = rt
                .block_on(engine.download(container, &format!("/work/{}", rel.display())))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no such file or directory in /work".to_string())?;
            let into = root.join(rel.parent().unwrap_or(Path::new("")));
            std::fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
            let mut bytes = 0;
            let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
            for entry in archive.entries().map_err(|e| e.to_string())? {
                let mut entry = entry.map_err(|e| e.to_string())?;
                if entry.header().entry_type().is_file() {
                    bytes += entry.size();
                }
                entry.unpack_in(&into).map_err(|e| format!("cannot write into {}: {e}", into.display()))?;
            }
            Ok((root.join(&rel), bytes))
        });
        let kind = match copied {
            Ok((dest, bytes)) => EventKind::Artifact {
                path: path.clone(),
                dest: Some(dest.display().to_string()),
                bytes: Some(bytes),
                error: None,
            },
            Err(error) => EventKind::Artifact { path: path.clone(), dest: None, bytes: None, error: Some(error) },
        };
        emitter.borrow_mut().emit(job, kind);
    }
}

/// `sh` on top of the engine: one exec per call, output streamed to the
/// emitter as it arrives, a bounded copy kept for Lua.
struct EngineHost {
    rt: tokio::runtime::Handle,
    engine: Engine,
    container: RunContainer,
    emitter: Rc<RefCell<Emitter>>,
    counters: RefCell<HashMap<String, u32>>,
    cancel: Cancel,
}

impl ShHost for EngineHost {
    fn sh(&self, job: &str, request: ShRequest) -> Result<ShReply, Abort> {
        let n = {
            let mut c = self.counters.borrow_mut();
            let n = c.entry(job.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        if self.cancel.is_canceled() {
            return Err(Abort::Canceled(self.cancel.status_and_reason().1));
        }
        self.emitter.borrow_mut().emit(Some(job), EventKind::ShStart { n, cmd: request.cmd.clone() });
        let started = Instant::now();
        let spec = ExecSpec { argv: request.argv.clone(), env: request.env.clone(), cwd: request.cwd.clone() };
        let mut reply = ShReply::default();
        let result = {
            let emitter = self.emitter.clone();
            let reply = &mut reply;
            let on_output = move |stream: Stream, bytes: &[u8]| {
                emitter.borrow_mut().output(job, n, stream, bytes);
                let (buf, truncated) = match stream {
                    Stream::Stdout => (&mut reply.stdout, &mut reply.stdout_truncated),
                    Stream::Stderr => (&mut reply.stderr, &mut reply.stderr_truncated),
                };
                let room = SH_CAPTURE_LIMIT.saturating_sub(buf.len());
                if bytes.len() > room {
                    *truncated = true;
                }
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            };
            self.rt.block_on(async {
                tokio::select! {
                    r = self.engine.exec(&self.container, &spec, on_output) => Some(r),
                    _ = self.cancel.wait() => None,
                }
            })
        };
        self.emitter.borrow_mut().end_output(job, n);
        let duration_ms = started.elapsed().as_millis() as u64;
        let exit_event = |exit: i64, signal: Option<String>| EventKind::ShExit { n, exit, signal, duration_ms };
        match result {
            Some(Ok(o)) => {
                self.emitter.borrow_mut().emit(Some(job), exit_event(o.exit, o.signal.clone()));
                reply.exit = o.exit;
                Ok(reply)
            }
            Some(Err(EngineError::ContainerDied { reason, .. })) => {
                // Killed with its container (OOM, docker kill/rm -f): SIGKILL.
                // With the engine gone nobody knows how it ended: -1.
                let ev = if reason.starts_with("engine connection lost") {
                    exit_event(-1, None)
                } else {
                    exit_event(137, Some("SIGKILL".into()))
                };
                self.emitter.borrow_mut().emit(Some(job), ev);
                Err(Abort::ContainerDied(reason))
            }
            Some(Err(e @ EngineError::BadCwd { .. })) => {
                self.emitter.borrow_mut().emit(Some(job), exit_event(126, None));
                Err(Abort::Refused(e.to_string()))
            }
            Some(Err(e)) => {
                self.emitter.borrow_mut().emit(Some(job), exit_event(-1, None));
                Err(Abort::Engine(e.to_string()))
            }
            None => {
                // Canceled: the container is about to be removed, killing it.
                self.emitter.borrow_mut().emit(Some(job), exit_event(137, Some("SIGKILL".into())));
                Err(Abort::Canceled(self.cancel.status_and_reason().1))
            }
        }
    }
}

/// The run record as an event sink. A write failure is reported once; the
/// run goes on (the terminal still shows it).
struct RecordSink {
    record: RunRecord,
    warned: bool,
}

impl EventSink for RecordSink {
    fn event(&mut self, ev: &crate::events::Event) {
        if ev.kind.is_transient() {
            return;
        }
        if let Err(e) = self.record.record(ev) {
            if !self.warned {
                eprintln!("quire-ci: warning: cannot write the run record in {}: {e}", self.record.dir().display());
                self.warned = true;
            }
        }
    }
}
