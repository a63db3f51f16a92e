//! The live view's status area: one row per running job at the bottom of
//! the terminal (spinner, job and command, elapsed time), plus a row for an
//! image pull or build and one per step of the run that lasts (the
//! snapshot's upload, the container's removal). Streamed lines are written
//! above it.
//!
//! Redraws are coalesced: output lines wait (at most [`FLUSH_EVERY`], or
//! until [`FLUSH_BYTES`] are waiting) and go out in one write together with
//! the redrawn rows, so a job printing a million lines costs a few thousand
//! writes, not a million clears and redraws. Anything that changes what the
//! user acts on (a job starts or ends, the run ends) is written at once.
//! A ticker thread keeps the spinner and clocks moving while output is
//! idle and writes lines that have waited long enough.
//!
//! On a real terminal the bytes are written by a thread of their own
//! ([`Writer`]): a pseudo-terminal takes them only as fast as the program
//! reading it does, and a draw that waited for that also held up the run's
//! events behind it. At most one draw is queued while another is being
//! written; `hide` (and so the end of the run) waits until all of it is out.
//!
//! Between draws the cursor is parked at the start of the first row, so a
//! line someone else writes there (the Ctrl-C message, `\r\x1b[K…`) takes
//! over the rows' place and the next draw clears whatever of them is left
//! below it.
//!
//! Owns: the rows' text, their drawing, and when the terminal is written.
//! Must not know about: events (the renderer tells it what to show), Docker.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use console::{Style, Term};

/// Spinner ticks: often enough to look alive, rare enough to cost nothing
/// while output is idle (see scripts/bench-render).
const TICK: Duration = Duration::from_millis(100);
/// The longest a streamed line waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Waiting output written at once when it reaches this size.
pub const FLUSH_BYTES: usize = 256 * 1024;

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The terminal as the status area sees it.
pub trait Terminal: Send {
    /// (rows, columns)
    fn size(&self) -> (usize, usize);
    fn write_all(&mut self, bytes: Vec<u8>);
    /// Returns once everything given to `write_all` is written.
    fn flush(&mut self) {}
}

/// A terminal written by a thread of its own (see the module docs).
struct Writer {
    size: Box<dyn Fn() -> (usize, usize) + Send>,
    out: Arc<Mutex<Box<dyn std::io::Write + Send>>>,
    /// Bounded: a draw waits while one is queued and another being written.
    /// None when no thread could be started: then `write_all` writes.
    tx: Option<mpsc::SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

enum Msg {
    Bytes(Vec<u8>),
    /// Everything before it is written: say so.
    Flushed(mpsc::Sender<()>),
}

fn write_out(out: &Mutex<Box<dyn std::io::Write + Send>>, bytes: &[u8]) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

impl Writer {
    /// `out` (stdout, or stderr for the pre-push hook: git's stdout is not
    /// the user's), whose terminal is `term`.
    fn on(out: Box<dyn std::io::Write + Send>, term: Term) -> Writer {
        Writer::spawn(
            out,
            Box::new(move || {
                let (rows, cols) = term.size();
                (rows as usize, cols as usize)
            }),
        )
    }

    fn spawn(out: Box<dyn std::io::Write + Send>, size: Box<dyn Fn() -> (usize, usize) + Send>) -> Writer {
        let out = Arc::new(Mutex::new(out));
        let (tx, rx) = mpsc::sync_channel::<Msg>(1);
        let theirs = out.clone();
        let thread = std::thread::Builder::new()
            .name("live-view-writer".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Bytes(bytes) => write_out(&theirs, &bytes),
                        Msg::Flushed(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .ok();
        Writer { size, out, tx: thread.is_some().then_some(tx), thread }
    }
}

impl Terminal for Writer {
    fn size(&self) -> (usize, usize) {
        (self.size)()
    }
    fn write_all(&mut self, bytes: Vec<u8>) {
        match &self.tx {
            Some(tx) => {
                let _ = tx.send(Msg::Bytes(bytes));
            }
            None => write_out(&self.out, &bytes),
        }
    }
    fn flush(&mut self) {
        let Some(tx) = &self.tx else { return };
        let (done, written) = mpsc::channel();
        if tx.send(Msg::Flushed(done)).is_ok() {
            let _ = written.recv();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One row of the status area.
struct Row {
    /// The job, or [`IMAGE_ROW`].
    key: String,
    text: String,
    /// The redrawn (`\r`) part of the running command's current line.
    segment: String,
    /// The clock shows the time since this.
    since: Instant,
    /// When the job started (its clock between commands).
    job_started: Instant,
}

const IMAGE_ROW: &str = "\0image";
/// A step's row: this, then the step's name.
const STEP_ROW: &str = "\0step:";
/// A step's row is drawn once the step has lasted this long: one that takes
/// a few milliseconds would only flicker.
const STEP_SHOWN_AFTER: Duration = Duration::from_millis(300);

struct Screen {
    term: Box<dyn Terminal>,
    /// Lines waiting to be written, above the rows.
    pending: Vec<u8>,
    /// In the order they appeared; the image row first.
    rows: Vec<Row>,
    /// How many rows are on the screen now (the cursor is at the first).
    drawn: usize,
    /// When waiting output was last written.
    last_write: Instant,
    frame: usize,
    pull: Option<Pull>,
    /// How long waiting output may wait ([`FLUSH_EVERY`]).
    flush_every: Duration,
    /// The terminal's width at the last draw.
    cols: usize,
}

impl Screen {
    /// Writes waiting lines and redraws the rows, in one write.
    fn draw(&mut self) {
        let (height, cols) = self.term.size();
        self.cols = cols;
        let mut bytes = Vec::with_capacity(self.pending.len() + 256);
        if self.drawn > 0 {
            // The cursor is at the first row: clear it and the rows below.
            bytes.extend_from_slice(&clear_rows(self.drawn));
        }
        bytes.append(&mut self.pending);
        let rows = self.row_texts(height, cols);
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(row.as_bytes());
        }
        if rows.len() > 1 {
            bytes.extend_from_slice(format!("\x1b[{}A", rows.len() - 1).as_bytes());
        }
        if !rows.is_empty() {
            bytes.push(b'\r');
        }
        self.drawn = rows.len();
        self.last_write = Instant::now();
        if !bytes.is_empty() {
            self.term.write_all(bytes);
        }
    }

    /// The rows as drawn: at most half the terminal's height, each short of
    /// the last column (a row that filled it would leave the cursor waiting
    /// to wrap, and the next write would land a row lower).
    fn row_texts(&self, height: usize, cols: usize) -> Vec<String> {
        let room = (height / 2).max(1);
        let spinner = Style::new().cyan().force_styling(true);
        let dim = Style::new().dim().force_styling(true);
        let frame = SPINNER[self.frame % SPINNER.len()];
        let mut out = Vec::new();
        let rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| !r.key.starts_with(STEP_ROW) || r.since.elapsed() >= STEP_SHOWN_AFTER)
            .collect();
        for (i, row) in rows.iter().enumerate() {
            if out.len() + 1 == room && rows.len() > room {
                let more = rows.len() - i;
                out.push(format!("{} {}", spinner.apply_to(frame), dim.apply_to(format!("… and {more} more running"))));
                break;
            }
            let what =
                if row.segment.is_empty() { row.text.clone() } else { format!("{} │ {}", row.text, row.segment) };
            let secs = clock(row.since.elapsed());
            let what = fit(&what, cols.saturating_sub(secs.chars().count() + 4));
            out.push(format!("{} {what} {}", spinner.apply_to(frame), dim.apply_to(secs)));
        }
        out
    }

    fn row(&mut self, key: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.key == key)
    }

    fn upsert(&mut self, key: &str, text: String, reset_clock: bool) {
        let now = Instant::now();
        match self.row(key) {
            Some(r) => {
                r.text = text;
                r.segment.clear();
                if reset_clock {
                    r.since = now;
                }
            }
            None => {
                let row = Row { key: key.to_string(), text, segment: String::new(), since: now, job_started: now };
                if key == IMAGE_ROW {
                    self.rows.insert(0, row);
                } else if key.starts_with(STEP_ROW) {
                    // After the image row and other steps, before the jobs.
                    let at = self.rows.iter().take_while(|r| r.key.starts_with('\0')).count();
                    self.rows.insert(at, row);
                } else {
                    self.rows.push(row);
                }
            }
        }
    }
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

    /// The row: layers done, bytes downloaded and, once any layer is being
    /// unpacked, bytes extracted.
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

/// The status area and its ticker.
pub struct StatusLine {
    screen: Arc<Mutex<Screen>>,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

fn dumb() -> bool {
    std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

impl StatusLine {
    /// The status area on stdout, or None when stdout is not a terminal
    /// (or TERM is dumb).
    pub fn on_stdout() -> Option<StatusLine> {
        let term = Term::stdout();
        if !term.is_term() || dumb() {
            return None;
        }
        Some(StatusLine::on(Box::new(Writer::on(Box::new(std::io::stdout()), term)), true))
    }

    /// The same on stderr.
    pub fn on_stderr() -> Option<StatusLine> {
        let term = Term::stderr();
        if !term.is_term() || dumb() {
            return None;
        }
        Some(StatusLine::on(Box::new(Writer::on(Box::new(std::io::stderr()), term)), true))
    }

    /// The status area on `term`; with `tick`, a thread redraws it.
    fn on(term: Box<dyn Terminal>, tick: bool) -> StatusLine {
        let cols = term.size().1;
        let screen = Arc::new(Mutex::new(Screen {
            term,
            pending: Vec::new(),
            rows: Vec::new(),
            drawn: 0,
            last_write: Instant::now(),
            frame: 0,
            pull: None,
            flush_every: FLUSH_EVERY,
            cols,
        }));
        let mut line = StatusLine { screen, stop: None, ticker: None };
        if tick {
            let (tx, rx) = mpsc::channel::<()>();
            let screen = line.screen.clone();
            line.ticker = Some(std::thread::spawn(move || loop {
                match rx.recv_timeout(TICK) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Ok(mut s) = screen.lock() else { return };
                if !s.rows.is_empty() || !s.pending.is_empty() {
                    s.frame = s.frame.wrapping_add(1);
                    s.draw();
                }
            }));
            line.stop = Some(tx);
        }
        line
    }

    fn lock(&self) -> MutexGuard<'_, Screen> {
        // A panic while drawing must not take the run down with it.
        self.screen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The terminal's width (as of the last draw: asking the terminal per
    /// output chunk would cost a system call each).
    pub fn cols(&self) -> usize {
        self.lock().cols.max(20)
    }

    /// Lines to show above the rows. With `now`, they are written at once
    /// (and the rows redrawn); else they may wait a moment for more.
    pub fn write(&self, bytes: &[u8], now: bool) {
        let mut s = self.lock();
        s.pending.extend_from_slice(bytes);
        if now || s.pending.len() >= FLUSH_BYTES || s.last_write.elapsed() >= s.flush_every {
            s.draw();
        }
    }

    /// A job's row: `text` with the clock from now (`reset_clock`) or from
    /// wherever it was.
    pub fn show_job(&self, job: &str, text: String, reset_clock: bool) {
        self.lock().upsert(job, text, reset_clock);
    }

    /// A job's row between its commands: the job's own time.
    pub fn show_job_clock(&self, job: &str) {
        let mut s = self.lock();
        if let Some(r) = s.row(job) {
            r.text = job.to_string();
            r.segment.clear();
            r.since = r.job_started;
        }
    }

    /// The running command's partially written line (empty: none).
    pub fn set_segment(&self, job: &str, segment: &str) {
        let clean: String = segment.chars().filter(|c| !c.is_control()).collect();
        if let Some(r) = self.lock().row(job) {
            r.segment = clean.trim().to_string();
        }
    }

    /// The job ended: its row goes (at the next write).
    pub fn end_job(&self, job: &str) {
        self.lock().rows.retain(|r| r.key != job);
    }

    /// The image row (`building IMAGE`, a build step).
    pub fn show_image(&self, text: String, reset_clock: bool) {
        self.lock().upsert(IMAGE_ROW, text, reset_clock);
    }

    pub fn start_pull(&self, image: &str) {
        let mut s = self.lock();
        s.pull = Some(Pull { image: image.to_string(), layers: BTreeMap::new() });
        s.upsert(IMAGE_ROW, format!("pulling {image}"), true);
    }

    pub fn pull_progress(&self, layer: Option<&str>, status: &str, current: Option<u64>, total: Option<u64>) {
        let mut s = self.lock();
        let Some(pull) = &mut s.pull else { return };
        // Whole-image lines ("Pulling from library/rust" carries the tag
        // as its id) are not layers; layer ids are 12 hex digits.
        let Some(layer) = layer.filter(|l| is_layer_id(l)) else { return };
        pull.update(layer, status, current, total);
        let what = pull.message();
        if let Some(r) = s.row(IMAGE_ROW) {
            r.text = what;
        }
    }

    /// The image is ready (or failed): its row goes (at the next write).
    pub fn end_image(&self) {
        let mut s = self.lock();
        s.pull = None;
        s.rows.retain(|r| r.key != IMAGE_ROW);
    }

    /// A step of the run under way (`uploading the snapshot · …`): its row,
    /// drawn once it has lasted [`STEP_SHOWN_AFTER`], with the clock from
    /// its first `show_step`.
    pub fn show_step(&self, step: &str, text: String) {
        self.lock().upsert(&format!("{STEP_ROW}{step}"), text, false);
    }

    /// The step ended: its row goes now (if it was drawn).
    pub fn end_step(&self, step: &str) {
        let mut s = self.lock();
        let key = format!("{STEP_ROW}{step}");
        let before = s.rows.len();
        s.rows.retain(|r| r.key != key);
        if s.rows.len() < before && s.drawn > 0 {
            s.draw();
        }
    }

    /// Every step's row goes (a job started: the steps before it are over).
    pub fn end_steps(&self) {
        self.lock().rows.retain(|r| !r.key.starts_with(STEP_ROW));
    }

    /// Removes every row and writes what waits (at the end, before a
    /// shell); returns once it is all on the terminal.
    pub fn hide(&self) {
        let mut s = self.lock();
        s.rows.clear();
        s.pull = None;
        s.draw();
        s.term.flush();
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.hide();
    }
}

/// Erases `n` rows from the cursor's (which stays where it is). Row by
/// row, not "the screen from here" (`ESC [J`): at the top-left corner tmux
/// takes that for a clear screen and pushes the screen into its
/// scrollback, so rows drawn at the top would pile up there, one per draw.
fn clear_rows(n: usize) -> Vec<u8> {
    let mut b = b"\r\x1b7".to_vec();
    for i in 0..n {
        if i > 0 {
            b.extend_from_slice(b"\x1b[B");
        }
        b.extend_from_slice(b"\x1b[2K");
    }
    b.extend_from_slice(b"\x1b8");
    b
}

fn clock(elapsed: Duration) -> String {
    let t = elapsed.as_secs_f64();
    if t < 60.0 {
        format!("{t:.1}s")
    } else {
        format!("{}m{:02}s", (t / 60.0) as u64, (t % 60.0) as u64)
    }
}

/// Cuts the text so spinner, text and clock fit on one row.
fn fit(msg: &str, room: usize) -> String {
    // A build step or a `\r` progress segment is job text (the live view
    // is coloured: SGR may stay, nothing else).
    let msg = super::sanitize::for_terminal(msg, true);
    let room = room.max(10);
    if console::measure_text_width(&msg) <= room {
        msg
    } else {
        let mut s = console::truncate_str(&msg, room - 1, "").into_owned();
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
    use super::*;

    /// A terminal the test reads back: every write kept apart.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Terminal for Fake {
        fn size(&self) -> (usize, usize) {
            (40, 80)
        }
        fn write_all(&mut self, bytes: Vec<u8>) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(bytes);
        }
    }

    impl Fake {
        fn writes(&self) -> Vec<String> {
            let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
            w.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
        }
    }

    /// No ticker, and output that waits until it must go.
    fn quiet_line(fake: &Fake) -> StatusLine {
        let line = StatusLine::on(Box::new(fake.clone()), false);
        line.lock().flush_every = Duration::from_secs(3600);
        line
    }

    #[test]
    fn a_pull_shows_extracting_after_its_download() {
        let mut p = Pull { image: "img".into(), layers: Default::default() };
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
    fn a_row_never_reaches_the_last_column() {
        let long = "x".repeat(300);
        assert_eq!(fit(&long, 70).chars().count(), 70);
        assert_eq!(fit("short", 70), "short");
        let fake = Fake::default();
        let line = quiet_line(&fake);
        line.show_job("a", long, true);
        line.write(b"", true);
        let drawn = console::strip_ansi_codes(&fake.writes()[0]).into_owned();
        assert!(drawn.trim_end_matches('\r').chars().count() < 80, "{drawn:?}");
    }

    #[test]
    fn only_layer_ids_count_as_layers() {
        assert!(is_layer_id("a2318d6c47ec"));
        assert!(!is_layer_id("1"), "a tag in a Pulling-from line");
        assert!(!is_layer_id("bookworm-slim"));
    }

    #[test]
    fn one_row_per_running_job_with_its_command() {
        let fake = Fake::default();
        let line = quiet_line(&fake);
        line.show_job("lint", "lint $ cargo clippy".into(), true);
        line.show_job("test", "test $ cargo test".into(), true);
        line.write(b"lint | checking\n", true);
        let raw = &fake.writes()[0];
        let w = console::strip_ansi_codes(raw).into_owned();
        // The line, then the two rows, then the cursor back on the first.
        assert!(w.starts_with("lint | checking\n⠋ lint $ cargo clippy 0.0s\r\n⠋ test $ cargo test 0.0s"), "{w:?}");
        assert!(raw.ends_with("\x1b[1A\r"), "{raw:?}");
        line.end_job("lint");
        line.write(b"", true);
        let w = fake.writes()[1].clone();
        assert!(w.starts_with("\r\x1b7\x1b[2K\x1b[B\x1b[2K\x1b8"), "both rows are erased from the first: {w:?}");
        assert!(console::strip_ansi_codes(&w).starts_with("\r⠋ test $ cargo test"), "{w:?}");
        assert!(!w.contains("lint"), "{w:?}");
    }

    #[test]
    fn output_is_coalesced_until_it_must_go() {
        let fake = Fake::default();
        let line = quiet_line(&fake);
        line.show_job("a", "a $ yes".into(), true);
        line.write(b"", true);
        let before = fake.writes().len();
        for _ in 0..100 {
            line.write(b"a | y\n", false);
        }
        assert_eq!(fake.writes().len(), before, "small chunks wait for the next write");
        line.end_job("a");
        line.write(b"", true);
        let all = fake.writes();
        assert_eq!(all.len(), before + 1, "100 chunks, one write");
        assert_eq!(all.concat().matches("a | y\n").count(), 100, "no line lost or repeated");
        // Enough bytes go at once, whatever the clock says.
        let line2 = quiet_line(&fake);
        line2.write(&vec![b'x'; FLUSH_BYTES], false);
        assert_eq!(fake.writes().len(), all.len() + 1);
    }

    /// A terminal that takes each write only when the test lets it (one
    /// token per write), like a pty whose reader is busy.
    struct Gated {
        gate: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl std::io::Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.gate.recv();
            self.written.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_terminal_holds_up_no_draw_and_hide_waits_until_all_is_written() {
        let (open, gate) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let out = Gated { gate, written: written.clone() };
        let line = StatusLine::on(Box::new(Writer::spawn(Box::new(out), Box::new(|| (40, 80)))), false);
        // Neither write waits for the terminal: one is being written, one queued.
        line.write(b"one\n", true);
        line.write(b"two\n", true);
        assert!(written.lock().unwrap().is_empty(), "nothing can have been written yet");
        for _ in 0..2 {
            open.send(()).unwrap();
        }
        line.hide();
        assert_eq!(*written.lock().unwrap(), b"one\ntwo\n", "hide returns once everything is written, in order");
    }

    #[test]
    fn a_step_row_shows_once_it_lasts_and_goes_when_it_ends() {
        let fake = Fake::default();
        let line = quiet_line(&fake);
        line.show_job("a", "a $ make".into(), true);
        line.show_step("upload", "uploading the snapshot into /work · 1.0 MiB · 3 files".into());
        line.write(b"", true);
        let first = console::strip_ansi_codes(&fake.writes()[0]).into_owned();
        assert!(!first.contains("uploading"), "a step is not drawn at once: {first:?}");
        // Aged past the threshold (as the ticker would find it).
        line.lock().rows.iter_mut().filter(|r| r.key.starts_with(STEP_ROW)).for_each(|r| {
            r.since = Instant::now() - STEP_SHOWN_AFTER;
        });
        line.show_step("upload", "uploading the snapshot into /work · 9.0 MiB · 30 files".into());
        line.write(b"", true);
        let w = console::strip_ansi_codes(&fake.writes()[1]).into_owned();
        assert!(w.contains("⠋ uploading the snapshot into /work · 9.0 MiB · 30 files 0.3s\r\n⠋ a $ make"), "{w:?}");
        let before = fake.writes().len();
        line.end_step("upload");
        assert_eq!(fake.writes().len(), before + 1, "a drawn step's end is drawn at once");
        let raw = fake.writes()[before].clone();
        let w = console::strip_ansi_codes(&raw).into_owned();
        assert!(raw.starts_with(&String::from_utf8(clear_rows(2)).unwrap()), "{raw:?}");
        assert!(!w.contains("uploading") && w.contains("a $ make"), "{raw:?}");
    }

    #[test]
    fn many_jobs_fold_into_a_last_row() {
        let fake = Fake::default();
        let line = quiet_line(&fake);
        for i in 0..30 {
            line.show_job(&format!("j{i}"), format!("j{i} $ sleep 1"), true);
        }
        line.write(b"", true);
        let w = console::strip_ansi_codes(&fake.writes()[0]).into_owned();
        assert_eq!(w.matches("\r\n").count() + 1, 20, "half of a 40-row terminal: {w:?}");
        assert!(w.contains("… and 11 more running"), "{w:?}");
    }
}
