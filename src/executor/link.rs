//! The engine connection, made on a runtime task from the start of a run
//! (while the snapshot and the compile happen), with the reaping of
//! containers that dead quire-ci processes left behind (handed to a
//! detached remover, src/executor/remover.rs, so no run waits for them).
//!
//! Owns: connecting, the `orphan-reaped` and `engine-chosen` notices it
//! hands back. Must not know about: jobs, the record.

use std::cell::RefCell;
use std::rc::Rc;

use super::outcome::UserError;
use super::phase::Phase;
use crate::emitter::Emitter;
use crate::engine::Engine;
use crate::events::{EventKind, Level};

/// What the connecting task gives: the engine, what it has to say, and
/// the reaping it started.
type Connected = Result<(Engine, Vec<EventKind>, tokio::task::JoinHandle<Vec<EventKind>>), UserError>;

pub(super) struct EngineLink {
    task: Option<tokio::task::JoinHandle<Connected>>,
    engine: Option<Result<Engine, UserError>>,
    notices: Vec<EventKind>,
    /// The leftovers' reaping, going on once the engine answered: the run
    /// does not wait for it (its notices come when it is done).
    reaping: Option<tokio::task::JoinHandle<Vec<EventKind>>>,
}

impl EngineLink {
    pub fn start(rt: &tokio::runtime::Handle, verbose: bool) -> EngineLink {
        let task = rt.spawn(async move {
            let engine = Engine::connect().await.map_err(|e| UserError::from_diagnostic(&e, None))?;
            let mut notices = Vec::new();
            if verbose {
                notices.push(info("engine-chosen", format!("engine: {}", engine.chosen().describe())));
            }
            let reaping = tokio::spawn(reap(engine.clone()));
            Ok((engine, notices, reaping))
        });
        EngineLink { task: Some(task), engine: None, notices: Vec::new(), reaping: None }
    }

    /// Waits for the connection (once: that wait is the `engine` phase)
    /// and hands out the engine.
    pub fn get(&mut self, rt: &tokio::runtime::Handle, events: &Rc<RefCell<Emitter>>) -> Result<Engine, UserError> {
        if let Some(task) = self.task.take() {
            let phase = Phase::start(events, "engine");
            let joined = rt.block_on(task).unwrap_or_else(|e| {
                Err(UserError::new("quire_ci::engine::connect", format!("connecting to the engine failed: {e}")))
            });
            phase.end(events);
            self.engine = Some(joined.map(|(engine, notices, reaping)| {
                self.notices = notices;
                self.reaping = Some(reaping);
                engine
            }));
        }
        self.engine.clone().unwrap_or_else(|| Err(UserError::new("quire_ci::engine::connect", "no engine connection")))
    }

    /// The notices the connection made so far, once (for the run's
    /// events): the reaping's only if it is done.
    pub fn take_notices(&mut self, rt: &tokio::runtime::Handle) -> Vec<EventKind> {
        if self.reaping.as_ref().is_some_and(|r| r.is_finished()) {
            return self.rest(rt);
        }
        std::mem::take(&mut self.notices)
    }

    /// What is left to say, waiting for the reaping if it is not done
    /// (bounded: a frozen engine must not hold the run's end).
    pub fn rest(&mut self, rt: &tokio::runtime::Handle) -> Vec<EventKind> {
        let mut notices = std::mem::take(&mut self.notices);
        if let Some(reaping) = self.reaping.take() {
            let reaped = rt.block_on(async { tokio::time::timeout(REAP_DEADLINE, reaping).await });
            notices.extend(reaped.ok().and_then(Result::ok).unwrap_or_default());
        }
        notices
    }
}

/// How long the end of a run waits for the reaping's word.
const REAP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands the containers of quire-ci processes that are gone to a detached
/// remover (removing one takes the engine seconds for a large tree, and
/// this run must not wait for it); says which.
async fn reap(engine: Engine) -> Vec<EventKind> {
    let orphans = engine.orphans().await.unwrap_or_default();
    let ids: Vec<String> = orphans.iter().map(|(id, _)| id.clone()).collect();
    if super::remover::hand_off(Some(&engine), &ids).is_err() {
        for id in &ids {
            let _ = engine.remove_id(id).await;
        }
    }
    let said =
        |name| info("orphan-reaped", format!("removing container {name}, left behind by a quire-ci that is gone"));
    orphans.into_iter().map(|(_, name)| said(name)).collect()
}

fn info(code: &str, message: String) -> EventKind {
    EventKind::Notice { level: Level::Info, code: code.into(), message, help: None }
}
