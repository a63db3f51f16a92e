//! The compile step of one evaluation: ci.fnl and each `.quire/` module
//! turned into Lua and loaded into the execute VM, through the compile
//! cache when there is one. The Fennel compiler (its own VM, the costliest
//! part of a start) is made only when some file is not in the cache.
//!
//! Owns: when to compile, recording the macro modules each compile read,
//! falling back to a compile when a cached result does not load. Must not
//! know about: the cache's file format, the graph, Docker.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use mlua::{Function, Lua};

use super::modules::read_macro_module;
use super::problems::compile_problem;
use super::sources::decode_source;
use super::RepoFiles;
use crate::compile_cache::{CompileCache, Miss, Outcome};
use crate::diagnostic::{Code, Problem};
use crate::fennel::{Compiled, Compiler};
use crate::sandbox::{self, Clock};

/// Why a file did not end up as a loaded chunk.
pub(super) enum LoadError {
    /// It did not compile (or the compiler could not be set up): the problem to report.
    Problem(Problem),
    /// Its compiled Lua did not load into the execute VM.
    Lua(mlua::Error),
}

pub(super) struct Compile {
    clock: Clock,
    memory: usize,
    files: Rc<dyn RepoFiles>,
    /// Every macro module read in this evaluation (diagnostics, the source hash).
    macro_sources: Rc<RefCell<BTreeMap<String, String>>>,
    /// The macro modules the compile under way has read, in order.
    reads: Rc<RefCell<Vec<(String, String)>>>,
    compiler: OnceCell<Compiler>,
    cache: Option<Rc<CompileCache>>,
}

impl Compile {
    pub(super) fn new(
        clock: &Clock,
        memory: usize,
        files: Rc<dyn RepoFiles>,
        macro_sources: Rc<RefCell<BTreeMap<String, String>>>,
        cache: Option<Rc<CompileCache>>,
    ) -> Compile {
        Compile {
            clock: clock.clone(),
            memory,
            files,
            macro_sources,
            reads: Rc::default(),
            compiler: OnceCell::new(),
            cache,
        }
    }

    /// Compiles `file` (whose text is `text`) and loads it into `lua`.
    pub(super) fn load(&self, lua: &Lua, file: &str, text: &str) -> Result<(Compiled, Function), LoadError> {
        let Some(cache) = &self.cache else {
            let compiled = self.compile_fresh(file, text, None).map_err(LoadError::Problem)?;
            let f = sandbox::load_chunk(lua, file, &compiled.lua).map_err(LoadError::Lua)?;
            return Ok((compiled, f));
        };
        let read = |path: &str| self.files.read(path).ok().flatten().and_then(|b| decode_source(path, b).ok());
        let why = match cache.lookup(file, text, read) {
            // Never trusted blindly: what the cache gives is loaded as text
            // like any compile's output, and Lua that Luau refuses is
            // compiled again (the entry overwritten).
            Ok(hit) => match sandbox::load_chunk(lua, file, &hit.compiled.lua) {
                Ok(f) => {
                    let mut seen = self.macro_sources.borrow_mut();
                    for (path, text) in hit.macro_modules {
                        seen.insert(path, text);
                    }
                    cache.note(file, Outcome::Hit);
                    return Ok((hit.compiled, f));
                }
                Err(_) => Miss::Damaged("its Lua does not load"),
            },
            Err(why) => why,
        };
        let compiled = self.compile_fresh(file, text, Some(why)).map_err(LoadError::Problem)?;
        let f = sandbox::load_chunk(lua, file, &compiled.lua).map_err(LoadError::Lua)?;
        Ok((compiled, f))
    }

    /// Runs the Fennel compiler on `file`; stores a success in the cache
    /// (`why` says why it was not served from there).
    fn compile_fresh(&self, file: &str, text: &str, why: Option<Miss>) -> Result<Compiled, Problem> {
        let compiler = self.compiler()?;
        self.reads.borrow_mut().clear();
        let result = compiler.compile(file, text);
        let reads = std::mem::take(&mut *self.reads.borrow_mut());
        let Some(cache) = &self.cache else { return result.map_err(|e| compile_problem(e, file, text)) };
        match result {
            Ok(compiled) => {
                let stored = cache.store(file, text, &compiled, &reads).map_err(|e| e.to_string());
                cache.note(file, Outcome::Compiled { why: why.unwrap_or(Miss::Absent), stored });
                Ok(compiled)
            }
            Err(e) => {
                cache.note(file, Outcome::Failed);
                Err(compile_problem(e, file, text))
            }
        }
    }

    /// The compile VM, made on first use.
    fn compiler(&self) -> Result<&Compiler, Problem> {
        if let Some(c) = self.compiler.get() {
            return Ok(c);
        }
        let compiler = Compiler::new(&self.clock, self.memory)
            .map_err(|e| Problem::new(Code::Fennel, format!("cannot load the Fennel compiler: {e}")))?;
        let (files, seen, reads) = (self.files.clone(), self.macro_sources.clone(), self.reads.clone());
        compiler
            .serve_macro_modules(move |name| {
                let (path, text) = read_macro_module(files.as_ref(), name)?;
                seen.borrow_mut().insert(path.clone(), text.clone());
                reads.borrow_mut().push((path.clone(), text.clone()));
                Ok((path, text))
            })
            .map_err(|e| Problem::new(Code::Fennel, format!("cannot set up macro modules: {e}")))?;
        Ok(self.compiler.get_or_init(|| compiler))
    }
}
