//! The `quire.ci` module ci.fnl requires: `ci.job` and `ci.image` record
//! declarations (with where they were written) into the [`Registry`].
//!
//! Owns: argument checks of `ci.job`/`ci.image`, the job limit, locating a
//! call in the source. Must not know about: the graph rules (graph.rs),
//! Docker.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::graph::JobDecl;
use super::problems::REPORTED;
use super::{ImageDecl, CI_FNL};
use crate::diagnostic::{Code, Problem};

/// A `ci.job` call that passed its argument checks: the declaration and
/// its run-fn.
pub(super) struct Declared {
    pub decl: JobDecl,
    pub run: Function,
}

/// The most `ci.job` calls one evaluation may make. Each declared job is
/// held on the host side (outside `--lua-memory`) and its run-fn pins a slot
/// of mlua's reference stack (about a million in all); no real pipeline
/// comes near this.
pub const MAX_JOBS: usize = 10_000;

/// What one evaluation registered so far.
#[derive(Default)]
pub(super) struct Registry {
    pub jobs: Vec<Declared>,
    pub images: Vec<ImageDecl>,
    pub problems: Vec<Problem>,
    /// Sources of every file loaded (path -> text).
    pub sources: BTreeMap<String, String>,
    /// Registration form positions per file, to report where a call opens.
    pub forms: HashMap<String, crate::fennel::Compiled>,
    /// The main chunks of ci.fnl and its modules: a frame of one is "the
    /// top level of a file". Held, so no other function reuses an address.
    pub chunks: Vec<Function>,
    /// `ci.job` calls so far, declared or refused.
    pub job_calls: usize,
}

/// Where a registration (`ci.job`, `ci.image`) was written: (file, line).
///
/// Normally the line where its form opens. When it runs inside a function
/// (a helper such as `(shell-job :unit [:lint] "make test")`), it is the call
/// of that function from the top level of a file (ci.fnl, or a module's
/// body): that is where the id and inputs were written, and each call gets a
/// line of its own rather than all of them sharing the helper's.
fn caller_location(lua: &Lua, registry: &Registry) -> (String, usize) {
    let mut found: Option<(String, usize)> = None;
    let mut level = 1;
    while let Some((file, line, main)) = lua.inspect_stack(level, |d| {
        let source = d.source();
        let file = source.short_src.map(|s| s.into_owned()).unwrap_or_default();
        let here = d.function().to_pointer();
        let main = registry.chunks.iter().any(|c| c.to_pointer() == here);
        (file, d.current_line().unwrap_or(0), main)
    }) {
        level += 1;
        // Frames of host functions (`require`, `pcall`) are not in a file.
        let Some(compiled) = registry.forms.get(&file) else { continue };
        let line = match found {
            None => compiled.form_start(line),
            Some(_) => compiled.call_start(line),
        };
        found = Some((file, line));
        if main {
            break;
        }
    }
    found.unwrap_or_else(|| (CI_FNL.to_string(), 0))
}

/// Where the innermost call from a ci.fnl (or module) frame was written:
/// the line Luau reports when it holds `needle`, else the line its form
/// opens on (Luau reports a multi-line call where it closes). Frames of
/// host functions are skipped.
fn call_location(lua: &Lua, registry: &RefCell<Registry>, needle: &str) -> Option<(String, usize)> {
    let reg = registry.try_borrow().ok();
    let mut level = 1;
    while let Some((file, line)) = lua.inspect_stack(level, |d| {
        let file = d.source().short_src.map(|s| s.into_owned()).unwrap_or_default();
        (file, d.current_line().unwrap_or(0))
    }) {
        level += 1;
        if !file.ends_with(".fnl") {
            continue;
        }
        let written_here = reg
            .as_ref()
            .and_then(|r| r.sources.get(&file))
            .and_then(|text| text.lines().nth(line.saturating_sub(1)))
            .is_some_and(|l| l.contains(needle));
        let line = match reg.as_ref().and_then(|r| r.forms.get(&file)) {
            Some(compiled) if !written_here => compiled.call_start(line),
            _ => line,
        };
        return Some((file, line));
    }
    None
}

/// The table `(require :quire.ci)` returns: `job`, `image`, and the
/// server's `runtime` (runtime.rs).
pub(super) fn quire_ci_module(lua: &Lua, registry: Rc<RefCell<Registry>>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let reg = registry.clone();
    let locate: crate::runtime::Locate = Rc::new(move |lua, needle| call_location(lua, &reg, needle));
    module.raw_set("runtime", crate::runtime::module_runtime(lua, locate)?)?;
    let reg = registry.clone();
    module.raw_set(
        "job",
        lua.create_function(move |lua, (id, inputs, run): (Value, Value, Value)| {
            let mut reg = reg.borrow_mut();
            reg.job_calls += 1;
            if reg.job_calls > MAX_JOBS {
                // Once, then every further call fails again (a pcall in a
                // loop cannot get past it).
                if reg.job_calls == MAX_JOBS + 1 {
                    let (file, line) = caller_location(lua, &reg);
                    let msg = format!("ci.fnl declares more than {MAX_JOBS} jobs, quire-ci's limit");
                    reg.problems.push(
                        Problem::new(Code::TooManyJobs, msg.clone())
                            .at(&file, line)
                            .label("this call went past the limit")
                            .help("a pipeline this size is almost certainly a loop gone wrong; check its bounds"),
                    );
                }
                return Err(mlua::Error::runtime(format!("{REPORTED}too many jobs")));
            }
            let (file, line) = caller_location(lua, &reg);
            let problem = |code, msg: String, help: &str| {
                Problem::new(code, msg.clone()).at(&file, line).label(msg).help(help.to_string())
            };
            let id = match id {
                Value::String(s) => s.to_str()?.to_string(),
                other => {
                    reg.problems.push(problem(
                        Code::JobIdType,
                        format!("ci.job: the job id must be a string or keyword, got {}", describe(&other)),
                        "write the id as a keyword, e.g. (ci.job :test [:quire/push] (fn [...] ...))",
                    ));
                    return Ok(());
                }
            };
            let inputs = match inputs {
                Value::Table(t) => match sequence_of_strings(&t) {
                    Ok(v) => v,
                    Err(what) => {
                        reg.problems.push(problem(
                            Code::InputsType,
                            format!("job :{id}: inputs must be a sequence of job ids and sources, but {what}"),
                            "write inputs as a sequence of keywords, e.g. [:quire/push] or [:build :test]",
                        ));
                        return Ok(());
                    }
                },
                other => {
                    reg.problems.push(problem(
                        Code::InputsType,
                        format!("job :{id}: inputs must be a sequence, got {}", describe(&other)),
                        "write inputs as a sequence of keywords, e.g. [:quire/push]",
                    ));
                    return Ok(());
                }
            };
            let run = match run {
                Value::Function(f) => f,
                other => {
                    reg.problems.push(problem(
                        Code::RunType,
                        format!("job :{id}: the run-fn must be a function, got {}", describe(&other)),
                        "pass (fn [{: sh}] ...) as the third argument",
                    ));
                    return Ok(());
                }
            };
            reg.jobs.push(Declared { decl: JobDecl { id, inputs, file, line }, run });
            Ok(())
        })?,
    )?;
    let reg = registry;
    module.raw_set(
        "image",
        lua.create_function(move |lua, (name, extra): (Value, mlua::Variadic<Value>)| {
            let mut reg = reg.borrow_mut();
            let (file, line) = caller_location(lua, &reg);
            match name {
                Value::String(s) if !s.to_str()?.trim().is_empty() && extra.is_empty() => {
                    reg.images.push(ImageDecl { name: s.to_str()?.to_string(), file, line });
                }
                other => {
                    let msg = if extra.is_empty() {
                        format!("ci.image expects one image name (a string), got {}", describe(&other))
                    } else {
                        format!("ci.image expects one image name, got {} arguments", extra.len() + 1)
                    };
                    reg.problems.push(
                        Problem::new(Code::ImageType, msg.clone())
                            .at(&file, line)
                            .label(msg)
                            .help("e.g. (ci.image \"rust:1.76\")"),
                    );
                }
            }
            Ok(())
        })?,
    )?;
    Ok(module)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::String(s) => format!("the string {:?}", s.to_string_lossy()),
        Value::Integer(i) => format!("the number {i}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        other => format!("a {}", other.type_name()),
    }
}

fn sequence_of_strings(t: &Table) -> Result<Vec<String>, String> {
    let n = t.raw_len();
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        match t.raw_get::<Value>(i) {
            Ok(Value::String(s)) => out.push(s.to_string_lossy()),
            Ok(other) => return Err(format!("item {i} is {}", describe(&other))),
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut extra = 0;
    for (k, _) in t.pairs::<Value, Value>().flatten() {
        let in_seq = matches!(k, Value::Integer(i) if i >= 1 && (i as usize) <= n);
        if !in_seq {
            extra += 1;
        }
    }
    if extra > 0 {
        return Err(format!("it has {extra} non-sequence key(s) (a {{...}} table instead of [...]?)"));
    }
    Ok(out)
}
