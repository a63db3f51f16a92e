//! Where a run's events are made and handed out: every event passes through
//! here once, is redacted here once, and goes to every sink (the run record,
//! the terminal, `--json`, ...). No sink can see an unredacted secret.
//!
//! Owns: event construction helpers, redaction of events and of streamed
//! output (a secret split across chunks included), UTF-8 carry-over between
//! chunks, the run's global order (`seq`), fan-out. Must not know about: Docker, Lua, the terminal's looks.

use crate::events::{Event, EventKind, Stream};
use crate::record::{now_ts, output_event, Utf8Carry};
use crate::redact::{RedactStream, Redactor};

/// A consumer of the event stream.
pub trait EventSink {
    fn event(&mut self, ev: &Event);
    /// Called once after the last event (flush, print a summary, ...).
    fn finish(&mut self) {}
}

struct OpenStream {
    job: String,
    n: u32,
    stream: Stream,
    redact: RedactStream,
    utf8: Utf8Carry,
}

pub struct Emitter {
    redactor: Redactor,
    sinks: Vec<Box<dyn EventSink>>,
    /// The open output streams (a few per running job: found by a scan,
    /// with no key made per chunk).
    streams: Vec<OpenStream>,
    /// The `seq` of the last event handed out (0: none yet).
    seq: u64,
}

impl Emitter {
    pub fn new(redactor: Redactor) -> Emitter {
        Emitter { redactor, sinks: Vec::new(), streams: Vec::new(), seq: 0 }
    }

    pub fn add_sink(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Emits an event (for a job when `job` is given), redacting every
    /// string in it first.
    pub fn emit(&mut self, job: Option<&str>, mut kind: EventKind) {
        redact_kind(&self.redactor, &mut kind);
        self.dispatch(job.map(str::to_string), kind);
    }

    /// Stamps the event (time, and its place in the run's order unless it
    /// is transient) and hands it to every sink. Every event goes through
    /// here, so `seq` is the order every sink saw.
    fn dispatch(&mut self, job: Option<String>, kind: EventKind) {
        let seq = if kind.is_transient() {
            None
        } else {
            self.seq += 1;
            Some(self.seq)
        };
        let ev = Event { ts: now_ts(), seq, job, kind };
        for s in &mut self.sinks {
            s.event(&ev);
        }
    }

    /// A chunk of a command's output, as it arrives. Held-back bytes (a
    /// possible secret prefix, an incomplete UTF-8 sequence) go out with
    /// the next chunk or at `end_output`. Without secrets the chunk is
    /// copied once, into its event.
    pub fn output(&mut self, job: &str, n: u32, stream: Stream, bytes: &[u8]) {
        let at = match self.streams.iter().position(|o| o.n == n && o.stream == stream && o.job == job) {
            Some(at) => at,
            None => {
                let (redact, utf8) = (self.redactor.stream(), Utf8Carry::new());
                self.streams.push(OpenStream { job: job.to_string(), n, stream, redact, utf8 });
                self.streams.len() - 1
            }
        };
        let open = &mut self.streams[at];
        let safe = open.redact.push_cow(bytes);
        let ready = open.utf8.push_cow(&safe);
        if !ready.is_empty() {
            let kind = output_event(stream, n, &ready);
            self.emit_raw(job, kind);
        }
    }

    /// Flushes whatever a command's streams still hold.
    pub fn end_output(&mut self, job: &str, n: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let Some(at) = self.streams.iter().position(|o| o.n == n && o.stream == stream && o.job == job) else {
                continue;
            };
            let mut open = self.streams.swap_remove(at);
            let rest = open.redact.finish();
            let mut ready = open.utf8.push(&rest);
            ready.extend(open.utf8.finish());
            if !ready.is_empty() {
                self.emit_raw(job, output_event(stream, n, &ready));
            }
        }
    }

    /// Output events are already redacted by their stream.
    fn emit_raw(&mut self, job: &str, kind: EventKind) {
        self.dispatch(Some(job.to_string()), kind);
    }

    pub fn finish(&mut self) {
        for s in &mut self.sinks {
            s.finish();
        }
    }
}

/// Masks secrets in every free-text field of an event.
fn redact_kind(r: &Redactor, kind: &mut EventKind) {
    if r.is_empty() {
        return;
    }
    let s = |x: &mut String| *x = r.redact_str(x);
    match kind {
        EventKind::ShStart { cmd, .. } => r.redact_json(cmd),
        EventKind::Stdout { data, encoding: None, .. } | EventKind::Stderr { data, encoding: None, .. } => s(data),
        EventKind::Print { data } => s(data),
        EventKind::ContainerDied { reason } => s(reason),
        EventKind::Image { detail: Some(d), .. } => s(d),
        EventKind::JobEnd { reason, outputs, .. } => {
            if let Some(x) = reason.as_mut() {
                s(x)
            }
            if let Some(o) = outputs.as_mut() {
                r.redact_json(o)
            }
        }
        EventKind::RunEnd { error, help, .. } => error.iter_mut().chain(help.iter_mut()).for_each(s),
        EventKind::Notice { message, help, .. } | EventKind::Problem { message, help, .. } => {
            s(message);
            if let Some(h) = help.as_mut() {
                s(h)
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::events::Level;

    struct Keep(Rc<RefCell<Vec<Event>>>);

    impl EventSink for Keep {
        fn event(&mut self, ev: &Event) {
            self.0.borrow_mut().push(ev.clone());
        }
    }

    fn progress() -> EventKind {
        EventKind::ImageProgress {
            image: "i".into(),
            layer: None,
            status: "Downloading".into(),
            current: None,
            total: None,
        }
    }

    #[test]
    fn every_recorded_event_gets_the_next_seq_across_jobs() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut e = Emitter::new(Redactor::new(vec![]));
        e.add_sink(Box::new(Keep(seen.clone())));
        e.emit(Some("a"), EventKind::JobStart {});
        e.emit(Some("b"), EventKind::JobStart {});
        e.emit(None, progress());
        e.output("b", 1, Stream::Stdout, b"from b\n");
        e.output("a", 1, Stream::Stdout, b"from a, no newline");
        e.end_output("a", 1);
        let seqs: Vec<Option<u64>> = seen.borrow().iter().map(|ev| ev.seq).collect();
        assert_eq!(seqs, vec![Some(1), Some(2), None, Some(3), Some(4)], "transient events take no number");
    }

    #[test]
    fn notices_and_problems_are_redacted() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut e = Emitter::new(Redactor::new(vec!["hunter2".into()]));
        e.add_sink(Box::new(Keep(seen.clone())));
        e.emit(
            None,
            EventKind::Notice {
                level: Level::Warning,
                code: "teardown-failed".into(),
                message: "could not remove hunter2".into(),
                help: Some("docker rm -f hunter2".into()),
            },
        );
        e.emit(
            None,
            EventKind::Problem {
                code: "quire_ci::eval".into(),
                message: "bad hunter2".into(),
                file: None,
                line: None,
                column: None,
                help: Some("no hunter2".into()),
            },
        );
        let text = serde_json::to_string(&*seen.borrow()).unwrap_or_default();
        assert!(!text.contains("hunter2") && text.contains("***"), "{text}");
    }
}
