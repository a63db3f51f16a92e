//! The pipeline: evaluating ci.fnl's top level (registration through
//! `(require :quire.ci)`), validating the job graph, and the order jobs run in.
//!
//! Owns: `quire.ci` (`job`, `image`), repo-local modules under `.quire/`,
//! every validation rule of DESIGN.md §2, the topological order. Must not
//! know about: Docker, the terminal, how `sh` runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};
use sha2::{Digest, Sha256};

use crate::diagnostic::{Problem, Sources};
use crate::fennel::{CompileError, CompileErrorKind, Compiler};
use crate::sandbox::{self, Clock, Limits};

/// The file every pipeline starts from, relative to the repo root.
pub const CI_FNL: &str = ".quire/ci.fnl";

/// The only source ref there is (DESIGN.md §2).
pub const PUSH_SOURCE: &str = "quire/push";

/// Reads files of the tree being evaluated (the working tree for
/// `validate`, the snapshot for a run), by path relative to the repo root.
pub trait RepoFiles {
    /// `Ok(None)` when the file does not exist.
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>>;
}

/// Files straight from a directory.
pub struct DirFiles(pub std::path::PathBuf);

impl RepoFiles for DirFiles {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.0.join(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

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

struct Declared {
    id: String,
    inputs: Vec<String>,
    file: String,
    line: usize,
    run: Function,
}

/// The most `ci.job` calls one evaluation may make. Each declared job is
/// held on the host side (outside `--lua-memory`) and its run-fn pins a slot
/// of mlua's reference stack (about a million in all); no real pipeline
/// comes near this.
pub const MAX_JOBS: usize = 10_000;

#[derive(Default)]
struct Registry {
    jobs: Vec<Declared>,
    images: Vec<ImageDecl>,
    problems: Vec<Problem>,
    /// Sources of every file loaded (path -> text).
    sources: BTreeMap<String, String>,
    /// Registration form positions per file, to report where a call opens.
    forms: HashMap<String, crate::fennel::Compiled>,
    /// The main chunks of ci.fnl and its modules: a frame of one is "the
    /// top level of a file". Held, so no other function reuses an address.
    chunks: Vec<Function>,
    /// `ci.job` calls so far, declared or refused.
    job_calls: usize,
}

/// Compiles and evaluates `.quire/ci.fnl` from `files`, then validates it.
pub fn evaluate(files: Rc<dyn RepoFiles>, limits: Limits) -> Result<Pipeline, Invalid> {
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
    let outcome = evaluate_inner(files, &text, limits, &clock, &macro_sources);
    let tripped = clock.tripped();
    clock.stop();
    for (f, t) in macro_sources.borrow().iter() {
        sources.insert(f, t);
    }
    let (evaluated, mut registry) = match outcome {
        Ok(v) => v,
        Err(mut problems) => {
            if let Some(limit) = tripped {
                let msg = crate::sandbox::limit_message(&limit).unwrap_or(limit);
                problems.retain(|p| p.code != "quire_ci::limit");
                problems.insert(0, limit_problem(&msg));
            }
            return Err(Invalid { problems, sources });
        }
    };
    for (f, t) in &registry.sources {
        sources.insert(f, t);
    }
    let (declared_jobs, lua, clock, print_sink, mut problems, complete) = evaluated;
    if let Some(limit) = tripped {
        // Sticky: even if the script swallowed the error, the evaluation is over.
        problems.retain(|p| p.code != "quire_ci::limit");
        problems.insert(0, limit_problem(&crate::sandbox::limit_message(&limit).unwrap_or(limit)));
        return Err(Invalid { problems, sources });
    }
    let declared: Vec<(String, Vec<String>, String, usize)> =
        declared_jobs.iter().map(|d| (d.id.clone(), d.inputs.clone(), d.file.clone(), d.line)).collect();
    let images = registry.images;
    if complete {
        problems.extend(validate(&declared, &images));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.location.is_none(), p.location.as_ref().map(|l| (l.file != CI_FNL, l.line))));
        return Err(Invalid { problems, sources });
    }
    let order = topological_order(&declared);
    let mut slots: Vec<Option<Declared>> = declared_jobs.into_iter().map(Some).collect();
    let jobs = order
        .into_iter()
        .filter_map(|i| slots[i].take())
        .map(|d| Job { id: d.id, inputs: d.inputs, file: d.file, line: d.line, run: d.run })
        .collect();
    registry.sources.extend(macro_sources.take());
    let source_hash = hash_sources(&registry.sources, &text);
    Ok(Pipeline { jobs, image: images.into_iter().next(), sources, source_hash, lua, clock, limits, print_sink })
}

fn limit_problem(msg: &str) -> Problem {
    Problem::new("quire_ci::limit", msg.to_string())
        .help("ci.fnl's top level should only declare jobs; move heavy work into a run-fn or into (sh ...)")
}

fn hash_sources(modules: &BTreeMap<String, String>, ci: &str) -> String {
    let mut h = Sha256::new();
    h.update(CI_FNL.as_bytes());
    h.update([0]);
    h.update(ci.as_bytes());
    for (f, t) in modules {
        if f != CI_FNL {
            h.update([0]);
            h.update(f.as_bytes());
            h.update([0]);
            h.update(t.as_bytes());
        }
    }
    format!("{:x}", h.finalize())
}

/// Reads a source file, which must exist and be UTF-8.
fn read_source(files: &dyn RepoFiles, path: &str) -> Result<String, Problem> {
    let bytes = match files.read(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(Problem::new("quire_ci::no_ci_fnl", format!("no {path} in this repository"))
                .help("create one with a (ci.job ...) per job; see docs/ci-fnl.md"))
        }
        Err(e) => return Err(Problem::new("quire_ci::read", format!("cannot read {path}: {e}"))),
    };
    decode_source(path, bytes)
}

/// Source text must be UTF-8; the error names the line and byte.
fn decode_source(path: &str, bytes: Vec<u8>) -> Result<String, Problem> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = bytes[..bad].iter().rposition(|&b| b == b'\n').map(|p| p + 1).unwrap_or(0);
        Problem::new(
            "quire_ci::not_utf8",
            format!(
                "{path} is not valid UTF-8: line {line}, byte {} (offset {bad} in the file) is 0x{:02x}",
                bad - line_start + 1,
                bytes[bad]
            ),
        )
        .help("save the file as UTF-8")
    })
}

/// What a top-level evaluation leaves: the declared jobs, the VM, its clock,
/// the print sink, and the problems found so far (validation comes next).
type Evaluated = (Vec<Declared>, Lua, Clock, PrintSink, Vec<Problem>, bool);

fn evaluate_inner(
    files: Rc<dyn RepoFiles>,
    text: &str,
    limits: Limits,
    clock: &Clock,
    macro_sources: &Rc<RefCell<BTreeMap<String, String>>>,
) -> Result<(Evaluated, Registry), Vec<Problem>> {
    let compiler = Compiler::new(clock, limits.memory)
        .map_err(|e| vec![Problem::new("quire_ci::fennel", format!("cannot load the Fennel compiler: {e}"))])?;
    {
        let (files, seen) = (files.clone(), macro_sources.clone());
        compiler
            .serve_macro_modules(move |name| {
                let path = module_path(name).map_err(|_| {
                    format!("import-macros of \"{name}\" is refused: macro modules resolve only inside .quire/ (names like macros or lib.macros)")
                })?;
                match files.read(&path) {
                    Ok(Some(bytes)) => {
                        let text = decode_source(&path, bytes).map_err(|p| p.message)?;
                        seen.borrow_mut().insert(path.clone(), text.clone());
                        Ok((path, text))
                    }
                    Ok(None) => Err(format!("macro module '{name}' not found: there is no {path} (macro modules resolve only inside .quire/)")),
                    Err(e) => Err(format!("cannot read {path}: {e}")),
                }
            })
            .map_err(|e| vec![Problem::new("quire_ci::fennel", format!("cannot set up macro modules: {e}"))])?;
    }
    let compiled = compiler.compile(CI_FNL, text).map_err(|e| vec![compile_problem(e)])?;
    let lua_text = compiled.lua.clone();

    let registry = Rc::new(RefCell::new(Registry::default()));
    registry.borrow_mut().sources.insert(CI_FNL.to_string(), text.to_string());
    registry.borrow_mut().forms.insert(CI_FNL.to_string(), compiled);
    let print_sink: PrintSink = Rc::new(RefCell::new(Box::new(|line: String| eprintln!("ci.fnl: {line}"))));

    let module_cache: Rc<RefCell<HashMap<String, Value>>> = Rc::new(RefCell::new(HashMap::new()));
    let compiler = Rc::new(compiler);
    let reader = files;

    let lua = {
        let registry = registry.clone();
        let print_sink = print_sink.clone();
        sandbox::execute_vm(&limits, clock, |lua, g| {
            let ci = quire_ci_module(lua, registry.clone())?;
            let req = {
                let registry = registry.clone();
                let cache = module_cache.clone();
                let compiler = compiler.clone();
                let reader = reader.clone();
                lua.create_function(move |lua, name: Value| {
                    let name = match name {
                        Value::String(s) => s.to_str()?.to_string(),
                        other => {
                            return Err(mlua::Error::runtime(format!(
                                "require expects a module name, got a {}",
                                other.type_name()
                            )))
                        }
                    };
                    if name == "quire.ci" {
                        return Ok(Value::Table(ci.clone()));
                    }
                    if let Some(v) = cache.borrow().get(&name) {
                        return Ok(v.clone());
                    }
                    let value = load_module(lua, &name, &compiler, &reader, &registry)?;
                    cache.borrow_mut().insert(name, value.clone());
                    Ok(value)
                })?
            };
            g.raw_set("require", req)?;
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
        .map_err(|e| vec![Problem::new("quire_ci::sandbox", format!("cannot set up the ci.fnl sandbox: {e}"))])?
    };

    let chunk = sandbox::load_chunk(&lua, CI_FNL, &lua_text)
        .map_err(|e| vec![Problem::new("quire_ci::fennel", format!("compiled ci.fnl did not load in Luau: {e}"))])?;
    registry.borrow_mut().chunks.push(chunk.clone());
    let result = chunk.call::<mlua::MultiValue>(());
    let mut problems = Vec::new();
    if let Err(e) = &result {
        if let Some(p) = runtime_problem(e, "quire_ci::eval", "evaluating ci.fnl failed") {
            problems.push(p);
        }
    }
    // A top level that stopped half-way registered only some jobs: checking
    // the graph would only add noise about the missing ones.
    let complete = result.is_ok();
    let mut reg = std::mem::take(&mut *registry.borrow_mut());
    problems.append(&mut reg.problems);
    let jobs = std::mem::take(&mut reg.jobs);
    Ok(((jobs, lua, clock.clone(), print_sink, problems, complete), reg))
}


/// Turns a Fennel compile error into a problem.
pub fn compile_problem(e: CompileError) -> Problem {
    let (code, what) = match e.kind {
        CompileErrorKind::Parse => ("quire_ci::parse", "parse error"),
        CompileErrorKind::Compile => ("quire_ci::compile", "compile error"),
        CompileErrorKind::Limit => return limit_problem(&e.message),
    };
    let mut p = Problem::new(code, format!("{what} in {}: {}", e.file, e.message)).label(e.message.clone());
    if let Some(line) = e.line {
        p = p.at(&e.file, line).columns(e.span);
    }
    let help = if e.message.ends_with("stack overflow") {
        "the Fennel compiler ran out of stack: forms nested thousands deep, or a macro that recurses without end".to_string()
    } else if e.help.is_empty() {
        "fix the form at the marked place; docs/ci-fnl.md shows the ci.fnl surface".to_string()
    } else {
        // Fennel ends each suggestion with a full stop; joined, they read as one line.
        e.help.iter().map(|h| h.trim_end_matches('.')).collect::<Vec<_>>().join("; ")
    };
    p.help(help)
}

/// Marks an error that was already recorded as a problem, so the top-level
/// error it causes is not reported a second time.
const REPORTED: &str = "quire-ci: already reported: ";

/// Turns a Lua runtime error into a problem pointing at its line.
pub fn runtime_problem(e: &mlua::Error, code: &'static str, what: &str) -> Option<Problem> {
    let text = crate::fennel::root_message(e);
    if text.contains(REPORTED) {
        return None;
    }
    if let Some(limit) = sandbox::limit_message(&text) {
        return Some(limit_problem(&limit));
    }
    if sandbox::is_memory_error(e) {
        return Some(
            Problem::new("quire_ci::limit", "ci.fnl exceeded its memory cap (raise it with --lua-memory)")
                .help("ci.fnl's top level should only declare jobs; build big strings inside (sh ...)"),
        );
    }
    let (loc, msg) = split_location(&text);
    let mut p = Problem::new(code, format!("{what}: {msg}")).label(msg.clone());
    if let Some((file, line)) = loc {
        p = p.at(&file, line);
    }
    Some(p.help(runtime_help(&msg)))
}

fn runtime_help(msg: &str) -> String {
    if msg.contains("not available in ci.fnl") {
        "ci.fnl runs in a sandbox: (sh ...) is the only way to touch files or run processes, inside the run's container; see docs/sandbox.md".into()
    } else if msg.contains("readonly") || msg.contains("read-only") {
        "library tables are shared and read-only in ci.fnl; build your own table instead".into()
    } else if msg.contains("stack overflow") {
        "a function recursed without end".into()
    } else {
        "see the marked line".into()
    }
}

/// Splits `file.fnl:LINE: message` into its location and message.
pub fn split_location(text: &str) -> (Option<(String, usize)>, String) {
    let first = text.lines().next().unwrap_or("").trim();
    // Fennel's own runtime errors may lead with "runtime error: ".
    let first = first.strip_prefix("runtime error: ").unwrap_or(first);
    if let Some(idx) = first.find(".fnl:") {
        let file = &first[..idx + 4];
        let rest = &first[idx + 5..];
        if let Some(colon) = rest.find(':') {
            if let Ok(line) = rest[..colon].parse::<usize>() {
                let msg = rest[colon + 1..].trim().to_string();
                return (Some((file.to_string(), line)), msg);
            }
        }
    }
    (None, first.to_string())
}

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

fn quire_ci_module(lua: &Lua, registry: Rc<RefCell<Registry>>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
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
                        Problem::new("quire_ci::too_many_jobs", msg.clone())
                            .at(&file, line)
                            .label("this call went past the limit")
                            .help("a pipeline this size is almost certainly a loop gone wrong; check its bounds"),
                    );
                }
                return Err(mlua::Error::runtime(format!("{REPORTED}too many jobs")));
            }
            let (file, line) = caller_location(lua, &reg);
            let problem = |code, msg: String, help: &str| Problem::new(code, msg.clone()).at(&file, line).label(msg).help(help.to_string());
            let id = match id {
                Value::String(s) => s.to_str()?.to_string(),
                other => {
                    reg.problems.push(problem(
                        "quire_ci::job_id_type",
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
                            "quire_ci::inputs_type",
                            format!("job :{id}: inputs must be a sequence of job ids and sources, but {what}"),
                            "write inputs as a sequence of keywords, e.g. [:quire/push] or [:build :test]",
                        ));
                        return Ok(());
                    }
                },
                other => {
                    reg.problems.push(problem(
                        "quire_ci::inputs_type",
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
                        "quire_ci::run_type",
                        format!("job :{id}: the run-fn must be a function, got {}", describe(&other)),
                        "pass (fn [{: sh}] ...) as the third argument",
                    ));
                    return Ok(());
                }
            };
            reg.jobs.push(Declared { id, inputs, file, line, run });
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
                        Problem::new("quire_ci::image_type", msg.clone())
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
    for pair in t.pairs::<Value, Value>() {
        if let Ok((k, _)) = pair {
            let in_seq = matches!(k, Value::Integer(i) if i >= 1 && (i as usize) <= n);
            if !in_seq {
                extra += 1;
            }
        }
    }
    if extra > 0 {
        return Err(format!("it has {extra} non-sequence key(s) (a {{...}} table instead of [...]?)"));
    }
    Ok(out)
}

/// Resolves `(require :name)` inside `.quire/`: `helpers` is
/// `.quire/helpers.fnl`, `lib.util` is `.quire/lib/util.fnl`.
pub fn module_path(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !ok {
        return Err(format!(
            "require of \"{name}\" is refused: ci.fnl can require only quire.ci and modules inside .quire/ (names like helpers or lib.util)"
        ));
    }
    Ok(format!(".quire/{}.fnl", name.replace('.', "/")))
}

/// Libraries a Lua programmer may reach for with `require`; none is
/// loadable from ci.fnl (unless the repo has a `.quire/` module so named).
const HOST_LIBRARIES: &[&str] = &[
    "os", "io", "debug", "package", "coroutine", "ffi", "jit", "fennel", "lfs", "socket", "posix", "luv",
];

/// Globals ci.fnl already has, which Lua 5.1 habits may still `require`.
const GLOBAL_LIBRARIES: &[&str] = &["string", "table", "math", "utf8", "bit32", "bit"];

fn missing_module(name: &str, path: &str) -> String {
    if HOST_LIBRARIES.contains(&name) {
        format!(
            "require of \"{name}\" is refused: ci.fnl cannot load host libraries; it can require only quire.ci and modules inside .quire/ (there is no {path})"
        )
    } else if GLOBAL_LIBRARIES.contains(&name) {
        format!("module '{name}' is not loaded with require in ci.fnl: `{name}` is already a global (there is no {path})")
    } else {
        format!("module '{name}' not found: there is no {path} (modules resolve only inside .quire/)")
    }
}

fn load_module(
    lua: &Lua,
    name: &str,
    compiler: &Compiler,
    reader: &Rc<dyn RepoFiles>,
    registry: &Rc<RefCell<Registry>>,
) -> mlua::Result<Value> {
    let path = module_path(name).map_err(mlua::Error::runtime)?;
    let text = match reader.read(&path) {
        Ok(Some(bytes)) => match decode_source(&path, bytes) {
            Ok(t) => t,
            Err(p) => {
                registry.borrow_mut().problems.push(p);
                return Err(mlua::Error::runtime(format!("{REPORTED}{name}")));
            }
        },
        Ok(None) => return Err(mlua::Error::runtime(missing_module(name, &path))),
        Err(e) => return Err(mlua::Error::runtime(format!("cannot read {path}: {e}"))),
    };
    registry.borrow_mut().sources.insert(path.clone(), text.clone());
    let lua_text = match compiler.compile(&path, &text) {
        Ok(t) => {
            let lua_text = t.lua.clone();
            registry.borrow_mut().forms.insert(path.clone(), t);
            lua_text
        }
        Err(e) => {
            registry.borrow_mut().problems.push(compile_problem(e));
            return Err(mlua::Error::runtime(format!("{REPORTED}{name}")));
        }
    };
    let f = sandbox::load_chunk(lua, &path, &lua_text)?;
    registry.borrow_mut().chunks.push(f.clone());
    let v: Value = f.call(name)?;
    Ok(if v.is_nil() { Value::Boolean(true) } else { v })
}

/// Every structural rule of DESIGN.md §2, over (id, inputs, file, line) in
/// declaration order. Reports every problem, not only the first.
pub fn validate(jobs: &[(String, Vec<String>, String, usize)], images: &[ImageDecl]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for extra in images.iter().skip(1) {
        let first = &images[0];
        problems.push(
            Problem::new(
                "quire_ci::image_twice",
                format!("ci.image is declared twice: {:?} here, {:?} at {}:{}", extra.name, first.name, first.file, first.line),
            )
            .at(&extra.file, extra.line)
            .label("second ci.image")
            .help("a pipeline has one image; keep one (ci.image ...) call"),
        );
    }
    let ids: HashSet<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    // Suggestions cost an edit distance against every id; a generated ci.fnl
    // with thousands of typos must not turn validation into a hang.
    let mut suggestions_left = 100usize;
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for (idx, (id, inputs, file, line)) in jobs.iter().enumerate() {
        if id.is_empty() {
            problems.push(
                Problem::new("quire_ci::job_id", "a job id is empty".to_string())
                    .at(file, *line)
                    .label("empty id")
                    .help("give the job a name, e.g. :test"),
            );
        }
        if id.contains('/') {
            problems.push(
                Problem::new("quire_ci::job_id", format!("job id :{id} contains '/'"))
                    .at(file, *line)
                    .label("'/' is reserved for sources like :quire/push")
                    .help(format!("rename it, e.g. :{}", id.replace('/', "-"))),
            );
        }
        if let Some(&first) = first_at.get(id.as_str()) {
            let (_, _, ffile, fline) = &jobs[first];
            problems.push(
                Problem::new("quire_ci::duplicate_job", format!("job :{id} is declared twice (first at {ffile}:{fline})"))
                    .at(file, *line)
                    .label("second declaration")
                    .help("job ids must be unique; rename one of them"),
            );
        } else {
            first_at.insert(id, idx);
        }
        if inputs.is_empty() {
            problems.push(
                Problem::new("quire_ci::empty_inputs", format!("job :{id} has no inputs"))
                    .at(file, *line)
                    .label("empty inputs")
                    .help("list what triggers it, e.g. [:quire/push], or the jobs it needs"),
            );
        }
        for input in inputs {
            if input == PUSH_SOURCE || ids.contains(input.as_str()) {
                continue;
            }
            let msg = if input.contains('/') {
                format!("job :{id} has unknown source :{input} (the only source is :quire/push)")
            } else {
                format!("job :{id} has unknown input :{input}: no job has that id")
            };
            let mut p = Problem::new("quire_ci::unknown_input", msg).at(file, *line).label(format!("unknown :{input}"));
            let near = if suggestions_left > 0 && ids.len() <= 10_000 {
                suggestions_left -= 1;
                closest(input, jobs.iter().map(|j| j.0.as_str()).chain([PUSH_SOURCE]))
            } else {
                None
            };
            p = match near {
                Some(near) => p.help(format!("did you mean :{near}?")),
                None => p.help("inputs are job ids declared with ci.job, or :quire/push"),
            };
            problems.push(p);
        }
    }
    problems.extend(structural(jobs));
    problems
}

/// Each job's inputs as indices of jobs (the first job with that id), in
/// the order written, without repeats; sources and unknown names left out.
fn input_edges(jobs: &[(String, Vec<String>, String, usize)]) -> Vec<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        index.entry(j.0.as_str()).or_insert(i);
    }
    jobs.iter()
        .map(|(_, inputs, _, _)| {
            let mut seen = HashSet::new();
            inputs.iter().filter_map(|inp| index.get(inp.as_str()).copied()).filter(|&j| seen.insert(j)).collect()
        })
        .collect()
}

/// Cycles and jobs unreachable from :quire/push. Linear in jobs + inputs,
/// and iterative: a generated pipeline of any size (or a ten-thousand-job
/// chain) must neither hang validation nor overflow the Rust stack.
fn structural(jobs: &[(String, Vec<String>, String, usize)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let edges = input_edges(jobs);
    // Cycles: depth-first search with colours; each back edge is one cycle.
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut colour = vec![WHITE; jobs.len()];
    let mut in_cycle = vec![false; jobs.len()];
    for root in 0..jobs.len() {
        if colour[root] != WHITE {
            continue;
        }
        // (job, next input to look at); the stack is the current path.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = GREY;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let Some(&j) = edges[i].get(*next) else {
                colour[i] = BLACK;
                stack.pop();
                continue;
            };
            *next += 1;
            if colour[j] == GREY {
                let from = stack.iter().position(|&(k, _)| k == j).unwrap_or(0);
                let cycle: Vec<usize> = stack[from..].iter().map(|&(k, _)| k).collect();
                for &k in &cycle {
                    in_cycle[k] = true;
                }
                // Written in dependency order: a needs b needs ... needs a.
                let mut names: Vec<String> = cycle.iter().map(|&k| format!(":{}", jobs[k].0)).collect();
                names.push(format!(":{}", jobs[j].0));
                let (_, _, file, line) = &jobs[j];
                problems.push(
                    Problem::new("quire_ci::cycle", format!("jobs form a cycle: {}", names.join(" → ")))
                        .at(file, *line)
                        .label(format!(":{} depends on itself through this cycle", jobs[j].0))
                        .help("a job cannot need itself, directly or through other jobs; remove one input of the cycle"),
                );
            } else if colour[j] == WHITE {
                colour[j] = GREY;
                stack.push((j, 0));
            }
        }
    }
    // Reachability from the source: breadth-first along "is an input of".
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, ins) in edges.iter().enumerate() {
        for &j in ins {
            dependents[j].push(i);
        }
    }
    let mut reachable = vec![false; jobs.len()];
    let mut queue: std::collections::VecDeque<usize> =
        (0..jobs.len()).filter(|&i| jobs[i].1.iter().any(|inp| inp == PUSH_SOURCE)).collect();
    for &i in &queue {
        reachable[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for &d in &dependents[i] {
            if !reachable[d] {
                reachable[d] = true;
                queue.push_back(d);
            }
        }
    }
    // A job with an unknown input is already reported for it; calling it
    // unreachable as well would only repeat the same mistake.
    let ids: HashSet<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    let known = |inp: &String| inp == PUSH_SOURCE || ids.contains(inp.as_str());
    let orphans: Vec<usize> = (0..jobs.len())
        .filter(|&i| !reachable[i] && !in_cycle[i] && !jobs[i].1.is_empty() && jobs[i].1.iter().all(known))
        .collect();
    for &i in &orphans {
        let (id, inputs, file, line) = &jobs[i];
        let listed: Vec<String> = inputs.iter().map(|s| format!(":{s}")).collect();
        problems.push(
            Problem::new(
                "quire_ci::unreachable",
                format!("job :{id} is not reachable from :quire/push (its inputs: [{}])", listed.join(" ")),
            )
            .at(file, *line)
            .label("never triggered")
            .help("every job must depend on :quire/push, directly or through other jobs"),
        );
    }
    problems
}

/// Kahn's algorithm; among ready jobs the earliest declared goes first
/// (a min-heap of declaration indices keeps that O((jobs + inputs) log jobs)).
fn topological_order(jobs: &[(String, Vec<String>, String, usize)]) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let edges = input_edges(jobs);
    let mut pending: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, ins) in edges.iter().enumerate() {
        for &j in ins {
            dependents[j].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..jobs.len()).filter(|&i| pending[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(jobs.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(next);
        for &d in &dependents[next] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order
}

/// The closest name by edit distance, if close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
