//! The run-fn's argument: the runtime table `{: sh : jobs : secret}` and
//! calling one job's run-fn with it, turning what it returns (or raises)
//! into a job outcome (DESIGN.md §2).
//!
//! Owns: the Lua side of `sh`, `jobs`, `secret`; outcomes; outputs as JSON.
//! Must not know about: which engine runs `sh` (a `ShHost` does), the
//! terminal, log files.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_util::future::LocalBoxFuture;

use mlua::{Lua, Table, Value};
use serde_json::Value as Json;

use crate::cancel::Stop;
use crate::diagnostic::Code;
use crate::events::Outcome;
use crate::pipeline::{runtime_problem, split_location, Job, Pipeline, PUSH_SOURCE};

/// How much of each stream `sh` hands back to Lua; the log always has all.
pub const SH_CAPTURE_LIMIT: usize = 4 * 1024 * 1024;

/// Everything a job's `sh` call asks for.
#[derive(Debug, Clone)]
pub struct ShRequest {
    /// The command as given: a string (run by `sh -c`) or an argv array.
    pub cmd: Json,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
}

/// What came back from running it.
#[derive(Debug, Clone, Default)]
pub struct ShReply {
    pub exit: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

/// Why a run must stop: not the command's fault, so not a Lua-level result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// The container died (OOM kill, killed from outside, engine restart).
    ContainerDied(String),
    /// Another engine failure under `sh`.
    Engine(String),
    /// Ctrl-C / SIGTERM / superseded: the run is being torn down.
    Canceled(String),
    /// Not an abort: the request itself is wrong (e.g. `:cwd` outside
    /// /work). Raised as an ordinary Lua error in the run-fn.
    Refused(String),
}

/// What `sh` gives back: a future, so run-fns blocked in `sh` take turns
/// on the one VM while their commands run at once.
pub type ShFuture = LocalBoxFuture<'static, Result<ShReply, Abort>>;

/// Runs `sh` for a job. Implemented by the executor on top of the engine
/// (and by fakes in the scheduler's tests).
pub trait ShHost {
    /// Runs one command of `job`; gives up with `Abort::Canceled` once
    /// `stop` fires.
    fn sh(&self, job: &str, request: ShRequest, stop: &Stop) -> ShFuture;

    /// Called once a job that ran has ended, before its dependents start
    /// (artifacts are copied out here, `--shell-on-failure` opens here).
    fn job_ended(&self, _job: &str, _result: &JobResult) -> LocalBoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub outcome: Outcome,
    /// The outputs table as JSON (succeeded, or failed by `:exit`).
    pub outputs: Option<Json>,
    pub reason: Option<String>,
    /// (file, line) of the failure, when known.
    pub at: Option<(String, u32)>,
    /// Set when the run itself must stop (the job is failed too).
    pub abort: Option<Abort>,
    /// What dependents see through `(jobs :this)`: the outputs table, or nil.
    pub value: Value,
}

/// What a run passes from job to job: each finished job's outputs (Lua
/// values, `nil` when skipped), and the `:quire/push` table.
pub struct RunInputs {
    pub push: Table,
    pub outputs: HashMap<String, Value>,
}

/// Secrets by name, already resolved (see `secrets.rs`).
pub type SecretValues = Rc<BTreeMap<String, String>>;

const ALLOWED_KEYS: &str = "sh, jobs, secret";

/// Calls `job`'s run-fn with a fresh runtime table, as a coroutine that
/// yields whenever it waits in `sh`, and classifies the result. Several may
/// be polled at once on the same VM: each poll enters the job's own Lua-time
/// budget, runtime table and print attribution, and leaves them on yield.
pub async fn run_job(
    pipeline: &Pipeline,
    job: &Job,
    inputs: &RunInputs,
    secrets: &SecretValues,
    host: Rc<dyn ShHost>,
    stop: Stop,
) -> JobResult {
    let abort: Rc<RefCell<Option<Abort>>> = Rc::new(RefCell::new(None));
    let stopped = stop.clone();
    let table = match runtime_table(pipeline, job, inputs, secrets, host, stop, abort.clone()) {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot build the runtime table: {e}"), None),
    };
    let turn = Turn {
        call: Box::pin(job.run.call_async::<Value>(table.clone())),
        lua: pipeline.lua.clone(),
        clock: pipeline.clock.clone(),
        table,
        job: job.id.clone(),
        budget: Some(crate::sandbox::Clock::budget(pipeline.limits.run_fn_budget)),
    };
    let (result, budget) = turn.await;
    let mut aborted = abort.borrow_mut().take();
    // A run-fn that ended in an error once its job was told to stop was cut
    // off, whatever the error says: the clock's check can raise "the run was
    // canceled" in the run-fn's Lua (a loop, or the moment it resumes)
    // before its `sh` sees the stop itself.
    if let (None, Err(_), Some(reason)) = (&aborted, &result, stopped.reason()) {
        aborted = Some(Abort::Canceled(reason));
    }
    classify(job, result, aborted, budget.tripped())
}

/// The job whose run-fn is being resumed right now, for attributing what
/// `print` writes (several run-fns take turns on one VM).
pub struct CurrentJob(pub String);

/// One run-fn's coroutine, polled with its own budget and runtime table in
/// place (see [`run_job`]).
struct Turn<F> {
    call: Pin<Box<F>>,
    lua: Lua,
    clock: crate::sandbox::Clock,
    table: Table,
    job: String,
    budget: Option<crate::sandbox::Budget>,
}

impl<F: Future<Output = mlua::Result<Value>>> Future for Turn<F> {
    type Output = (mlua::Result<Value>, crate::sandbox::Budget);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(b) = this.budget.take() {
            this.clock.enter(b);
        }
        // `(. (require :quire.ci) :runtime)` is this job's table while it runs.
        this.lua.set_app_data(CurrentRunFn(this.table.clone()));
        this.lua.set_app_data(CurrentJob(this.job.clone()));
        let polled = this.call.as_mut().poll(cx);
        this.lua.remove_app_data::<CurrentRunFn>();
        this.lua.remove_app_data::<CurrentJob>();
        let budget = this.clock.leave();
        match polled {
            Poll::Ready(r) => Poll::Ready((r, budget)),
            Poll::Pending => {
                this.budget = Some(budget);
                Poll::Pending
            }
        }
    }
}

/// A run-fn's result (or what stopped it) as a job outcome.
fn classify(job: &Job, result: mlua::Result<Value>, abort: Option<Abort>, tripped: Option<String>) -> JobResult {
    if let Some(a) = abort {
        let reason = match &a {
            Abort::ContainerDied(r) => format!("the container died: {r}"),
            Abort::Engine(r) => format!("engine error: {r}"),
            Abort::Canceled(r) | Abort::Refused(r) => r.clone(),
        };
        let mut r = failed(reason, None);
        // Cut off from outside (a cancel, the container or the engine going
        // away): the job did not fail, it did not get to finish.
        // docs/log-format.md: `canceled`.
        if matches!(a, Abort::Canceled(_) | Abort::ContainerDied(_) | Abort::Engine(_)) {
            r.outcome = Outcome::Canceled;
        }
        r.abort = Some(a);
        return r;
    }
    if let Some(limit) = tripped {
        let msg = crate::sandbox::limit_message(&limit).unwrap_or(limit);
        return failed(msg, None);
    }
    match result {
        Ok(Value::Nil) => JobResult {
            outcome: Outcome::Skipped,
            outputs: None,
            reason: Some("its run-fn returned nil".into()),
            at: None,
            abort: None,
            value: Value::Nil,
        },
        Ok(Value::Table(t)) => returned_outputs(job, t),
        Ok(other) => failed(
            format!("its run-fn returned {} instead of a table of outputs (or nil to skip)", other.type_name()),
            Some((job.file.clone(), job.line as u32)),
        ),
        Err(e) => {
            let text = crate::fennel::root_message(&e);
            let (loc, msg) = split_location(&text);
            let at = loc.map(|(f, l)| (f, l as u32)).or(Some((job.file.clone(), job.line as u32)));
            let msg = match runtime_problem(&e, Code::RunFn, "run-fn raised") {
                Some(p) if p.code == Code::Limit => p.message,
                _ => msg,
            };
            failed(msg, at)
        }
    }
}

/// A run-fn's outputs table: succeeded, or failed by a non-zero `:exit`.
fn returned_outputs(job: &Job, t: Table) -> JobResult {
    let outputs = lua_to_json(&Value::Table(t.clone()), 0);
    let exit = match t.raw_get::<Value>("exit") {
        Ok(Value::Integer(i)) => Some(i as f64),
        Ok(Value::Number(n)) => Some(n),
        _ => None,
    };
    match exit {
        Some(code) if code != 0.0 => JobResult {
            outcome: Outcome::Failed,
            outputs: Some(outputs),
            reason: Some(format!("its outputs have :exit {}", fmt_num(code))),
            at: Some((job.file.clone(), job.line as u32)),
            abort: None,
            value: Value::Table(t),
        },
        _ => JobResult {
            outcome: Outcome::Succeeded,
            outputs: Some(outputs),
            reason: None,
            at: None,
            abort: None,
            value: Value::Table(t),
        },
    }
}

/// The runtime table of the run-fn that is running, while one is.
struct CurrentRunFn(Table);

/// Where a call of a host function was written: `(file, line)` of the Lua
/// frame that called it; the `&str` is how the call reads in the source
/// (`runtime.sh`), to tell it from calls around it.
pub type Locate = Rc<dyn Fn(&Lua, &str) -> Option<(String, usize)>>;

/// `runtime` in the `quire.ci` module, the server's way to reach the
/// primitives (`(local {: runtime} (require :quire.ci))`, then
/// `(runtime.sh ...)` in a run-fn): `runtime.sh`, `runtime.jobs` and
/// `runtime.secret` call the running job's own `sh`, `jobs`, `secret`.
/// Called outside a run-fn (the top level, a module body) they raise an
/// error naming the call and where it was written; any other key raises at
/// once, like the run-fn table.
pub fn module_runtime(lua: &Lua, locate: Locate) -> mlua::Result<Table> {
    let forwarders = lua.create_table()?;
    for key in ["sh", "jobs", "secret"] {
        let locate = locate.clone();
        let target = move |lua: &Lua| -> mlua::Result<mlua::Function> {
            match lua.app_data_ref::<CurrentRunFn>().map(|c| c.0.clone()) {
                Some(table) => table.raw_get::<mlua::Function>(key),
                None => {
                    let at = match locate(lua, &format!("runtime.{key}")) {
                        Some((file, line)) => format!("{file}:{line}: "),
                        None => String::new(),
                    };
                    Err(mlua::Error::runtime(format!(
                        "{at}(runtime.{key} ...) was called outside a run-fn: runtime.sh, runtime.jobs and runtime.secret work only while a job's run-fn runs"
                    )))
                }
            }
        };
        // `sh` waits (its run-fn yields), so its forwarder must be able to.
        let f = if key == "sh" {
            crate::sandbox::async_function(lua, move |lua, args: mlua::MultiValue| {
                let f = target(&lua);
                async move { f?.call_async::<mlua::MultiValue>(args).await }
            })?
        } else {
            lua.create_function(move |lua, args: mlua::MultiValue| target(lua)?.call::<mlua::MultiValue>(args))?
        };
        forwarders.raw_set(key, f)?;
    }
    let t = lua.create_table()?;
    let mt = lua.create_table()?;
    mt.raw_set(
        "__index",
        lua.create_function(move |_, (_t, key): (Value, Value)| -> mlua::Result<Value> {
            let name = match &key {
                Value::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            };
            match forwarders.raw_get::<Value>(name.as_str())? {
                Value::Nil => Err(mlua::Error::runtime(format!("runtime has no key :{name} (it has {ALLOWED_KEYS})"))),
                f => Ok(f),
            }
        })?,
    )?;
    mt.raw_set(
        "__newindex",
        lua.create_function(|_, (_t, _k, _v): (Value, Value, Value)| -> mlua::Result<()> {
            Err(mlua::Error::runtime("runtime is read-only: it holds only sh, jobs and secret"))
        })?,
    )?;
    mt.raw_set("__metatable", "locked")?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn failed(reason: String, at: Option<(String, u32)>) -> JobResult {
    JobResult { outcome: Outcome::Failed, outputs: None, reason: Some(reason), at, abort: None, value: Value::Nil }
}

fn runtime_table(
    pipeline: &Pipeline,
    job: &Job,
    inputs: &RunInputs,
    secrets: &SecretValues,
    host: Rc<dyn ShHost>,
    stop: Stop,
    abort: Rc<RefCell<Option<Abort>>>,
) -> mlua::Result<Table> {
    let lua = &pipeline.lua;
    let t = lua.create_table()?;
    t.raw_set("sh", sh_function(lua, job, host, stop, pipeline.clock.clone(), abort)?)?;
    t.raw_set("jobs", jobs_function(lua, pipeline, job, inputs)?)?;
    let secrets = secrets.clone();
    t.raw_set(
        "secret",
        lua.create_function(move |_, name: Value| {
            let name = match name {
                Value::String(s) => s.to_str()?.to_string(),
                other => return Err(mlua::Error::runtime(format!("secret expects a name, got {}", other.type_name()))),
            };
            match secrets.get(&name) {
                Some(v) => Ok(v.clone()),
                None => Err(mlua::Error::runtime(format!(
                    "secret {name} is not provided: pass --secret {name} (value from ${name}), set QUIRE_SECRET_{name}, or list it in --secrets-file"
                ))),
            }
        })?,
    )?;
    let mt = lua.create_table()?;
    mt.raw_set(
        "__index",
        lua.create_function(|_, (_t, key): (Value, Value)| -> mlua::Result<Value> {
            let key = match key {
                Value::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            };
            Err(mlua::Error::runtime(format!("the run-fn table has no key :{key} (it has {ALLOWED_KEYS})")))
        })?,
    )?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

fn sh_function(
    lua: &Lua,
    job: &Job,
    host: Rc<dyn ShHost>,
    stop: Stop,
    clock: crate::sandbox::Clock,
    abort: Rc<RefCell<Option<Abort>>>,
) -> mlua::Result<mlua::Function> {
    let job_id = job.id.clone();
    crate::sandbox::async_function(lua, move |lua, (cmd, opts): (Value, Option<Value>)| {
        let (host, stop, clock, abort, job_id) =
            (host.clone(), stop.clone(), clock.clone(), abort.clone(), job_id.clone());
        async move {
            if abort.borrow().is_some() {
                return Err(mlua::Error::runtime("the run is stopping; no more commands"));
            }
            let request = sh_request(cmd, opts)?;
            let cmd_json = request.cmd.clone();
            clock.pause();
            let reply = host.sh(&job_id, request, &stop).await;
            clock.resume();
            sh_result(&lua, reply, &cmd_json, &clock, &abort)
        }
    })
}

/// What `sh` returns to Lua: its result table, or an error; an abort is
/// remembered and made sticky.
fn sh_result(
    lua: &Lua,
    reply: Result<ShReply, Abort>,
    cmd_json: &Json,
    clock: &crate::sandbox::Clock,
    abort: &RefCell<Option<Abort>>,
) -> mlua::Result<Table> {
    match reply {
        Ok(r) => {
            let t = lua.create_table()?;
            t.raw_set("exit", r.exit)?;
            t.raw_set("stdout", lua.create_string(&r.stdout)?)?;
            t.raw_set("stderr", lua.create_string(&r.stderr)?)?;
            if r.stdout_truncated || r.stderr_truncated {
                t.raw_set("truncated", true)?;
            }
            t.raw_set("cmd", json_to_lua(lua, cmd_json)?)?;
            Ok(t)
        }
        Err(Abort::Refused(msg)) => Err(mlua::Error::runtime(format!("sh: {msg}"))),
        Err(a) => {
            let msg = match &a {
                Abort::ContainerDied(r) => format!("the run's container died: {r}"),
                Abort::Engine(r) => format!("engine error: {r}"),
                Abort::Canceled(r) | Abort::Refused(r) => r.clone(),
            };
            *abort.borrow_mut() = Some(a);
            // Sticky: a pcall around sh cannot keep the run-fn going.
            clock.trip(&msg);
            Err(mlua::Error::runtime(msg))
        }
    }
}

/// Reads `(sh cmd opts?)`'s arguments.
fn sh_request(cmd: Value, opts: Option<Value>) -> mlua::Result<ShRequest> {
    let (cmd_json, argv) = match cmd {
        Value::String(s) => {
            let s = s.to_str()?.to_string();
            (Json::String(s.clone()), vec!["sh".to_string(), "-c".to_string(), s])
        }
        Value::Table(t) => {
            let mut argv = Vec::new();
            for v in t.sequence_values::<Value>() {
                match v? {
                    Value::String(s) => argv.push(s.to_str()?.to_string()),
                    Value::Integer(i) => argv.push(i.to_string()),
                    Value::Number(n) => argv.push(fmt_num(n)),
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "sh: argv items must be strings, got {}",
                            other.type_name()
                        )))
                    }
                }
            }
            if argv.is_empty() {
                return Err(mlua::Error::runtime("sh: the argv sequence is empty"));
            }
            (Json::Array(argv.iter().cloned().map(Json::String).collect()), argv)
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "sh expects a command string or an argv sequence, got {}",
                other.type_name()
            )))
        }
    };
    let mut env = Vec::new();
    let mut cwd = None;
    match opts {
        None | Some(Value::Nil) => {}
        Some(Value::Table(o)) => {
            for pair in o.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.to_str()?.to_string(),
                    _ => return Err(mlua::Error::runtime("sh: option keys must be keywords (:env, :cwd)")),
                };
                match (key.as_str(), v) {
                    ("env", Value::Table(e)) => {
                        for pair in e.pairs::<Value, Value>() {
                            let (k, v) = pair?;
                            let k = match k {
                                Value::String(s) => s.to_str()?.to_string(),
                                _ => return Err(mlua::Error::runtime("sh: :env keys must be strings")),
                            };
                            let v = match v {
                                Value::String(s) => s.to_str()?.to_string(),
                                Value::Integer(i) => i.to_string(),
                                Value::Number(n) => fmt_num(n),
                                Value::Boolean(b) => b.to_string(),
                                other => {
                                    return Err(mlua::Error::runtime(format!(
                                        "sh: :env value of {k} must be a string, got {}",
                                        other.type_name()
                                    )))
                                }
                            };
                            env.push((k, v));
                        }
                        env.sort();
                    }
                    ("cwd", Value::String(s)) => cwd = Some(s.to_str()?.to_string()),
                    ("env", other) | ("cwd", other) => {
                        return Err(mlua::Error::runtime(format!(
                            "sh: :{key} has the wrong type ({})",
                            other.type_name()
                        )))
                    }
                    (other, _) => {
                        return Err(mlua::Error::runtime(format!("sh: unknown option :{other} (known: :env, :cwd)")))
                    }
                }
            }
        }
        Some(other) => {
            return Err(mlua::Error::runtime(format!("sh: options must be a table, got {}", other.type_name())))
        }
    }
    Ok(ShRequest { cmd: cmd_json, argv, env, cwd })
}

fn jobs_function(lua: &Lua, pipeline: &Pipeline, job: &Job, inputs: &RunInputs) -> mlua::Result<mlua::Function> {
    let me = job.id.clone();
    let ancestors: HashSet<String> = pipeline.ancestors(&job.id);
    let known: HashSet<String> = pipeline.jobs.iter().map(|j| j.id.clone()).collect();
    let push = inputs.push.clone();
    let outputs: HashMap<String, Value> =
        inputs.outputs.iter().filter(|(k, _)| ancestors.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    lua.create_function(move |_, name: Value| {
        let name = match name {
            Value::String(s) => s.to_str()?.to_string(),
            other => return Err(mlua::Error::runtime(format!("jobs expects a job id, got {}", other.type_name()))),
        };
        if name == PUSH_SOURCE {
            return Ok(Value::Table(push.clone()));
        }
        if name == me {
            return Err(mlua::Error::runtime(format!(
                "(jobs :{name}) inside job :{me}: a job cannot read its own outputs"
            )));
        }
        if !known.contains(&name) {
            return Err(mlua::Error::runtime(format!("(jobs :{name}): there is no job :{name}")));
        }
        if !ancestors.contains(&name) {
            return Err(mlua::Error::runtime(format!(
                "(jobs :{name}) inside job :{me}: :{name} is not an input of :{me} (directly or through other jobs)"
            )));
        }
        Ok(outputs.get(&name).cloned().unwrap_or(Value::Nil))
    })
}

/// A Lua value as JSON, for outputs in the record. Functions and other
/// host-only values become descriptive strings; depth is bounded.
pub fn lua_to_json(v: &Value, depth: usize) -> Json {
    if depth > 32 {
        return Json::String("<too deep>".into());
    }
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Json::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map(Json::Number).unwrap_or(Json::Null)
            }
        }
        Value::String(s) => Json::String(s.to_string_lossy()),
        Value::Table(t) => {
            let n = t.raw_len();
            // A sequence (every key is 1..n) is an array; anything else an object.
            let count = t.clone().pairs::<Value, Value>().count();
            if n > 0 && count == n {
                Json::Array(
                    (1..=n).map(|i| lua_to_json(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), depth + 1)).collect(),
                )
            } else {
                let mut map = serde_json::Map::new();
                for (k, v) in t.clone().pairs::<Value, Value>().flatten() {
                    let key = match &k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::Boolean(b) => b.to_string(),
                        other => format!("<{}>", other.type_name()),
                    };
                    map.insert(key, lua_to_json(&v, depth + 1));
                }
                Json::Object(map)
            }
        }
        other => Json::String(format!("<{}>", other.type_name())),
    }
}

/// JSON as a Lua value (for `:quire/push` and `sh`'s `:cmd`).
pub fn json_to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    Ok(match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i as _),
            None => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(a) => {
            let t = lua.create_table()?;
            for item in a {
                t.raw_push(json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Json::Object(o) => {
            let t = lua.create_table()?;
            for (k, v) in o {
                t.raw_set(k.as_str(), json_to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}
