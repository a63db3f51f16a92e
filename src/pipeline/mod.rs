//! The pipeline: evaluating ci.fnl's top level (registration through
//! `(require :quire.ci)`), validating the job graph, and the order jobs run in.
//!
//! Rooms: `sources` (reading and hashing source files), `registry` (the
//! `quire.ci` module), `modules` (`require` of `.quire/` modules),
//! `problems` (errors turned into problems), `graph` (the rules of DESIGN.md
//! §2 and the run order). This file drives one evaluation through them.
//!
//! Must not know about: Docker, the terminal, how `sh` runs.

mod compile;
mod graph;
mod modules;
mod problems;
mod registry;
mod sources;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use mlua::{Function, Lua, Value};

use crate::compile_cache::CompileCache;
use crate::diagnostic::{Code, Problem, Sources};
use crate::sandbox::{self, Clock, Limits};

pub use graph::{topological_order, validate, JobDecl};
pub use modules::module_path;
pub use problems::{compile_problem, runtime_problem, split_location};
pub use registry::MAX_JOBS;
pub use sources::{read_regular_file, DirFiles, RepoFiles, MAX_SOURCE_BYTES};

use problems::limit_problem;
use registry::{quire_ci_module, Declared, Registry};
use sources::{hash_sources, read_source};

/// The file every pipeline starts from, relative to the repo root.
pub const CI_FNL: &str = ".quire/ci.fnl";

/// The only source ref there is (DESIGN.md §2).
pub const PUSH_SOURCE: &str = "quire/push";

/// A job as declared.
pub struct Job {
    pub id: String,
    pub inputs: Vec<String>,
    pub file: String,
    pub line: usize,
    pub run: Function,
}

/// `(ci.image name)` as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDecl {
    pub name: String,
    pub file: String,
    pub line: usize,
}

/// A ci.fnl that evaluated and validated: its jobs in run order.
pub struct Pipeline {
    /// In topological order, ties broken by declaration order.
    pub jobs: Vec<Job>,
    pub image: Option<ImageDecl>,
    pub sources: Sources,
    /// sha256 over ci.fnl and every module it loaded (for records and the cache).
    pub source_hash: String,
    pub lua: Lua,
    pub clock: Clock,
    pub limits: Limits,
    /// What the forge's server would refuse that quire-ci accepts
    /// (server_compat.rs), in source order: `validate` shows them.
    pub warnings: Vec<Problem>,
    print_sink: PrintSink,
}

/// Evaluation failed: every problem found, with the sources they point into.
#[derive(Debug)]
pub struct Invalid {
    pub problems: Vec<Problem>,
    pub sources: Sources,
}

type PrintSink = Rc<RefCell<Box<dyn FnMut(String)>>>;

impl Pipeline {
    /// Where `print` from ci.fnl goes from now on (the runtime points it at
    /// the current job's log).
    pub fn set_print_sink(&self, sink: impl FnMut(String) + 'static) {
        *self.print_sink.borrow_mut() = Box::new(sink);
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// All transitive ancestors of `id` (jobs only, not sources).
    pub fn ancestors(&self, id: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![id.to_string()];
        while let Some(cur) = stack.pop() {
            if let Some(j) = self.job(&cur) {
                for i in &j.inputs {
                    if self.job(i).is_some() && seen.insert(i.clone()) {
                        stack.push(i.clone());
                    }
                }
            }
        }
        seen
    }
}

/// What a top-level evaluation leaves, before the graph is checked.
struct Evaluation {
    /// The VM the run-fns belong to, and its clock.
    lua: Lua,
    clock: Clock,
    print_sink: PrintSink,
    /// Everything registered (jobs, images, sources loaded).
    registry: Registry,
    /// Problems found while evaluating (validation comes next).
    problems: Vec<Problem>,
    /// The top level ran to its end; when it stopped half-way only some
    /// jobs were registered, and checking the graph would only add noise
    /// about the missing ones.
    complete: bool,
}

/// Compiles and evaluates `.quire/ci.fnl` from `files`, then validates it.
pub fn evaluate(files: Rc<dyn RepoFiles>, limits: Limits) -> Result<Pipeline, Invalid> {
    evaluate_with(files, limits, None)
}

/// [`evaluate`], with compiles served from and stored in `cache`; what it
/// did with each file is noted there.
pub fn evaluate_with(
    files: Rc<dyn RepoFiles>,
    limits: Limits,
    cache: Option<Rc<CompileCache>>,
) -> Result<Pipeline, Invalid> {
    let mut sources = Sources::default();
    let text = match read_source(files.as_ref(), CI_FNL) {
        Ok(t) => t,
        Err(p) => return Err(Invalid { problems: vec![p], sources }),
    };
    sources.insert(CI_FNL, &text);

    let clock = Clock::default();
    clock.start_deadline(limits.eval_timeout);
    // Macro modules read while compiling: shown in diagnostics, hashed.
    let macro_sources: Rc<RefCell<BTreeMap<String, String>>> = Rc::default();
    let outcome = evaluate_top_level(files, &text, limits, &clock, &macro_sources, cache);
    let tripped = clock.tripped();
    clock.stop();
    for (f, t) in macro_sources.borrow().iter() {
        sources.insert(f, t);
    }
    // A tripped limit is sticky: even if the script swallowed the error, the
    // evaluation is over, and the limit is the one problem to lead with.
    let lead_with_limit = |problems: &mut Vec<Problem>, limit: String| {
        let msg = sandbox::limit_message(&limit).unwrap_or(limit);
        problems.retain(|p| p.code != Code::Limit);
        problems.insert(0, limit_problem(&msg));
    };
    let mut evaluation = match outcome {
        Ok(v) => v,
        Err(mut problems) => {
            if let Some(limit) = tripped {
                lead_with_limit(&mut problems, limit);
            }
            return Err(Invalid { problems, sources });
        }
    };
    for (f, t) in &evaluation.registry.sources {
        sources.insert(f, t);
    }
    let mut problems = std::mem::take(&mut evaluation.problems);
    let mut warnings = Vec::new();
    for note in evaluation.registry.forms.values().flat_map(|c| c.server_notes.iter()) {
        if note.is_error() {
            problems.push(note.problem());
        } else {
            warnings.push(note.problem());
        }
    }
    warnings.sort_by_key(|p| p.location.as_ref().map(|l| (l.file != CI_FNL, l.file.clone(), l.line)));
    if let Some(limit) = tripped {
        lead_with_limit(&mut problems, limit);
        return Err(Invalid { problems, sources });
    }
    let declared = std::mem::take(&mut evaluation.registry.jobs);
    let decls: Vec<JobDecl> = declared.iter().map(|d| d.decl.clone()).collect();
    let images = std::mem::take(&mut evaluation.registry.images);
    if evaluation.complete {
        problems.extend(validate(&decls, &images));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.location.is_none(), p.location.as_ref().map(|l| (l.file != CI_FNL, l.line))));
        return Err(Invalid { problems, sources });
    }
    let order = topological_order(&decls);
    let mut slots: Vec<Option<Declared>> = declared.into_iter().map(Some).collect();
    let jobs = order
        .into_iter()
        .filter_map(|i| slots[i].take())
        .map(|Declared { decl, run }| Job { id: decl.id, inputs: decl.inputs, file: decl.file, line: decl.line, run })
        .collect();
    let mut loaded = std::mem::take(&mut evaluation.registry.sources);
    loaded.extend(macro_sources.take());
    let source_hash = hash_sources(&loaded, &text);
    let Evaluation { lua, clock, print_sink, .. } = evaluation;
    Ok(Pipeline {
        jobs,
        image: images.into_iter().next(),
        sources,
        source_hash,
        lua,
        clock,
        limits,
        warnings,
        print_sink,
    })
}

/// Compiles ci.fnl and runs its top level in the sandbox, with `require`
/// and `print` in place. Err: it never got to run.
fn evaluate_top_level(
    files: Rc<dyn RepoFiles>,
    text: &str,
    limits: Limits,
    clock: &Clock,
    macro_sources: &Rc<RefCell<BTreeMap<String, String>>>,
    cache: Option<Rc<CompileCache>>,
) -> Result<Evaluation, Vec<Problem>> {
    let compile = Rc::new(compile::Compile::new(clock, limits.memory, files.clone(), macro_sources.clone(), cache));
    let registry = Rc::new(RefCell::new(Registry::default()));
    registry.borrow_mut().sources.insert(CI_FNL.to_string(), text.to_string());
    let print_sink: PrintSink = Rc::new(RefCell::new(Box::new(|line: String| eprintln!("ci.fnl: {line}"))));

    let lua = {
        let registry = registry.clone();
        let print_sink = print_sink.clone();
        sandbox::execute_vm(&limits, clock, |lua, g| {
            let ci = quire_ci_module(lua, registry.clone())?;
            let require = modules::require_function(lua, ci, compile.clone(), files.clone(), registry.clone())?;
            g.raw_set("require", require)?;
            let sink = print_sink.clone();
            g.raw_set(
                "print",
                lua.create_function(move |_, args: mlua::Variadic<Value>| {
                    let line = args.iter().map(display_value).collect::<Vec<_>>().join("\t");
                    (sink.borrow_mut())(line);
                    Ok(())
                })?,
            )?;
            Ok(())
        })
        .map_err(|e| vec![Problem::new(Code::Sandbox, format!("cannot set up the ci.fnl sandbox: {e}"))])?
    };

    let chunk = match compile.load(&lua, CI_FNL, text) {
        Ok((compiled, chunk)) => {
            registry.borrow_mut().forms.insert(CI_FNL.to_string(), compiled);
            chunk
        }
        Err(compile::LoadError::Problem(p)) => return Err(vec![p]),
        Err(compile::LoadError::Lua(e)) => {
            return Err(vec![Problem::new(Code::Fennel, format!("compiled ci.fnl did not load in Luau: {e}"))])
        }
    };
    registry.borrow_mut().chunks.push(chunk.clone());
    let result = chunk.call::<mlua::MultiValue>(());
    let mut problems = Vec::new();
    if let Err(e) = &result {
        if let Some(p) = runtime_problem(e, Code::Eval, "evaluating ci.fnl failed") {
            problems.push(p);
        }
    }
    let mut registry = std::mem::take(&mut *registry.borrow_mut());
    problems.append(&mut registry.problems);
    Ok(Evaluation { lua, clock: clock.clone(), print_sink, registry, problems, complete: result.is_ok() })
}

/// How `print` in ci.fnl shows a value (as Lua's `tostring` would).
fn display_value(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", *n as i64)
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.to_string_lossy(),
        other => format!("{}: {:p}", other.type_name(), other.to_pointer()),
    }
}
