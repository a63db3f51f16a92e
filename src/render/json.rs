//! `--json`: every recorded event as one JSON line, with its `job`.
//! Transient events (pull progress) are left out, so the stream is exactly
//! what log.jsonl holds (docs/log-format.md), merged into one.

use std::io::Write;

use crate::emitter::EventSink;
use crate::events::Event;

pub struct JsonLines(pub Box<dyn Write>);

impl EventSink for JsonLines {
    fn event(&mut self, ev: &Event) {
        if ev.kind.is_transient() {
            return;
        }
        if let Ok(line) = serde_json::to_string(ev) {
            let _ = writeln!(self.0, "{line}");
            let _ = self.0.flush();
        }
    }
}
