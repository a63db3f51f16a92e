//! The run container's lifetime: created stopped, started while the
//! snapshot goes in, links and `.git` made, and torn down — one step of its
//! own, [`Lease::remove`], that the executor calls after the jobs: stopped
//! here, removed by a detached remover (src/executor/remover.rs).
//!
//! Owns: the container, the live-container slot (for a forced exit), the
//! `container-start`/`container-end` events, `container-kept` and
//! `teardown-failed` notices. Must not know about: jobs, Lua.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::outcome::UserError;
use super::phase::Phase;
use super::remover;
use super::request::{cache_volume_name, RunRequest};
use crate::emitter::Emitter;
use crate::engine::{Delivery, Engine, EngineError, ExecSpec, Inbox, RunContainer, RunContainerSpec};
use crate::events::{EventKind, Level, RunStatus, Stream};
use crate::snapshot::Snapshot;

/// How long removing the run's container here may take (when no detached
/// remover can be started): an engine that accepts the request
/// and never answers (frozen, overloaded) must not keep a canceled run, or
/// a finished one, from ending.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// A run container this run made and must remove (unless `--keep`). If a
/// lease is dropped without [`Lease::remove`] (a panic), it still removes.
pub(super) struct Lease {
    rt: tokio::runtime::Handle,
    pub engine: Engine,
    pub container: RunContainer,
    pub image: String,
    keep: bool,
    live: Arc<Mutex<Option<String>>>,
    removed: bool,
    /// Under watch: whether the container was taken, started, from the warm
    /// slot (src/executor/warm.rs; then `fill` does not start it), and the
    /// `-v` notice that says so.
    warm: Option<super::warm::Claim>,
    /// Made to take the snapshot on its stdin (src/engine/inbox.rs).
    receives: bool,
}

/// Set to `archive` to send every snapshot through the engine's archive
/// endpoint instead of into a new container's own stdin, the default
/// (src/engine/inbox.rs; docs/engine.md, "Upload").
pub const UPLOAD_ENV: &str = "QUIRE_CI_UPLOAD";

/// Whether a new container of `image` is made to take the snapshot on its
/// stdin: unless `QUIRE_CI_UPLOAD=archive`, when the image runs as root
/// (src/engine/inbox.rs). Decided here for the run's container and for
/// watch's ready one alike.
pub(super) async fn receives_on_stdin(engine: &Engine, image: &str) -> bool {
    !std::env::var(UPLOAD_ENV).is_ok_and(|v| v == "archive") && engine.runs_as_root(image).await
}

/// The fewest entries a part of the snapshot has when it is shared among
/// unpackers: a smaller part unpacks in less time than a further exec
/// takes to start.
const PART_LEAST: usize = 4096;

/// How many unpackers a large snapshot is shared among: one per core of
/// the engine's machine (`cpus`, as it says; else this machine's, which
/// is the engine's for a local one), at most four.
fn unpackers(cpus: Option<usize>) -> usize {
    cpus.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).min(4)
}

/// How long the engine's word on its cores is waited for; past it, this
/// machine's count serves.
const CPUS_DEADLINE: Duration = Duration::from_secs(2);

/// Why the snapshot did not go in.
enum Unsent {
    /// It could not be read (a fresh tar of it, for the second way in).
    Snapshot(String),
    Engine(EngineError),
}

/// The `-v` notice (`upload-archive`) when the container could not unpack
/// the snapshot itself and the engine's archive endpoint took it instead.
fn archive_notice(why: &str) -> EventKind {
    EventKind::Notice {
        level: Level::Info,
        code: "upload-archive".into(),
        message: format!(
            "the container could not unpack the snapshot itself ({why}); sent it through the engine's archive endpoint"
        ),
        help: None,
    }
}

/// The `-v` notice (`upload-parts`) when a large snapshot went in through
/// several unpackers side by side.
fn parts_notice(unpackers: usize, files: u64) -> EventKind {
    EventKind::Notice {
        level: Level::Info,
        code: "upload-parts".into(),
        message: format!("the snapshot ({files} files) went in through {unpackers} unpackers side by side"),
        help: None,
    }
}

/// What a snapshot that did not go in comes to for the run.
fn not_sent(unsent: Unsent, emitter: &Rc<RefCell<Emitter>>) -> NotReady {
    match unsent {
        Unsent::Snapshot(m) => NotReady::Failed(UserError::new("quire_ci::container::setup", m)),
        Unsent::Engine(e) => {
            // The engine refusing the archive is not the container dying: it
            // is running (it just started), and the message says what failed.
            if let EngineError::ContainerDied { reason, .. } = &e {
                emitter.borrow_mut().emit(None, EventKind::ContainerDied { reason: reason.clone() });
            }
            NotReady::Failed(UserError::from_diagnostic(&e, Some("uploading the snapshot into /work failed")))
        }
    }
}

/// Why the container could not be made ready for the jobs.
pub(super) enum NotReady {
    /// The run was canceled while the snapshot went in.
    Canceled,
    Failed(UserError),
}

impl Lease {
    /// Creates the run's container (stopped) from `image`.
    pub fn create(
        rt: &tokio::runtime::Handle,
        engine: &Engine,
        req: &RunRequest,
        image: &str,
        run_id: &str,
    ) -> Result<Lease, UserError> {
        let spec = RunContainerSpec {
            image: image.to_string(),
            run_id: run_id.to_string(),
            repo_path_label: req.repo_dir.display().to_string(),
            keep: req.keep,
            cache_volume: req.cache_volume.then(|| cache_volume_name(&req.repo_dir)),
            memory_limit: req.memory_limit,
            network: req.network.clone(),
            ..RunContainerSpec::default()
        };
        let warm = req.warm.as_ref().map(|w| w.claim(rt, engine, &spec));
        let (container, receives) = match warm.as_ref().and_then(|w| w.container.clone()) {
            Some(c) => (c, false),
            None => {
                let receive = rt.block_on(receives_on_stdin(engine, image));
                let spec = RunContainerSpec { receive, ..spec };
                let c = rt
                    .block_on(engine.create_stopped_run_container(&spec))
                    .map_err(|e| UserError::from_diagnostic(&e, Some("cannot create the run's container")))?;
                (c, receive)
            }
        };
        if let Ok(mut live) = req.live_container.lock() {
            *live = Some(container.id.clone());
        }
        Ok(Lease {
            rt: rt.clone(),
            engine: engine.clone(),
            container,
            image: image.to_string(),
            keep: req.keep,
            live: req.live_container.clone(),
            removed: false,
            warm,
            receives,
        })
    }

    /// Starts the container while the snapshot goes into /work, then makes
    /// the links that climb out of the repository and `--with-git`'s `.git`.
    pub fn fill(
        &self,
        req: &RunRequest,
        snapshot: &Snapshot,
        git_ref: &str,
        run_id: &str,
        emitter: &Rc<RefCell<Emitter>>,
    ) -> Result<(), NotReady> {
        let failed = |m: String| NotReady::Failed(UserError::new("quire_ci::container::setup", m));
        // The snapshot goes in while the container starts: through its own
        // stdin when it was made to receive it (src/engine/inbox.rs), else
        // through the engine's archive endpoint. Links that climb out of the
        // repository are made afterwards, by `ln -s` (the engine's unpacker
        // refuses them), so they arrive as git stores them.
        let outside =
            snapshot.links_out_of_tree().map_err(|e| failed(format!("cannot read the snapshot's links: {e}")))?;
        let trimmed = (!outside.is_empty())
            .then(|| snapshot.without_paths(&outside.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()));
        let whole = trimmed.as_ref().unwrap_or(snapshot);
        let stream = |s: &Snapshot| s.tar_reader().map_err(|e| format!("cannot stream the snapshot: {e}"));
        let inbox = self.inbox();
        // A large snapshot shared among unpackers working side by side:
        // creating files is most of its cost, and it is the kernel's, one
        // core per unpacker. The engine is asked its cores only for a
        // snapshot `parts` would cut (two parts' worth), and not waited for
        // past CPUS_DEADLINE (a Ctrl-C is not watched here).
        let parts = match &inbox {
            Some(_) if whole.entry_count() >= 2 * PART_LEAST => {
                let cpus = self
                    .rt
                    .block_on(async { tokio::time::timeout(CPUS_DEADLINE, self.engine.cpus()).await.ok().flatten() });
                whole.parts(unpackers(cpus), PART_LEAST)
            }
            _ => None,
        };
        let (first, rest) = match &parts {
            Some(parts) => (stream(&parts[0]), parts[1..].iter().map(stream).collect::<Result<Vec<_>, _>>()),
            None => (stream(whole), Ok(Vec::new())),
        };
        let (first, rest) = (first.map_err(failed)?, rest.map_err(failed)?);
        let (start, upload) = (Phase::start(emitter, "start"), Phase::start(emitter, "upload"));
        let (up, mut is_up) = tokio::sync::watch::channel(None);
        let (started, uploaded) = self.rt.block_on(async {
            tokio::join!(
                async {
                    let r = self.start().await;
                    start.end(emitter);
                    let _ = up.send(Some(r.is_ok()));
                    r
                },
                async {
                    let started =
                        async move { matches!(is_up.wait_for(Option::is_some).await.as_deref(), Ok(Some(true))) };
                    let r = tokio::select! {
                        r = self.send(inbox, (first, rest), started, || stream(whole), req.verbose, emitter) => Some(r),
                        _ = req.cancel.wait() => None,
                    };
                    upload.end(emitter);
                    r
                }
            )
        });
        started
            .map_err(|e| NotReady::Failed(UserError::from_diagnostic(&e, Some("cannot start the run's container"))))?;
        emitter.borrow_mut().emit(
            None,
            EventKind::ContainerStart { image: self.image.clone(), container_id: self.container.id.clone() },
        );
        if let (Some(w), true) = (&self.warm, req.verbose) {
            emitter.borrow_mut().emit(None, w.notice.clone());
        }
        match uploaded {
            None => Err(NotReady::Canceled),
            Some(Err(unsent)) => Err(not_sent(unsent, emitter)),
            Some(Ok(())) => make_links(&self.rt, &self.engine, &self.container, &outside)
                .and_then(|()| upload_dotgit(&self.rt, &self.engine, req, snapshot, git_ref, run_id, &self.container))
                .map_err(failed),
        }
    }

    /// The container's stdin, when the snapshot is to go in there: the warm
    /// container's, held since it was made, or a new one's, attached now
    /// (before its start). If the attach fails, the archive endpoint takes
    /// the snapshot.
    fn inbox(&self) -> Option<Inbox> {
        match (&self.warm, self.receives) {
            (Some(w), _) if w.container.is_some() => w.take_inbox(),
            (_, true) => self.rt.block_on(self.engine.open_inbox(&self.container)).ok(),
            (_, false) => None,
        }
    }

    /// Sends the snapshot (`first`: a tar of it, or of its first part, and
    /// `rest`: of its other parts) into /work: through the container's
    /// stdin when `inbox` is open, each further part through an unpacker of
    /// its own once the container is `started`; else — or when the
    /// container could not take it that way — through the engine's archive
    /// endpoint (with a fresh tar of the whole from `again`). Counted as it
    /// goes: `phase upload` progress (upload.rs).
    async fn send<R: std::io::Read + Send + 'static>(
        &self,
        inbox: Option<Inbox>,
        (first, rest): (R, Vec<R>),
        started: impl std::future::Future<Output = bool>,
        again: impl Fn() -> Result<R, String>,
        verbose: bool,
        emitter: &Rc<RefCell<Emitter>>,
    ) -> Result<(), Unsent> {
        let Some(inbox) = inbox else {
            return self.through_archive(first, emitter).await;
        };
        let counts = Arc::new(super::upload::Counts::default());
        let unpackers = 1 + rest.len();
        let own = inbox.deliver(counts.reader(first));
        let further = async {
            if rest.is_empty() {
                return Vec::new();
            }
            if !started.await {
                return vec![Ok(Delivery::Refused("the container did not start".to_string()))];
            }
            let deliveries = rest.into_iter().map(|tar| async {
                match self.engine.open_unpacker(&self.container).await {
                    Ok(unpacker) => unpacker.deliver(counts.reader(tar)).await,
                    Err(why) => Ok(Delivery::Refused(why)),
                }
            });
            futures_util::future::join_all(deliveries).await
        };
        let (own, further) = counts.during(async { tokio::join!(own, further) }, emitter).await;
        let mut refused = None;
        for delivery in std::iter::once(own).chain(further) {
            if let Delivery::Refused(why) = delivery.map_err(Unsent::Engine)? {
                refused = refused.or(Some(why));
            }
        }
        let Some(why) = refused else {
            if verbose && unpackers > 1 {
                emitter.borrow_mut().emit(None, parts_notice(unpackers, counts.get().1));
            }
            return Ok(());
        };
        if verbose {
            emitter.borrow_mut().emit(None, archive_notice(&why));
        }
        self.through_archive(again().map_err(Unsent::Snapshot)?, emitter).await
    }

    /// Sends `tar` (the whole snapshot) through the engine's archive
    /// endpoint, counted as it goes.
    async fn through_archive<R: std::io::Read + Send + 'static>(
        &self,
        tar: R,
        emitter: &Rc<RefCell<Emitter>>,
    ) -> Result<(), Unsent> {
        let counts = Arc::new(super::upload::Counts::default());
        let whole = counts.reader(tar);
        counts.during(self.engine.upload(&self.container, whole), emitter).await.map_err(Unsent::Engine)
    }

    /// Starts the container, unless it came started from the warm slot.
    async fn start(&self) -> Result<(), EngineError> {
        match &self.warm {
            Some(w) if w.container.is_some() => w.ready().await,
            _ => self.engine.start_run_container(&self.container).await,
        }
    }

    /// Tears the container down (or, with `--keep`, says how to enter it),
    /// after `container-end`: its removal (forced: it stops what still
    /// runs), which for a large tree takes the engine seconds, is handed to
    /// a detached remover (src/executor/remover.rs), so the run ends
    /// without waiting for the engine at all. Only when no remover can be
    /// started is it stopped and removed here.
    pub fn remove(mut self, emitter: &Rc<RefCell<Emitter>>) {
        self.removed = true;
        if self.keep {
            emitter.borrow_mut().emit(None, self.kept_notice());
        } else {
            let phase = Phase::start(emitter, "teardown");
            let result = self.tear_down();
            phase.end(emitter);
            if let Err(e) = result {
                let name = &self.container.name;
                let by_hand = self.engine.chosen().docker_command(&["rm", "-f", name]);
                let help = format!("the next quire-ci run removes it once the engine answers again (or: {by_hand})");
                let kind = EventKind::Notice {
                    level: Level::Warning,
                    code: "teardown-failed".into(),
                    message: format!("could not remove container {name}: {e}"),
                    help: Some(help),
                };
                emitter.borrow_mut().emit(None, kind);
            }
        }
        self.clear_live();
    }

    /// Hands the container to a detached remover, whose forced removal
    /// also stops whatever still runs in it: nothing here waits on the
    /// engine. Only when no remover can be started is it removed here
    /// (bounded: a frozen engine must not hold the run); the error says
    /// what failed.
    fn tear_down(&self) -> Result<(), String> {
        if remover::hand_off(Some(&self.engine), std::slice::from_ref(&self.container.id)).is_ok() {
            return Ok(());
        }
        self.remove_now()
    }

    fn kept_notice(&self) -> EventKind {
        let chosen = self.engine.chosen();
        let name = &self.container.name;
        EventKind::Notice {
            level: Level::Info,
            code: "container-kept".into(),
            message: format!("kept container {name} (image {})", self.image),
            help: Some(format!(
                "{}\nremove it with: {}",
                chosen.docker_command(&["exec", "-it", "-w", "/work", name, "sh"]),
                chosen.docker_command(&["rm", "-f", name])
            )),
        }
    }

    fn remove_now(&self) -> Result<(), String> {
        self.rt.block_on(async {
            match tokio::time::timeout(TEARDOWN_DEADLINE, self.engine.remove(&self.container)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("the engine did not answer within {} s", TEARDOWN_DEADLINE.as_secs())),
            }
        })
    }

    fn clear_live(&self) {
        if let Ok(mut live) = self.live.lock() {
            *live = None;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.removed {
            if !self.keep && remover::hand_off(Some(&self.engine), std::slice::from_ref(&self.container.id)).is_err() {
                let _ = self.remove_now();
            }
            self.clear_live();
        }
    }
}

/// `container-end`, with the status the jobs left.
pub(super) fn container_end(emitter: &Rc<RefCell<Emitter>>, status: RunStatus) {
    emitter.borrow_mut().emit(None, EventKind::ContainerEnd { status });
}

/// Makes the links of [`Snapshot::links_out_of_tree`] in /work, each with
/// its target byte for byte, in one exec; an error names the link.
fn make_links(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    container: &RunContainer,
    links: &[(String, Vec<u8>)],
) -> Result<(), String> {
    if links.is_empty() {
        return Ok(());
    }
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        r#"while [ $# -gt 0 ]; do case "$2" in */*) mkdir -p -- "${2%/*}" || exit 1;; esac; ln -s -- "$1" "$2" || { echo "$2" >&2; exit 1; }; shift 2; done"#.to_string(),
        "sh".to_string(),
    ];
    for (path, target) in links {
        let Ok(target) = String::from_utf8(target.clone()) else {
            return Err(format!(
                "the symbolic link {path} points at a name that is not UTF-8, which quire-ci cannot make in /work"
            ));
        };
        argv.push(target);
        argv.push(path.clone());
    }
    let spec = ExecSpec { argv, env: vec![], cwd: None };
    let mut err = Vec::new();
    let out = rt
        .block_on(engine.exec(container, &spec, |stream, bytes| {
            if stream == Stream::Stderr {
                err.extend_from_slice(bytes);
            }
        }))
        .map_err(|e| format!("making the symbolic links that point out of the repository failed: {e}"))?;
    if out.exit != 0 {
        let said = String::from_utf8_lossy(&err).trim().to_string();
        return Err(format!(
            "cannot make the symbolic link(s) that point out of the repository in /work ({}): {said}",
            links.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// `--with-git`: the minimal `.git` (src/snapshot/dotgit.rs) into /work,
/// with the branch the run is for.
fn upload_dotgit(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    req: &RunRequest,
    snapshot: &Snapshot,
    git_ref: &str,
    run_id: &str,
    container: &RunContainer,
) -> Result<(), String> {
    if !req.with_git {
        return Ok(());
    }
    let branch = git_ref.strip_prefix("refs/heads/");
    let scratch = snapshot.git_dir().join("quire-ci").join(format!("dotgit-{run_id}"));
    let tar = snapshot
        .dotgit_tar(&scratch, branch)
        .map_err(|e| format!("cannot build the .git for /work (--with-git): {e}"))?;
    rt.block_on(engine.upload(container, std::io::Cursor::new(tar)))
        .map_err(|e| format!("uploading .git (--with-git) failed: {e}"))
}
