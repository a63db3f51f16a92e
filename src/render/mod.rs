//! The terminal renderer: a consumer of the run's event stream, used live
//! and (fed from log.jsonl by `quire-ci logs`) for replay, so both show the
//! same thing. Plain mode (no TTY, `NO_COLOR`, `--color never`) prints only
//! what the events say, so a replay prints exactly what the live run did.
//!
//! Owns: how a run looks — job prefixes, `$ cmd` / `exit N · 2.3s` lines,
//! skip and failure lines, the status line (live.rs), the summary
//! (summary.rs), `--json` (json.rs). Must not know about: Docker, Lua,
//! where events come from.

mod json;
mod live;
mod summary;

pub use json::JsonLines;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;

use console::Style;

use crate::emitter::EventSink;
use crate::events::{Event, EventKind, Outcome, RunStatus, Stream};
use crate::record::decode_data;
use live::StatusLine;

/// How many trailing output lines of a failed command the summary repeats.
const TAIL_LINES: usize = 15;

/// Under `-q` a job's output is held until it ends (it is shown only if the
/// job fails); at most this many lines, so memory stays bounded.
const HELD_LINES: usize = 5000;

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub color: bool,
    /// Only failing jobs' output and the summary.
    pub quiet: bool,
    pub verbose: bool,
    /// The run directory, named in the summary; when None, the `run-start`
    /// event's `dir` is used (so a replay names it too).
    pub run_dir: Option<PathBuf>,
}

/// What the renderer remembers about one job.
struct JobView {
    colour: Style,
    /// Output lines of the job, kept for `-q` (printed if it fails): the
    /// last HELD_LINES of them, and how many earlier ones were let go.
    held: VecDeque<String>,
    held_dropped: usize,
    /// The last lines of the current (or last) command.
    tail: VecDeque<String>,
    /// The last lines and exit code of the last command that exited non-zero.
    failed_cmd: Option<(String, i64, VecDeque<String>)>,
    /// The command now running (or last run), as shown after `$`.
    cmd: String,
    /// Its run-fn started (a `job-start` event), so its time means something.
    started: bool,
    outcome: Option<summary::JobRow>,
}

/// `ci.fnl:12`, or `helpers.fnl:7` for a module in `.quire/` (a record
/// written before job-end carried its file means ci.fnl).
fn source_ref(file: Option<&str>, line: u32) -> String {
    let file = file.unwrap_or(crate::pipeline::CI_FNL);
    format!("{}:{line}", file.strip_prefix(".quire/").unwrap_or(file))
}

pub struct Renderer {
    out: Box<dyn Write>,
    /// Lines of the event being handled; written in one piece at its end so
    /// the status line is cleared and redrawn once per event, not per line.
    buf: Vec<u8>,
    opts: RenderOptions,
    /// The status line; None in plain mode.
    live: Option<StatusLine>,
    /// Partial lines per (job, n, stream), waiting for their newline.
    partial: HashMap<(String, u32, Stream), Vec<u8>>,
    jobs: Vec<String>,
    views: HashMap<String, JobView>,
    width: usize,
    run_end: Option<(RunStatus, u64, Option<String>)>,
    died: Option<String>,
    /// `logs --job`: print only this job's lines (the summary stays whole).
    only: Option<String>,
    /// When the running job started (live only: the status line's clock).
    job_started: Option<std::time::Instant>,
}

const PALETTE: [u8; 6] = [6, 5, 3, 4, 2, 14];

impl Renderer {
    /// A plain renderer writing to `out`: no cursor movement, no spinner;
    /// colour only when `opts.color`.
    pub fn new(out: Box<dyn Write>, opts: RenderOptions) -> Renderer {
        Renderer {
            out,
            buf: Vec::with_capacity(64 * 1024),
            opts,
            live: None,
            partial: HashMap::new(),
            jobs: Vec::new(),
            views: HashMap::new(),
            width: 0,
            run_end: None,
            died: None,
            only: None,
            job_started: None,
        }
    }

    /// Shows only `job`'s lines; the summary still covers every job.
    pub fn only_job(mut self, job: &str) -> Renderer {
        self.only = Some(job.to_string());
        self
    }

    fn shown(&self, job: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == job)
    }

    /// The live view on stdout (a terminal): a status line at the bottom
    /// with the running job, command and elapsed time, pull and build
    /// progress, long lines wrapped under their job prefix. Falls back to
    /// plain output when stdout is not a terminal.
    pub fn live(opts: RenderOptions) -> Renderer {
        let mut r = Renderer::new(Box::new(std::io::stdout()), opts);
        r.live = StatusLine::on_stdout();
        r
    }

    fn style(&self, s: Style) -> Style {
        if self.opts.color {
            s.force_styling(true)
        } else {
            Style::new()
        }
    }

    fn view(&mut self, job: &str) -> &mut JobView {
        if !self.views.contains_key(job) {
            let colour = Style::new().color256(PALETTE[self.views.len() % PALETTE.len()]);
            let colour = if self.opts.color { colour.force_styling(true) } else { Style::new() };
            self.views.insert(
                job.to_string(),
                JobView {
                    colour,
                    held: VecDeque::new(),
                    held_dropped: 0,
                    tail: VecDeque::new(),
                    failed_cmd: None,
                    cmd: String::new(),
                    started: false,
                    outcome: None,
                },
            );
            if !self.jobs.iter().any(|j| j == job) {
                self.jobs.push(job.to_string());
            }
            self.width = self.width.max(job.chars().count());
        }
        self.views.get_mut(job).expect("inserted above")
    }

    fn prefix(&mut self, job: &str, mark: &str) -> String {
        let width = self.width.max(job.chars().count());
        let v = self.view(job);
        format!("{} {mark} ", v.colour.apply_to(format!("{job:<width$}")))
    }

    fn write_line(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes what the current event produced, around the status line.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let (out, buf) = (&mut self.out, &self.buf);
        let mut write = move || {
            let _ = out.write_all(buf);
            let _ = out.flush();
        };
        match &self.live {
            Some(l) => l.suspend(write),
            None => write(),
        }
        self.buf.clear();
    }

    /// A line of a job's output (or a note about it): printed now, or held
    /// under `-q` until we know whether the job fails.
    fn job_line(&mut self, job: &str, line: String, output: bool) {
        if output {
            let v = self.view(job);
            v.tail.push_back(line.clone());
            if v.tail.len() > TAIL_LINES {
                v.tail.pop_front();
            }
        }
        if !self.shown(job) {
            return;
        }
        if self.opts.quiet {
            let v = self.view(job);
            v.held.push_back(line);
            if v.held.len() > HELD_LINES {
                v.held.pop_front();
                v.held_dropped += 1;
            }
        } else {
            self.write_line(&line);
        }
    }

    fn output(&mut self, job: &str, n: u32, stream: Stream, bytes: &[u8], flush: bool) {
        /// The longest piece of a newline-free output line shown at once.
        const MAX_LINE: usize = 64 * 1024;
        let key = (job.to_string(), n, stream);
        let mut buf = self.partial.remove(&key).unwrap_or_default();
        // Only the new bytes can hold a newline: rescanning the held part on
        // every chunk made a long newline-free output quadratic.
        let mut scan_from = buf.len();
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut lines: Vec<&[u8]> = Vec::new();
        while let Some(pos) = buf[scan_from..].iter().position(|&b| b == b'\n') {
            let end = scan_from + pos;
            lines.push(&buf[start..end]);
            start = end + 1;
            scan_from = start;
        }
        // A line that never ends is shown in MAX_LINE pieces, so memory stays
        // bounded whatever a command prints (the log keeps every byte).
        while buf.len() - start >= MAX_LINE {
            lines.push(&buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        let rest = &buf[start..];
        let mut keep = None;
        if flush && !rest.is_empty() {
            lines.push(rest);
        } else if !rest.is_empty() {
            keep = Some(rest.to_vec());
        }
        let mark = match stream {
            Stream::Stdout => "|",
            Stream::Stderr => "!",
        };
        let prefix = self.prefix(job, mark);
        // Live only: a line wider than the terminal is cut into rows that
        // each carry a continuation prefix, so the job column stays readable.
        let room = self.live.as_ref().map(|l| l.cols().saturating_sub(self.width + 3).max(20));
        let texts: Vec<String> = lines.iter().map(|raw| visible_text(raw)).collect();
        for text in texts {
            let pieces = match room {
                Some(room) if text.len() > room => wrap(&text, room),
                _ => vec![text],
            };
            for (i, piece) in pieces.into_iter().enumerate() {
                let body = match stream {
                    Stream::Stderr => self.style(Style::new().yellow()).apply_to(piece).to_string(),
                    Stream::Stdout => piece,
                };
                let line = if i == 0 {
                    format!("{prefix}{body}")
                } else {
                    let cont = self.style(Style::new().dim()).apply_to("↳");
                    format!("{:w$} {cont} {body}", "", w = self.width)
                };
                self.job_line(job, line, true);
            }
        }
        // A partial line that a tool keeps redrawing with `\r` (a progress
        // bar) shows on the status line instead of flooding the screen.
        if self.live.is_some() {
            let segment = keep.as_deref().map(visible_text).unwrap_or_default();
            if let Some(l) = &mut self.live {
                l.set_segment(segment);
            }
        }
        if let Some(k) = keep {
            self.partial.insert(key, k);
        }
    }

    fn flush_partials(&mut self, job: &str, n: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.partial.contains_key(&(job.to_string(), n, stream)) {
                self.output(job, n, stream, &[], true);
            }
        }
    }

    fn dim_line(&mut self, text: String) {
        if !self.opts.quiet {
            let l = self.style(Style::new().dim()).apply_to(text).to_string();
            self.write_line(&l);
        }
    }

    fn image(&mut self, image: &str, action: &str, detail: &Option<String>) {
        match (action, detail) {
            ("build", Some(d)) => {
                let step = d.trim_start().starts_with("Step ");
                if step {
                    if let Some(l) = &mut self.live {
                        l.show(format!("building {image}: {}", d.trim()), false);
                    }
                }
                // Steps are the build's outline; the rest is detail.
                if self.opts.verbose || step {
                    self.dim_line(format!("image {image} | {}", d.trim_end()));
                }
            }
            ("present", _) => {
                if self.opts.verbose {
                    self.dim_line(format!("image {image} is present"));
                }
            }
            (a, d) => {
                match a {
                    "pulling" => {
                        if let Some(l) = &mut self.live {
                            l.start_pull(image);
                        }
                    }
                    "building" => {
                        if let Some(l) = &mut self.live {
                            l.show(format!("building {image}"), true);
                        }
                    }
                    _ => {
                        if let Some(l) = &mut self.live {
                            l.hide();
                        }
                    }
                }
                match d {
                    Some(d) => self.dim_line(format!("image {image}: {a} ({d})")),
                    None => self.dim_line(format!("image {image}: {a}")),
                }
            }
        }
    }
}

impl EventSink for Renderer {
    fn event(&mut self, ev: &Event) {
        let job = ev.job.clone().unwrap_or_default();
        match &ev.kind {
            EventKind::RunStart { jobs, dir, .. } => {
                for j in jobs {
                    self.view(j);
                }
                if self.opts.run_dir.is_none() {
                    self.opts.run_dir = dir.as_ref().map(PathBuf::from);
                }
            }
            EventKind::Image { image, action, detail } => self.image(image, action, detail),
            EventKind::ImageProgress { layer, status, current, total, .. } => {
                if let Some(l) = &mut self.live {
                    l.pull_progress(layer.as_deref(), status, *current, *total);
                }
            }
            EventKind::ContainerStart { image, container_id } => {
                if self.opts.verbose {
                    let short: String = container_id.chars().take(12).collect();
                    self.dim_line(format!("container {short} from {image}"));
                }
            }
            EventKind::JobStart {} => {
                self.view(&job).started = true;
                let l = format!("{} {}", self.style(Style::new().bold()).apply_to("==>"), self.view(&job).colour.apply_to(&job));
                self.job_line(&job, l, false);
                if let Some(live) = &mut self.live {
                    live.show(job.clone(), true);
                    self.job_started = Some(std::time::Instant::now());
                }
            }
            EventKind::ShStart { cmd, .. } => {
                let shown = match cmd {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => a.iter().map(|v| shell_word(v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(" "),
                    other => other.to_string(),
                };
                let v = self.view(&job);
                v.cmd = shown.clone();
                v.tail.clear();
                // A multi-line script keeps the job column: its first line
                // after `$`, the rest after `>` (as a shell's PS2 would).
                for (i, piece) in shown.split('\n').enumerate() {
                    let prefix = self.prefix(&job, if i == 0 { "$" } else { ">" });
                    let l = format!("{prefix}{}", self.style(Style::new().bold()).apply_to(piece));
                    self.job_line(&job, l, false);
                }
                if let Some(live) = &mut self.live {
                    // Short, so a `\r` progress segment still fits after it.
                    let first_line: String = shown.lines().next().unwrap_or("").chars().take(40).collect();
                    let more = if first_line.len() < shown.len() { "…" } else { "" };
                    live.show(format!("{job} $ {first_line}{more}"), true);
                }
            }
            EventKind::Stdout { n, .. } => self.output(&job, *n, Stream::Stdout, &decode_data(&ev.kind), false),
            EventKind::Stderr { n, .. } => self.output(&job, *n, Stream::Stderr, &decode_data(&ev.kind), false),
            EventKind::ShExit { n, exit, signal, duration_ms } => {
                self.flush_partials(&job, *n);
                let mut text = format!("exit {exit}");
                if let Some(s) = signal {
                    text.push_str(&format!(" ({s})"));
                }
                text.push_str(&format!(" · {}", human_ms(*duration_ms)));
                let style = if *exit == 0 { Style::new().dim() } else { Style::new().red() };
                let prefix = self.prefix(&job, " ");
                let l = format!("{prefix}{}", self.style(style).apply_to(text));
                self.job_line(&job, l, false);
                let v = self.view(&job);
                if *exit != 0 {
                    v.failed_cmd = Some((v.cmd.clone(), *exit, v.tail.clone()));
                }
                if let Some(live) = &mut self.live {
                    let elapsed = self.job_started.map(|t| t.elapsed()).unwrap_or_default();
                    live.show_since(job.clone(), elapsed);
                }
            }
            EventKind::Print { data } => {
                let prefix = self.prefix(&job, ":");
                for line in data.lines() {
                    self.job_line(&job, format!("{prefix}{line}"), true);
                }
            }
            EventKind::JobEnd { outcome, duration_ms, reason, file, line, .. } => {
                let at = line.map(|l| source_ref(file.as_deref(), l));
                if let Some(live) = &mut self.live {
                    live.hide();
                }
                let l = match outcome {
                    Outcome::Succeeded => format!(
                        "{} {} {}",
                        self.style(Style::new().green()).apply_to("ok"),
                        job,
                        self.style(Style::new().dim()).apply_to(human_ms(*duration_ms))
                    ),
                    Outcome::Skipped => format!(
                        "{} {}{}",
                        self.style(Style::new().dim()).apply_to("skipped"),
                        job,
                        // The executor's reasons may start "skipped because ...".
                        reason.as_ref().map(|r| format!(": {}", r.strip_prefix("skipped ").unwrap_or(r))).unwrap_or_default()
                    ),
                    Outcome::Canceled => format!(
                        "{} {}{}",
                        self.style(Style::new().yellow()).apply_to("canceled"),
                        job,
                        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                    Outcome::Failed => format!(
                        "{} {}{}{}",
                        self.style(Style::new().red().bold()).apply_to("FAILED"),
                        job,
                        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default(),
                        at.as_ref().map(|a| format!(" ({a})")).unwrap_or_default()
                    ),
                };
                let failed = *outcome == Outcome::Failed;
                let quiet = self.opts.quiet;
                let v = self.view(&job);
                v.outcome = Some(summary::JobRow {
                    outcome: *outcome,
                    duration_ms: *duration_ms,
                    started: v.started,
                    reason: reason.clone(),
                    at,
                    last_exit: v.failed_cmd.as_ref().map(|(c, e, _)| (c.clone(), *e)),
                });
                let held = std::mem::take(&mut v.held);
                let dropped = std::mem::take(&mut v.held_dropped);
                if self.shown(&job) && (!quiet || failed) {
                    if dropped > 0 {
                        let note = format!("… {dropped} earlier lines of :{job} not shown (quire-ci logs shows them all)");
                        self.write_line(&note);
                    }
                    for h in held {
                        self.write_line(&h);
                    }
                    self.write_line(&l);
                }
            }
            EventKind::ContainerDied { reason } => {
                self.died = Some(format!("the container died: {reason}"));
                let l = self.style(Style::new().red().bold()).apply_to(format!("container died: {reason}")).to_string();
                self.write_line(&l);
            }
            EventKind::ContainerEnd { .. } => {}
            EventKind::RunEnd { status, duration_ms, error } => {
                if let Some(live) = &mut self.live {
                    live.hide();
                }
                self.run_end = Some((*status, *duration_ms, error.clone()));
            }
        }
        self.flush();
    }

    fn finish(&mut self) {
        if let Some(live) = &mut self.live {
            live.hide();
        }
        let lines = summary::lines(self);
        for l in lines {
            self.write_line(&l);
        }
        self.flush();
    }
}

/// What a terminal would leave visible of a line written with `\r`
/// redraws (progress bars): the text after the last carriage return.
pub fn visible_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let last = match raw.iter().rposition(|&b| b == b'\r') {
        Some(p) => &raw[p + 1..],
        None => raw,
    };
    String::from_utf8_lossy(last).into_owned()
}

/// Cuts `text` into pieces of at most `room` characters.
fn wrap(text: &str, room: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= room {
        return vec![text.to_string()];
    }
    chars.chunks(room.max(1)).map(|c| c.iter().collect()).collect()
}

fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Screen(Rc<RefCell<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ev(job: Option<&str>, kind: EventKind) -> Event {
        Event { ts: "2026-11-24T21:43:38.123Z".into(), job: job.map(str::to_string), kind }
    }

    fn render(r: Renderer, screen: &Screen, events: &[Event]) -> String {
        let mut r = r;
        for e in events {
            r.event(e);
        }
        r.finish();
        let text = String::from_utf8_lossy(&screen.0.borrow()).into_owned();
        text
    }

    fn died_run() -> Vec<Event> {
        vec![
            ev(None, EventKind::RunStart {
                run_id: "r".into(),
                git_ref: "refs/heads/main".into(),
                sha: None,
                tree: "t".into(),
                dirty: true,
                jobs: vec!["a".into(), "b".into()],
                dir: Some("/runs/r".into()),
            }),
            ev(Some("a"), EventKind::JobStart {}),
            ev(Some("a"), EventKind::ShStart { n: 1, cmd: serde_json::json!(["make", "it big"]) }),
            ev(Some("a"), EventKind::Stdout { n: 1, data: "allocating\npartial".into(), encoding: None }),
            ev(Some("a"), EventKind::ShExit { n: 1, exit: 137, signal: Some("SIGKILL".into()), duration_ms: 2500 }),
            ev(None, EventKind::ContainerDied { reason: "oom-killed".into() }),
            ev(Some("a"), EventKind::JobEnd { outcome: Outcome::Failed, duration_ms: 2600, reason: Some("the container died: oom-killed".into()), file: None, line: None, outputs: None }),
            ev(Some("b"), EventKind::JobEnd { outcome: Outcome::Skipped, duration_ms: 0, reason: Some("not run: the container died (oom-killed)".into()), file: None, line: None, outputs: None }),
            ev(None, EventKind::RunEnd { status: RunStatus::Error, duration_ms: 3000, error: Some("the container died (oom-killed)".into()) }),
        ]
    }

    fn opts() -> RenderOptions {
        RenderOptions { color: false, quiet: false, verbose: false, run_dir: None }
    }

    #[test]
    fn a_dead_container_is_rendered_and_summarised() {
        let screen = Screen::default();
        let text = render(Renderer::new(Box::new(screen.clone()), opts()), &screen, &died_run());
        let want = "\
==> a
a $ make 'it big'
a | allocating
a | partial
a   exit 137 (SIGKILL) · 2.5s
container died: oom-killed
FAILED a: the container died: oom-killed
skipped b: not run: the container died (oom-killed)

last lines of :a `make 'it big'` (exit 137):
a | allocating
a | partial

job  outcome       time  why
a    failed        2.6s  the container died: oom-killed · `make 'it big'` exited 137
b    skipped          -  not run: the container died (oom-killed)

run error in 3.0s: the container died (oom-killed)
record: /runs/r
";
        assert_eq!(text, want);
    }

    #[test]
    fn a_multi_line_command_keeps_the_job_column() {
        let screen = Screen::default();
        let events = vec![
            ev(Some("a"), EventKind::JobStart {}),
            ev(Some("a"), EventKind::ShStart { n: 1, cmd: serde_json::json!("set -e\nmake\nmake test") }),
            ev(Some("a"), EventKind::ShStart { n: 2, cmd: serde_json::json!(["printf", "x\ny"]) }),
        ];
        let text = render(Renderer::new(Box::new(screen.clone()), opts()), &screen, &events);
        assert!(text.starts_with("==> a\na $ set -e\na > make\na > make test\na $ printf 'x\na > y'\n"), "{text}");
    }

    #[test]
    fn a_replay_without_run_end_says_so() {
        let screen = Screen::default();
        let events = died_run();
        let text = render(Renderer::new(Box::new(screen.clone()), opts()), &screen, &events[..4]);
        assert!(text.ends_with("the run did not finish: no run-end was recorded (still running, or quire-ci was killed)\nrecord: /runs/r\n"), "{text}");
        assert!(text.contains("a | allocating\n"), "{text}");
    }

    #[test]
    fn only_job_hides_other_jobs_lines_but_not_the_summary() {
        let screen = Screen::default();
        let text = render(Renderer::new(Box::new(screen.clone()), opts()).only_job("b"), &screen, &died_run());
        assert!(!text.contains("a | allocating\na | partial\na   exit"), "{text}");
        assert!(text.contains("b    skipped"), "{text}");
        assert!(text.contains("a    failed"), "{text}");
    }

    #[test]
    fn plain_mode_without_colour_has_no_escape_codes() {
        let screen = Screen::default();
        let text = render(Renderer::new(Box::new(screen.clone()), opts()), &screen, &died_run());
        assert!(!text.contains('\x1b'), "{text:?}");
        let screen = Screen::default();
        let coloured = render(Renderer::new(Box::new(screen.clone()), RenderOptions { color: true, ..opts() }), &screen, &died_run());
        assert!(coloured.contains('\x1b'), "--color always keeps colours in plain mode");
    }

    #[test]
    fn carriage_return_redraws_keep_the_last_segment() {
        assert_eq!(visible_text(b"10%\r50%\r100%"), "100%");
        assert_eq!(visible_text(b"done\r"), "done");
    }

    #[test]
    fn wrap_cuts_long_lines_only() {
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(wrap("abc", 4), vec!["abc"]);
    }
}
