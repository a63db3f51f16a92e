//! The executor: one run of a pipeline, from snapshot to teardown
//! (DESIGN.md §4). It strings the rooms together — snapshot, pipeline,
//! engine, runtime — and says everything it does as events through the
//! emitter: the command layer gets a [`RunOutcome`] (run id, status, the
//! error to print) and nothing else.
//!
//! Rooms: [`request`] (what is asked), [`prepare`] (snapshot, evaluation,
//! job selection, the cache lookup), [`image`] (which image, pull, build),
//! [`link`] (the engine connection), [`container`] (the run container's
//! lifetime), [`remover`] (its removal, detached), [`scheduler`] (which job
//! runs when), [`bridge`] (`sh` → exec), [`artifacts`], [`sink`] (the
//! record), [`outcome`], [`phase`] (the steps' `phase` events), [`warm`]
//! (the container `watch` keeps ready).

mod artifacts;
mod bridge;
mod container;
mod image;
mod link;
mod outcome;
mod phase;
mod prepare;
pub mod remover;
mod request;
pub mod scheduler;
mod sink;
mod upload;
mod warm;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

pub use crate::cancel::{Cancel, Stop};
pub use image::{dockerfile_tag, map_dockerfile, map_image};
pub use outcome::{RunError, RunOutcome, UserError};
pub use prepare::select_jobs;
pub use request::{cache_volume_name, effective_parallel, FailedJob, OnJobFailed, PushedCommit, RunRequest};
pub use warm::Warm;

use crate::cache::CacheKey;
use crate::emitter::Emitter;
use crate::events::{EventKind, Level, RunStatus};
use crate::pipeline::{Invalid, Pipeline};
use crate::record::{self, RunMeta, RunRecord};
use crate::redact::Redactor;
use container::{Lease, NotReady};
use link::EngineLink;
use phase::Phase;
use prepare::Prepared;
use sink::{RecordSink, WriteError};

/// The image used when neither ci.fnl, `.quire/Dockerfile`, `--image` nor
/// `QUIRE_CI_IMAGE` names one.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// How many last lines of a failure are shown by default (`--excerpt-lines`).
pub const DEFAULT_EXCERPT_LINES: usize = 15;

/// How many runs are kept per repository; older ones are pruned.
pub const KEEP_RUNS: usize = 50;

type Events = Rc<RefCell<Emitter>>;

/// Runs a pipeline. Blocks the calling thread (which must not be a tokio
/// worker); engine calls go through `rt`.
pub fn execute(rt: &tokio::runtime::Handle, mut req: RunRequest) -> RunOutcome {
    let started = Instant::now();
    // The engine is reached (and leftovers of dead quire-ci processes reaped)
    // on the runtime while the snapshot and the compile happen here.
    let mut link = EngineLink::start(rt, req.verbose);
    let mut emitter = Emitter::new(Redactor::new(req.secrets.values().cloned().collect()));
    for s in req.sinks.drain(..) {
        emitter.add_sink(s);
    }
    let events: Events = Rc::new(RefCell::new(emitter));
    let prep = match Prepared::take(&req, &events) {
        Ok(p) => p,
        Err(e) => return unrecorded(RunError::Usage(e)),
    };
    // The result cache, checked before any record or container exists: a
    // hit costs the snapshot, the compile and one engine call (image id).
    // The engine is waited for here (not only when the cache is asked): the
    // notices of its connection (reaped leftovers) go with `run-start`.
    let engine = link.get(rt, &events).ok();
    if let Some(green) = prep.cached_green(rt, engine, &req) {
        events.borrow_mut().emit(None, EventKind::CacheHit { run_id: green.clone(), tree: prep.tree.clone() });
        return RunOutcome {
            dir: Some(prep.runs_dir.join(&green)),
            run_id: Some(green),
            status: RunStatus::Succeeded,
            error: None,
        };
    }
    let selected = match prep.selected(&req) {
        Ok(s) => s,
        Err(e) => return unrecorded(RunError::Usage(e)),
    };
    let run = match Run::begin(rt, &req, &prep, &events) {
        Ok(run) => run,
        Err(e) => return unrecorded(RunError::Infra(e)),
    };
    run.start_event(&prep, &selected, link.take_notices(rt));
    let mut outcome = run.go(&mut link, &mut req, prep, selected);
    run.notices(link.rest(rt));
    outcome.status = run.end(&outcome, started);
    outcome
}

/// A run that never got a record: nothing was emitted but what led here.
fn unrecorded(error: RunError) -> RunOutcome {
    RunOutcome { run_id: None, dir: None, status: RunStatus::Error, error: Some(error) }
}

/// A run with a record: its id and directory, and where its events go.
struct Run<'r> {
    rt: &'r tokio::runtime::Handle,
    run_id: String,
    dir: PathBuf,
    events: Events,
    record_error: WriteError,
    cancel: Cancel,
}

impl<'r> Run<'r> {
    /// Creates the record (meta.json) and puts it among the sinks.
    fn begin(
        rt: &'r tokio::runtime::Handle,
        req: &RunRequest,
        prep: &Prepared,
        events: &Events,
    ) -> Result<Run<'r>, UserError> {
        let run_id = record::new_run_id();
        let dir = prep.runs_dir.join(&run_id);
        let declared_image = prep.evaluated.as_ref().ok().and_then(|p| p.image.as_ref().map(|i| i.name.clone()));
        let meta = RunMeta {
            run_id: run_id.clone(),
            repo: req.repo_dir.clone(),
            git_ref: prep.git_ref.clone(),
            sha: prep.facts.sha.clone(),
            tree: prep.tree.clone(),
            dirty: prep.snapshot.dirty(),
            image: declared_image,
            ci_fnl_hash: prep.ci_hash(),
            quire_ci_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: record::now_ts(),
            pid: std::process::id(),
            extra: [("jobs".to_string(), serde_json::Value::from(effective_parallel(req.parallel)))]
                .into_iter()
                .collect(),
        };
        let record = RunRecord::create(&dir, &meta).map_err(|e| {
            let u = UserError::from_diagnostic(&e, Some("cannot create the run record"));
            match u.help {
                Some(_) => u,
                None => u.help("check that the runs directory (--out, default <git-dir>/quire-ci/runs) is writable and its disk has room"),
            }
        })?;
        let (sink, record_error) = RecordSink::start(record);
        events.borrow_mut().add_sink(Box::new(sink));
        Ok(Run { rt, run_id, dir, events: events.clone(), record_error, cancel: req.cancel.clone() })
    }

    fn start_event(&self, prep: &Prepared, selected: &[String], link_notices: Vec<EventKind>) {
        let kind = EventKind::RunStart {
            run_id: self.run_id.clone(),
            git_ref: prep.git_ref.clone(),
            sha: prep.facts.sha.clone(),
            tree: prep.tree.clone(),
            dirty: prep.snapshot.dirty(),
            jobs: selected.to_vec(),
            dir: Some(self.dir.display().to_string()),
        };
        let mut e = self.events.borrow_mut();
        e.emit(None, kind);
        for n in link_notices.into_iter().chain(prep.notices.iter().cloned()) {
            e.emit(None, n);
        }
    }

    /// Notices that came in the course of the run (the reaping's, late).
    fn notices(&self, notices: Vec<EventKind>) {
        let mut e = self.events.borrow_mut();
        for n in notices {
            e.emit(None, n);
        }
    }

    fn outcome(&self, status: RunStatus, error: Option<RunError>) -> RunOutcome {
        RunOutcome { run_id: Some(self.run_id.clone()), dir: Some(self.dir.clone()), status, error }
    }

    /// Evaluation, the engine, the image, the container, the jobs.
    fn go(&self, link: &mut EngineLink, req: &mut RunRequest, prep: Prepared, selected: Vec<String>) -> RunOutcome {
        let pipeline = match prep.evaluated {
            Ok(ref p) => p,
            Err(Invalid { ref problems, ref sources }) => {
                self.problems(problems);
                return self.outcome(
                    RunStatus::Error,
                    Some(RunError::Invalid { problems: problems.clone(), sources: sources.clone() }),
                );
            }
        };
        if req.artifacts_dir.is_none() {
            req.artifacts_dir = Some(self.dir.join("artifacts"));
        }
        let engine = match link.get(self.rt, &self.events) {
            Ok(e) => e,
            Err(e) => return self.failed(e),
        };
        if self.cancel.is_canceled() {
            return self.outcome(self.cancel.status_and_reason().0, None);
        }
        let phase = Phase::start(&self.events, "image");
        let image = image::resolve_image(self.rt, &engine, req, pipeline, &prep.snapshot, &self.events);
        phase.end(&self.events);
        let image = match image {
            Ok(i) => i,
            Err(e) => return self.failed(e),
        };
        // The image's id, for the result cache, looked up while the run goes
        // on rather than after its last job.
        let image_id = self.rt.spawn({
            let (engine, image) = (engine.clone(), image.clone());
            async move { engine.image_id(&image).await.ok().flatten() }
        });
        let phase = Phase::start(&self.events, "create");
        let lease = Lease::create(self.rt, &engine, req, &image, &self.run_id);
        phase.end(&self.events);
        let lease = match lease {
            Ok(l) => l,
            Err(e) => return self.failed(e),
        };
        let outcome = self.in_container(&lease, req, &prep, pipeline, &selected);
        container::container_end(&self.events, outcome.status);
        lease.remove(&self.events);
        let phase = Phase::start(&self.events, "record");
        if outcome.status == RunStatus::Succeeded {
            self.store_green(image_id, &prep);
        }
        self.housekeeping(&prep, req.keep_runs);
        phase.end(&self.events);
        outcome
    }

    /// What happens while the container lives: the snapshot goes in, the
    /// jobs run, `--artifact`s come out.
    fn in_container(
        &self,
        lease: &Lease,
        req: &mut RunRequest,
        prep: &Prepared,
        pipeline: &Pipeline,
        selected: &[String],
    ) -> RunOutcome {
        match lease.fill(req, &prep.snapshot, &prep.git_ref, &self.run_id, &self.events) {
            Ok(()) => {}
            Err(NotReady::Canceled) => return self.outcome(self.cancel.status_and_reason().0, None),
            Err(NotReady::Failed(e)) => return self.failed(e),
        }
        let phase = Phase::start(&self.events, "jobs");
        let settled = self.schedule(lease, req, prep, pipeline, selected);
        phase.end(&self.events);
        let settled = match settled {
            Ok(s) => s,
            Err(e) => return self.failed(e),
        };
        if settled.status == RunStatus::Succeeded && !self.cancel.is_canceled() && !req.artifacts.is_empty() {
            let phase = Phase::start(&self.events, "artifacts");
            let root = req.artifacts_dir.clone();
            self.rt.block_on(artifacts::copy_artifacts(
                &lease.engine,
                &lease.container,
                None,
                &req.artifacts,
                root.as_deref(),
                &self.events,
            ));
            phase.end(&self.events);
        }
        let error = settled.error.map(|m| RunError::Infra(UserError::new("quire_ci::executor::stopped", m)));
        self.outcome(settled.status, error)
    }

    fn schedule(
        &self,
        lease: &Lease,
        req: &mut RunRequest,
        prep: &Prepared,
        pipeline: &Pipeline,
        selected: &[String],
    ) -> Result<scheduler::Settled, UserError> {
        let push = prepare::push_table(
            &pipeline.lua,
            &prep.facts,
            &prep.git_ref,
            req.git_ref.is_some(),
            &prep.tree,
            prep.snapshot.dirty(),
            req.event.as_ref(),
        )
        .map_err(|e| {
            UserError::new("quire_ci::executor::push_table", format!("cannot build the :quire/push table: {e}"))
        })?;
        let host = Rc::new(bridge::EngineHost {
            engine: lease.engine.clone(),
            container: lease.container.clone(),
            emitter: self.events.clone(),
            counters: Default::default(),
            artifacts_dir: req.artifacts_dir.clone(),
            on_job_failed: req.on_job_failed.take().map(Rc::new),
        });
        let schedule = scheduler::Schedule {
            pipeline,
            selected,
            skip: &req.skip,
            parallel: effective_parallel(req.parallel),
            fail_fast: req.fail_fast,
            in_hook: req.in_hook,
            cancel: &req.cancel,
            secrets: Rc::new(req.secrets.clone()),
            push,
        };
        Ok(self.rt.block_on(scheduler::run(&schedule, host, &self.events)))
    }

    /// The run stops on an error the user must read.
    fn failed(&self, e: UserError) -> RunOutcome {
        if self.cancel.is_canceled() {
            // A failure caused by tearing down is the cancel, not a failure.
            return self.outcome(self.cancel.status_and_reason().0, None);
        }
        self.outcome(RunStatus::Error, Some(RunError::Infra(e)))
    }

    fn problems(&self, problems: &[crate::diagnostic::Problem]) {
        let mut e = self.events.borrow_mut();
        for p in problems {
            let kind = EventKind::Problem {
                code: p.code.as_str().to_string(),
                message: p.message.clone(),
                file: p.location.as_ref().map(|l| l.file.clone()),
                line: p.location.as_ref().map(|l| l.line as u32),
                // Columns count from 1 in the record, as lines do.
                column: p.location.as_ref().and_then(|l| l.columns).map(|(c, _)| c as u32 + 1),
                help: p.help.clone(),
            };
            e.emit(None, kind);
        }
    }

    /// Stores a green run in the result cache, under the id of the image
    /// it ran in (looked up once the image was there: it may have been
    /// pulled or built by this very run). A run interrupted meanwhile is
    /// not green.
    fn store_green(&self, image_id: tokio::task::JoinHandle<Option<String>>, prep: &Prepared) {
        let image_id = self.rt.block_on(image_id).ok().flatten();
        if self.cancel.is_canceled() {
            return;
        }
        let (Some(key), Some(image_id)) = (prep.partial_key.clone(), image_id) else {
            return;
        };
        if let Err(e) = prep.result_cache.store(&CacheKey { image_id, ..key }, &self.run_id) {
            self.warn("cache-store-failed", format!("cannot record the green run in the result cache: {e}"));
        }
    }

    /// Old runs pruned, and cache entries whose record went with them.
    fn housekeeping(&self, prep: &Prepared, keep_runs: usize) {
        if let Err(e) = record::prune(&prep.runs_dir, keep_runs.max(1)) {
            self.warn("prune-failed", format!("pruning old runs in {}: {e}", prep.runs_dir.display()));
        }
        // Cache entries vouch for a run by its record: drop those whose record went.
        if let Err(e) = prep.result_cache.retain(|id| prep.runs_dir.join(id).is_dir()) {
            self.warn("prune-failed", format!("pruning the result cache: {e}"));
        }
    }

    fn warn(&self, code: &str, message: String) {
        let kind = EventKind::Notice { level: Level::Warning, code: code.into(), message, help: None };
        self.events.borrow_mut().emit(None, kind);
    }

    /// `run-end`, then the sinks finish. A run interrupted before its end
    /// (even in its teardown, after its last job passed) is not green.
    fn end(&self, outcome: &RunOutcome, started: Instant) -> RunStatus {
        if let Some(e) = self.record_error.take() {
            self.warn("record-write-failed", e);
        }
        // An infrastructure error carries its code and help, so the one
        // place that shows run-end (the summary) shows the whole diagnostic.
        let (error, code, help) = match (&outcome.error, self.cancel.is_canceled()) {
            (_, true) => (Some(self.cancel.status_and_reason().1), None, None),
            (Some(RunError::Invalid { problems, .. }), _) => (Some(invalid_headline(problems)), None, None),
            (Some(RunError::Usage(e) | RunError::Infra(e)), _) => {
                (Some(e.one_line()), Some(e.code.clone()), e.help.clone())
            }
            (None, false) => (None, None, None),
        };
        let status = if self.cancel.is_canceled() { self.cancel.status_and_reason().0 } else { outcome.status };
        let mut e = self.events.borrow_mut();
        let duration_ms = started.elapsed().as_millis() as u64;
        e.emit(None, EventKind::RunEnd { status, duration_ms, error, code, help });
        e.finish();
        status
    }
}

/// `run-end`'s one line for an invalid ci.fnl (each problem is its own
/// `problem` event, with its message, place and help).
fn invalid_headline(problems: &[crate::diagnostic::Problem]) -> String {
    let file = problems.iter().find_map(|p| p.location.as_ref().map(|l| l.file.clone()));
    format!("{} is not valid", file.unwrap_or_else(|| crate::pipeline::CI_FNL.to_string()))
}
