//! The engine connection, made on a runtime task from the start of a run
//! (while the snapshot and the compile happen), with the reaping of
//! containers that dead quire-ci processes left behind.
//!
//! Owns: connecting, the `orphan-reaped` and `engine-chosen` notices it
//! hands back. Must not know about: jobs, the record.

use super::outcome::UserError;
use crate::engine::Engine;
use crate::events::{EventKind, Level};

/// What the connecting task gives: the engine and what it has to say.
type Connected = Result<(Engine, Vec<EventKind>), UserError>;

pub(super) struct EngineLink {
    task: Option<tokio::task::JoinHandle<Connected>>,
    engine: Option<Result<Engine, UserError>>,
    notices: Vec<EventKind>,
}

impl EngineLink {
    pub fn start(rt: &tokio::runtime::Handle, verbose: bool) -> EngineLink {
        let task = rt.spawn(async move {
            let engine = Engine::connect().await.map_err(|e| UserError::from_diagnostic(&e, None))?;
            let mut notices = Vec::new();
            if verbose {
                notices.push(info("engine-chosen", format!("engine: {}", engine.chosen().describe())));
            }
            for c in engine.reap_orphans().await.unwrap_or_default() {
                notices.push(info(
                    "orphan-reaped",
                    format!("removed container {c} left behind by a quire-ci that is gone"),
                ));
            }
            Ok((engine, notices))
        });
        EngineLink { task: Some(task), engine: None, notices: Vec::new() }
    }

    /// Waits for the connection (once) and hands out the engine.
    pub fn get(&mut self, rt: &tokio::runtime::Handle) -> Result<Engine, UserError> {
        if let Some(task) = self.task.take() {
            let joined = rt.block_on(task).unwrap_or_else(|e| {
                Err(UserError::new("quire_ci::engine::connect", format!("connecting to the engine failed: {e}")))
            });
            self.engine = Some(joined.map(|(engine, notices)| {
                self.notices = notices;
                engine
            }));
        }
        self.engine.clone().unwrap_or_else(|| Err(UserError::new("quire_ci::engine::connect", "no engine connection")))
    }

    /// The notices the connection made, once (for the run's events).
    pub fn take_notices(&mut self) -> Vec<EventKind> {
        std::mem::take(&mut self.notices)
    }
}

fn info(code: &str, message: String) -> EventKind {
    EventKind::Notice { level: Level::Info, code: code.into(), message, help: None }
}
