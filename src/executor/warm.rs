//! The container `quire-ci watch` keeps ready for the next run: made and
//! started while watch waits for a change, from the image and settings the
//! last run's container had, so the next run skips create and start.
//!
//! Identity: the run id is not known before the change comes, so a warm
//! container is created as `quire-ci-warm-<id>` with the label
//! `quire-ci.run=warm-<id>` (never a run id) and this process's owner
//! labels, which is all the orphan reaper reads. The run that takes it
//! renames it `quire-ci-<run id>`; its record names it by id
//! (`container-start`). A run with `--keep` never takes one (the keep label
//! is written at create time and labels cannot change).
//!
//! Owns: the warm container's lifetime (made after a run, taken by the next
//! run's [`super::container::Lease::create`] when the image and settings
//! match, removed when they do not and when watch exits). Must not know
//! about: jobs, the record, the file watcher.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::engine::{self, Engine, EngineError, Inbox, RunContainer, RunContainerSpec};
use crate::events::{EventKind, Level};

/// How long watch's exit waits for a warm container still being made (to
/// hand it to a remover), or for its removal when no remover can be
/// started; past it the container is left to the next run's orphan reaper.
pub const DISCARD_DEADLINE: Duration = Duration::from_secs(5);

/// The warm slot watch shares with each run it starts (a [`RunRequest`]
/// field). Cloning gives another handle on the same slot.
///
/// [`RunRequest`]: super::RunRequest
#[derive(Clone, Default)]
pub struct Warm(Rc<RefCell<Slot>>);

#[derive(Default)]
struct Slot {
    /// The engine and container spec of the last run that made a container:
    /// what the next warm container is made of.
    last: Option<(Engine, RunContainerSpec)>,
    /// The container made ready: being made, or made and started.
    ready: Option<Pending>,
    /// Removals of warm containers that did not fit; awaited on exit.
    removing: Vec<JoinHandle<()>>,
}

/// A warm container on its way: the task that creates and starts it.
struct Pending {
    fit: Fit,
    engine: Engine,
    task: JoinHandle<Result<Made, EngineError>>,
}

/// A warm container made and started, and, when its image lets it receive
/// the snapshot on stdin, its stdin held open for the run that takes it
/// (src/engine/inbox.rs): `tar` in it waits for the snapshot.
type Made = (RunContainer, Option<Inbox>);

/// What must match for a run to take a warm container: the engine, the
/// image (by name here, by id when taken) and every setting the container
/// is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fit {
    endpoint: String,
    image: String,
    repo: String,
    env: Vec<(String, String)>,
    memory: Option<i64>,
    cache_volume: Option<String>,
    network: Option<String>,
}

impl Fit {
    fn of(engine: &Engine, spec: &RunContainerSpec) -> Fit {
        Fit {
            endpoint: engine.endpoint().to_string(),
            image: spec.image.clone(),
            repo: spec.repo_path_label.clone(),
            env: spec.env.clone(),
            memory: spec.memory_limit,
            cache_volume: spec.cache_volume.clone(),
            network: spec.network.clone(),
        }
    }
}

/// Why a warm container was not taken (for `-v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missed {
    /// None was ready (the first run, or the last one made none).
    NoneReady,
    /// The run's image or settings differ: the warm one is being removed.
    Changed,
    /// Making it failed, or it is no longer running its image.
    Unusable(String),
}

impl Warm {
    /// Called by the run about to create its container from `spec` (whose
    /// `run_id` is the run's): the warm container, if one is ready with the
    /// same engine, image and settings (its rename to the run's name goes on
    /// while the snapshot goes in: [`Claim::ready`]), and what to say about
    /// it. Whatever the answer, `spec` is what the next warm container is
    /// made of.
    pub(super) fn claim(&self, rt: &Handle, engine: &Engine, spec: &RunContainerSpec) -> Claim {
        let took = self.take(rt, engine, spec);
        let notice = notice(took.as_ref().map(|(c, _, _)| c));
        match took {
            Ok((container, renaming, inbox)) => Claim {
                container: Some(container),
                renaming: RefCell::new(Some(renaming)),
                inbox: RefCell::new(inbox),
                notice,
            },
            Err(_) => Claim { container: None, renaming: RefCell::new(None), inbox: RefCell::new(None), notice },
        }
    }

    fn take(&self, rt: &Handle, engine: &Engine, spec: &RunContainerSpec) -> Result<Taken, Missed> {
        let ready = {
            let mut slot = self.0.borrow_mut();
            // `--keep` labels its container at create time: never warm.
            slot.last = (!spec.keep).then(|| (engine.clone(), spec.clone()));
            slot.ready.take()
        };
        let Some(ready) = ready else { return Err(Missed::NoneReady) };
        if spec.keep || ready.fit != Fit::of(engine, spec) {
            self.discard_later(rt, ready);
            return Err(Missed::Changed);
        }
        let Pending { engine: made_on, task, .. } = ready;
        let (made, inbox) = match rt.block_on(task) {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(Missed::Unusable(format!("making it failed: {e}"))),
            Err(e) => return Err(Missed::Unusable(format!("making it failed: {e}"))),
        };
        match rt.block_on(adopt(&made_on, &made, spec)) {
            Ok((c, renaming)) => Ok((c, renaming, inbox)),
            Err(why) => {
                self.remove_later(rt, made_on, made);
                Err(Missed::Unusable(why))
            }
        }
    }

    /// While watch waits: makes and starts the next run's container (from
    /// what the last run used) unless one is ready. Returns at once; the
    /// engine work goes on on the runtime.
    pub fn prepare(&self, rt: &Handle) {
        let mut slot = self.0.borrow_mut();
        slot.removing.retain(|r| !r.is_finished());
        if slot.ready.is_some() {
            return;
        }
        let Some((engine, spec)) = slot.last.clone() else { return };
        let spec = RunContainerSpec { run_id: warm_id(), ..spec };
        let fit = Fit::of(&engine, &spec);
        let task = rt.spawn({
            let engine = engine.clone();
            async move { make(&engine, spec).await }
        });
        slot.ready = Some(Pending { fit, engine, task });
    }

    /// On watch's exit: hands the warm container to a detached remover
    /// (waiting for one still being made), as earlier removals were, for at
    /// most [`DISCARD_DEADLINE`] in all. What is left then is the orphan
    /// reaper's.
    pub fn discard(&self, rt: &Handle) {
        let removals = {
            let mut slot = self.0.borrow_mut();
            slot.last = None;
            let mut all = std::mem::take(&mut slot.removing);
            if let Some(p) = slot.ready.take() {
                all.push(spawn_discard(rt, p));
            }
            all
        };
        if removals.is_empty() {
            return;
        }
        rt.block_on(async {
            let _ = tokio::time::timeout(DISCARD_DEADLINE, futures_util::future::join_all(removals)).await;
        });
    }

    fn discard_later(&self, rt: &Handle, p: Pending) {
        let r = spawn_discard(rt, p);
        self.0.borrow_mut().removing.push(r);
    }

    fn remove_later(&self, rt: &Handle, engine: Engine, c: RunContainer) {
        let r = rt.spawn(async move { remove(&engine, &c).await });
        self.0.borrow_mut().removing.push(r);
    }
}

/// Creates and starts a warm container; one that can receive the snapshot
/// on stdin is attached first (if the attach fails, the snapshot goes
/// through the archive endpoint; its `tar` waits on a stdin nobody writes,
/// which harms nothing).
async fn make(engine: &Engine, spec: RunContainerSpec) -> Result<Made, EngineError> {
    let receive = super::container::receives_on_stdin(engine, &spec.image).await;
    let c = engine.create_stopped_run_container(&RunContainerSpec { receive, ..spec }).await?;
    let inbox = match receive {
        true => engine.open_inbox(&c).await.ok(),
        false => None,
    };
    engine.start_run_container(&c).await?;
    Ok((c, inbox))
}

/// Removes a warm container once it is made (off the run's path).
fn spawn_discard(rt: &Handle, p: Pending) -> JoinHandle<()> {
    rt.spawn(async move {
        if let Ok(Ok((c, _))) = p.task.await {
            remove(&p.engine, &c).await;
        }
    })
}

/// Hands the container to a detached remover (src/executor/remover.rs), so
/// neither a run nor watch's exit waits for the engine; removes it here,
/// bounded, only when no remover can be started.
async fn remove(engine: &Engine, c: &RunContainer) {
    if super::remover::hand_off(Some(engine), std::slice::from_ref(&c.id)).is_err() {
        let _ = tokio::time::timeout(DISCARD_DEADLINE, engine.remove(c)).await;
    }
}

/// The `-v` notice (`container-warm`) that says whether the run took the
/// warm container, and why not.
fn notice(claimed: Result<&RunContainer, &Missed>) -> EventKind {
    let message = match claimed {
        Ok(c) => format!("took the container watch kept ready ({})", short(&c.id)),
        Err(Missed::NoneReady) => "no container was kept ready; creating one".to_string(),
        Err(Missed::Changed) => {
            "the image or settings changed: removing the container kept ready, creating one".to_string()
        }
        Err(Missed::Unusable(why)) => format!("the container kept ready cannot be used ({why}); creating one"),
    };
    EventKind::Notice { level: Level::Info, code: "container-warm".into(), message, help: None }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A container taken for a run, its rename under way, and its stdin
/// when it waits for the snapshot there.
type Taken = (RunContainer, JoinHandle<Result<(), EngineError>>, Option<Inbox>);

/// What a run's claim came to, for its lease.
pub(super) struct Claim {
    /// The warm container, started, under the run's name (being renamed).
    pub container: Option<RunContainer>,
    renaming: RefCell<Option<JoinHandle<Result<(), EngineError>>>>,
    /// Its stdin, where its `tar` waits for the snapshot (taken once).
    inbox: RefCell<Option<Inbox>>,
    /// The `-v` notice: taken, or why not.
    pub notice: EventKind,
}

impl Claim {
    /// The warm container's stdin, if the snapshot is to go in there.
    pub fn take_inbox(&self) -> Option<Inbox> {
        self.inbox.borrow_mut().take()
    }

    /// Instead of a start (the container runs already): waits for its
    /// rename to the run's name, which goes on while the snapshot goes in.
    pub async fn ready(&self) -> Result<(), EngineError> {
        let renaming = self.renaming.borrow_mut().take();
        match renaming {
            Some(r) => r.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

/// Checks that the made container still runs, and runs the image `spec`
/// names now (a rebuilt Dockerfile or a `--pull always` may have moved the
/// tag); its rename to the run's name starts at once, in parallel, and is
/// waited for by [`Claim::ready`].
async fn adopt(
    engine: &Engine,
    made: &RunContainer,
    spec: &RunContainerSpec,
) -> Result<(RunContainer, JoinHandle<Result<(), EngineError>>), String> {
    let name = engine::container_name(&spec.run_id);
    let renaming = tokio::spawn({
        let (engine, id, name) = (engine.clone(), made.id.clone(), name.clone());
        async move {
            let options = bollard::query_parameters::RenameContainerOptions { name: name.clone() };
            engine
                .docker()
                .rename_container(&id, options)
                .await
                .map_err(|e| EngineError::api(format!("renaming the container kept ready to {name}"), e))
        }
    });
    let (image, inspected) =
        tokio::join!(engine.image_id(&spec.image), engine.docker().inspect_container(&made.id, None));
    let checked = (|| {
        let image = image.map_err(|e| e.to_string())?.ok_or_else(|| format!("image {} is gone", spec.image))?;
        let inspected = inspected.map_err(|e| format!("inspecting {}: {e}", made.name))?;
        if inspected.image.as_deref() != Some(image.as_str()) {
            return Err(format!("{} now names another image", spec.image));
        }
        if inspected.state.and_then(|s| s.running) != Some(true) {
            return Err(format!("{} is no longer running", made.name));
        }
        Ok(())
    })();
    match checked {
        Ok(()) => Ok((RunContainer { id: made.id.clone(), name }, renaming)),
        Err(why) => {
            // Removed by id whatever its name; the rename is moot.
            let _ = renaming.await;
            Err(why)
        }
    }
}

/// The placeholder run label of a warm container: `warm-` and an id of the
/// run-id shape (unique per process and moment), never a run's id.
fn warm_id() -> String {
    format!("warm-{}", crate::record::new_run_id())
}
