//! What quire-ci knows of the forge's server as shipped (quire at
//! [`SERVER_COMMIT`]) that a ci.fnl can trip on there after passing here,
//! found while Fennel compiles: Luau-only library names, `:quire/push` keys
//! the server does not send, `sh` arguments it refuses, repo-local modules
//! it cannot load, job outputs it does not pass on. Each becomes a warning
//! of `validate` (docs/server-differences.md has the whole table, with the
//! differences no compiler can see).
//!
//! Owns: those lists, the compiler plugin that looks for them, and the
//! warnings' words. Must not know about: Docker, the terminal, how a run
//! goes.

use mlua::{Function, Table};

use crate::diagnostic::{Code, Problem};

/// The server commit these notes describe.
pub const SERVER_COMMIT: &str = "5be79b0";

/// Names ci.fnl can use here that Lua 5.4 (the server's VM, built with
/// 5.3 compatibility) does not have: the server raises "attempt to call a
/// nil value" (or to index one) where quire-ci carries on.
pub const LUAU_ONLY: &[&str] = &[
    "unpack",
    "newproxy",
    "bit32",
    "bit",
    "math.clamp",
    "math.e",
    "math.isfinite",
    "math.isinf",
    "math.isnan",
    "math.lerp",
    "math.map",
    "math.nan",
    "math.noise",
    "math.phi",
    "math.round",
    "math.sign",
    "math.sqrt2",
    "math.tau",
    "string.split",
    "table.clear",
    "table.clone",
    "table.create",
    "table.find",
    "table.foreach",
    "table.foreachi",
    "table.freeze",
    "table.getn",
    "table.isfrozen",
    "table.maxn",
];

/// What Lua 5.4 would use instead, where there is a direct equivalent.
fn lua54_instead(name: &str) -> Option<&'static str> {
    Some(match name {
        "unpack" => "table.unpack",
        "bit32" | "bit" => "Fennel's band/bor/bxor/lshift/rshift forms",
        "table.getn" => "(length t)",
        _ => return None,
    })
}

/// `:quire/push` keys quire-ci sends and the server (which sends only
/// `:sha`, `:ref`, `:pushed-at`) does not.
pub const LOCAL_PUSH_KEYS: &[&str] =
    &["branch", "tag", "previous-sha", "files-changed", "pusher", "commit-message", "dirty", "tree"];

/// The compiler plugin's hooks, made once per compile VM from the two name
/// sets: a function of (fennel, notes, file, plugin) that adds hooks to
/// `plugin` (after any it has: one plugin dispatches cheaper than two,
/// ~10 M instructions on a 100-job ci.fnl) which append
/// `{kind, line, col, endcol, subject}` to `notes` for nodes written in
/// `file` (not ones a macro library brought in).
#[cfg_attr(not(test), allow(dead_code))] // build.rs compiles it (fennel::OWN_CHUNKS)
pub(crate) const PLUGIN: &str = r#"
local luau_only, push_keys = ...
return function(fennel, notes, file, into)
local is_sym, is_multi, is_list, is_table = fennel["sym?"], fennel["multi-sym?"], fennel["list?"], fennel["table?"]
local source = fennel["ast-source"]
local find = string.find
-- Names bound to the push table: (let [push (jobs :quire/push)] ...); to
-- quire.ci, its runtime, and quire.stdlib.
local push_locals, ci_locals, runtime_locals, stdlib_locals = {}, {}, {}, {}
local primitives = { sh = true, jobs = true, secret = true }

local function note(kind, node, subject)
  local src = source(node)
  if src.filename ~= file or not src.line then return end
  notes[#notes + 1] = { kind, src.line, src.col or -1, src.endcol or -1, subject }
end

local function head_name(form)
  if is_list(form) and is_sym(form[1]) then return form[1][1] end
end

-- `word`, or `something.word`.
local function ends_with(name, word)
  if name == word then return true end
  local n = #name - #word
  return n > 0 and name:byte(n) == 46 and name:sub(n + 1) == word
end

-- (jobs :quire/push), (runtime.jobs :quire/push), ...
local function is_push_call(form)
  local name = head_name(form)
  return name ~= nil and ends_with(name, "jobs") and form[2] == "quire/push"
end

-- (require :quire.ci) and the like.
local function is_require_of(form, module)
  return head_name(form) == "require" and form[2] == module
end

local function check_primitive(node, key)
  if key and not primitives[key] then note("runtime-key", node, key) end
end

local function check_push_key(node, key)
  if type(key) == "string" and push_keys[key] then note("push-key", node, key) end
end

local hooks = {
  -- Runs for every symbol Fennel compiles: the common case (a plain name)
  -- costs one string search and a table lookup.
  ["symbol-to-expression"] = function(symbol, scope)
    local name = symbol[1]
    if type(name) ~= "string" then return end
    if not find(name, ".", 2, true) then
      if luau_only[name] and not scope.manglings[name] then note("luau", symbol, name) end
      return
    end
    local parts = is_multi(name) or { name }
    local root = parts[1]
    if scope.manglings[root] then
      if #parts > 1 and push_locals[root] then check_push_key(symbol, parts[2]) end
      if #parts > 1 and runtime_locals[root] then check_primitive(symbol, parts[2]) end
      if parts[2] == "runtime" and ci_locals[root] then check_primitive(symbol, parts[3]) end
      if #parts > 1 and stdlib_locals[root] then note("stdlib", symbol, parts[2]) end
      return
    end
    if luau_only[root] then
      note("luau", symbol, root)
    elseif parts[2] and luau_only[root .. "." .. parts[2]] then
      note("luau", symbol, root .. "." .. parts[2])
    end
  end,
  destructure = function(from, to)
    if is_require_of(from, "quire.ci") then
      if is_sym(to) then
        ci_locals[to[1]] = true
      elseif is_table(to) and not is_list(to) and is_sym(to.runtime) then
        runtime_locals[to.runtime[1]] = true
      end
      return
    elseif is_require_of(from, "quire.stdlib") then
      if is_sym(to) then
        stdlib_locals[to[1]] = true
      elseif is_table(to) and not is_list(to) then
        for k, v in pairs(to) do
          if type(k) == "string" then note("stdlib", v, k) end
        end
      end
      return
    end
    if not is_push_call(from) then return end
    if is_sym(to) then
      push_locals[to[1]] = true
    elseif is_table(to) and not is_list(to) then
      for k, v in pairs(to) do
        if type(k) == "string" then check_push_key(v, k) end
      end
    end
  end,
  call = function(ast)
    local name = head_name(ast)
    if not name then return end
    if name == "." then
      local target = ast[2]
      local from_push = is_push_call(target) or (is_sym(target) and push_locals[target[1]])
      if from_push then check_push_key(ast, ast[3]) end
    elseif name == "require" then
      local m = ast[2]
      if type(m) == "string" and m ~= "quire.ci" and m ~= "quire.stdlib" then note("module", ast, m) end
    elseif name == "import-macros" or name == "require-macros" then
      local m = ast[#ast]
      if type(m) == "string" then note("macros", ast, m) end
    elseif ends_with(name, "sh") then
      local cmd, opts = ast[2], ast[3]
      if is_table(cmd) and not is_list(cmd) then
        for _, item in ipairs(cmd) do
          if type(item) == "number" then note("sh-argv", ast, tostring(item)) end
        end
      end
      if is_table(opts) and not is_list(opts) then
        for k in pairs(opts) do
          if type(k) == "string" and k ~= "env" then note("sh-opt", ast, k) end
        end
        local env = opts.env
        if is_table(env) and not is_list(env) then
          for k, v in pairs(env) do
            if type(v) == "number" or type(v) == "boolean" then note("sh-env", ast, tostring(k)) end
          end
        end
      end
    elseif ends_with(name, "jobs") then
      local j = ast[2]
      if type(j) == "string" and j ~= "quire/push" then note("job-outputs", ast, j) end
    end
  end }
for event, hook in pairs(hooks) do
  local before = into[event]
  if before then
    into[event] = function(...) before(...) return hook(...) end
  else
    into[event] = hook
  end
end
end
"#;

/// One thing the server would refuse, where it was written. Kind
/// `runtime-key` is an error in both places; every other kind a warning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Note {
    pub kind: String,
    pub file: String,
    pub line: usize,
    /// 0-based character columns on that line, when Fennel knew them.
    pub columns: Option<(usize, usize)>,
    pub subject: String,
}

/// Loads the plugin maker into the compile VM (once per VM).
pub fn plugin_maker(lua: &mlua::Lua) -> mlua::Result<Function> {
    let set = |names: &[&str]| -> mlua::Result<Table> {
        let t = lua.create_table()?;
        for n in names {
            t.raw_set(*n, true)?;
        }
        Ok(t)
    };
    // The bytecode build.rs made of PLUGIN (crate::fennel::OWN_CHUNKS).
    lua.load(crate::fennel::SERVER_COMPAT_PLUGIN)
        .set_name("=quire-ci/server-compat")
        .set_mode(mlua::chunk::ChunkMode::Binary)
        .call((set(LUAU_ONLY)?, set(LOCAL_PUSH_KEYS)?))
}

/// Adds the hooks for compiling `file` to `plugin`; what they find lands
/// in `notes`.
pub fn add_hooks(maker: &Function, fennel: &Table, notes: &Table, file: &str, plugin: &Table) -> mlua::Result<()> {
    maker.call((fennel.clone(), notes.clone(), file, plugin.clone()))
}

/// Reads what the plugin found, in source order, once per place and kind.
pub fn read_notes(file: &str, notes: &Table) -> Vec<Note> {
    let mut out: Vec<Note> = Vec::new();
    for n in notes.sequence_values::<Table>().filter_map(Result::ok) {
        let (Ok(kind), Ok(line), Ok(subject)) = (n.raw_get::<String>(1), n.raw_get::<usize>(2), n.raw_get::<String>(5))
        else {
            continue;
        };
        let col = n.raw_get::<i64>(3).unwrap_or(-1);
        let endcol = n.raw_get::<i64>(4).unwrap_or(-1);
        let columns = (col >= 0 && endcol >= col).then(|| (col as usize, endcol as usize + 1));
        let note = Note { kind, file: file.to_string(), line, columns, subject };
        if !out.iter().any(|o| o.kind == note.kind && o.line == note.line && o.subject == note.subject) {
            out.push(note);
        }
    }
    out.sort_by_key(|n| n.line);
    out
}

impl Note {
    /// Whether quire-ci refuses it too (not just the server).
    pub fn is_error(&self) -> bool {
        self.kind == "runtime-key"
    }

    /// The problem `validate` shows for it: an error for a runtime key that
    /// does not exist, else a warning.
    pub fn problem(&self) -> Problem {
        if self.is_error() {
            return Problem::new(
                Code::RuntimeKey,
                format!("runtime has no :{} (it has sh, jobs, secret)", self.subject),
            )
            .at(&self.file, self.line)
            .columns(self.columns)
            .label(format!("no runtime.{}", self.subject))
            .help("use runtime.sh, runtime.jobs or runtime.secret");
        }
        self.warning()
    }

    /// The warning `validate` shows for it.
    pub fn warning(&self) -> Problem {
        let s = &self.subject;
        let at = format!("the server (quire {SERVER_COMMIT})");
        let (code, message, label, help): (Code, String, String, String) = match self.kind.as_str() {
            "luau" => (
                Code::ServerLuauOnly,
                format!("`{s}` is Luau's: {at} runs Lua 5.4, which has no `{s}`"),
                format!("{s} is nil on the server"),
                match lua54_instead(s) {
                    Some(instead) => format!("use {instead}, which both have"),
                    None => "write it with what Lua 5.4 and Luau both have (docs/server-differences.md)".into(),
                },
            ),
            "push-key" => (
                Code::ServerPushKey,
                format!(":quire/push has no :{s} on {at}: it sends only :sha, :ref and :pushed-at"),
                format!(":{s} is nil on the server"),
                "guard the read, e.g. (or push.branch \"\"), or take it from git with (sh ...)".into(),
            ),
            "module" => (
                Code::ServerModule,
                format!("(require :{s}) loads .quire/ here; {at} cannot load Fennel modules from the repository"),
                "a module only quire-ci can load".into(),
                "inline the module into ci.fnl to run the same file on the server".into(),
            ),
            "macros" => (
                Code::ServerModule,
                format!("macros from .quire/{s}.fnl: {at} does not look for macro modules in .quire/"),
                "a macro module only quire-ci can load".into(),
                "define the macros in ci.fnl with (macro ...) to run the same file on the server".into(),
            ),
            "sh-opt" => (
                Code::ServerShOption,
                format!("sh option :{s}: {at} knows only :env and refuses the call (unknown field `{s}`)"),
                format!(":{s} fails on the server"),
                if s == "cwd" {
                    "run (sh (.. \"cd DIR && \" cmd)) instead of :cwd".into()
                } else {
                    "pass only :env".into()
                },
            ),
            "sh-argv" => (
                Code::ServerShArgv,
                format!("argv item {s} is a number: {at} takes only strings in an argv and refuses the call"),
                "a number in the argv".into(),
                format!("write it as a string, \"{s}\""),
            ),
            "sh-env" => (
                Code::ServerShEnv,
                format!(":env value of {s} is not a string: {at} takes only strings and refuses the call"),
                "a non-string :env value".into(),
                "write the value as a string".into(),
            ),
            "stdlib" => (
                Code::ServerStdlib,
                format!("quire.stdlib's {s} is quire-ci's: {at} has an empty quire.stdlib"),
                format!("{s} is nil on the server"),
                "copy the helper into ci.fnl to run the same file on the server (docs/ci-fnl.md has its definition)"
                    .into(),
            ),
            _ => (
                Code::ServerJobOutputs,
                format!(
                    "(jobs :{s}) is :{s}'s outputs here; {at} does not pass job outputs on: it is always nil there"
                ),
                "nil on the server".into(),
                "treat nil as \"no outputs\" if the same file must pass on the server".into(),
            ),
        };
        Problem::new(code, message).at(&self.file, self.line).columns(self.columns).label(label).help(help)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lua 5.4.4 (Debian's lua5.4, built with 5.3 compatibility like the
    /// server's vendored Lua), as `pairs` lists each table.
    const LUA54: &[(&str, &str)] = &[
        ("_G", "_G _VERSION assert collectgarbage coroutine debug dofile error getmetatable io ipairs load loadfile math next os package pairs pcall print rawequal rawget rawlen rawset require select setmetatable string table tonumber tostring type utf8 warn xpcall"),
        ("math", "abs acos asin atan atan2 ceil cos cosh deg exp floor fmod frexp huge ldexp log log10 max maxinteger min mininteger modf pi pow rad random randomseed sin sinh sqrt tan tanh tointeger type ult"),
        ("string", "byte char dump find format gmatch gsub len lower match pack packsize rep reverse sub unpack upper"),
        ("table", "concat insert move pack remove sort unpack"),
        ("os", "clock date difftime execute exit getenv remove rename setlocale time tmpname"),
        ("utf8", "char charpattern codepoint codes len offset"),
    ];

    #[test]
    fn luau_only_is_what_ci_fnl_may_use_here_and_lua_5_4_lacks() {
        let lua = crate::sandbox::execute_vm(
            &crate::sandbox::Limits::default(),
            &crate::sandbox::Clock::default(),
            |_, _| Ok(()),
        )
        .expect("execute VM");
        let mut found = Vec::new();
        for (lib, names) in LUA54 {
            let keys: Vec<String> = lua
                .load(format!(
                    "local t = {0} == '_G' and _G or _G[{0}] local ks = {{}} for k in pairs(t) do ks[#ks + 1] = tostring(k) end return ks",
                    format_args!("{lib:?}")
                ))
                .eval()
                .expect("keys");
            for k in keys {
                let full = if *lib == "_G" { k.clone() } else { format!("{lib}.{k}") };
                // Only what ci.fnl may name (allowed globals) and does not refuse.
                let root = full.split('.').next().unwrap_or_default();
                let usable = crate::sandbox::GLOBALS.contains(&root)
                    && !["loadstring", "getfenv", "setfenv", "gcinfo", "require"].contains(&full.as_str());
                if usable && !names.split(' ').any(|n| n == k) {
                    found.push(full);
                }
            }
        }
        found.sort();
        let mut want: Vec<String> = LUAU_ONLY.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want);
    }

    fn notes(source: &str) -> Vec<Note> {
        let compiler = crate::fennel::Compiler::new(&crate::sandbox::Clock::default(), 256 << 20).expect("compiler");
        compiler.compile(".quire/ci.fnl", source).expect("compiles").server_notes
    }

    fn notes_of(source: &str) -> Vec<(String, usize, String)> {
        notes(source).into_iter().map(|n| (n.kind, n.line, n.subject)).collect()
    }

    #[test]
    fn the_plugin_notes_what_the_server_refuses_and_nothing_else() {
        let source = r#"(local ci (require :quire.ci))
(local helpers (require :helpers))
(ci.job :a [:quire/push]
  (fn [{: sh : jobs}]
    (let [push (jobs :quire/push)
          {: branch : sha} (jobs :quire/push)
          [x y] [(unpack [1 2])]
          built (jobs :b)]
      (sh ["sleep" 1] {:cwd "sub" :env {:A 1 :B "ok"}})
      (sh "true" {:env {:C "fine"}})
      {:tag push.tag :sha push.sha :msg (. push :commit-message) :r (math.round 2.5)
       :u (table.unpack [1]) :s (. (jobs :quire/push) :ref) :f (. (jobs :quire/push) :files-changed)})))
(ci.job :b [:quire/push]
  (fn [] (let [unpack (fn [t] t) rec {:tag 1}] {:x (unpack 1) :y rec.tag :z (string.split "a,b" ",")})))
"#;
        let got = notes_of(source);
        let want: Vec<(String, usize, String)> = [
            ("module", 2, "helpers"),
            ("push-key", 6, "branch"),
            ("luau", 7, "unpack"),
            ("job-outputs", 8, "b"),
            ("sh-argv", 9, "1"),
            ("sh-opt", 9, "cwd"),
            ("sh-env", 9, "A"),
            ("push-key", 11, "tag"),
            ("push-key", 11, "commit-message"),
            ("luau", 11, "math.round"),
            ("push-key", 12, "files-changed"),
            ("luau", 14, "string.split"),
        ]
        .iter()
        .map(|(k, l, s)| (k.to_string(), *l, s.to_string()))
        .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "got {got:?}");
    }

    #[test]
    fn every_note_is_a_warning_naming_the_server() {
        let found = notes("(local ci (require :quire.ci))\n(ci.job :a [:quire/push] (fn [{: sh}] (sh \"x\" {:cwd \"d\"}) {:u (unpack [1])}))\n");
        assert_eq!(found.len(), 2, "{found:?}");
        for n in found {
            let p = n.warning();
            assert!(
                p.code.is_warning()
                    && p.code.as_str().starts_with("quire_ci::server_")
                    && p.message.contains(SERVER_COMMIT),
                "{p:?}"
            );
            assert_eq!(p.line(), Some(2));
        }
    }
}
