//! Recorded event streams (fixtures/events/*.jsonl, in `--json` form: every
//! event of a run with its `job`), fed to the renderer with no engine, so
//! every rendered state can be snapshotted on any machine.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use quire_ci::emitter::EventSink;
use quire_ci::events::Event;
use quire_ci::render::{RenderOptions, Renderer};

/// The events of `fixtures/events/NAME.jsonl`, each line checked against
/// the log schema first.
pub fn fixture(name: &str) -> Vec<Event> {
    let path = super::repo_root().join("fixtures/events").join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            super::schema::validate_line(line).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: not an event: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A writer the test reads back.
#[derive(Clone, Default)]
pub struct Screen(Rc<RefCell<Vec<u8>>>);

impl Screen {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Screen {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the plain renderer prints for `events` (as `quire-ci logs` would).
pub fn render(events: &[Event], opts: RenderOptions, only_job: Option<&str>) -> String {
    let screen = Screen::default();
    let mut r = Renderer::new(Box::new(screen.clone()), opts);
    if let Some(job) = only_job {
        r = r.only_job(job);
    }
    for e in events {
        r.event(e);
    }
    r.finish();
    screen.text()
}

pub fn plain() -> RenderOptions {
    RenderOptions { color: false, quiet: false, verbose: false, run_dir: None }
}
