//! Repo-local modules: `(require :name)` inside ci.fnl loads
//! `.quire/name.fnl` (compiled, evaluated once, cached); `quire.ci` is the
//! registry's table, `quire.stdlib` the helpers of stdlib.rs; nothing else
//! is loadable.
//!
//! Owns: module names and paths, the messages for refused or missing
//! modules, the `require` global. Must not know about: the graph, Docker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::compile::{Compile, LoadError};
use super::problems::REPORTED;
use super::registry::Registry;
use super::sources::decode_source;
use super::RepoFiles;

/// The `require` global of ci.fnl: `quire.ci` is `ci`, every other name a
/// module inside `.quire/`, each evaluated once.
pub(super) fn require_function(
    lua: &Lua,
    ci: Table,
    compile: Rc<Compile>,
    reader: Rc<dyn RepoFiles>,
    registry: Rc<RefCell<Registry>>,
) -> mlua::Result<Function> {
    let cache: RefCell<HashMap<String, Value>> = RefCell::default();
    let stdlib = crate::stdlib::module(lua)?;
    lua.create_function(move |lua, name: Value| {
        let name = match name {
            Value::String(s) => s.to_str()?.to_string(),
            other => {
                return Err(mlua::Error::runtime(format!("require expects a module name, got a {}", other.type_name())))
            }
        };
        if name == "quire.ci" {
            return Ok(Value::Table(ci.clone()));
        }
        if name == "quire.stdlib" {
            return Ok(Value::Table(stdlib.clone()));
        }
        if let Some(v) = cache.borrow().get(&name) {
            return Ok(v.clone());
        }
        let value = load_module(lua, &name, &compile, &reader, &registry)?;
        cache.borrow_mut().insert(name, value.clone());
        Ok(value)
    })
}

/// Resolves `(require :name)` inside `.quire/`: `helpers` is
/// `.quire/helpers.fnl`, `lib.util` is `.quire/lib/util.fnl`.
pub fn module_path(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name
            .split('.')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if !ok {
        return Err(format!(
            "require of \"{name}\" is refused: ci.fnl can require only quire.ci, quire.stdlib and modules inside .quire/ (names like helpers or lib.util)"
        ));
    }
    Ok(format!(".quire/{}.fnl", name.replace('.', "/")))
}

/// Libraries a Lua programmer may reach for with `require`; none is
/// loadable from ci.fnl (unless the repo has a `.quire/` module so named).
const HOST_LIBRARIES: &[&str] =
    &["os", "io", "debug", "package", "coroutine", "ffi", "jit", "fennel", "lfs", "socket", "posix", "luv"];

/// Globals ci.fnl already has, which Lua 5.1 habits may still `require`.
const GLOBAL_LIBRARIES: &[&str] = &["string", "table", "math", "utf8", "bit32", "bit"];

fn missing_module(name: &str, path: &str) -> String {
    if HOST_LIBRARIES.contains(&name) {
        format!(
            "require of \"{name}\" is refused: ci.fnl cannot load host libraries; it can require only quire.ci, quire.stdlib and modules inside .quire/ (there is no {path})"
        )
    } else if GLOBAL_LIBRARIES.contains(&name) {
        format!(
            "module '{name}' is not loaded with require in ci.fnl: `{name}` is already a global (there is no {path})"
        )
    } else {
        format!("module '{name}' not found: there is no {path} (modules resolve only inside .quire/)")
    }
}

/// Serves `import-macros` while compiling: the macro module's path and text.
pub(super) fn read_macro_module(files: &dyn RepoFiles, name: &str) -> Result<(String, String), String> {
    let path = module_path(name).map_err(|_| {
        format!("import-macros of \"{name}\" is refused: macro modules resolve only inside .quire/ (names like macros or lib.macros)")
    })?;
    match files.read(&path) {
        Ok(Some(bytes)) => {
            let text = decode_source(&path, bytes).map_err(|p| p.message)?;
            Ok((path, text))
        }
        Ok(None) => Err(format!(
            "macro module '{name}' not found: there is no {path} (macro modules resolve only inside .quire/)"
        )),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

fn load_module(
    lua: &Lua,
    name: &str,
    compile: &Compile,
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
    let f = match compile.load(lua, &path, &text) {
        Ok((compiled, f)) => {
            registry.borrow_mut().forms.insert(path.clone(), compiled);
            f
        }
        Err(LoadError::Problem(p)) => {
            registry.borrow_mut().problems.push(p);
            return Err(mlua::Error::runtime(format!("{REPORTED}{name}")));
        }
        Err(LoadError::Lua(e)) => return Err(e),
    };
    registry.borrow_mut().chunks.push(f.clone());
    let v: Value = f.call(name)?;
    Ok(if v.is_nil() { Value::Boolean(true) } else { v })
}
