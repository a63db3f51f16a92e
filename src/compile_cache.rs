//! The compile cache: Fennel's output for ci.fnl and each `.quire/` module,
//! kept per content under `<git-dir>/quire-ci/compile/`, so `validate`,
//! `run`, `watch` and the hook skip the Fennel compiler when nothing
//! changed. Evaluation still runs every time; only the compile is kept.
//!
//! Owns: what an entry's key is made of, the entry file format, checking an
//! entry before it is used, pruning old entries. Must not know about: Lua
//! VMs, what the compiled code declares, the terminal.
//!
//! An entry is named by the sha256 of (format, quire-ci version, Fennel
//! version, build fingerprint, file path, source text). The macro modules
//! a compile read (`import-macros`) are only known once it ran, so the
//! entry lists them with their sha256 and a lookup reads them again: a
//! changed macro module is a miss. Only successful compiles are stored: a
//! file that fails to compile is compiled again each time, so its
//! diagnostics are always Fennel's own.
//!
//! An entry is never trusted blindly: it carries a sha256 over its body,
//! and one that is truncated, corrupt, of another version or for other
//! text is a miss, recompiled and overwritten. Its Lua is loaded as text
//! into the sandbox like any compile's output (never as bytecode), and the
//! pipeline recompiles when that load fails.
//!
//! A cached compile does not run macros again, so a `print` inside a macro
//! is seen only when the file is really compiled.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fennel::{Compiled, COMPILE_FINGERPRINT, FENNEL_VERSION};

/// The first line of every entry; a new layout gets a new number.
const HEADER: &str = "quire-ci compile cache 1";

/// Entries kept per repository; the oldest beyond this are removed when one
/// is stored. Every edit of ci.fnl makes a new entry.
const KEEP: usize = 64;

/// `<git-dir>/quire-ci/compile`: inside `.git`, so never snapshotted or watched.
pub fn cache_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("quire-ci").join("compile")
}

/// What one evaluation did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the cache: the Fennel compiler did not run for it.
    Hit,
    /// Compiled, because of `why` (a [`Miss`]); `stored` says whether the
    /// result went into the cache and, if not, why.
    Compiled { why: Miss, stored: Result<(), String> },
    /// The Fennel compile failed; failures are not stored.
    Failed,
}

/// Why a lookup found no usable entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Unreadable(String),
    /// Truncated, corrupt, or not an entry for this key.
    Damaged(&'static str),
    /// A macro module the compile read is gone or changed.
    MacroChanged(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Absent => write!(f, "no cache entry"),
            Miss::Unreadable(e) => write!(f, "cache entry unreadable: {e}"),
            Miss::Damaged(why) => write!(f, "cache entry damaged: {why}"),
            Miss::MacroChanged(path) => write!(f, "{path} changed"),
        }
    }
}

/// A usable entry: the compile's output, and the macro modules it read as
/// they are now (path, text), for diagnostics and the source hash.
#[derive(Debug)]
pub struct Hit {
    pub compiled: Compiled,
    pub macro_modules: Vec<(String, String)>,
}

/// The on-disk body of an entry (JSON, after the header and checksum lines).
#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    file: String,
    macro_modules: Vec<Dep>,
    compiled: Compiled,
}

#[derive(Serialize, Deserialize)]
struct Dep {
    path: String,
    sha256: String,
}

/// The compile cache of one repository, and what this process did with it.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    outcomes: RefCell<Vec<(String, Outcome)>>,
}

impl CompileCache {
    pub fn at(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into(), outcomes: RefCell::default() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for `file` holding `source`, if there is a sound one whose
    /// macro modules are unchanged; `read` gives a macro module's text now.
    pub fn lookup(&self, file: &str, source: &str, read: impl Fn(&str) -> Option<String>) -> Result<Hit, Miss> {
        let key = key(file, source);
        let bytes = match std::fs::read(self.dir.join(&key)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Unreadable(e.to_string())),
        };
        let stored = decode(&bytes)?;
        if stored.key != key || stored.file != file {
            return Err(Miss::Damaged("it is for another file"));
        }
        let mut macro_modules = Vec::with_capacity(stored.macro_modules.len());
        for dep in stored.macro_modules {
            match read(&dep.path) {
                Some(text) if sha256(text.as_bytes()) == dep.sha256 => macro_modules.push((dep.path, text)),
                _ => return Err(Miss::MacroChanged(dep.path)),
            }
        }
        Ok(Hit { compiled: stored.compiled, macro_modules })
    }

    /// Stores a successful compile of `file` holding `source`, which read
    /// `macro_modules` (path, text). Written whole to a temporary file and
    /// renamed, so a reader never sees half an entry.
    pub fn store(
        &self,
        file: &str,
        source: &str,
        compiled: &Compiled,
        macro_modules: &[(String, String)],
    ) -> io::Result<()> {
        let key = key(file, source);
        let mut deps: Vec<Dep> =
            macro_modules.iter().map(|(p, t)| Dep { path: p.clone(), sha256: sha256(t.as_bytes()) }).collect();
        deps.sort_by(|a, b| a.path.cmp(&b.path));
        deps.dedup_by(|a, b| a.path == b.path);
        let body = serde_json::to_vec(&Stored {
            key: key.clone(),
            file: file.to_string(),
            macro_modules: deps,
            compiled: compiled.clone(),
        })
        .map_err(io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".tmp-{}-{key}", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{HEADER}")?;
            writeln!(f, "{}", sha256(&body))?;
            f.write_all(&body)?;
            drop(f);
            std::fs::rename(&tmp, self.dir.join(&key))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        self.prune(&key);
        Ok(())
    }

    /// Removes the oldest entries beyond [`KEEP`] (best effort), never the
    /// one just stored (`fresh`).
    fn prune(&self, fresh: &str) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.file_name() != fresh)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() < KEEP {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() + 1 - KEEP] {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Notes what happened to `file` in this evaluation.
    pub fn note(&self, file: &str, outcome: Outcome) {
        self.outcomes.borrow_mut().push((file.to_string(), outcome));
    }

    pub fn outcomes(&self) -> Vec<(String, Outcome)> {
        self.outcomes.borrow().clone()
    }

    /// One line per file for `-v`: `compile: .quire/ci.fnl from the cache`.
    pub fn report(&self) -> Vec<String> {
        self.outcomes
            .borrow()
            .iter()
            .map(|(file, outcome)| match outcome {
                Outcome::Hit => format!("compile: {file} from the cache"),
                Outcome::Compiled { why, stored: Ok(()) } => format!("compile: {file} compiled ({why}); cached"),
                Outcome::Compiled { why, stored: Err(e) } => {
                    format!("compile: {file} compiled ({why}); not cached: {e}")
                }
                Outcome::Failed => format!("compile: {file} failed to compile (failures are not cached)"),
            })
            .collect()
    }
}

/// Reads an entry's bytes: the header line, the body's sha256, the body.
fn decode(bytes: &[u8]) -> Result<Stored, Miss> {
    let rest = bytes
        .strip_prefix(HEADER.as_bytes())
        .and_then(|r| r.strip_prefix(b"\n"))
        .ok_or(Miss::Damaged("not a compile cache entry of this format"))?;
    let nl = rest.iter().position(|&b| b == b'\n').ok_or(Miss::Damaged("truncated"))?;
    let (sum, body) = (&rest[..nl], &rest[nl + 1..]);
    if sum != sha256(body).as_bytes() {
        return Err(Miss::Damaged("its checksum does not match (truncated or corrupt)"));
    }
    serde_json::from_slice(body).map_err(|_| Miss::Damaged("its body is not an entry"))
}

/// The entry's name: sha256 over each part, length-prefixed so no two
/// different keys concatenate to the same bytes.
fn key(file: &str, source: &str) -> String {
    let mut h = Sha256::new();
    for (name, value) in [
        ("format", HEADER),
        ("quire-ci", env!("CARGO_PKG_VERSION")),
        ("fennel", FENNEL_VERSION),
        ("build", COMPILE_FINGERPRINT),
        ("file", file),
        ("source", source),
    ] {
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    }
    format!("{:x}", h.finalize())
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(lua: &str) -> Compiled {
        Compiled { lua: lua.to_string(), forms: vec![(2, 3)], calls: vec![(2, 3)], server_notes: vec![] }
    }

    fn no_macros(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn stored_entry_is_found_for_the_same_text_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(dir.path().join("c"));
        assert_eq!(cache.lookup("a.fnl", "(x)", no_macros).unwrap_err(), Miss::Absent);
        cache.store("a.fnl", "(x)", &compiled("return x"), &[]).unwrap();
        let hit = cache.lookup("a.fnl", "(x)", no_macros).unwrap();
        assert_eq!(hit.compiled.lua, "return x");
        assert_eq!(hit.compiled.forms, vec![(2, 3)]);
        assert_eq!(cache.lookup("a.fnl", "(y)", no_macros).unwrap_err(), Miss::Absent);
        assert_eq!(cache.lookup("b.fnl", "(x)", no_macros).unwrap_err(), Miss::Absent);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(dir.path());
        cache.store("a.fnl", "(x)", &compiled("return 1"), &[]).unwrap();
        let path = dir.path().join(key("a.fnl", "(x)"));
        let good = std::fs::read(&path).unwrap();
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(matches!(cache.lookup("a.fnl", "(x)", no_macros), Err(Miss::Damaged(_))), "cut at {cut} was used");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            assert!(cache.lookup("a.fnl", "(x)", no_macros).is_err(), "flip at {at} was used");
        }
    }

    #[test]
    fn a_changed_macro_module_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(dir.path());
        let deps = [(".quire/m.fnl".to_string(), "{:a 1}".to_string())];
        cache.store("a.fnl", "(x)", &compiled("return 1"), &deps).unwrap();
        let hit = cache.lookup("a.fnl", "(x)", |_| Some("{:a 1}".into())).unwrap();
        assert_eq!(hit.macro_modules, deps.to_vec());
        assert_eq!(
            cache.lookup("a.fnl", "(x)", |_| Some("{:a 2}".into())).unwrap_err(),
            Miss::MacroChanged(".quire/m.fnl".into())
        );
        assert_eq!(cache.lookup("a.fnl", "(x)", no_macros).unwrap_err(), Miss::MacroChanged(".quire/m.fnl".into()));
    }

    #[test]
    fn an_entry_copied_to_another_key_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(dir.path());
        cache.store("a.fnl", "(x)", &compiled("return 1"), &[]).unwrap();
        std::fs::copy(dir.path().join(key("a.fnl", "(x)")), dir.path().join(key("a.fnl", "(y)"))).unwrap();
        assert!(matches!(cache.lookup("a.fnl", "(y)", no_macros), Err(Miss::Damaged(_))));
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::at(dir.path());
        for i in 0..KEEP + 5 {
            cache.store("a.fnl", &format!("({i})"), &compiled("return 1"), &[]).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), KEEP);
    }
}
