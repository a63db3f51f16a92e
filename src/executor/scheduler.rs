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

/// What a job that ran leaves in its `job-end`: where it failed, its outputs.
type JobFacts = (Option<(String, u32)>, Option<serde_json::Value>);

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
            None => em
                .borrow_mut()
                .emit(None, EventKind::Notice { level: Level::Info, code: "print".into(), message: line, help: None }),
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
                    let inputs =
                        RunInputs { push: inputs.borrow().push.clone(), outputs: inputs.borrow().outputs.clone() };
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
            // A run-level cancel reaches every running `sh` by itself.
            if !cancel.is_canceled() {
                for job in self.running.values() {
                    job.cancel(RunStatus::Canceled, format!("canceled: {}", stop.1));
                }
            }
            self.stop = Some(stop);
        }
    }

    fn end_event(&self, id: &str, outcome: Outcome, duration_ms: u64, reason: Option<String>, ran: Option<JobFacts>) {
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

#[cfg(test)]
mod tests {
    //! The scheduler against a fake `ShHost`: real Lua run-fns, commands
    //! that only yield, fail or wait to be stopped. Milliseconds, no engine.

    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};

    use super::*;
    use crate::emitter::EventSink;
    use crate::events::Event;
    use crate::pipeline::RepoFiles;
    use crate::runtime::{ShFuture, ShReply, ShRequest};

    struct CiFnl(String);

    impl RepoFiles for CiFnl {
        fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
            Ok((path == crate::pipeline::CI_FNL).then(|| self.0.clone().into_bytes()))
        }
    }

    /// Commands: `yield N` (gives way N times, exit 0), `fail` (exit 1),
    /// `hang` (until stopped). Logs `start job cmd` / `end job cmd`.
    struct FakeHost {
        log: Rc<RefCell<Vec<String>>>,
        /// Cancel the run once this many commands have started.
        cancel_after: Option<(usize, Cancel)>,
    }

    /// Pending `n` times (waking itself each time), then ready.
    struct GiveWay(u32);

    impl Future for GiveWay {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 == 0 {
                return Poll::Ready(());
            }
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl ShHost for FakeHost {
        fn sh(&self, job: &str, request: ShRequest, stop: &Stop) -> ShFuture {
            let cmd = request.argv.last().cloned().unwrap_or_default();
            let (log, stop, job) = (self.log.clone(), stop.clone(), job.to_string());
            log.borrow_mut().push(format!("start {job} {cmd}"));
            let started = log.borrow().iter().filter(|l| l.starts_with("start")).count();
            if let Some((n, cancel)) = &self.cancel_after {
                if started == *n {
                    cancel.cancel(RunStatus::Canceled, "canceled by SIGINT");
                }
            }
            Box::pin(async move {
                let exit = match cmd.split_whitespace().collect::<Vec<_>>()[..] {
                    ["yield", n] => {
                        GiveWay(n.parse().unwrap_or(1)).await;
                        0
                    }
                    ["fail"] => 1,
                    _ => {
                        let why = stop.wait().await;
                        log.borrow_mut().push(format!("stopped {job} {cmd}"));
                        return Err(Abort::Canceled(why));
                    }
                };
                log.borrow_mut().push(format!("end {job} {cmd}"));
                Ok(ShReply { exit, ..ShReply::default() })
            })
        }
    }

    #[derive(Clone, Default)]
    struct Seen(Rc<RefCell<Vec<Event>>>);

    impl EventSink for Seen {
        fn event(&mut self, ev: &Event) {
            self.0.borrow_mut().push(ev.clone());
        }
    }

    struct Ran {
        settled: Settled,
        log: Vec<String>,
        events: Vec<Event>,
    }

    impl Ran {
        /// (outcome, reason) of `job`'s `job-end`.
        fn end(&self, job: &str) -> (Outcome, String) {
            self.events
                .iter()
                .find_map(|e| match (&e.kind, e.job.as_deref()) {
                    (EventKind::JobEnd { outcome, reason, .. }, Some(j)) if j == job => {
                        Some((*outcome, reason.clone().unwrap_or_default()))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no job-end for {job}: {:?}", self.events))
        }

        fn at(&self, line: &str) -> usize {
            self.log.iter().position(|l| l == line).unwrap_or_else(|| panic!("no {line:?} in {:?}", self.log))
        }

        /// The jobs in the order their `job-start` (or skipping `job-end`) came.
        fn order(&self) -> Vec<String> {
            let mut seen = Vec::new();
            for e in &self.events {
                let first = matches!(e.kind, EventKind::JobStart {} | EventKind::JobEnd { .. });
                if let (true, Some(j)) = (first, &e.job) {
                    if !seen.contains(j) {
                        seen.push(j.clone());
                    }
                }
            }
            seen
        }
    }

    /// `jobs`: (id, inputs, command) — each run-fn runs its command and
    /// returns its exit as `:exit`.
    fn run_jobs(jobs: &[(&str, &str, &str)], parallel: usize, fail_fast: bool, cancel_after: Option<usize>) -> Ran {
        let mut src = String::from("(local ci (require :quire.ci))\n");
        for (id, inputs, cmd) in jobs {
            src.push_str(&format!(
                "(ci.job :{id} [:quire/push {inputs}] (fn [{{: sh}}] {{:exit (. (sh \"{cmd}\") :exit)}}))\n"
            ));
        }
        run_source(src, parallel, fail_fast, cancel_after)
    }

    fn run_source_with(src: String, parallel: usize, limits: crate::sandbox::Limits) -> Ran {
        run_limited(src, parallel, false, None, limits)
    }

    fn run_source(src: String, parallel: usize, fail_fast: bool, cancel_after: Option<usize>) -> Ran {
        run_limited(src, parallel, fail_fast, cancel_after, crate::sandbox::Limits::default())
    }

    fn run_limited(
        src: String,
        parallel: usize,
        fail_fast: bool,
        cancel_after: Option<usize>,
        limits: crate::sandbox::Limits,
    ) -> Ran {
        let pipeline =
            crate::pipeline::evaluate(Rc::new(CiFnl(src)), limits).unwrap_or_else(|e| panic!("{:?}", e.problems));
        let selected: Vec<String> = pipeline.jobs.iter().map(|j| j.id.clone()).collect();
        let cancel = Cancel::default();
        let log = Rc::new(RefCell::new(Vec::new()));
        let host = Rc::new(FakeHost { log: log.clone(), cancel_after: cancel_after.map(|n| (n, cancel.clone())) });
        let seen = Seen::default();
        let mut emitter = Emitter::new(crate::redact::Redactor::new(vec![]));
        emitter.add_sink(Box::new(seen.clone()));
        let emitter = Rc::new(RefCell::new(emitter));
        let skip = BTreeMap::new();
        let schedule = Schedule {
            pipeline: &pipeline,
            selected: &selected,
            skip: &skip,
            parallel,
            fail_fast,
            in_hook: false,
            cancel: &cancel,
            secrets: Rc::new(BTreeMap::new()),
            push: pipeline.lua.create_table().expect("table"),
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let settled = rt.block_on(run(&schedule, host, &emitter));
        let events = seen.0.borrow().clone();
        let log = log.borrow().clone();
        Ran { settled, log, events }
    }

    #[test]
    fn one_at_a_time_runs_in_declaration_order_each_to_its_end() {
        let r = run_jobs(&[("a", "", "yield 3"), ("b", "", "yield 1"), ("c", ":a", "yield 2")], 1, false, None);
        assert_eq!(r.settled, Settled { status: RunStatus::Succeeded, error: None });
        assert_eq!(
            r.log,
            [
                "start a yield 3",
                "end a yield 3",
                "start b yield 1",
                "end b yield 1",
                "start c yield 2",
                "end c yield 2"
            ]
        );
    }

    #[test]
    fn two_at_once_overlap_and_a_join_waits_for_both_inputs() {
        let r = run_jobs(&[("a", "", "yield 3"), ("b", "", "yield 1"), ("c", ":a :b", "yield 1")], 2, false, None);
        assert_eq!(r.settled.status, RunStatus::Succeeded);
        // b started before a ended: they overlapped.
        assert!(r.at("start b yield 1") < r.at("end a yield 3"), "{:?}", r.log);
        assert!(r.at("start c yield 1") > r.at("end a yield 3"), "{:?}", r.log);
        assert!(r.at("start c yield 1") > r.at("end b yield 1"), "{:?}", r.log);
    }

    #[test]
    fn at_most_n_run_at_once() {
        let jobs = [("a", "", "yield 4"), ("b", "", "yield 4"), ("c", "", "yield 4"), ("d", "", "yield 4")];
        let r = run_jobs(&jobs, 2, false, None);
        let mut running = 0usize;
        let mut most = 0;
        for l in &r.log {
            running = if l.starts_with("start") { running + 1 } else { running - 1 };
            most = most.max(running);
        }
        assert_eq!(most, 2, "{:?}", r.log);
        assert_eq!(r.order(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_failure_skips_only_its_dependents_and_running_jobs_go_on() {
        let jobs = [("a", "", "fail"), ("b", "", "yield 5"), ("c", ":a", "yield 1"), ("d", ":b", "yield 1")];
        let r = run_jobs(&jobs, 2, false, None);
        assert_eq!(r.settled, Settled { status: RunStatus::Failed, error: None });
        assert_eq!(r.end("a").0, Outcome::Failed);
        assert_eq!(r.end("b").0, Outcome::Succeeded);
        assert_eq!(r.end("c"), (Outcome::Skipped, "skipped because :a failed".into()));
        assert_eq!(r.end("d").0, Outcome::Succeeded);
    }

    #[test]
    fn one_at_a_time_a_skip_comes_in_run_order_after_the_jobs_before_it() {
        let r = run_jobs(&[("a", "", "fail"), ("b", "", "yield 2"), ("c", ":a", "yield 1")], 1, false, None);
        assert_eq!(r.order(), ["a", "b", "c"]);
        assert_eq!(r.end("c"), (Outcome::Skipped, "skipped because :a failed".into()));
    }

    #[test]
    fn fail_fast_cancels_the_running_jobs_and_starts_no_more() {
        let jobs = [("a", "", "hang"), ("b", "", "yield 2"), ("c", "", "hang"), ("d", "", "yield 1")];
        // b's `fail` would be instant; make it fail after a and c started.
        let jobs = [jobs[0], ("b", "", "fail"), jobs[2], jobs[3]];
        let r = run_jobs(&jobs, 3, true, None);
        assert_eq!(r.settled, Settled { status: RunStatus::Failed, error: None });
        assert_eq!(r.end("b").0, Outcome::Failed);
        for job in ["a", "c"] {
            let (outcome, reason) = r.end(job);
            assert_eq!(outcome, Outcome::Canceled, "{job}");
            assert!(reason.contains(":b failed") && reason.contains("--fail-fast"), "{job}: {reason}");
        }
        let (outcome, reason) = r.end("d");
        assert_eq!(outcome, Outcome::Skipped);
        assert!(reason.starts_with("not run: :b failed"), "{reason}");
        assert!(!r.log.iter().any(|l| l.contains(" d ")), "d must not start: {:?}", r.log);
    }

    #[test]
    fn without_fail_fast_a_failure_leaves_running_jobs_alone() {
        let r = run_jobs(&[("a", "", "yield 4"), ("b", "", "fail")], 2, false, None);
        assert_eq!(r.end("a").0, Outcome::Succeeded);
        assert_eq!(r.settled.status, RunStatus::Failed);
    }

    #[test]
    fn sh_yields_through_pcall_and_each_run_fn_keeps_its_own_budget() {
        let src = r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push] (fn [{: sh}] (let [(ok r) (pcall sh "yield 3")] {:exit (if ok r.exit 9)})))
(ci.job :b [:quire/push] (fn [{: sh}] (let [(ok r) (xpcall sh debug.traceback "yield 1")] {:exit (if ok r.exit 9)})))
"#;
        let r = run_source(src.replace("debug.traceback", "(fn [e] e)"), 2, false, None);
        assert_eq!(r.settled.status, RunStatus::Succeeded, "{:?}", r.events);
        assert!(r.at("start b yield 1") < r.at("end a yield 3"), "{:?}", r.log);
    }

    #[test]
    fn a_run_fn_over_its_lua_budget_fails_alone() {
        let src = r#"(local ci (require :quire.ci))
(ci.job :spin [:quire/push] (fn [{: sh}] (sh "yield 1") (while true nil) {}))
(ci.job :calm [:quire/push] (fn [{: sh}] (sh "yield 3") (sh "yield 3") {}))
"#;
        let pipeline_limits = crate::sandbox::Limits {
            run_fn_budget: std::time::Duration::from_millis(50),
            ..crate::sandbox::Limits::default()
        };
        let r = run_source_with(src.to_string(), 2, pipeline_limits);
        let (outcome, reason) = r.end("spin");
        assert_eq!(outcome, Outcome::Failed);
        assert!(reason.contains("Lua time"), "{reason}");
        assert_eq!(r.end("calm").0, Outcome::Succeeded, "{:?}", r.events);
    }

    #[test]
    fn a_run_cancel_stops_every_running_command() {
        let jobs = [("a", "", "hang"), ("b", "", "hang"), ("c", "", "hang"), ("d", ":a", "yield 1")];
        let r = run_jobs(&jobs, 3, false, Some(3));
        assert_eq!(r.settled, Settled { status: RunStatus::Canceled, error: None });
        for job in ["a", "b", "c"] {
            assert_eq!(r.end(job), (Outcome::Canceled, "canceled by SIGINT".into()), "{job}");
            assert!(r.log.contains(&format!("stopped {job} hang")), "{:?}", r.log);
        }
        assert_eq!(r.end("d"), (Outcome::Skipped, "not run: canceled by SIGINT".into()));
    }
}
