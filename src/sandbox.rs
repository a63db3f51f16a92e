//! The execute VM: a separate, sandboxed Luau VM that runs compiled ci.fnl,
//! plus the limits every VM of ours is held to.
//!
//! Owns: which globals ci.fnl sees, the memory cap, the evaluation deadline
//! and the per-run-fn CPU budget (the `Clock`). Must not know about: Docker,
//! the terminal, what a job is.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::chunk::ChunkMode;
use mlua::{Lua, LuaOptions, StdLib, Table, Value, VmState};

pub mod lua54;

/// Every limit message starts with this, so it can be recognised after it
/// has travelled through Lua error values and `pcall`s.
const LIMIT_PREFIX: &str = "quire-ci limit: ";

/// The limits a ci.fnl evaluation runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory cap of each VM, in bytes (`--lua-memory`).
    pub memory: usize,
    /// Wall-clock deadline for compiling and registering (`--eval-timeout`).
    pub eval_timeout: Duration,
    /// Lua-side CPU time each run-fn may spend, excluding time blocked in
    /// `sh` (`--job-lua-timeout`).
    pub run_fn_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 * 1024 * 1024,
            eval_timeout: Duration::from_secs(10),
            run_fn_budget: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Off,
    Deadline { at: Instant, limit: Duration },
    Budget { used: Duration, since: Option<Instant>, limit: Duration },
}

/// One run-fn's Lua-time budget while its coroutine is not running.
#[derive(Debug, Clone)]
pub struct Budget {
    mode: Mode,
    tripped: Option<String>,
    /// It was counting (not paused in `sh`) when it was taken out.
    counting: bool,
}

impl Budget {
    /// The limit message, if this budget's run-fn hit a limit.
    pub fn tripped(&self) -> Option<String> {
        self.tripped.clone()
    }
}

/// Time limits checked from the VMs' interrupt callbacks. Once a limit is
/// hit it stays hit ("sticky"): every later check fails too, so a `pcall`
/// in the script cannot swallow it and carry on.
#[derive(Clone)]
pub struct Clock(Rc<ClockState>);

struct ClockState {
    mode: Cell<Mode>,
    tripped: RefCell<Option<String>>,
    /// Set from another thread (a signal handler, a watcher) to stop Lua
    /// that is busy between host calls.
    cancel: RefCell<Option<(Arc<AtomicBool>, String)>>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock(Rc::new(ClockState {
            mode: Cell::new(Mode::Off),
            tripped: RefCell::new(None),
            cancel: RefCell::new(None),
        }))
    }
}

impl Clock {
    /// Starts the wall-clock deadline for top-level evaluation.
    pub fn start_deadline(&self, limit: Duration) {
        self.0.tripped.replace(None);
        EVERY_TICK.with(|e| e.set(false));
        self.0.mode.set(Mode::Deadline { at: Instant::now() + limit, limit });
    }

    /// Starts a fresh Lua-time budget (for one run-fn).
    pub fn start_budget(&self, limit: Duration) {
        self.0.tripped.replace(None);
        EVERY_TICK.with(|e| e.set(false));
        self.0.mode.set(Mode::Budget { used: Duration::ZERO, since: Some(Instant::now()), limit });
    }

    /// Stops counting while the run-fn is blocked in a host call (`sh`).
    pub fn pause(&self) {
        if let Mode::Budget { used, since: Some(s), limit } = self.0.mode.get() {
            self.0.mode.set(Mode::Budget { used: used + s.elapsed(), since: None, limit });
        }
    }

    /// Resumes counting after a host call returns.
    pub fn resume(&self) {
        if let Mode::Budget { used, since: None, limit } = self.0.mode.get() {
            self.0.mode.set(Mode::Budget { used, since: Some(Instant::now()), limit });
        }
    }

    pub fn stop(&self) {
        self.0.mode.set(Mode::Off);
    }

    /// A fresh Lua-time budget for one run-fn, not yet counting: hand it to
    /// [`Clock::enter`] whenever that run-fn's coroutine is resumed.
    pub fn budget(limit: Duration) -> Budget {
        Budget { mode: Mode::Budget { used: Duration::ZERO, since: None, limit }, tripped: None, counting: true }
    }

    /// Makes `budget` the one the interrupt checks (run-fns take turns on
    /// one VM: each is resumed with its own budget and its own sticky trip).
    pub fn enter(&self, budget: Budget) {
        self.0.mode.set(budget.mode);
        let tripped = budget.tripped.is_some();
        self.0.tripped.replace(budget.tripped);
        EVERY_TICK.with(|e| e.set(tripped));
        if budget.counting {
            self.resume();
        }
    }

    /// Takes the running budget back out when its coroutine yields (or
    /// ends), so another run-fn can [`Clock::enter`] its own.
    pub fn leave(&self) -> Budget {
        let counting = matches!(self.0.mode.get(), Mode::Budget { since: Some(_), .. });
        self.pause();
        let budget = Budget { mode: self.0.mode.get(), tripped: self.0.tripped.take(), counting };
        self.0.mode.set(Mode::Off);
        EVERY_TICK.with(|e| e.set(false));
        budget
    }

    /// Makes every check fail with `message` from now on (until the next
    /// start): used when the run must stop, so a `pcall` cannot carry on.
    pub fn trip(&self, message: &str) {
        self.0.tripped.replace(Some(message.to_string()));
        EVERY_TICK.with(|e| e.set(true));
    }

    /// Once `flag` is set, checks fail with `message` (stickily).
    pub fn watch_cancel(&self, flag: Arc<AtomicBool>, message: impl Into<String>) {
        self.0.cancel.replace(Some((flag, message.into())));
    }

    /// The limit message, if a limit was hit since the last start.
    pub fn tripped(&self) -> Option<String> {
        self.0.tripped.borrow().clone()
    }

    /// Fails once a limit is exceeded, and from then on every time.
    pub fn check(&self) -> Result<(), String> {
        if let Some(m) = self.0.tripped.borrow().as_ref() {
            return Err(m.clone());
        }
        if let Some((flag, msg)) = self.0.cancel.borrow().as_ref() {
            if flag.load(Ordering::Relaxed) {
                self.0.tripped.replace(Some(msg.clone()));
                return Err(msg.clone());
            }
        }
        let over = match self.0.mode.get() {
            Mode::Off => None,
            Mode::Deadline { at, limit } => (Instant::now() >= at).then(|| {
                format!(
                    "{LIMIT_PREFIX}evaluation of ci.fnl exceeded its {} deadline (raise it with --eval-timeout)",
                    human(limit)
                )
            }),
            Mode::Budget { used, since, limit } => {
                let used = used + since.map(|s| s.elapsed()).unwrap_or_default();
                (used >= limit).then(|| {
                    format!(
                        "{LIMIT_PREFIX}the run-fn spent more than {} of Lua time (raise it with --job-lua-timeout)",
                        human(limit)
                    )
                })
            }
        };
        match over {
            None => Ok(()),
            Some(m) => {
                self.0.tripped.replace(Some(m.clone()));
                Err(m)
            }
        }
    }

    /// Makes `lua` consult this clock at interrupt points (loop back edges,
    /// calls, returns): every `INTERRUPT_STRIDE`th one, and every one once a
    /// limit has been hit, so a `pcall` in a loop cannot outrun it.
    pub fn install(&self, lua: &Lua) {
        let clock = self.clone();
        lua.set_interrupt(move |_| match clock.check() {
            Ok(()) => Ok(VmState::Continue),
            Err(m) => {
                EVERY_TICK.with(|e| e.set(true));
                Err(mlua::Error::runtime(m))
            }
        });
        // mlua's entry point costs ~130 instructions per call, and Luau calls
        // it at every call and loop edge: that was 14% of a `validate`. Put a
        // counter in front of it. Its address is the same for every VM.
        // SAFETY: runs inside a protected call on this VM's own state; only
        // the interrupt slot of its callbacks is read and written.
        let thinned = unsafe {
            lua.exec_raw::<()>((), |state| {
                let callbacks = mlua::ffi::lua_callbacks(state);
                if let Some(entry) = (*callbacks).interrupt {
                    let _ = MLUA_INTERRUPT.set(entry);
                    (*callbacks).interrupt = Some(thinned_interrupt);
                }
            })
        };
        debug_assert!(thinned.is_ok());
    }
}

type InterruptFn = unsafe extern "C-unwind" fn(*mut mlua::ffi::lua_State, std::ffi::c_int);

/// mlua's interrupt entry point (which calls the `Clock` closure).
static MLUA_INTERRUPT: std::sync::OnceLock<InterruptFn> = std::sync::OnceLock::new();

/// How many interrupt points pass between two clock checks. Luau reaches
/// one every ~150 ns of interpreting, so this is still a check every few
/// microseconds, far finer than any limit.
const INTERRUPT_STRIDE: u32 = 64;

thread_local! {
    static TICKS: Cell<u32> = const { Cell::new(0) };
    /// Set once a limit has tripped on this thread, until the next clock
    /// start: then every interrupt point re-raises it.
    static EVERY_TICK: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C-unwind" fn thinned_interrupt(state: *mut mlua::ffi::lua_State, gc: std::ffi::c_int) {
    if gc >= 0 {
        return; // GC safepoints cannot raise.
    }
    let n = TICKS.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n
    });
    if !n.is_multiple_of(INTERRUPT_STRIDE) && !EVERY_TICK.with(Cell::get) {
        return;
    }
    if let Some(entry) = MLUA_INTERRUPT.get() {
        // No Rust value with a destructor is live here: the Lua error mlua
        // raises may unwind through this frame.
        entry(state, gc);
    }
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// If `text` carries a limit message, that message (without its prefix).
pub fn limit_message(text: &str) -> Option<String> {
    let at = text.find(LIMIT_PREFIX)?;
    let rest = &text[at + LIMIT_PREFIX.len()..];
    Some(rest.lines().next().unwrap_or(rest).to_string())
}

/// Is this mlua error the memory cap being hit?
pub fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        mlua::Error::RuntimeError(m) => m.contains("not enough memory"),
        _ => false,
    }
}

/// Every global name ci.fnl may refer to (the refused ones included, so
/// that using them gives the sandbox's own error naming them).
pub const GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "require",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
    "newproxy",
    "string",
    "table",
    "math",
    "utf8",
    "bit32",
    "bit",
    "os",
    "loadstring",
    "load",
    "dofile",
    "loadfile",
    "getfenv",
    "setfenv",
    "collectgarbage",
    "gcinfo",
    "io",
    "debug",
    "package",
    "coroutine",
];

/// Globals that exist in stock Lua but not in ci.fnl, with why. Each becomes
/// a value that raises a clear error naming itself when used.
const REFUSED: &[(&str, &str)] = &[
    ("loadstring", "loading code at run time is not allowed"),
    ("load", "loading code at run time is not allowed"),
    ("dofile", "ci.fnl cannot read host files"),
    ("loadfile", "ci.fnl cannot read host files"),
    ("getfenv", "environments cannot be inspected"),
    ("setfenv", "environments cannot be changed"),
    ("collectgarbage", "the collector is not scriptable"),
    ("gcinfo", "the collector is not scriptable"),
];

/// Library tables that do not exist in ci.fnl at all; any field of them
/// raises an error naming the field.
const REFUSED_LIBS: &[(&str, &str)] = &[
    ("io", "ci.fnl cannot touch host files; use (sh ...) to work on files inside the container"),
    ("debug", "the debug library can reach past the sandbox"),
    ("package", "modules load only through (require ...) from .quire/"),
    ("coroutine", "coroutines are not part of the ci.fnl surface"),
];

/// `os` functions stock Lua has and Luau's safe `os` does not.
const REFUSED_OS: &[&str] = &["execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale"];

/// Creates the execute VM with the allowed surface. The caller adds its own
/// globals (`require`, `print`) through `setup`, after which the VM is sealed
/// with Luau's `sandbox(true)`: library tables become read-only and scripts
/// get their own global table.
pub fn execute_vm(
    limits: &Limits,
    clock: &Clock,
    setup: impl FnOnce(&Lua, &Table) -> mlua::Result<()>,
) -> mlua::Result<Lua> {
    let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::BIT | StdLib::OS;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let g = lua.globals();
    // The host's async functions (`sh`) yield through `coroutine.yield`;
    // scripts never see the library (see [`async_function`]).
    lua.load_std_libs(StdLib::COROUTINE)?;
    lua.set_app_data(HostCoroutine(g.raw_get::<Table>("coroutine")?));
    g.raw_set("require", Value::Nil)?;
    for (name, why) in REFUSED {
        let msg = format!("{name} is not available in ci.fnl: {why}");
        g.raw_set(
            *name,
            lua.create_function(move |_, ()| -> mlua::Result<()> { Err(mlua::Error::runtime(msg.clone())) })?,
        )?;
    }
    for (name, why) in REFUSED_LIBS {
        g.raw_set(*name, refusing_table(&lua, name, why)?)?;
    }
    let os: Table = g.raw_get("os")?;
    for name in REFUSED_OS {
        let msg = format!("os.{name} is not available in ci.fnl: host processes and the host environment are out of reach; use (sh ...) inside the container");
        os.raw_set(
            *name,
            lua.create_function(move |_, ()| -> mlua::Result<()> { Err(mlua::Error::runtime(msg.clone())) })?,
        )?;
    }
    // Luau's string.rep wraps a huge count around to an empty string rather
    // than failing; a ci.fnl asking for gigabytes gets a clear error instead.
    let guard: mlua::Function = lua
        .load(
            r#"local rep, cap, floor = string.rep, ...
               return function(s, n, sep)
                 local len = #tostring(s) + (sep and #tostring(sep) or 0)
                 local count = tonumber(n)
                 if count and count > 0 and floor(count) * len > cap then
                   error(string.format("string.rep would build a string of %.0f bytes, more than the %d MiB memory cap (--lua-memory)", floor(count) * len, cap // 1048576), 2)
                 end
                 return rep(s, n, sep)
               end"#,
        )
        .set_name("=quire-ci/string.rep")
        .set_mode(ChunkMode::Text)
        .call((limits.memory, g.raw_get::<Table>("math")?.raw_get::<mlua::Function>("floor")?))?;
    g.raw_get::<Table>("string")?.raw_set("rep", guard)?;
    // Lua 5.4's integer questions, which ci.fnl written for the server asks.
    lua54::install(&lua, &g.raw_get::<Table>("math")?)?;
    // Fennel compiles bitwise forms to `bit.band` etc. under useBitLib.
    g.raw_set("bit", g.raw_get::<Value>("bit32")?)?;
    setup(&lua, &g)?;
    lua.sandbox(true)?;
    clock.install(&lua);
    lua.set_memory_limit(limits.memory)?;
    Ok(lua)
}

/// The real `coroutine` library, kept for the host: mlua builds an async
/// function from `coroutine.yield`, which ci.fnl itself cannot reach.
struct HostCoroutine(Table);

/// `lua.create_async_function`, in a VM whose scripts have no `coroutine`:
/// the library is put back for the moment mlua looks it up, then refused
/// again. Host functions made so may wait (the run-fn's coroutine yields).
pub fn async_function<F, A, FR, R>(lua: &Lua, func: F) -> mlua::Result<mlua::Function>
where
    F: Fn(Lua, A) -> FR + 'static,
    A: mlua::FromLuaMulti,
    FR: std::future::Future<Output = mlua::Result<R>> + 'static,
    R: mlua::IntoLuaMulti,
{
    let real = lua.app_data_ref::<HostCoroutine>().map(|c| c.0.clone());
    let Some(real) = real else { return lua.create_async_function(func) };
    let g = lua.globals();
    let refused = g.raw_get::<Value>("coroutine")?;
    g.raw_set("coroutine", real)?;
    let made = lua.create_async_function(func);
    g.raw_set("coroutine", refused)?;
    made
}

fn refusing_table(lua: &Lua, name: &'static str, why: &'static str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let mt = lua.create_table()?;
    let refuse = move |_: &Lua, (_t, key): (Value, Value)| -> mlua::Result<Value> {
        let key = match key {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        };
        Err(mlua::Error::runtime(format!("{name}.{key} is not available in ci.fnl: {why}")))
    };
    mt.raw_set("__index", lua.create_function(refuse)?)?;
    mt.raw_set(
        "__newindex",
        lua.create_function(move |_, (_t, _k, _v): (Value, Value, Value)| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!("{name} is not available in ci.fnl: {why}")))
        })?,
    )?;
    mt.raw_set("__metatable", "locked")?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

/// Loads one compiled chunk (always as text: Luau trusts bytecode).
pub fn load_chunk(lua: &Lua, chunk_name: &str, lua_source: &str) -> mlua::Result<mlua::Function> {
    lua.load(lua_source).set_name(format!("={chunk_name}")).set_mode(ChunkMode::Text).into_function()
}
