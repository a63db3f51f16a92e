//! Where a run's events are made and handed out: every event passes through
//! here once, is redacted here once, and goes to every sink (the run record,
//! the terminal, `--json`, ...). No sink can see an unredacted secret.
//!
//! Owns: event construction helpers, redaction of events and of streamed
//! output (a secret split across chunks included), UTF-8 carry-over between
//! chunks, fan-out. Must not know about: Docker, Lua, the terminal's looks.

use std::collections::HashMap;

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
    redact: RedactStream,
    utf8: Utf8Carry,
}

pub struct Emitter {
    redactor: Redactor,
    sinks: Vec<Box<dyn EventSink>>,
    streams: HashMap<(String, u32, Stream), OpenStream>,
}

impl Emitter {
    pub fn new(redactor: Redactor) -> Emitter {
        Emitter { redactor, sinks: Vec::new(), streams: HashMap::new() }
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
        let ev = Event { ts: now_ts(), job: job.map(str::to_string), kind };
        self.dispatch(&ev);
    }

    fn dispatch(&mut self, ev: &Event) {
        for s in &mut self.sinks {
            s.event(ev);
        }
    }

    /// A chunk of a command's output, as it arrives. Held-back bytes (a
    /// possible secret prefix, an incomplete UTF-8 sequence) go out with
    /// the next chunk or at `end_output`.
    pub fn output(&mut self, job: &str, n: u32, stream: Stream, bytes: &[u8]) {
        let key = (job.to_string(), n, stream);
        let open = self
            .streams
            .entry(key)
            .or_insert_with(|| OpenStream { redact: self.redactor.stream(), utf8: Utf8Carry::new() });
        let safe = open.redact.push(bytes);
        let ready = open.utf8.push(&safe);
        if !ready.is_empty() {
            self.emit_raw(job, output_event(stream, n, &ready));
        }
    }

    /// Flushes whatever a command's streams still hold.
    pub fn end_output(&mut self, job: &str, n: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(mut open) = self.streams.remove(&(job.to_string(), n, stream)) {
                let rest = open.redact.finish();
                let mut ready = open.utf8.push(&rest);
                ready.extend(open.utf8.finish());
                if !ready.is_empty() {
                    self.emit_raw(job, output_event(stream, n, &ready));
                }
            }
        }
    }

    /// Output events are already redacted by their stream.
    fn emit_raw(&mut self, job: &str, kind: EventKind) {
        let ev = Event { ts: now_ts(), job: Some(job.to_string()), kind };
        self.dispatch(&ev);
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
        EventKind::RunEnd { error: Some(e), .. } => s(e),
        _ => {}
    }
}
