//! The run record as an event sink: every event that is not transient goes
//! to the run directory (src/record/), written on a thread of its own so
//! that encoding and writing a run's output (hundreds of MiB for a chatty
//! build) does not hold up the thread that reads the commands' output and
//! draws it. One queue, in the order events were made: the record's lines
//! are in `seq` order as before. The queue is bounded, so a slow disk holds
//! the run back rather than filling memory.
//!
//! Owns: writing events to the record, remembering the first write error
//! (the executor turns it into a `record-write-failed` notice). Must not
//! know about: the terminal.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::emitter::EventSink;
use crate::events::Event;
use crate::record::RunRecord;

/// Events waiting for the writer (each at most a coalesced output chunk,
/// 256 KiB: a few MiB at most).
const QUEUE: usize = 8;

enum Msg {
    Event(Event),
    /// Answered once everything sent before it is written.
    Sync(SyncSender<()>),
    End,
}

/// Writes events into the record and keeps the first error.
struct Writer {
    record: RunRecord,
    first: Arc<Mutex<Option<String>>>,
}

impl Writer {
    fn write(&mut self, ev: &Event) {
        if let Err(e) = self.record.record(ev) {
            let Ok(mut first) = self.first.lock() else { return };
            if first.is_none() {
                *first = Some(format!("cannot write the run record in {}: {e}", self.record.dir().display()));
            }
        }
    }

    fn serve(mut self, rx: Receiver<Msg>) {
        for msg in rx {
            match msg {
                Msg::Event(ev) => self.write(&ev),
                Msg::Sync(ack) => {
                    let _ = ack.send(());
                }
                Msg::End => break,
            }
        }
    }
}

pub(super) struct RecordSink {
    mode: Mode,
}

enum Mode {
    Thread {
        tx: SyncSender<Msg>,
        thread: Option<JoinHandle<()>>,
    },
    /// No thread could be started: written here, as events come.
    Inline(Box<Writer>),
}

/// The first error writing the record, shared with the executor.
#[derive(Clone)]
pub(super) struct WriteError {
    first: Arc<Mutex<Option<String>>>,
    tx: Option<SyncSender<Msg>>,
}

impl WriteError {
    /// The first write error, once every event emitted so far is written
    /// (so none is missed because it was still queued).
    pub fn take(&self) -> Option<String> {
        if let Some(tx) = &self.tx {
            let (ack, done) = mpsc::sync_channel(1);
            if tx.send(Msg::Sync(ack)).is_ok() {
                let _ = done.recv();
            }
        }
        self.first.lock().ok()?.take()
    }
}

impl RecordSink {
    /// The sink for `record`, its writer thread started.
    pub fn start(record: RunRecord) -> (RecordSink, WriteError) {
        let first = Arc::new(Mutex::new(None));
        let writer = Writer { record, first: first.clone() };
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        // The writer moves into the thread; if the thread cannot start it
        // is not lost: spawn hands nothing back, so it is built in there.
        let slot = Arc::new(Mutex::new(Some(writer)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new().name("quire-ci-record".into()).spawn(move || {
            if let Some(w) = theirs.lock().ok().and_then(|mut w| w.take()) {
                w.serve(rx);
            }
        });
        match spawned {
            Ok(thread) => {
                let sink = RecordSink { mode: Mode::Thread { tx: tx.clone(), thread: Some(thread) } };
                (sink, WriteError { first, tx: Some(tx) })
            }
            Err(e) => match slot.lock().ok().and_then(|mut w| w.take()) {
                Some(writer) => (RecordSink { mode: Mode::Inline(Box::new(writer)) }, WriteError { first, tx: None }),
                // Not reached (the thread never ran, so it took nothing);
                // should it be, the run says its record is incomplete.
                None => {
                    if let Ok(mut f) = first.lock() {
                        *f = Some(format!("cannot start writing the run record: {e}"));
                    }
                    (RecordSink { mode: Mode::Thread { tx, thread: None } }, WriteError { first, tx: None })
                }
            },
        }
    }

    /// Waits until everything is written and the writer is gone.
    fn close(&mut self) {
        if let Mode::Thread { tx, thread } = &mut self.mode {
            if let Some(t) = thread.take() {
                let _ = tx.send(Msg::End);
                let _ = t.join();
            }
        }
    }
}

impl EventSink for RecordSink {
    fn event(&mut self, ev: &crate::events::Event) {
        if ev.kind.is_transient() {
            return;
        }
        match &mut self.mode {
            Mode::Thread { tx, .. } => {
                // The writer is gone only if it panicked: nothing more can be
                // written, and the executor hears of it as a write error.
                let _ = tx.send(Msg::Event(ev.clone()));
            }
            Mode::Inline(w) => w.write(ev),
        }
    }

    /// The record is complete when the run's last event has been handled.
    fn finish(&mut self) {
        self.close();
    }
}

impl Drop for RecordSink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, Stream};
    use crate::record::{now_ts, output_event, read_log, RunMeta};

    fn record(dir: &std::path::Path) -> RunRecord {
        let meta = RunMeta {
            run_id: "r".into(),
            repo: dir.to_owned(),
            git_ref: "main".into(),
            sha: None,
            tree: "t".into(),
            dirty: false,
            image: None,
            ci_fnl_hash: "h".into(),
            quire_ci_version: "0".into(),
            started_at: now_ts(),
            pid: std::process::id(),
            extra: Default::default(),
        };
        RunRecord::create(&dir.join("run"), &meta).unwrap_or_else(|e| panic!("create: {e}"))
    }

    fn ev(seq: u64, job: &str, kind: EventKind) -> Event {
        Event { ts: now_ts(), seq: Some(seq), job: Some(job.into()), kind }
    }

    /// Written on the writer's thread, in the order handed over, and all of
    /// it by the time the sink has finished.
    #[test]
    fn every_event_is_on_disk_in_order_when_the_sink_finishes() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut sink, error) = RecordSink::start(record(tmp.path()));
        sink.event(&ev(1, "a", EventKind::JobStart {}));
        for i in 0..500u64 {
            sink.event(&ev(i + 2, "a", output_event(Stream::Stdout, 1, format!("line {i}\n").as_bytes())));
        }
        sink.finish();
        let run = read_log(&tmp.path().join("run/log.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.iter().map(|e| e.seq).collect::<Vec<_>>(), [Some(1)]);
        let job = read_log(&tmp.path().join("run/jobs/a/log.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        let seqs: Vec<u64> = job.iter().filter_map(|e| e.seq).collect();
        assert_eq!(seqs, (2..=501).collect::<Vec<u64>>());
        assert_eq!(error.take(), None);
    }

    /// A write that fails on the writer's thread is seen by the executor,
    /// even when it asks while the event is still queued.
    #[test]
    fn a_write_error_on_the_writer_thread_reaches_the_executor() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut sink, error) = RecordSink::start(record(tmp.path()));
        // A job id that cannot be a directory: its log cannot be opened.
        sink.event(&ev(1, "..", output_event(Stream::Stdout, 1, b"x\n")));
        let first = error.take();
        assert!(first.as_deref().is_some_and(|e| e.contains("cannot write the run record")), "{first:?}");
        assert_eq!(error.take(), None, "taken once");
        sink.finish();
    }
}
