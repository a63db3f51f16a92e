//! `quire.stdlib`: the helpers `(require :quire.stdlib)` gives ci.fnl. The
//! forge's server has this module (empty at quire 5be79b0); quire-ci fills
//! it with what the design names, documented in docs/ci-fnl.md.
//!
//! Owns: the helpers, written in Lua for the execute VM. Must not know
//! about: jobs, Docker, the terminal. A helper uses only what a run-fn
//! hands it, never the runtime itself.

use mlua::{Lua, Table};

/// The module, as Lua (so it runs under the same sandbox and limits as
/// ci.fnl). Frozen: every `require` shares one table.
const STDLIB: &str = r##"
local M = {}

-- (all-passed r1 r2 ...): true when every argument is a table whose :exit
-- is absent or 0 (an `sh` result, or a job's outputs from `jobs`); false for
-- a nil argument (a skipped job) or any other :exit.
M["all-passed"] = function(...)
  for i = 1, select("#", ...) do
    local r = select(i, ...)
    if type(r) ~= "table" then return false end
    local exit = rawget(r, "exit")
    if exit ~= nil and exit ~= 0 then return false end
  end
  return true
end

return table.freeze(M)
"##;

/// Builds the module table in `lua`.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    crate::sandbox::load_chunk(lua, "quire.stdlib", STDLIB)?.call(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_passed_wants_every_result_present_and_exiting_zero() {
        let lua = crate::sandbox::execute_vm(
            &crate::sandbox::Limits::default(),
            &crate::sandbox::Clock::default(),
            |lua, g| g.raw_set("stdlib", module(lua)?),
        )
        .expect("execute VM");
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("{exit = 0}, {exit = 0, stdout = 'x'}", true),
            ("{artifacts = {}}", true),
            ("{exit = 0}, {exit = 1}", false),
            ("{exit = 0}, nil", false),
            ("nil, {exit = 0}", false),
            ("{exit = '0'}", false),
            ("true", false),
        ];
        for (args, want) in cases {
            let got: bool = lua
                .load(format!("return stdlib['all-passed']({args})"))
                .eval()
                .unwrap_or_else(|e| panic!("{args}: {e}"));
            assert_eq!(got, *want, "(all-passed {args})");
        }
        let err = lua.load("stdlib.x = 1").exec().unwrap_err().to_string();
        assert!(err.contains("readonly"), "{err}");
    }
}
