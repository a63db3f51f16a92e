//! The scheduler: which job runs when. Every job whose inputs are settled
//! starts, up to `-j N` at once, in the pipeline's order (topological, ties
//! in declaration order); with N = 1 that is exactly one after another in
//! that order. A failure skips only its dependents; `--fail-fast` cancels
//! the running jobs instead; a run-level stop (Ctrl-C, SIGTERM, a
//! superseding change, the container dying) stops every running `sh`.
//!
//! All run-fns share the one Luau VM: each is a coroutine that yields while
//! it waits in `sh`, so one thread drives several `docker exec`s at once
//! (docs/sandbox.md).
//!
//! Owns: the job board (pending, running, settled), skip reasons, the run
//! status the jobs leave. Must not know about: the engine (it speaks to a
//! [`ShHost`] only), the terminal, the record.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use mlua::{Table, Value};

use crate::cancel::{Cancel, Stop};
use crate::emitter::Emitter;
use crate::events::{EventKind, Level, Outcome, RunStatus};
use crate::pipeline::Pipeline;
use crate::runtime::{self, Abort, CurrentJob, JobResult, RunInputs, SecretValues, ShHost};

/// What the scheduler is given: the jobs and how to run them.
pub struct Schedule<'a> {
    pub pipeline: &'a Pipeline,
    /// The jobs to run, in run order (see `select_jobs`).
    pub selected: &'a [String],
    /// Jobs never run here, with where the user said so.
    pub skip: &'a BTreeMap<String, String>,
    /// `-j N`, at least 1.
    pub parallel: usize,
    pub fail_fast: bool,
    /// Started by the pre-push hook (hints name the environment, not flags).
    pub in_hook: bool,
    pub cancel: &'a Cancel,
    pub secrets: SecretValues,
    /// The `:quire/push` table.
    pub push: Table,
}

/// How the jobs left the run: its status, and for an infrastructure
/// failure (the container died, the engine failed) its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub status: RunStatus,
    pub error: Option<String>,
}

/// Why a job is not available to its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Failed,
    DidNotRun,
}

/// A job that ran to its end: (id, result, duration in ms).
type Ended = (String, JobResult, u64);

/// The state of a run's jobs while they go.
struct Board<'s, 'a> {
    s: &'s Schedule<'a>,
    host: Rc<dyn ShHost>,
    emitter: Rc<RefCell<Emitter>>,
    pending: Vec<String>,
    running: HashMap<String, Cancel>,
    done: HashSet<String>,
    blocked: HashMap<String, Blocked>,
    inputs: Rc<RefCell<RunInputs>>,
    any_failed: bool,
    /// Set once no more jobs may start: the status and why.
    stop: Option<(RunStatus, String)>,
}

/// Runs the selected jobs. `host` runs their commands; events go to `emitter`.
pub async fn run(s: &Schedule<'_>, host: Rc<dyn ShHost>, emitter: &Rc<RefCell<Emitter>>) -> Settled {
    s.pipeline.clock.watch_cancel(s.cancel.flag(), "the run was canceled");
    attribute_prints(s.pipeline, emitter);
    let mut board = Board {
        s,
        host,
        emitter: emitter.clone(),
        pending: s.selected.to_vec(),
        running: HashMap::new(),
        done: HashSet::new(),
        blocked: HashMap::new(),
        inputs: Rc::new(RefCell::new(RunInputs { push: s.push.clone(), outputs: HashMap::new() })),
        any_failed: false,
        stop: None,
    };
    let mut going = FuturesUnordered::new();
    loop {
        for started in board.start_ready() {
            going.push(started);
        }
        let Some((id, result, duration_ms)) = going.next().await else { break };
        board.settle(&id, result, duration_ms).await;
    }
    s.pipeline.set_print_sink(|_| {});
    board.settled()
}

/// `print` in a run-fn goes to the job whose coroutine is running.
fn attribute_prints(pipeline: &Pipeline, emitter: &Rc<RefCell<Emitter>>) {
    let lua = pipeline.lua.weak();
    let em = emitter.clone();
    pipeline.set_print_sink(move |line| {
        let job = lua.upgrade().app_data_ref::<CurrentJob>().map(|j| j.0.clone());
        match job {
            Some(job) => em.borrow_mut().emit(Some(&job), EventKind::Print { data: line }),
            None => em.borrow_mut().emit(
                None,
                EventKind::Notice { level: Level::Info, code: "print".into(), message: line, help: None },
            ),
        }
    });
}

impl<'s, 'a> Board<'s, 'a> {
    /// Settles every pending job that can be decided now (skips) and starts
    /// those whose inputs are settled, while there is room. With `-j 1`
    /// the first job that must wait holds up the rest: today's order.
    fn start_ready(&mut self) -> Vec<futures_util::future::LocalBoxFuture<'s, Ended>> {
        let mut started = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            if self.s.parallel == 1 && !self.running.is_empty() {
                break;
            }
            let id = self.pending[i].clone();
            if let Some(reason) = self.skip_reason(&id) {
                self.pending.remove(i);
                self.skipped(&id, reason);
                continue;
            }
            if self.inputs_settled(&id) && self.running.len() < self.s.parallel {
                self.pending.remove(i);
                started.push(self.start(id));
                continue;
            }
            if self.s.parallel == 1 {
                break;
            }
            i += 1;
        }
        started
    }

    /// Why `id` is not run, if that is decided already.
    fn skip_reason(&self, id: &str) -> Option<(String, Option<Blocked>)> {
        if let Some((_, why)) = &self.stop {
            return Some((format!("not run: {why}"), Some(Blocked::DidNotRun)));
        }
        if let Some(from) = self.s.skip.get(id) {
            return Some((format!("skipped by {from}"), None));
        }
        let job = self.s.pipeline.job(id)?;
        let (up, why) = job.inputs.iter().find_map(|i| self.blocked.get(i).map(|b| (i, *b)))?;
        let said = if why == Blocked::Failed { "failed" } else { "did not run" };
        Some((format!("skipped because :{up} {said}"), None))
    }

    fn inputs_settled(&self, id: &str) -> bool {
        let Some(job) = self.s.pipeline.job(id) else { return true };
        job.inputs.iter().filter(|i| self.s.pipeline.job(i).is_some()).all(|i| self.done.contains(i))
    }

    fn skipped(&mut self, id: &str, (reason, _): (String, Option<Blocked>)) {
        self.end_event(id, Outcome::Skipped, 0, Some(reason), None);
        self.blocked.insert(id.to_string(), Blocked::DidNotRun);
        self.done.insert(id.to_string());
        self.inputs.borrow_mut().outputs.insert(id.to_string(), Value::Nil);
    }

    fn start(&mut self, id: String) -> futures_util::future::LocalBoxFuture<'s, Ended> {
        self.emitter.borrow_mut().emit(Some(&id), EventKind::JobStart {});
        let stop = Stop { run: self.s.cancel.clone(), job: Cancel::default() };
        self.running.insert(id.clone(), stop.job.clone());
        let (s, host, inputs) = (self.s, self.host.clone(), self.inputs.clone());
        let pipeline = s.pipeline;
        let secrets = s.secrets.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = match pipeline.job(&id) {
                Some(job) => {
                    // What the job reads of its inputs is fixed when it starts.
                    let inputs = RunInputs { push: inputs.borrow().push.clone(), outputs: inputs.borrow().outputs.clone() };
                    runtime::run_job(pipeline, job, &inputs, &secrets, host, stop).await
                }
                None => unreachable_job(&id),
            };
            (id, result, started.elapsed().as_millis() as u64)
        })
    }

    /// A job ended: its `job-end`, what the host does after it, and what
    /// that means for the rest.
    async fn settle(&mut self, id: &str, result: JobResult, duration_ms: u64) {
        self.running.remove(id);
        self.done.insert(id.to_string());
        let reason = match (&result.reason, self.s.in_hook) {
            (Some(r), true) => Some(hook_secret_hint(r)),
            (r, _) => r.clone(),
        };
        let at = result.at.clone();
        self.end_event(id, result.outcome, duration_ms, reason, Some((at, result.outputs.clone())));
        if !self.s.cancel.is_canceled() {
            self.host.job_ended(id, &result).await;
        }
        if result.outcome == Outcome::Failed {
            self.any_failed = true;
            self.blocked.insert(id.to_string(), Blocked::Failed);
        }
        self.inputs.borrow_mut().outputs.insert(id.to_string(), result.value.clone());
        self.after(id, &result);
    }

    /// What a job's end means for the run: an abort or a cancel stops it;
    /// under `--fail-fast` a failure does.
    fn after(&mut self, id: &str, result: &JobResult) {
        let cancel = self.s.cancel;
        let stop = match &result.abort {
            Some(Abort::ContainerDied(reason)) if self.stop.is_none() => {
                self.emitter.borrow_mut().emit(None, EventKind::ContainerDied { reason: reason.clone() });
                Some((RunStatus::Error, format!("the container died ({reason})")))
            }
            Some(Abort::Engine(reason)) => Some((RunStatus::Error, format!("engine error: {reason}"))),
            _ if cancel.is_canceled() => Some(cancel.status_and_reason()),
            None if result.outcome == Outcome::Failed && self.s.fail_fast => {
                Some((RunStatus::Failed, format!(":{id} failed and --fail-fast is on")))
            }
            _ => None,
        };
        if let (Some(stop), None) = (stop, &self.stop) {
            for job in self.running.values() {
                job.cancel(RunStatus::Canceled, format!("canceled: {}", stop.1));
            }
            self.stop = Some(stop);
        }
    }

    fn end_event(
        &self,
        id: &str,
        outcome: Outcome,
        duration_ms: u64,
        reason: Option<String>,
        ran: Option<(Option<(String, u32)>, Option<serde_json::Value>)>,
    ) {
        let (at, outputs) = ran.unwrap_or_default();
        let kind = EventKind::JobEnd {
            outcome,
            duration_ms,
            reason,
            file: at.as_ref().map(|(f, _)| f.clone()),
            line: at.as_ref().map(|(_, l)| *l),
            outputs,
        };
        self.emitter.borrow_mut().emit(Some(id), kind);
    }

    fn settled(&self) -> Settled {
        match &self.stop {
            Some((RunStatus::Error, why)) => Settled { status: RunStatus::Error, error: Some(why.clone()) },
            Some((st, _)) => Settled { status: *st, error: None },
            None if self.any_failed => Settled { status: RunStatus::Failed, error: None },
            None => Settled { status: RunStatus::Succeeded, error: None },
        }
    }
}

fn unreachable_job(id: &str) -> JobResult {
    JobResult {
        outcome: Outcome::Failed,
        outputs: None,
        reason: Some(format!("no job :{id} in the pipeline")),
        at: None,
        abort: None,
        value: Value::Nil,
    }
}

/// The runtime's missing-secret message names `run`'s flags; in the pre-push
/// hook, which git starts without flags of ours, name what the hook reads.
pub fn hook_secret_hint(reason: &str) -> String {
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
