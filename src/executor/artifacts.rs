//! Copying artifacts out of /work into the run record (or `--artifacts-dir`).
//!
//! Owns: artifact paths and their `artifact` events. Must not know about:
//! Lua, scheduling.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::Value as Json;

use crate::emitter::Emitter;
use crate::engine::{Engine, RunContainer};
use crate::events::EventKind;

/// A run-fn's `:artifacts`: a list of paths (strings) in /work.
pub(super) fn declared_artifacts(outputs: Option<&Json>) -> Vec<String> {
    match outputs.and_then(|o| o.get("artifacts")) {
        Some(Json::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        Some(Json::String(one)) => vec![one.clone()],
        _ => vec![],
    }
}

/// `path` as a relative path inside /work (`dist/x`, `./dist/x` and
/// `/work/dist/x` are the same), or why it is not one.
fn artifact_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() { p.strip_prefix("/work").map_err(|_| "not inside /work".to_string())? } else { p };
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir => {}
            _ => return Err("must stay inside /work (no ..)".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names /work itself; name a file or directory in it".into());
    }
    Ok(out)
}

/// Copies `paths` out of /work into the artifacts directory, keeping their
/// place under /work (`dist/x.whl` → `<dir>/dist/x.whl`), one `artifact`
/// event each. Never fails the run: a path that cannot be copied is an
/// event with its error.
pub(super) async fn copy_artifacts(
    engine: &Engine,
    container: &RunContainer,
    job: Option<&str>,
    paths: &[String],
    root: Option<&Path>,
    emitter: &Rc<RefCell<Emitter>>,
) {
    let Some(root) = root else { return };
    for path in paths {
        let rel = artifact_path(path);
        let tar = match &rel {
            Ok(rel) => engine
                .download(container, &format!("/work/{}", rel.display()))
                .await
                .map_err(|e| e.to_string())
                .and_then(|t| t.ok_or_else(|| "no such file or directory in /work".to_string())),
            Err(e) => Err(e.clone()),
        };
        let copied = rel.and_then(|rel| {
            let tar = tar?;
            let into = root.join(rel.parent().unwrap_or(Path::new("")));
            std::fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
            let mut bytes = 0;
            let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
            for entry in archive.entries().map_err(|e| e.to_string())? {
                let mut entry = entry.map_err(|e| e.to_string())?;
                if entry.header().entry_type().is_file() {
                    bytes += entry.size();
                }
                entry.unpack_in(&into).map_err(|e| format!("cannot write into {}: {e}", into.display()))?;
            }
            Ok((root.join(&rel), bytes))
        });
        let kind = match copied {
            Ok((dest, bytes)) => EventKind::Artifact {
                path: path.clone(),
                dest: Some(dest.display().to_string()),
                bytes: Some(bytes),
                error: None,
            },
            Err(error) => EventKind::Artifact { path: path.clone(), dest: None, bytes: None, error: Some(error) },
        };
        emitter.borrow_mut().emit(job, kind);
    }
}
