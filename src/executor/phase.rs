//! `phase` events: a step of the run besides its jobs (snapshot, evaluate,
//! engine, image, create, start, upload, jobs, artifacts, teardown,
//! record), said as it starts and as it ends with how long it took, for
//! the live view and `-v`'s timings (docs/log-format.md lists the names).
//!
//! Owns: the phase names' spelling at the call sites' side and the timing.
//! Must not know about: how they are shown.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::emitter::Emitter;
use crate::events::{EventKind, PhaseState};

/// A step under way: `start` said, `end` to come.
#[must_use = "a phase that is started must be ended"]
pub(super) struct Phase {
    name: &'static str,
    started: Instant,
}

impl Phase {
    /// Says that `name` starts now.
    pub fn start(events: &Rc<RefCell<Emitter>>, name: &'static str) -> Phase {
        emit(events, name, PhaseState::Start, None);
        Phase { name, started: Instant::now() }
    }

    /// Says that it ended, with its duration.
    pub fn end(self, events: &Rc<RefCell<Emitter>>) {
        emit(events, self.name, PhaseState::End, Some(self.started.elapsed()));
    }
}

fn emit(events: &Rc<RefCell<Emitter>>, name: &str, state: PhaseState, took: Option<Duration>) {
    let kind = EventKind::Phase {
        phase: name.to_string(),
        state,
        done: None,
        total: None,
        files: None,
        duration_ms: took.map(|d| d.as_millis() as u64),
    };
    events.borrow_mut().emit(None, kind);
}
