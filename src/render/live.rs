//! The live view's status line (indicatif): one line at the bottom of the
//! terminal with a spinner, what is happening (job and command, image pull
//! or build) and the elapsed time. Streamed lines are written through
//! [`StatusLine::suspend`], which clears the line, writes, and redraws it,
//! so output never tears or duplicates.
//!
//! Owns: the status line's text and lifetime. Must not know about: events
//! (the renderer tells it what to show), Docker.

use std::collections::BTreeMap;
use std::time::Duration;

use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// Spinner ticks: often enough to look alive, rare enough to cost nothing
/// while output is idle (see scripts/bench-render).
const TICK: Duration = Duration::from_millis(120);
/// Upper bound on redraws per second, however fast output arrives.
const MAX_HZ: u8 = 10;

pub struct StatusLine {
    bar: Option<ProgressBar>,
    cols: usize,
    /// What is happening, without the `\r` segment.
    base: String,
    /// The redrawn (`\r`) part of the running command's current line.
    segment: String,
    pull: Option<Pull>,
}

/// Bytes per layer of the image being pulled.
struct Pull {
    image: String,
    layers: BTreeMap<String, Layer>,
}

#[derive(Default)]
struct Layer {
    current: u64,
    total: u64,
    /// Bytes unpacked so far (`Extracting`): a large layer takes seconds
    /// after its download is complete.
    extracted: u64,
    done: bool,
}

impl Pull {
    /// Takes one progress message of the engine's.
    fn update(&mut self, layer: &str, status: &str, current: Option<u64>, total: Option<u64>) {
        let l = self.layers.entry(layer.to_string()).or_default();
        match status {
            "Downloading" => {
                l.current = current.unwrap_or(l.current);
                l.total = total.unwrap_or(l.total);
            }
            "Download complete" | "Verifying Checksum" => l.current = l.total,
            "Extracting" => {
                l.current = l.total.max(l.current);
                l.extracted = current.unwrap_or(l.extracted);
                if l.total == 0 {
                    l.total = total.unwrap_or(0);
                }
            }
            "Pull complete" | "Already exists" => {
                l.current = l.total;
                l.extracted = l.total;
                l.done = true;
            }
            _ => {}
        }
    }

    /// The status line: layers done, bytes downloaded and, once any layer
    /// is being unpacked, bytes extracted.
    fn message(&self) -> String {
        let done = self.layers.values().filter(|l| l.done).count();
        let current: u64 = self.layers.values().map(|l| l.current).sum();
        let total: u64 = self.layers.values().map(|l| l.total).sum();
        let mut what =
            format!("pulling {}: {done}/{} layers · {} / {}", self.image, self.layers.len(), mib(current), mib(total));
        if self.layers.values().any(|l| !l.done && l.extracted > 0) {
            let extracted: u64 = self.layers.values().map(|l| l.extracted).sum();
            what.push_str(&format!(" · extracting {} / {}", mib(extracted), mib(total)));
        }
        what
    }
}

impl StatusLine {
    /// A status line on stdout, or None when stdout is not a terminal
    /// (or TERM is dumb).
    pub fn on_stdout() -> Option<StatusLine> {
        let term = Term::stdout();
        if !term.is_term() || std::env::var("TERM").is_ok_and(|t| t == "dumb") {
            return None;
        }
        Some(StatusLine {
            bar: None,
            cols: term.size().1 as usize,
            base: String::new(),
            segment: String::new(),
            pull: None,
        })
    }

    /// The terminal's width, as of the last time the line was (re)shown.
    pub fn cols(&self) -> usize {
        self.cols.max(20)
    }

    /// Runs `write` with the status line out of the way.
    pub fn suspend(&self, write: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Shows `what` (restarting the clock when `reset_clock`).
    pub fn show(&mut self, what: String, reset_clock: bool) {
        self.cols = Term::stdout().size().1 as usize;
        self.base = what;
        self.segment.clear();
        let bar = self.bar.get_or_insert_with(new_bar);
        if reset_clock {
            bar.reset_elapsed();
        }
        bar.set_message(fit(&self.base, self.cols));
    }

    /// Shows `what` with the clock set to `elapsed` (the job's time, between
    /// its commands).
    pub fn show_since(&mut self, what: String, elapsed: Duration) {
        self.show(what, false);
        if let Some(bar) = &self.bar {
            bar.set_elapsed(elapsed);
        }
    }

    /// The running command's partially written line (empty: none).
    pub fn set_segment(&mut self, segment: String) {
        let clean: String = segment.chars().filter(|c| !c.is_control()).collect();
        let clean = clean.trim().to_string();
        if clean == self.segment {
            return;
        }
        self.segment = clean;
        if let Some(bar) = &self.bar {
            if self.segment.is_empty() {
                bar.set_message(fit(&self.base, self.cols));
            } else {
                bar.set_message(fit(&format!("{} │ {}", self.base, self.segment), self.cols));
            }
        }
    }

    pub fn start_pull(&mut self, image: &str) {
        self.pull = Some(Pull { image: image.to_string(), layers: BTreeMap::new() });
        self.show(format!("pulling {image}"), true);
    }

    pub fn pull_progress(&mut self, layer: Option<&str>, status: &str, current: Option<u64>, total: Option<u64>) {
        let Some(pull) = &mut self.pull else { return };
        let Some(layer) = layer else { return };
        // Whole-image lines ("Pulling from library/rust" carries the tag
        // as its id) are not layers; layer ids are 12 hex digits.
        if !is_layer_id(layer) {
            return;
        }
        pull.update(layer, status, current, total);
        let what = pull.message();
        if let Some(bar) = &self.bar {
            bar.set_message(fit(&what, self.cols));
        }
        self.base = what;
    }

    /// Removes the line (between jobs, at the end, before a shell).
    pub fn hide(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.pull = None;
        self.base.clear();
        self.segment.clear();
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.hide();
    }
}

fn new_bar() -> ProgressBar {
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(ShortOfLastColumn(Term::stdout())), MAX_HZ);
    let bar = ProgressBar::with_draw_target(None, target);
    let style = ProgressStyle::with_template("{spinner:.cyan} {msg} {secs:.dim}")
        .map(|s| {
            s.with_key("secs", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let t = state.elapsed().as_secs_f64();
                let _ = if t < 60.0 {
                    write!(w, "{t:.1}s")
                } else {
                    write!(w, "{}m{:02}s", (t / 60.0) as u64, (t % 60.0) as u64)
                };
            })
        })
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(TICK);
    bar
}

/// stdout as indicatif's terminal, two columns narrower than it is (room
/// for the `^C` a terminal echoes).
/// indicatif pads the status line to the full width; a line that fills the
/// terminal leaves the cursor waiting to wrap, and whatever is printed next
/// (an echoed ^C, the cancel message) lands one row lower, leaving a stale
/// status line behind.
#[derive(Debug)]
struct ShortOfLastColumn(Term);

impl TermLike for ShortOfLastColumn {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(2).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Cuts the message so spinner, message and clock fit on one row.
fn fit(msg: &str, cols: usize) -> String {
    // A build step or a `\r` progress segment is job text (the live view
    // is coloured: SGR may stay, nothing else).
    let msg = &super::sanitize::for_terminal(msg, true);
    let room = cols.saturating_sub(12).max(10);
    if msg.chars().count() <= room {
        msg.to_string()
    } else {
        let mut s: String = msg.chars().take(room - 1).collect();
        s.push('…');
        s
    }
}

fn is_layer_id(id: &str) -> bool {
    id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pull_shows_extracting_after_its_download() {
        let mut p = super::Pull { image: "img".into(), layers: Default::default() };
        let mib = 1024 * 1024;
        p.update("aaaaaaaaaaaa", "Downloading", Some(mib), Some(4 * mib));
        assert_eq!(p.message(), "pulling img: 0/1 layers · 1.0 MiB / 4.0 MiB");
        p.update("aaaaaaaaaaaa", "Download complete", None, None);
        p.update("aaaaaaaaaaaa", "Extracting", Some(3 * mib), Some(4 * mib));
        assert_eq!(p.message(), "pulling img: 0/1 layers · 4.0 MiB / 4.0 MiB · extracting 3.0 MiB / 4.0 MiB");
        p.update("aaaaaaaaaaaa", "Pull complete", None, None);
        assert_eq!(p.message(), "pulling img: 1/1 layers · 4.0 MiB / 4.0 MiB");
    }

    #[test]
    fn the_status_line_never_reaches_the_last_column() {
        let long = "x".repeat(300);
        assert_eq!(super::fit(&long, 80).chars().count(), 68);
        assert_eq!(super::fit("short", 80), "short");
    }

    #[test]
    fn only_layer_ids_count_as_layers() {
        assert!(super::is_layer_id("a2318d6c47ec"));
        assert!(!super::is_layer_id("1"), "a tag in a Pulling-from line");
        assert!(!super::is_layer_id("bookworm-slim"));
    }
}
