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
            let mut captured = Captured::default();
            let result = {
                let on_output = |stream: Stream, bytes: &[u8]| {
                    emitter.borrow_mut().output(&job, n, stream, bytes);
                    captured.keep(stream, bytes);
                };
                tokio::select! {
                    r = engine.exec(&container, &spec, on_output) => Ok(r),
                    reason = stop.wait() => Err(reason),
                }
            };
            emitter.borrow_mut().end_output(&job, n);
            let exit = Exit { emitter: &emitter, job: &job, n, duration_ms: started.elapsed().as_millis() as u64 };
            exit.settle(result, captured.into_reply())
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

/// What of one stream is kept for Lua: up to [`SH_CAPTURE_LIMIT`], the
/// first [`CAPTURE_IN_MEMORY`] bytes in memory and the rest in an unlinked
/// temporary file until the command exits, so jobs streaming large outputs
/// at once do not each hold 4 MiB while they run. (Without a temporary
/// directory it all stays in memory, as before.)
#[derive(Default)]
struct Capture {
    mem: Vec<u8>,
    spill: Option<std::fs::File>,
    spilled: usize,
    truncated: bool,
}

/// How much of a stream's capture stays in memory while the command runs.
const CAPTURE_IN_MEMORY: usize = 64 * 1024;

impl Capture {
    fn keep(&mut self, bytes: &[u8]) {
        let room = SH_CAPTURE_LIMIT.saturating_sub(self.mem.len() + self.spilled);
        if bytes.len() > room {
            self.truncated = true;
        }
        let mut bytes = &bytes[..bytes.len().min(room)];
        if self.spill.is_none() {
            let fits = bytes.len().min(CAPTURE_IN_MEMORY.saturating_sub(self.mem.len()));
            self.mem.extend_from_slice(&bytes[..fits]);
            bytes = &bytes[fits..];
            if bytes.is_empty() {
                return;
            }
            self.spill = spill_file();
        }
        let written = self.spill.as_mut().is_some_and(|f| std::io::Write::write_all(f, bytes).is_ok());
        if written {
            self.spilled += bytes.len();
        } else {
            self.unspill();
            self.mem.extend_from_slice(bytes);
        }
    }

    /// Everything kept, back in memory (the file, if any, is closed).
    fn unspill(&mut self) {
        use std::io::{Read, Seek};
        let Some(mut f) = self.spill.take() else { return };
        self.mem.reserve_exact(self.spilled);
        let ok = f.rewind().is_ok() && f.take(self.spilled as u64).read_to_end(&mut self.mem).is_ok();
        if !ok {
            // The bytes are lost (the log keeps them all): say it was cut.
            self.truncated = true;
        }
        self.spilled = 0;
    }

    fn into_parts(mut self) -> (Vec<u8>, bool) {
        self.unspill();
        (self.mem, self.truncated)
    }
}

/// A new temporary file, already unlinked (it goes with its handle).
fn spill_file() -> Option<std::fs::File> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(".quire-ci-capture-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(file)
}

/// The captures of a command's two streams.
#[derive(Default)]
struct Captured {
    stdout: Capture,
    stderr: Capture,
}

impl Captured {
    fn keep(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.keep(bytes),
            Stream::Stderr => self.stderr.keep(bytes),
        }
    }

    fn into_reply(self) -> ShReply {
        let (stdout, stdout_truncated) = self.stdout.into_parts();
        let (stderr, stderr_truncated) = self.stderr.into_parts();
        ShReply { exit: 0, stdout, stderr, stdout_truncated, stderr_truncated }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the chunking, Lua gets the first SH_CAPTURE_LIMIT bytes of
    /// the stream exactly, `truncated` when there were more, and while the
    /// command runs no more than CAPTURE_IN_MEMORY of them are in memory.
    #[test]
    fn the_capture_keeps_the_first_bytes_and_spills_the_rest() {
        let whole: Vec<u8> = (0..SH_CAPTURE_LIMIT + 300_000).map(|i| (i * 7 % 251) as u8).collect();
        for (limit, chunk) in
            [(1000, 7), (CAPTURE_IN_MEMORY + 5, 4096), (SH_CAPTURE_LIMIT, 65_536), (whole.len(), 100_003)]
        {
            let mut c = Capture::default();
            for piece in whole[..limit].chunks(chunk) {
                c.keep(piece);
                assert!(c.mem.len() <= CAPTURE_IN_MEMORY || c.spill.is_none());
            }
            let spilled = c.spill.is_some();
            let (kept, truncated) = c.into_parts();
            let expect = limit.min(SH_CAPTURE_LIMIT);
            assert_eq!(kept.len(), expect, "limit {limit}");
            assert!(kept == whole[..expect], "limit {limit}: bytes differ");
            assert_eq!(truncated, limit > SH_CAPTURE_LIMIT, "limit {limit}");
            assert_eq!(spilled, limit > CAPTURE_IN_MEMORY, "limit {limit}");
        }
    }
}
