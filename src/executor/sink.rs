//! The run record as an event sink: every event that is not transient goes
//! to the run directory (src/record/).
//!
//! Owns: writing events to the record, remembering the first write error
//! (the executor turns it into a `record-write-failed` notice). Must not
//! know about: the terminal.

use std::cell::RefCell;
use std::rc::Rc;

use crate::emitter::EventSink;
use crate::record::RunRecord;

/// The first error writing the record, shared with the executor.
pub(super) type WriteError = Rc<RefCell<Option<String>>>;

pub(super) struct RecordSink {
    pub record: RunRecord,
    pub error: WriteError,
}

impl EventSink for RecordSink {
    fn event(&mut self, ev: &crate::events::Event) {
        if ev.kind.is_transient() {
            return;
        }
        if let Err(e) = self.record.record(ev) {
            let mut first = self.error.borrow_mut();
            if first.is_none() {
                *first = Some(format!("cannot write the run record in {}: {e}", self.record.dir().display()));
            }
        }
    }
}
