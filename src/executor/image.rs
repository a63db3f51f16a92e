//! Which image a run uses and making it present: ci.image, then
//! `.quire/Dockerfile` (built), then `--image` / `QUIRE_CI_IMAGE`, then the
//! default (DESIGN.md §2); `--image-map`; pulling under `--pull`.
//!
//! Owns: the choice, the Dockerfile tag, the pull and the build and their
//! events. Must not know about: containers, jobs, Lua.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::outcome::UserError;
use super::request::RunRequest;
use super::DEFAULT_IMAGE;
use crate::cancel::Cancel;
use crate::emitter::Emitter;
use crate::engine::{Engine, PullPolicy};
use crate::events::{EventKind, Level};
use crate::pipeline::Pipeline;
use crate::snapshot::Snapshot;

/// Image resolution (DESIGN.md §2): ci.image → .quire/Dockerfile →
/// --image / QUIRE_CI_IMAGE → the default. Returns (image to run, events).
pub(super) fn resolve_image(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    pipeline: &Pipeline,
    snapshot: &Rc<Snapshot>,
    emitter: &Rc<RefCell<Emitter>>,
) -> Result<String, UserError> {
    let (tag, from_dockerfile) = image_choice(req, pipeline, snapshot);
    say_if_image_flag_loses(req, pipeline, from_dockerfile, emitter);
    if !from_dockerfile {
        return pull(rt, engine, &tag, req.pull, &req.cancel, emitter);
    }
    build(rt, engine, req, snapshot, &tag, emitter)
}

/// `--image` on the command line that loses to ci.image or the
/// Dockerfile is said, not ignored; QUIRE_CI_IMAGE is a machine-wide
/// fallback, so it loses silently (docs/running.md).
fn say_if_image_flag_loses(
    req: &RunRequest,
    pipeline: &Pipeline,
    from_dockerfile: bool,
    emitter: &Rc<RefCell<Emitter>>,
) {
    if let Some(flag) =
        req.image_override.as_ref().filter(|f| std::env::var("QUIRE_CI_IMAGE").ok().as_ref() != Some(*f))
    {
        let winner = match &pipeline.image {
            Some(decl) => Some(format!("ci.fnl declares ci.image {:?}", decl.name)),
            None if from_dockerfile => Some("there is a .quire/Dockerfile".to_string()),
            None => None,
        };
        if let Some(winner) = winner {
            let kind = EventKind::Notice {
                level: Level::Warning,
                code: "image-flag-ignored".into(),
                message: format!("--image {flag} does not apply: {winner}"),
                help: Some(format!("to replace an image, use --image-map FROM={flag}")),
            };
            emitter.borrow_mut().emit(None, kind);
        }
    }
}

/// The image from `.quire/Dockerfile`: present, or built now.
fn build(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    snapshot: &Rc<Snapshot>,
    tag: &str,
    emitter: &Rc<RefCell<Emitter>>,
) -> Result<String, UserError> {
    let tag = tag.to_string();
    if let Ok(Some(_)) = rt.block_on(engine.image_id(&tag)) {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: tag.clone(), action: "present".into(), detail: None });
        return Ok(tag);
    }
    emitter.borrow_mut().emit(
        None,
        EventKind::Image { image: tag.clone(), action: "building".into(), detail: Some(".quire/Dockerfile".into()) },
    );
    let tar = build_context(req, snapshot)?;
    let em = emitter.clone();
    let tag2 = tag.clone();
    let tail = Rc::new(RefCell::new(BuildTail::new(req.excerpt_lines)));
    let tail2 = tail.clone();
    let built = until_canceled(
        rt,
        &req.cancel,
        engine.build_image(tar, ".quire/Dockerfile", &tag, move |line| {
            // The builder colours its stderr lines; the record keeps text.
            let line = crate::text::plain_text(&line);
            tail2.borrow_mut().push(&line);
            em.borrow_mut()
                .emit(None, EventKind::Image { image: tag2.clone(), action: "build".into(), detail: Some(line) });
        }),
    )?;
    match built {
        Ok(_) => {
            emitter
                .borrow_mut()
                .emit(None, EventKind::Image { image: tag.clone(), action: "built".into(), detail: None });
            Ok(tag)
        }
        Err(e) => {
            let tail = tail.borrow();
            emitter.borrow_mut().emit(
                None,
                EventKind::Image { image: tag.clone(), action: "build-failed".into(), detail: tail.step.clone() },
            );
            Err(UserError::new(
                "quire_ci::engine::build_failed",
                tail.explain(&crate::text::plain_text(&e.to_string())),
            )
            .help("fix .quire/Dockerfile (the whole build: quire-ci logs, or run with -v)"))
        }
    }
}

/// The build context: the snapshot, with `.quire/Dockerfile` mapped by
/// `--image-map` when it names a `FROM` to replace.
fn build_context(req: &RunRequest, snapshot: &Snapshot) -> Result<Box<dyn std::io::Read + Send>, UserError> {
    let mapped =
        snapshot.read_file(".quire/Dockerfile").ok().flatten().and_then(|d| map_dockerfile(&req.image_map, &d));
    let context_error = |m: String| UserError::new("quire_ci::image::build_context", m);
    Ok(match &mapped {
        Some(dockerfile) => Box::new(std::io::Cursor::new(
            context_with_dockerfile(snapshot, dockerfile.as_bytes()).map_err(context_error)?,
        )),
        None => Box::new(
            snapshot
                .tar_reader()
                .map_err(|e| context_error(format!("cannot stream the snapshot for the build: {e}")))?,
        ),
    })
}

/// Runs `work` (a pull, a build) until it ends or the run is canceled; a
/// cancel drops the request, which makes the engine stop the pull or build.
fn until_canceled<T>(
    rt: &tokio::runtime::Handle,
    cancel: &Cancel,
    work: impl std::future::Future<Output = T>,
) -> Result<T, UserError> {
    rt.block_on(async {
        tokio::select! {
            r = work => Ok(r),
            _ = cancel.wait() => Err(UserError::new("quire_ci::executor::canceled", cancel.status_and_reason().1)),
        }
    })
}

/// The step a `.quire/Dockerfile` build is at and its last output lines,
/// for the message when it fails (the whole output is in the record).
struct BuildTail {
    step: Option<String>,
    lines: std::collections::VecDeque<String>,
    keep: usize,
}

impl BuildTail {
    fn new(keep: usize) -> BuildTail {
        BuildTail { step: None, lines: Default::default(), keep }
    }

    fn push(&mut self, line: &str) {
        let t = line.trim();
        if t.starts_with("Step ") {
            self.step = Some(t.to_string());
            self.lines.clear();
        } else if !(t.is_empty() || t.starts_with("---> ") || t.starts_with("Removing intermediate container")) {
            self.lines.push_back(line.trim_end().to_string());
            while self.lines.len() > self.keep {
                self.lines.pop_front();
            }
        }
    }

    /// The engine's message, then the failing step and what it printed last.
    fn explain(&self, message: &str) -> String {
        let mut out = message.to_string();
        if let Some(step) = &self.step {
            out.push_str(&format!("\n  failing step: {step}"));
        }
        if !self.lines.is_empty() {
            out.push_str(&format!(
                "\n  its last {} line{}:",
                self.lines.len(),
                if self.lines.len() == 1 { "" } else { "s" }
            ));
            for l in &self.lines {
                out.push_str(&format!("\n    {l}"));
            }
        }
        out.push_str("\n  the whole build: quire-ci logs, or run with -v");
        out
    }
}

/// Which image a run uses (DESIGN.md §2 order), and whether it is built
/// from `.quire/Dockerfile` rather than pulled.
pub(super) fn image_choice(req: &RunRequest, pipeline: &Pipeline, snapshot: &Snapshot) -> (String, bool) {
    if let Some(decl) = &pipeline.image {
        return (map_image(&req.image_map, &decl.name), false);
    }
    match snapshot.read_file(".quire/Dockerfile") {
        Ok(Some(dockerfile)) => {
            let dockerfile = map_dockerfile(&req.image_map, &dockerfile).map(String::into_bytes).unwrap_or(dockerfile);
            (dockerfile_tag(&req.repo_dir, &dockerfile, &snapshot.tree_id()), true)
        }
        _ => (fallback_image(req), false),
    }
}

/// `--image-map FROM=TO` (like act's `-P`): the image to use for `name`.
pub fn map_image(map: &[(String, String)], name: &str) -> String {
    map.iter().find(|(from, _)| from == name).map_or_else(|| name.to_string(), |(_, to)| to.clone())
}

/// The Dockerfile with every `FROM` image the map names replaced (flags and
/// `AS name` kept); `None` when nothing is mapped.
pub fn map_dockerfile(map: &[(String, String)], dockerfile: &[u8]) -> Option<String> {
    if map.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(dockerfile);
    let mut changed = false;
    let out: Vec<String> = text
        .split('\n')
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                if let Some(i) = words.iter().skip(1).position(|w| !w.starts_with("--")).map(|i| i + 1) {
                    let mapped = map_image(map, words[i]);
                    if mapped != words[i] {
                        changed = true;
                        let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
                        words[i] = mapped;
                        return words.join(" ");
                    }
                }
            }
            line.to_string()
        })
        .collect();
    changed.then(|| out.join("\n"))
}

/// The build context with `.quire/Dockerfile` replaced by `dockerfile` (the
/// mapped one), in memory.
fn context_with_dockerfile(snapshot: &Snapshot, dockerfile: &[u8]) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("cannot rewrite the build context for --image-map: {e}");
    let reader = snapshot.tar_reader().map_err(|e| format!("cannot stream the snapshot for the build: {e}"))?;
    let mut archive = tar::Archive::new(reader);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let mut header = entry.header().clone();
        let path = entry.path().map_err(err)?.into_owned();
        if path == Path::new(".quire/Dockerfile") {
            header.set_size(dockerfile.len() as u64);
            header.set_cksum();
            out.append(&header, dockerfile).map_err(err)?;
        } else if header.entry_type() == tar::EntryType::Symlink {
            let target = entry.link_name().map_err(err)?.map(|t| t.into_owned()).unwrap_or_default();
            out.append_link(&mut header, &path, target).map_err(err)?;
        } else {
            out.append_data(&mut header, &path, &mut entry).map_err(err)?;
        }
    }
    out.into_inner().map_err(err)
}

/// `--image` / `QUIRE_CI_IMAGE`, else the default.
fn fallback_image(req: &RunRequest) -> String {
    req.image_override
        .clone()
        .or_else(|| std::env::var("QUIRE_CI_IMAGE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

/// The tag for an image built from `.quire/Dockerfile`: a hash of the
/// Dockerfile, plus the snapshot's tree when the Dockerfile copies files in
/// (COPY/ADD), so the image is rebuilt exactly when its inputs may differ.
pub fn dockerfile_tag(repo_dir: &Path, dockerfile: &[u8], tree: &str) -> String {
    let mut h = Sha256::new();
    h.update(dockerfile);
    let text = String::from_utf8_lossy(dockerfile);
    let copies = text.lines().any(|l| {
        let w = l.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        w == "COPY" || w == "ADD"
    });
    if copies {
        h.update(tree.as_bytes());
    }
    let name: String = repo_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if name.is_empty() { "repo" } else { name };
    format!("quire-ci-local/{name}:{}", &format!("{:x}", h.finalize())[..16])
}

fn pull(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    name: &str,
    policy: PullPolicy,
    cancel: &Cancel,
    emitter: &Rc<RefCell<Emitter>>,
) -> Result<String, UserError> {
    let present = rt.block_on(engine.image_id(name)).ok().flatten().is_some();
    if present && policy != PullPolicy::Always {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: name.to_string(), action: "present".into(), detail: None });
        return Ok(name.to_string());
    }
    if policy != PullPolicy::Never {
        emitter
            .borrow_mut()
            .emit(None, EventKind::Image { image: name.to_string(), action: "pulling".into(), detail: None });
    }
    let on_progress = |p: crate::engine::PullProgress| {
        let kind = EventKind::ImageProgress {
            image: name.to_string(),
            layer: p.layer,
            status: p.status,
            current: p.current.and_then(|c| u64::try_from(c).ok()),
            total: p.total.and_then(|t| u64::try_from(t).ok()),
        };
        emitter.borrow_mut().emit(None, kind);
    };
    match until_canceled(rt, cancel, engine.ensure_image(name, policy, on_progress))? {
        Ok(_) => {
            if policy != PullPolicy::Never {
                emitter
                    .borrow_mut()
                    .emit(None, EventKind::Image { image: name.to_string(), action: "pulled".into(), detail: None });
            }
            Ok(name.to_string())
        }
        Err(e) => Err(UserError::from_diagnostic(&e, None)),
    }
}
