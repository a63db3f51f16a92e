//! `--json`: every recorded event as one JSON line, with its `job`: what
//! log.jsonl holds (docs/log-format.md), merged into one, plus the
//! transient pull progress (`image-progress`, downloading and extracting)
//! that the live view shows and the record leaves out.

use std::io::Write;

use crate::emitter::EventSink;
use crate::events::Event;

pub struct JsonLines(pub Box<dyn Write>);

impl EventSink for JsonLines {
    fn event(&mut self, ev: &Event) {
        if let Ok(line) = serde_json::to_string(ev) {
            let _ = writeln!(self.0, "{line}");
            let _ = self.0.flush();
        }
    }
}
