//! The `sh` → exec bridge: a run-fn's `sh` as one `docker exec` into the
//! run's container, its output streamed to the emitter as it arrives and a
//! bounded copy kept for Lua. Several run at once when jobs do.
//!
//! Owns: `EngineHost` (the engine's `ShHost`), the per-job `sh` counters,
//! what happens after a job (artifacts, `--shell-on-failure`). Must not
//! know about: scheduling, which job runs when.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use futures_util::future::LocalBoxFuture;

use super::artifacts::{copy_artifacts, declared_artifacts};
use super::request::{FailedJob, OnJobFailed};
use crate::cancel::Stop;
use crate::emitter::Emitter;
use crate::engine::{Engine, EngineError, ExecSpec, RunContainer};
use crate::events::{EventKind, Outcome, Stream};
use crate::runtime::{Abort, JobResult, ShFuture, ShHost, ShReply, ShRequest, SH_CAPTURE_LIMIT};

/// `sh` on top of the engine.
pub(super) struct EngineHost {
    pub engine: Engine,
    pub container: RunContainer,
    pub emitter: Rc<RefCell<Emitter>>,
    pub counters: RefCell<HashMap<String, u32>>,
    pub artifacts_dir: Option<PathBuf>,
    pub on_job_failed: Option<Rc<OnJobFailed>>,
}

impl EngineHost {
    fn next_n(&self, job: &str) -> u32 {
        let mut c = self.counters.borrow_mut();
        let n = c.entry(job.to_string()).or_insert(0);
        *n += 1;
        *n
    }
}

impl ShHost for EngineHost {
    fn sh(&self, job: &str, request: ShRequest, stop: &Stop) -> ShFuture {
        let n = self.next_n(job);
        let (engine, container, emitter, stop, job) =
            (self.engine.clone(), self.container.clone(), self.emitter.clone(), stop.clone(), job.to_string());
        Box::pin(async move {
            if let Some(reason) = stop.reason() {
                return Err(Abort::Canceled(reason));
            }
            emitter.borrow_mut().emit(Some(&job), EventKind::ShStart { n, cmd: request.cmd.clone() });
            let started = Instant::now();
            let spec = ExecSpec { argv: request.argv, env: request.env, cwd: request.cwd };
            let mut reply = ShReply::default();
            let result = {
                let on_output = |stream: Stream, bytes: &[u8]| {
                    emitter.borrow_mut().output(&job, n, stream, bytes);
                    keep(&mut reply, stream, bytes);
                };
                tokio::select! {
                    r = engine.exec(&container, &spec, on_output) => Ok(r),
                    reason = stop.wait() => Err(reason),
                }
            };
            emitter.borrow_mut().end_output(&job, n);
            let exit = Exit { emitter: &emitter, job: &job, n, duration_ms: started.elapsed().as_millis() as u64 };
            exit.settle(result, reply)
        })
    }

    fn job_ended(&self, job: &str, result: &JobResult) -> LocalBoxFuture<'static, ()> {
        let (engine, container, emitter) = (self.engine.clone(), self.container.clone(), self.emitter.clone());
        let (job, root, hook) = (job.to_string(), self.artifacts_dir.clone(), self.on_job_failed.clone());
        let cut_off = result.abort.is_some();
        let failed = result.outcome == Outcome::Failed && !cut_off;
        let declared = declared_artifacts(result.outputs.as_ref());
        Box::pin(async move {
            if cut_off {
                return;
            }
            copy_artifacts(&engine, &container, Some(&job), &declared, root.as_deref(), &emitter).await;
            if let (true, Some(hook)) = (failed, hook) {
                hook(&FailedJob {
                    job: job.clone(),
                    container: container.name.clone(),
                    endpoint: engine.endpoint().to_string(),
                    docker_args: engine.chosen().docker_args(),
                });
            }
        })
    }
}

/// Keeps up to [`SH_CAPTURE_LIMIT`] of each stream for Lua.
fn keep(reply: &mut ShReply, stream: Stream, bytes: &[u8]) {
    let (buf, truncated) = match stream {
        Stream::Stdout => (&mut reply.stdout, &mut reply.stdout_truncated),
        Stream::Stderr => (&mut reply.stderr, &mut reply.stderr_truncated),
    };
    let room = SH_CAPTURE_LIMIT.saturating_sub(buf.len());
    if bytes.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// How one `sh` ended, as its `sh-exit` event and what Lua gets.
struct Exit<'a> {
    emitter: &'a Rc<RefCell<Emitter>>,
    job: &'a str,
    n: u32,
    duration_ms: u64,
}

impl Exit<'_> {
    fn emit(&self, exit: i64, signal: Option<String>) {
        let kind = EventKind::ShExit { n: self.n, exit, signal, duration_ms: self.duration_ms };
        self.emitter.borrow_mut().emit(Some(self.job), kind);
    }

    fn settle(
        &self,
        result: Result<Result<crate::engine::ExecOutcome, EngineError>, String>,
        mut reply: ShReply,
    ) -> Result<ShReply, Abort> {
        match result {
            Ok(Ok(o)) => {
                self.emit(o.exit, o.signal.clone());
                reply.exit = o.exit;
                Ok(reply)
            }
            Ok(Err(EngineError::ContainerDied { reason, .. })) => {
                // Killed with its container (OOM, docker kill/rm -f): SIGKILL.
                // With the engine gone nobody knows how it ended: -1.
                if reason.starts_with("engine connection lost") {
                    self.emit(-1, None);
                } else {
                    self.emit(137, Some("SIGKILL".into()));
                }
                Err(Abort::ContainerDied(reason))
            }
            Ok(Err(e @ EngineError::BadCwd { .. })) => {
                self.emit(126, None);
                Err(Abort::Refused(e.to_string()))
            }
            Ok(Err(e)) => {
                self.emit(-1, None);
                Err(Abort::Engine(e.to_string()))
            }
            Err(reason) => {
                // Stopped: the exec is dropped, and its processes die with
                // the container (removed when the run ends).
                self.emit(137, Some("SIGKILL".into()));
                Err(Abort::Canceled(reason))
            }
        }
    }
}
