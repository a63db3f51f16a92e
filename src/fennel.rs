//! The compile VM: the real Fennel compiler (`fennel.lua`, embedded at build
//! time) running in its own Luau VM, turning ci.fnl text into Lua text whose
//! line numbers equal the ci.fnl line numbers.
//!
//! Owns: fennel.lua, the two shims it needs under Luau, compile diagnostics.
//! Must not know about: Docker, the terminal, what the compiled code does.
//!
//! Macros and `eval-compiler` run here, so this VM is held to the same
//! limits as the execute VM (memory cap, the evaluation deadline) and gets
//! no more of the host than ci.fnl does: Luau has no `io` and no process
//! functions, and mlua's filesystem `require` is replaced before Fennel loads.

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, StdLib, Table};

use crate::sandbox::Clock;

mod reader;

/// The Fennel compiler as Luau bytecode, compiled from fennel.lua by build.rs
/// with the same Luau this binary links. It is our own code, never the
/// repo's: chunks from the repo are only ever loaded as text.
const FENNEL_BYTECODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fennel.luau"));

/// fennel.lua's built-in macros as (the Lua source it passes to `loadstring`,
/// that source compiled by build.rs).
const BUILTIN_MACROS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/fennel_macros.rs"));

/// One of [`OWN_CHUNKS`] as build.rs compiled it.
macro_rules! own_chunk {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/chunk-", $name, ".luau")).as_slice()
    };
}

/// quire-ci's own Lua in the compile VM: (name, the text here, the bytecode
/// build.rs made of that text, which is what is loaded).
#[cfg(test)]
pub(crate) const OWN_CHUNKS: &[(&str, &str, &[u8])] = &[
    ("SHIMS", SHIMS, own_chunk!("SHIMS")),
    ("LOADSTRING_SHIM", LOADSTRING_SHIM, own_chunk!("LOADSTRING_SHIM")),
    ("POSITIONS_PLUGIN", POSITIONS_PLUGIN, own_chunk!("POSITIONS_PLUGIN")),
    ("HOOK_DISPATCH", HOOK_DISPATCH, own_chunk!("HOOK_DISPATCH")),
    ("MACRO_SEARCHER", MACRO_SEARCHER, own_chunk!("MACRO_SEARCHER")),
    ("READER", reader::READER, own_chunk!("READER")),
    ("PLUGIN", crate::server_compat::PLUGIN, SERVER_COMPAT_PLUGIN),
];

/// server_compat.rs's plugin, as build.rs compiled it.
pub(crate) const SERVER_COMPAT_PLUGIN: &[u8] = own_chunk!("PLUGIN");

/// Serves build.rs's bytecode when fennel.lua `loadstring`s the exact text
/// of a built-in macro module (once each); anything else goes to the real
/// `loadstring`, as text.
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
const LOADSTRING_SHIM: &str = r#"
local precompiled, loadstring_text = ...
local sub, find = string.sub, string.find
loadstring = function(code, name)
  local f = precompiled[code]
  if f ~= nil then
    precompiled[code] = nil
    return f
  end
  -- Fennel's reader turns every string literal into Lua by loading
  -- `return "..."`. One with no escape, quote or control byte in it is
  -- those very bytes: no compile needed.
  if sub(code, 1, 8) == 'return "' and sub(code, -1) == '"' then
    local s = sub(code, 9, -2)
    if not find(s, '[%z\1-\31"\\\127]') then
      return function() return s end
    end
  end
  return loadstring_text(code, name)
end
"#;

/// The version of the embedded fennel.lua, read by build.rs.
pub const FENNEL_VERSION: &str = env!("QUIRE_FENNEL_VERSION");

/// A digest build.rs takes of everything that decides what a compile
/// produces (fennel.lua and the Rust files that set the compiler up: its
/// shims, plugins, options and allowed globals), so a compile cache entry
/// made by another build of the same version is never used.
pub const COMPILE_FINGERPRINT: &str = env!("QUIRE_COMPILE_FINGERPRINT");

/// Markers handed to Fennel as its `error-pinpoint`, so the offending span of
/// the source line can be read back out of its friendly error message.
const PIN_OPEN: &str = "\u{1}";
const PIN_CLOSE: &str = "\u{2}";

/// Shims that fennel.lua needs under Luau: a `package`/`require` that only
/// serves `package.preload` (fennel.lua registers its own submodules there),
/// and `debug.getinfo` built on Luau's `debug.info`.
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
const SHIMS: &str = r#"
local preload, loaded = {}, {}
package = { preload = preload, loaded = loaded, path = "", searchers = {}, loaders = {} }
function require(name)
  local m = loaded[name]
  if m ~= nil then return m end
  local loader = preload[name]
  if loader == nil then
    error("module '" .. tostring(name) .. "' is not available at compile time", 2)
  end
  m = loader(name)
  if m == nil then m = true end
  loaded[name] = m
  return m
end
local info = debug.info
debug.getinfo = function(what, fields)
  local level = what
  if type(what) == "number" then level = what + 1 end
  local ok, src, line, name, fn = pcall(info, level, "slnf")
  if not ok or src == nil then return nil end
  local short = src:gsub("^[@=]", "")
  local kind = "Lua"
  if src == "[C]" then kind = "C" end
  return { source = src, short_src = short, currentline = line,
           linedefined = line, name = name, func = fn, what = kind }
end
"#;

/// A Fennel compiler plugin that records where each multi-line call starts
/// and ends, marking calls to something named `…job` or `…image`. Luau
/// attributes a multi-line call to the line where it closes; the
/// registration functions map that back to the line where the form opens,
/// which is what a user reads.
///
/// It also moves code a macro defined in the same file expands to onto the
/// line of the macro's call (Fennel does this itself for macros from other
/// files): `(defjob :lint ...)` is declared where it is written, not where
/// `defjob`'s template sits. Nodes that came from the call's own arguments
/// lie inside the call's lines and keep their positions.
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
const POSITIONS_PLUGIN: &str = r#"
local fennel, forms = ...
local source = fennel["ast-source"]
return { name = "quire-ci-positions", versions = { fennel.version },
  macroexpand = function(ast, transformed, scope)
    local call = source(ast)
    local file, first, last = call.filename, call.line, call.endline or call.line
    if not first then return end
    local seen = {}
    local function walk(node)
      if type(node) ~= "table" or seen[node] then return end
      seen[node] = true
      local src = source(node)
      if src.line and src.filename == file and (src.line < first or src.line > last) then
        src.line, src.endline = first, last
      end
      for _, child in pairs(node) do walk(child) end
    end
    walk(transformed)
  end,
  -- Runs for every call form Fennel compiles: kept cheap.
  call = function(ast, scope)
    local first = ast.line
    if not first then return end
    local last = ast.endline or first
    local head = ast[1]
    local name = type(head) == "table" and fennel["sym?"](head) and head[1]
    local registration = type(name) == "string" and (name:sub(-3) == "job" or name:sub(-5) == "image")
    if registration or last > first then
      forms[#forms + 1] = { first, last, registration }
    end
  end }
"#;

/// Fennel calls `utils.hook(event, ...)` for every symbol, call, `fn`, `do`
/// and destructuring it compiles, and `utils["hook-opts"]` for every form
/// it reads; its dispatcher makes two closures and runs the plugin's
/// version check (a `gsub`) on each call, whichever events the plugin
/// handles: ~7 M instructions on a 100-job ci.fnl. When the one plugin is
/// ours (made for this Fennel version, so the check passes), these call its
/// handler straight away; any other case goes to Fennel's own dispatcher.
/// A fennel.lua without these names is left as it is.
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
const HOOK_DISPATCH: &str = r#"
local utils = ...
local root, hook_opts = utils.root, utils["hook-opts"]
if type(root) ~= "table" or type(hook_opts) ~= "function" or type(utils.hook) ~= "function" then return end
local function dispatch(event, options, ...)
  local plugins = (options and options.plugins) or (root.options and root.options.plugins)
  if plugins == nil then return nil end
  local plugin = plugins[1]
  if plugins[2] == nil and plugin ~= nil and plugin.name == "quire-ci-positions" then
    local f = plugin[event]
    if f ~= nil then return f(...) end
    return nil
  end
  return hook_opts(event, options, ...)
end
utils["hook-opts"] = dispatch
utils.hook = function(event, ...)
  return dispatch(event, root.options, ...)
end
-- `multi-sym?` runs for nearly every symbol compiled and, for a plain name
-- (the common case), makes two pattern searches to find no `.` or `:`.
-- One search answers that case the same way (nil); the rest go to Fennel.
local multi, sym = utils["multi-sym?"], utils.sym
local sym_mt = type(sym) == "function" and getmetatable(sym("quire-ci")) or nil
if type(multi) == "function" and sym_mt ~= nil then
  local find, type, getmetatable, rawget = string.find, type, getmetatable, rawget
  utils["multi-sym?"] = function(str)
    local name = str
    if type(str) == "table" and getmetatable(str) == sym_mt then name = rawget(str, 1) end
    if type(name) == "string" and not find(name, "[.:]") then return nil end
    return multi(str)
  end
end
"#;

/// Replaces Fennel's macro searchers (a search of the filesystem through
/// `io.open`, which this VM does not have) with one that serves
/// `(import-macros … :name)` from `.quire/name.fnl` through the host.
///
/// A module that fails to compile or load leaves Fennel's own message for
/// it in `failures`, so the diagnostic points into the module rather than
/// only at the `import-macros` form.
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (OWN_CHUNKS)
const MACRO_SEARCHER: &str = r#"
local fennel, read, failures, pin_open, pin_close = ...
local searchers = fennel["macro-searchers"]
for i = #searchers, 1, -1 do table.remove(searchers, i) end
table.insert(searchers, function(module_name)
  local path, source = read(module_name)
  return function(...)
    local ok, result = pcall(fennel.eval, source, { env = "_COMPILER", filename = path,
      ["module-name"] = module_name, requireAsInclude = false, correlate = true, useBitLib = true,
      ["error-pinpoint"] = { pin_open, pin_close } }, ...)
    if ok then return result end
    table.insert(failures, tostring(result))
    error(result, 0)
  end, path
end)
"#;

/// Compiled Lua plus where the registration calls in it sit. Stored as is
/// by the compile cache (compile_cache.rs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Compiled {
    pub lua: String,
    /// (first line, last line) of each `(… job …)` / `(… image …)` form.
    pub forms: Vec<(usize, usize)>,
    /// (first line, last line) of every call that spans lines.
    pub calls: Vec<(usize, usize)>,
    /// What the forge's server would refuse in this file (server_compat.rs).
    pub server_notes: Vec<crate::server_compat::Note>,
}

impl Compiled {
    /// The line where the registration form that Luau reports at `line` opens.
    pub fn form_start(&self, line: usize) -> usize {
        self.forms.iter().filter(|(a, b)| *a <= line && line <= *b).map(|(a, _)| *a).max().unwrap_or(line)
    }

    /// The line where the call that Luau reports at `line` opens: the
    /// outermost multi-line call closing on that line.
    pub fn call_start(&self, line: usize) -> usize {
        self.calls.iter().filter(|(_, b)| *b == line).map(|(a, _)| *a).min().unwrap_or(line)
    }
}

/// What went wrong while compiling one Fennel file.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// `parse` or `compile` (Fennel's own words), or `limit` when the
    /// evaluation deadline or memory cap stopped a macro.
    pub kind: CompileErrorKind,
    pub file: String,
    /// 1-based line, when Fennel reported one.
    pub line: Option<usize>,
    /// 0-based character columns of the offending span on that line.
    pub span: Option<(usize, usize)>,
    pub message: String,
    /// Fennel's "Try ..." suggestions.
    pub help: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileErrorKind {
    Parse,
    Compile,
    Limit,
}

/// The compile VM. One per evaluation; cheap enough to make per run.
pub struct Compiler {
    lua: Lua,
    fennel: Table,
    compile_string: Function,
    plugin: Function,
    server_plugin: Function,
    /// Error texts of macro modules that failed while compiling.
    macro_failures: Table,
    /// Fennel's table of loaded macro modules.
    macro_loaded: Table,
    memory_limit: usize,
}

impl Compiler {
    /// Loads fennel.lua into a fresh Luau VM held to `clock` and `memory_limit`.
    pub fn new(clock: &Clock, memory_limit: usize) -> mlua::Result<Compiler> {
        // DEBUG only to lend `debug.info`/`debug.traceback` to the shim below;
        // the global `debug` is replaced by a table holding just those.
        let libs =
            StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::BIT | StdLib::OS | StdLib::DEBUG;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        // No collection while the compiler loads and compiles: a compile
        // allocates a few MiB (100 jobs: ~1.3 MiB more peak RSS), and
        // Luau's pacing, tuned for long-lived programs, spent ~5% of a cold
        // `validate` collecting. Should the memory cap be reached with
        // collection off, the compile is run again with it on (`compile`).
        lua.gc_stop();
        let g = lua.globals();
        // mlua's own extras: a filesystem `require` and `loadstring`. The shim
        // replaces `require`; `loadstring` stays (Fennel's macro loader uses
        // it with setfenv), but only ever sees text we produced.
        g.raw_set("require", mlua::Nil)?;
        // `debug` exists only for the getinfo shim Fennel wants.
        let debug = lua.create_table()?;
        let luau_debug: Option<Table> = lua.load("return debug").set_mode(ChunkMode::Text).eval().ok();
        if let Some(d) = luau_debug {
            debug.raw_set("info", d.raw_get::<mlua::Value>("info")?)?;
            debug.raw_set("traceback", d.raw_get::<mlua::Value>("traceback")?)?;
        }
        g.raw_set("debug", debug)?;
        // Macros may print; that goes to stderr like top-level print, never
        // to stdout, where it would corrupt `list --json`.
        let print = lua.create_function(|_, args: mlua::Variadic<mlua::Value>| {
            let parts: Vec<String> =
                args.iter().map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_string())).collect();
            eprintln!("ci.fnl (compile): {}", parts.join("\t"));
            Ok(())
        })?;
        g.raw_set("print", print)?;
        lua.load(own_chunk!("SHIMS")).set_name("=quire-ci/fennel-shims").set_mode(ChunkMode::Binary).exec()?;
        let precompiled = lua.create_table()?;
        for (source, bytecode) in BUILTIN_MACROS {
            let f =
                lua.load(*bytecode).set_name("src/fennel/macros.fnl").set_mode(ChunkMode::Binary).into_function()?;
            precompiled.raw_set(lua.create_string(source)?, f)?;
        }
        lua.load(own_chunk!("LOADSTRING_SHIM"))
            .set_name("=quire-ci/loadstring")
            .set_mode(ChunkMode::Binary)
            .call::<()>((precompiled.clone(), g.raw_get::<mlua::Value>("loadstring")?))?;
        // Sealed like the execute VM: library tables read-only, and Luau's
        // "safe environment", which is also what lets its interpreter cache
        // global lookups and fast-call builtins (Fennel compiles ~20% faster).
        lua.sandbox(true)?;
        clock.install(&lua);
        lua.set_memory_limit(memory_limit)?;
        let fennel: Table = lua.load(FENNEL_BYTECODE).set_name("=fennel.lua").set_mode(ChunkMode::Binary).call(())?;
        // Fennel's hook dispatcher, for our one plugin, without the work it
        // does per call for plugins in general (see HOOK_DISPATCH).
        let loaded: Option<Table> = match lua.globals().get::<Option<Table>>("package")? {
            Some(package) => package.get("loaded")?,
            None => None,
        };
        let module = |name: &str| match &loaded {
            Some(loaded) => loaded.get::<Option<Table>>(name),
            None => Ok(None),
        };
        if let Some(utils) = module("fennel.utils")? {
            lua.load(own_chunk!("HOOK_DISPATCH"))
                .set_name("=quire-ci/hook-dispatch")
                .set_mode(ChunkMode::Binary)
                .call::<()>(utils.clone())?;
            // Fennel's forms read without Fennel's byte-at-a-time parser
            // (reader.rs), for every text compile-string is given.
            if let Some(parser) = module("fennel.parser")? {
                lua.load(own_chunk!("READER"))
                    .set_name("=quire-ci/reader")
                    .set_mode(ChunkMode::Binary)
                    .call::<()>((parser, utils))?;
            }
        }
        // Every precompiled macro module was asked for: build.rs read this
        // fennel.lua right (else it still works, compiling them as text).
        debug_assert!(precompiled.is_empty(), "fennel.lua did not loadstring its built-in macros as build.rs expected");
        let compile_string: Function = fennel.get("compileString")?;
        let plugin = lua
            .load(own_chunk!("POSITIONS_PLUGIN"))
            .set_name("=quire-ci/positions")
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        let server_plugin = crate::server_compat::plugin_maker(&lua)?;
        let macro_failures = lua.create_table()?;
        let macro_loaded: Table = fennel.get("macro-loaded")?;
        Ok(Compiler { lua, fennel, compile_string, plugin, server_plugin, macro_failures, macro_loaded, memory_limit })
    }

    /// Serves macro modules (`import-macros`, `require-macros`) through
    /// `read`, which maps a module name to its (path, text), or says why
    /// there is none.
    pub fn serve_macro_modules<F>(&self, read: F) -> mlua::Result<()>
    where
        F: Fn(&str) -> Result<(String, String), String> + 'static,
    {
        let read = self.lua.create_function(move |_, name: String| read(&name).map_err(mlua::Error::runtime))?;
        self.lua
            .load(own_chunk!("MACRO_SEARCHER"))
            .set_name("=quire-ci/macro-searcher")
            .set_mode(ChunkMode::Binary)
            .call::<()>((self.fennel.clone(), read, self.macro_failures.clone(), PIN_OPEN, PIN_CLOSE))
    }

    /// Compiles one Fennel source to Lua with line correlation.
    pub fn compile(&self, file: &str, source: &str) -> Result<Compiled, CompileError> {
        let mut attempt = self.attempt(file, source)?;
        // The memory cap reached while nothing was being collected (see
        // `new`): collect from now on, and compile the file again. Running
        // out can surface as a memory error or, when an error handler was
        // what could not allocate, as Lua's "error in error handling"; the
        // heap, with nothing collected, still shows how full it got.
        if let (Err(e), false) = (&attempt.2, self.lua.gc_is_running()) {
            if crate::sandbox::is_memory_error(e)
                || root_message(e).contains("not enough memory")
                || self.lua.used_memory() >= self.memory_limit / 2
            {
                self.lua.gc_restart();
                let _ = self.lua.gc_collect();
                attempt = self.attempt(file, source)?;
            }
        }
        let (forms, notes, result) = attempt;
        match result {
            Ok(lua) => {
                let (mut registrations, mut calls) = (Vec::new(), Vec::new());
                for form in forms.sequence_values::<Table>().filter_map(Result::ok) {
                    let (Ok(first), Ok(last)) = (form.raw_get::<usize>(1), form.raw_get::<usize>(2)) else { continue };
                    let registration = form.raw_get::<bool>(3).unwrap_or(false);
                    if registration {
                        registrations.push((first, last));
                    }
                    if last > first {
                        calls.push((first, last));
                    }
                }
                let server_notes = crate::server_compat::read_notes(file, &notes);
                Ok(Compiled { lua, forms: registrations, calls, server_notes })
            }
            Err(e) => {
                let outer = parse_error(file, &e);
                // The innermost macro module that failed says where, unless
                // a limit stopped everything.
                let inner: Option<String> = self.macro_failures.raw_get(1).ok();
                Err(match inner {
                    Some(text) if outer.kind != CompileErrorKind::Limit => parse_error_text(file, &text),
                    _ => outer,
                })
            }
        }
    }

    /// One run of Fennel on `file`: the tables the plugins filled (forms,
    /// server notes) and what Fennel returned.
    fn attempt(&self, file: &str, source: &str) -> Result<(Table, Table, mlua::Result<String>), CompileError> {
        let forms = self.lua.create_table().map_err(|e| internal(file, e))?;
        let notes = self.lua.create_table().map_err(|e| internal(file, e))?;
        self.macro_failures.clear().map_err(|e| internal(file, e))?;
        // Each compile loads the macro modules it imports itself, rather than
        // reusing ones an earlier file of this evaluation loaded: what a file's
        // compile read is then exactly what its cached output depends on.
        self.macro_loaded.clear().map_err(|e| internal(file, e))?;
        let opts = self.options(file, &forms, &notes).map_err(|e| internal(file, e))?;
        let result = self.compile_string.call::<String>((source, opts));
        Ok((forms, notes, result))
    }

    /// Whether the compile VM collects garbage now (off until the memory
    /// cap is reached once; tests).
    pub fn collecting(&self) -> bool {
        self.lua.gc_is_running()
    }

    fn options(&self, file: &str, forms: &Table, notes: &Table) -> mlua::Result<Table> {
        let opts = self.lua.create_table()?;
        let plugin: Table = self.plugin.call((self.fennel.clone(), forms.clone()))?;
        crate::server_compat::add_hooks(&self.server_plugin, &self.fennel, notes, file, &plugin)?;
        let plugins = self.lua.create_table()?;
        plugins.raw_push(plugin)?;
        opts.set("plugins", plugins)?;
        opts.set("filename", file)?;
        opts.set("correlate", true)?;
        // Luau has bit32, not Lua 5.3's operators; the execute VM aliases
        // `bit` to `bit32` for Fennel's bitwise forms.
        opts.set("useBitLib", true)?;
        // Unknown globals are compile errors (with Fennel's suggestions)
        // rather than nil at run time.
        let allowed = self.lua.create_table()?;
        for name in crate::sandbox::GLOBALS {
            allowed.raw_push(*name)?;
        }
        opts.set("allowedGlobals", allowed)?;
        let pin = self.lua.create_table()?;
        pin.raw_push(PIN_OPEN)?;
        pin.raw_push(PIN_CLOSE)?;
        opts.set("error-pinpoint", pin)?;
        // Macros get Fennel's safe compiler environment (its default), which is
        // built from this VM's globals: no io, no process, no filesystem.
        Ok(opts)
    }
}

fn internal(file: &str, e: mlua::Error) -> CompileError {
    CompileError {
        kind: CompileErrorKind::Compile,
        file: file.to_string(),
        line: None,
        span: None,
        message: format!("internal error preparing the Fennel compiler: {e}"),
        help: vec![],
    }
}

/// Reads Fennel's error text: `file:LINE:COL: Parse error: MSG` then, when it
/// could show the source, the line with the span between the pinpoint
/// markers, then `* Try ...` suggestions.
fn parse_error(file: &str, err: &mlua::Error) -> CompileError {
    parse_error_text(file, &root_message(err))
}

fn parse_error_text(file: &str, text: &str) -> CompileError {
    if std::env::var_os("QUIRE_CI_DEBUG_FENNEL").is_some() {
        eprintln!("fennel said: {text:?}");
    }
    if let Some(limit) = crate::sandbox::limit_message(text) {
        return CompileError {
            kind: CompileErrorKind::Limit,
            file: file.to_string(),
            line: None,
            span: None,
            message: limit,
            help: vec![],
        };
    }
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    let (kind, named, line, message) =
        split_header(first).unwrap_or((CompileErrorKind::Compile, None, None, first.to_string()));
    // An error inside a macro module names that module's file (Fennel's
    // own built-in macros name files that are not the repo's: not those).
    let file = named.filter(|f| f.starts_with(".quire/") && f.ends_with(".fnl")).unwrap_or_else(|| file.to_string());
    let file = file.as_str();
    // How Fennel words an error raised while running a macro or a searcher.
    let message = message.strip_prefix("runtime error: ").map(str::to_string).unwrap_or(message);
    let mut span = None;
    let mut help = Vec::new();
    for l in lines {
        if let Some(open) = l.find(PIN_OPEN) {
            let close = l.find(PIN_CLOSE).unwrap_or(l.len());
            let start = l[..open].chars().count();
            let len = l[open + PIN_OPEN.len()..close].chars().count();
            span = Some((start, start + len.max(1)));
        } else if let Some(s) = l.trim().strip_prefix("* ") {
            // Globals are not how ci.fnl shares values; don't suggest _G.
            if !s.contains("_G") {
                help.push(s.to_string());
            }
        }
    }
    CompileError { kind, file: file.to_string(), line, span, message, help }
}

fn split_header(first: &str) -> Option<(CompileErrorKind, Option<String>, Option<usize>, String)> {
    for (needle, kind) in [(" Parse error: ", CompileErrorKind::Parse), (" Compile error: ", CompileErrorKind::Compile)]
    {
        if let Some(at) = first.find(needle) {
            let loc = first[..at].trim_end_matches(':');
            let message = first[at + needle.len()..].trim().to_string();
            let mut parts = loc.rsplitn(3, ':');
            let _col = parts.next();
            let line = parts.next().and_then(|l| l.parse().ok());
            let file = parts.next().map(str::to_string);
            return Some((kind, file, line, message));
        }
    }
    None
}

/// The innermost message of an mlua error, without Rust-side wrapping.
pub fn root_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::MemoryError(m) => format!("memory: {m}"),
        mlua::Error::ExternalError(e) => e.to_string(),
        mlua::Error::WithContext { cause, .. } => root_message(cause),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiler(memory: usize) -> Compiler {
        Compiler::new(&Clock::default(), memory).expect("the compile VM loads")
    }

    /// The value of the compiled chunk, run in a plain VM.
    fn run(lua_source: &str) -> Vec<String> {
        let lua = Lua::new();
        lua.load(lua_source).eval::<Vec<String>>().expect("the compiled Lua runs")
    }

    /// The quick `multi-sym?` (HOOK_DISPATCH) answers as Fennel's does:
    /// nil for a plain name, as a string or a symbol; the parts for a
    /// dotted or method name; false for what is not a name at all.
    #[test]
    fn the_quick_multi_sym_check_answers_as_fennels_does() {
        let c = compiler(64 << 20);
        let said: Vec<String> = c
            .lua
            .load(
                r#"
                local u = package.loaded["fennel.utils"]
                local m, sym = u["multi-sym?"], u.sym
                local function show(v)
                  if type(v) ~= "table" then return tostring(v) end
                  local s = table.concat(v, "|")
                  if v["multi-sym-method-call"] then s = s .. " (method)" end
                  return s
                end
                local out = {}
                for _, x in ipairs({ "job", sym("job"), "ci.job", sym("ci.job"), sym("s:upper"),
                                     "a.b.c", ".", "..", "a..b", ".a", "a.", sym("..."), "-", sym("~=") }) do
                  table.insert(out, show(m(x)))
                end
                table.insert(out, show(m(42)))
                table.insert(out, show(m(nil)))
                table.insert(out, show(m({ "not", "a", "sym" })))
                return out
                "#,
            )
            .set_mode(ChunkMode::Text)
            .eval()
            .expect("the check runs");
        let want = [
            "nil",
            "nil",
            "ci|job",
            "ci|job",
            "s|upper (method)",
            "a|b|c",
            "false",
            "false",
            "false",
            "false",
            "false",
            "false",
            "nil",
            "nil",
            "false",
            "false",
            "false",
        ];
        assert_eq!(said, want);
    }

    #[test]
    fn each_own_chunk_is_loaded_as_the_bytecode_of_its_text() {
        let compiler = mlua::chunk::Compiler::new().set_optimization_level(2).set_debug_level(1);
        for (name, text, bytecode) in OWN_CHUNKS {
            assert_eq!(compiler.compile(text).expect("compiles").as_slice(), *bytecode, "{name}");
        }
    }

    #[test]
    fn string_literals_read_the_same_with_or_without_escapes() {
        let c = compiler(256 << 20);
        let src = r#"["plain" "with space: $HOME & *" "q\"uote" "back\\slash" "tab\tand\nnewline" "é ü ✓" "" "multi
line"]"#;
        let out = c.compile("t.fnl", src).expect("compiles");
        let want = [
            "plain",
            "with space: $HOME & *",
            "q\"uote",
            "back\\slash",
            "tab\tand\nnewline",
            "é ü ✓",
            "",
            "multi\nline",
        ];
        assert_eq!(run(&out.lua), want);
    }

    #[test]
    fn a_compile_collects_nothing_until_the_memory_cap_needs_it() {
        let c = compiler(256 << 20);
        c.compile("a.fnl", "(local x [1 2 3]) x").expect("compiles");
        assert!(!c.collecting(), "a small compile runs without the collector");
        // A macro that makes ~60 MiB of garbage (never more than 10 KiB
        // live) under a 24 MiB cap: too much without collecting, fine with.
        let churn = r#"(macro churn [] (var n 0) (for [i 1 6000] (set n (+ n (length (.. (string.rep "x" 10000) i))))) n)
[(tostring (churn))]"#;
        let c = compiler(24 << 20);
        let out = c.compile("b.fnl", churn).expect("compiled again with the collector on");
        assert!(c.collecting());
        let digits: usize = (1..=6000).map(|i: usize| i.to_string().len()).sum();
        assert_eq!(run(&out.lua), [(6000 * 10000 + digits).to_string()]);
    }
}
