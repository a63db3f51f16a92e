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

/// The most a ci.fnl or one module may hold: far beyond any real one, and
/// a bound on what a read of a hostile file (`/dev/zero`) can cost.
pub const MAX_SOURCE_BYTES: u64 = 8 * 1024 * 1024;

/// Files straight from a directory (the working tree, for `validate`,
/// `list` and `doctor`). Reads stay inside it, as a run's snapshot does: a
/// symbolic link on the way (`.quire` itself, or a module) is refused, not
/// followed — a run would see the link, not its target — and only regular
/// files of at most [`MAX_SOURCE_BYTES`] are read (a FIFO would block).
pub struct DirFiles(pub std::path::PathBuf);

impl RepoFiles for DirFiles {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        let rel = std::path::Path::new(path);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(std::io::Error::other("it is not a plain path inside the repository"));
        }
        // Every directory on the way must be a real one, inside the tree.
        let mut at = self.0.clone();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let meta = match std::fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&at).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
                let what = if i + 1 == parts.len() {
                    "it is".to_string()
                } else {
                    format!("{} is", rel.iter().take(i + 1).collect::<std::path::PathBuf>().display())
                };
                return Err(std::io::Error::other(format!(
                    "{what} a symbolic link{to}; ci.fnl and its modules are read only as regular files inside the repository (a run sees the link, not what it points at)"
                )));
            }
        }
        read_regular_file(&at)
    }
}

/// Reads a regular file of at most [`MAX_SOURCE_BYTES`]; `Ok(None)` when it
/// does not exist. A FIFO, device or directory is an error, never read.
pub fn read_regular_file(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let not_regular = |m: &std::fs::Metadata| {
        let ft = m.file_type();
        let kind = if ft.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
        std::io::Error::other(format!("it is {kind}; ci.fnl and its modules must be regular files"))
    };
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let too_big = |n: u64| {
        std::io::Error::other(format!(
            "it holds {n} bytes; ci.fnl and each module may hold at most {} MiB",
            MAX_SOURCE_BYTES / (1024 * 1024)
        ))
    };
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(too_big(meta.len()));
    }
    // Non-blocking, so a file swapped for a FIFO since the check cannot
    // hang the open; checked again on the open file.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(Some(bytes))
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
