//! Source files of a pipeline: reading them from the tree being evaluated,
//! requiring UTF-8, and the hash over everything a pipeline loaded.
//!
//! Owns: [`RepoFiles`], [`DirFiles`], decoding and hashing source text.
//! Must not know about: Lua, what the sources declare.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::CI_FNL;
use crate::diagnostic::{Code, Problem};

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

/// sha256 over ci.fnl and every module it loaded (for records and the cache).
pub(super) fn hash_sources(modules: &BTreeMap<String, String>, ci: &str) -> String {
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
pub(super) fn read_source(files: &dyn RepoFiles, path: &str) -> Result<String, Problem> {
    let bytes = match files.read(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(Problem::new(Code::NoCiFnl, format!("no {path} in this repository"))
                .help("create one with a (ci.job ...) per job; see docs/ci-fnl.md"))
        }
        Err(e) => return Err(Problem::new(Code::Read, format!("cannot read {path}: {e}"))),
    };
    decode_source(path, bytes)
}

/// Source text must be UTF-8; the error names the line and byte.
pub(super) fn decode_source(path: &str, bytes: Vec<u8>) -> Result<String, Problem> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = bytes[..bad].iter().rposition(|&b| b == b'\n').map(|p| p + 1).unwrap_or(0);
        Problem::new(
            Code::NotUtf8,
            format!(
                "{path} is not valid UTF-8: line {line}, byte {} (offset {bad} in the file) is 0x{:02x}",
                bad - line_start + 1,
                bytes[bad]
            ),
        )
        .help("save the file as UTF-8")
    })
}

