//! The terminal renderer: a consumer of the run's event stream, used live
//! and (fed from log.jsonl by `quire-ci logs`) for replay, so both show the
//! same thing. Plain mode (no TTY, `NO_COLOR`, `--color never`) prints only
//! what the events say, so a replay prints exactly what the live run did.
//!
//! Rooms: `lines` (assembling output chunks into lines), `format` (how one
//! fact reads), `tally` (per-job view state, what the summary reads),
//! `summary`, `live` (the status line), `phases` (the run's steps), `json`
//! (`--json`). This file turns
//! each event into lines, in order. Must not know about: Docker, Lua,
//! where events come from.

mod format;
mod json;
mod lines;
mod live;
mod notices;
mod phases;
mod sanitize;
mod summary;
mod tally;

pub use format::human_ms;
pub use json::JsonLines;
pub use lines::visible_text;
pub use notices::problems_count_line;

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use console::Style;

use crate::emitter::EventSink;
use crate::events::{Event, EventKind, Outcome, PhaseState, Stream};
use crate::record::data_bytes;
use format::{ImageAction, Paint};
use lines::LineAssembler;
use live::StatusLine;
use tally::{FailedCommand, JobView, RunEnd, Tally};

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

pub struct Renderer {
    out: Box<dyn Write>,
    /// Lines of the event being handled; written in one piece at its end so
    /// the status line is cleared and redrawn once per event, not per line.
    buf: Vec<u8>,
    opts: RenderOptions,
    /// The status line; None in plain mode.
    live: Option<StatusLine>,
    lines: LineAssembler,
    tally: Tally,
    /// The run's steps under way (`phase` events).
    phases: phases::Phases,
    /// `logs --job`: print only this job's lines (the summary stays whole).
    only: Option<String>,
    /// The event being handled must be on the screen at once (live only:
    /// streamed output may wait a moment to be written with more).
    urgent: bool,
}

impl Renderer {
    /// A plain renderer writing to `out`: no cursor movement, no spinner;
    /// colour only when `opts.color`.
    /// How many last lines of a failing command the summary repeats
    /// (`--excerpt-lines`; default [`tally::TAIL_LINES`]).
    pub fn with_excerpt_lines(mut self, n: usize) -> Renderer {
        self.tally.excerpt_lines = Some(n);
        self
    }

    pub fn new(out: Box<dyn Write>, opts: RenderOptions) -> Renderer {
        Renderer {
            out,
            buf: Vec::with_capacity(64 * 1024),
            opts,
            live: None,
            lines: LineAssembler::default(),
            tally: Tally::default(),
            phases: phases::Phases::default(),
            only: None,
            urgent: true,
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

    /// The same view on stderr (the pre-push hook, whose stderr git leaves
    /// on the user's terminal); plain on stderr when it is not a terminal.
    pub fn live_on_stderr(opts: RenderOptions) -> Renderer {
        let mut r = Renderer::new(Box::new(std::io::stderr()), opts);
        r.live = StatusLine::on_stderr();
        r
    }

    fn paint(&self) -> Paint {
        Paint { color: self.opts.color }
    }

    fn style(&self, s: Style) -> Style {
        self.paint().style(s)
    }

    fn view(&mut self, job: &str) -> &mut JobView {
        self.tally.view(job, self.opts.color)
    }

    fn prefix(&mut self, job: &str, mark: &str) -> String {
        let width = self.tally.width.max(job.chars().count());
        let safe = self.safe(job);
        let v = self.view(job);
        format!("{} {mark} ", v.colour.apply_to(format!("{safe:<width$}")))
    }

    /// Job text (output, a command, a job id) made safe to draw.
    fn safe(&self, text: &str) -> String {
        sanitize::for_terminal(text, self.opts.color)
    }

    fn write_line(&mut self, line: &str) {
        // Every drawn line: job output and what is made of it are made safe
        // here (the log keeps the bytes).
        let line = self.safe(line);
        self.write_safe_line(&line);
    }

    /// A line whose job text is already safe: quire-ci's own colours around
    /// it must not send every line through the escape parser (that made the
    /// coloured live view cost more than plain output).
    fn write_safe_line(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes what the current event produced: above the status rows
    /// (live), or straight out (plain).
    fn flush(&mut self) {
        match &self.live {
            Some(l) => {
                if self.urgent || !self.buf.is_empty() {
                    l.write(&self.buf, self.urgent);
                }
            }
            None => {
                if self.buf.is_empty() {
                    return;
                }
                let _ = self.out.write_all(&self.buf);
                let _ = self.out.flush();
            }
        }
        self.buf.clear();
    }

    /// A line of a job's output (or a note about it), its job text already
    /// safe: printed now, or held under `-q` until we know whether the job
    /// fails.
    fn job_line(&mut self, job: &str, line: String, output: bool) {
        if output {
            let keep = self.tally.excerpt_lines.unwrap_or(tally::TAIL_LINES);
            self.view(job).remember_tail(&line, keep);
        }
        if !self.shown(job) {
            return;
        }
        if self.opts.quiet {
            self.view(job).hold(&line);
        } else {
            self.write_safe_line(&line);
        }
    }

    /// A chunk of a command's output: its whole lines go out (or are held
    /// under `-q`) as they are found, each written straight into the
    /// event's buffer; nothing is allocated per line (a job printing
    /// millions of lines made this the run's most expensive step).
    fn output(&mut self, job: &str, n: u32, stream: Stream, bytes: &[u8], flush: bool) {
        let mark = match stream {
            Stream::Stdout => "|",
            Stream::Stderr => "!",
        };
        let prefix = self.prefix(job, mark);
        // Live only: a line wider than the terminal is cut into rows that
        // each carry a continuation prefix, so the job column stays readable.
        let width = self.tally.width;
        let room = self.live.as_ref().map(|l| l.cols().saturating_sub(width + 3).max(20));
        let keep = self.tally.excerpt_lines.unwrap_or(tally::TAIL_LINES);
        let (shown, quiet, color) = (self.shown(job), self.opts.quiet, self.opts.color);
        let yellow = match stream {
            Stream::Stderr => Some(self.style(Style::new().yellow())),
            Stream::Stdout => None,
        };
        let cont = format!("{:width$} {} ", "", self.style(Style::new().dim()).apply_to("↳"));
        let Renderer { lines, tally, buf, .. } = self;
        let view = tally.view(job, color);
        let mut line = String::new();
        let mut piece_out = |lead: &str, piece: &str| {
            line.clear();
            line.push_str(lead);
            let piece = sanitize::for_terminal_cow(piece, color);
            match &yellow {
                Some(style) => {
                    let _ = write!(line, "{}", style.apply_to(&*piece));
                }
                None => line.push_str(&piece),
            }
            view.remember_tail(&line, keep);
            if !shown {
                return;
            }
            if quiet {
                view.hold(&line);
            } else {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
        };
        let pending = lines.push_each((job.to_string(), n, stream), bytes, flush, |raw| {
            let text = lines::visible(raw);
            match room {
                Some(room) if text.len() > room => {
                    for (i, piece) in lines::wrap(&text, room).iter().enumerate() {
                        piece_out(if i == 0 { &prefix } else { &cont }, piece);
                    }
                }
                _ => piece_out(&prefix, &text),
            }
        });
        // A partial line that a tool keeps redrawing with `\r` (a progress
        // bar) shows on the status line instead of flooding the screen.
        if let Some(l) = &self.live {
            l.set_segment(job, &pending);
        }
    }

    fn flush_partials(&mut self, job: &str, n: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.lines.holds(&(job.to_string(), n, stream)) {
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

    fn image(&mut self, image: &str, action: ImageAction, detail: &Option<String>) {
        match (action, detail) {
            (ImageAction::Build, Some(d)) => {
                // Docker's classic builder says `Step 1/6 : FROM ...`,
                // Podman's (buildah) `STEP 1/6: FROM ...`.
                let step = d.trim_start().starts_with("Step ") || d.trim_start().starts_with("STEP ");
                if step {
                    if let Some(l) = &self.live {
                        l.show_image(format!("building {image}: {}", d.trim()), false);
                    }
                }
                // Steps are the build's outline; the rest is detail.
                if self.opts.verbose || step {
                    self.dim_line(format!("image {image} | {}", d.trim_end()));
                }
            }
            (ImageAction::Present, _) => {
                if self.opts.verbose {
                    self.dim_line(format!("image {image} is present"));
                }
            }
            (a, d) => {
                if let Some(l) = &self.live {
                    // The image row says it from here.
                    l.end_step("image");
                    match a {
                        ImageAction::Pulling => l.start_pull(image),
                        ImageAction::Building => l.show_image(format!("building {image}"), true),
                        _ => l.end_image(),
                    }
                }
                let a = a.as_str();
                match d {
                    Some(d) => self.dim_line(format!("image {image}: {a} ({d})")),
                    None => self.dim_line(format!("image {image}: {a}")),
                }
            }
        }
    }

    fn job_start(&mut self, job: &str) {
        self.view(job).started = true;
        if let Some(live) = &self.live {
            // The steps before the jobs are over once one starts, whether or
            // not their ends were said.
            live.end_steps();
        }
        let safe = self.safe(job);
        let l = format!("{} {}", self.style(Style::new().bold()).apply_to("==>"), self.view(job).colour.apply_to(safe));
        self.job_line(job, l, false);
        if let Some(live) = &self.live {
            live.show_job(job, job.to_string(), true);
        }
    }

    fn sh_start(&mut self, job: &str, cmd: &serde_json::Value) {
        let shown = format::command_text(cmd);
        let v = self.view(job);
        v.cmd = shown.clone();
        v.tail.clear();
        // A multi-line script keeps the job column: its first line
        // after `$`, the rest after `>` (as a shell's PS2 would).
        for (i, piece) in shown.split('\n').enumerate() {
            let prefix = self.prefix(job, if i == 0 { "$" } else { ">" });
            let l = format!("{prefix}{}", self.style(Style::new().bold()).apply_to(self.safe(piece)));
            self.job_line(job, l, false);
        }
        if let Some(live) = &self.live {
            // Short, so a `\r` progress segment still fits after it.
            let first_line: String = shown.lines().next().unwrap_or("").chars().take(40).collect();
            let more = if first_line.len() < shown.len() { "…" } else { "" };
            live.show_job(job, format!("{job} $ {first_line}{more}"), true);
        }
    }

    fn sh_exit(&mut self, job: &str, n: u32, exit: i64, signal: Option<&str>, duration_ms: u64) {
        self.flush_partials(job, n);
        let text = format::exit_text(exit, signal, duration_ms);
        let style = if exit == 0 { Style::new().dim() } else { Style::new().red() };
        let prefix = self.prefix(job, " ");
        let l = format!("{prefix}{}", self.style(style).apply_to(text));
        self.job_line(job, l, false);
        let v = self.view(job);
        if exit != 0 {
            v.failed_cmd = Some(FailedCommand { cmd: v.cmd.clone(), exit, tail: v.tail.clone() });
        }
        if let Some(live) = &self.live {
            live.show_job_clock(job);
        }
    }

    fn job_end(&mut self, job: &str, outcome: Outcome, duration_ms: u64, reason: &Option<String>, at: Option<String>) {
        if let Some(live) = &self.live {
            live.end_job(job);
        }
        let l = format::job_end_line(self.paint(), job, outcome, duration_ms, reason.as_deref(), at.as_deref());
        let failed = outcome == Outcome::Failed;
        let quiet = self.opts.quiet;
        let v = self.view(job);
        v.outcome = Some(summary::JobRow {
            outcome,
            duration_ms,
            started: v.started,
            reason: reason.clone(),
            at,
            last_exit: v.failed_cmd.as_ref().map(|f| (f.cmd.clone(), f.exit)),
        });
        let (held, dropped) = v.held.take();
        if self.shown(job) && (!quiet || failed) {
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
}

impl Renderer {
    /// A step of the run: a row on the live view while it lasts (none in
    /// plain mode), and under `-v` a line with its time when it ends.
    fn phase(
        &mut self,
        ts: &str,
        phase: &str,
        state: PhaseState,
        (done, total, files): (Option<u64>, Option<u64>, Option<u64>),
        duration_ms: Option<u64>,
    ) {
        let row = phases::has_row(phase);
        match state {
            PhaseState::Start => {
                self.phases.start(phase, ts);
                if let (Some(l), true) = (&self.live, row) {
                    l.show_step(phase, phases::label(phase));
                }
            }
            PhaseState::Progress => {
                let text = self.phases.progress(phase, ts, done, total, files);
                if let (Some(l), true) = (&self.live, row) {
                    l.show_step(phase, text);
                }
            }
            PhaseState::End => {
                if let Some(l) = &self.live {
                    l.end_step(phase);
                }
                let line = self.phases.end(phase, duration_ms, done, total, files);
                if self.opts.verbose {
                    self.dim_line(line);
                }
            }
        }
    }
}

impl EventSink for Renderer {
    fn event(&mut self, ev: &Event) {
        let job = ev.job.clone().unwrap_or_default();
        // Streamed output may wait a moment (coalesced redraws), and a
        // step's row the ticker's next draw; everything else is on the
        // screen before the next event is handled.
        self.urgent = !matches!(
            ev.kind,
            EventKind::Stdout { .. } | EventKind::Stderr { .. } | EventKind::Print { .. } | EventKind::Phase { .. }
        );
        match &ev.kind {
            EventKind::RunStart { jobs, dir, .. } => {
                for j in jobs {
                    self.view(j);
                }
                if self.opts.run_dir.is_none() {
                    self.opts.run_dir = dir.as_ref().map(PathBuf::from);
                }
            }
            EventKind::Image { image, action, detail } => self.image(image, ImageAction::parse(action), detail),
            EventKind::ImageProgress { layer, status, current, total, .. } => {
                if let Some(l) = &self.live {
                    l.pull_progress(layer.as_deref(), status, *current, *total);
                }
            }
            EventKind::ContainerStart { image, container_id } => {
                if self.opts.verbose {
                    let short: String = container_id.chars().take(12).collect();
                    self.dim_line(format!("container {short} from {image}"));
                }
            }
            EventKind::JobStart {} => self.job_start(&job),
            EventKind::ShStart { cmd, .. } => self.sh_start(&job, cmd),
            EventKind::Stdout { n, .. } => self.output(&job, *n, Stream::Stdout, &data_bytes(&ev.kind), false),
            EventKind::Stderr { n, .. } => self.output(&job, *n, Stream::Stderr, &data_bytes(&ev.kind), false),
            EventKind::ShExit { n, exit, signal, duration_ms } => {
                self.sh_exit(&job, *n, *exit, signal.as_deref(), *duration_ms)
            }
            EventKind::Print { data } => {
                let prefix = self.prefix(&job, ":");
                for line in data.lines() {
                    let line = self.safe(line);
                    self.job_line(&job, format!("{prefix}{line}"), true);
                }
            }
            EventKind::JobEnd { outcome, duration_ms, reason, file, line, outputs } => {
                let at = line.map(|l| format::source_ref(file.as_deref(), l));
                // A run-fn's `:summary` (DESIGN.md's worked example) is
                // what the job wants said about it: the summary shows it.
                let said = match outputs.as_ref().and_then(|o| o.get("summary")) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Some(v.to_string()),
                    _ => None,
                };
                self.view(&job).summary =
                    said.map(|s| crate::text::plain_text_lines(&s)).filter(|s| !s.trim().is_empty());
                self.job_end(&job, *outcome, *duration_ms, reason, at);
            }
            EventKind::ContainerDied { reason } => {
                self.tally.died = Some(format!("the container died: {reason}"));
                let l = self.style(Style::new().red().bold()).apply_to(format!("container died: {reason}")).to_string();
                self.write_line(&l);
            }
            EventKind::ContainerEnd { .. } => {}
            EventKind::Phase { phase, state, done, total, files, duration_ms } => {
                self.phase(&ev.ts, phase, *state, (*done, *total, *files), *duration_ms)
            }
            EventKind::Artifact { path, dest, bytes, error } => {
                let line = match (dest, error) {
                    (Some(d), None) => format!("artifact {path} → {d} ({})", format::human_bytes(bytes.unwrap_or(0))),
                    (_, e) => format!("artifact {path} not copied: {}", e.as_deref().unwrap_or("unknown error")),
                };
                self.tally.artifacts.push(line.clone());
                if !self.opts.quiet {
                    self.write_line(&line);
                }
            }
            EventKind::Notice { level, code, message, help } => {
                let lines = notices::notice_lines(self.paint(), *level, code, message, help.as_deref());
                if code == notices::CONTAINER_KEPT {
                    // What the user does next: said after the summary.
                    self.tally.after_summary.extend(lines);
                } else {
                    for l in lines {
                        self.write_line(&l);
                    }
                }
            }
            EventKind::Problem { code, message, file, line, column, help } => {
                let at = notices::problem_at(file.as_deref(), *line, *column);
                for l in notices::problem_lines(self.paint(), code, message, at, help.as_deref()) {
                    self.write_line(&l);
                }
                self.tally.problems += 1;
                let file = file.clone().unwrap_or_else(|| crate::pipeline::CI_FNL.to_string());
                if !self.tally.problem_files.contains(&file) {
                    self.tally.problem_files.push(file);
                }
            }
            EventKind::CacheHit { run_id, tree } => {
                self.tally.cache_hit = true;
                self.write_line(&notices::cache_hit_line(run_id, tree));
            }
            EventKind::RunEnd { status, duration_ms, error, code, help } => {
                if let Some(live) = &self.live {
                    live.hide();
                }
                self.tally.run_end = Some(RunEnd {
                    status: *status,
                    duration_ms: *duration_ms,
                    error: error.clone(),
                    code: code.clone(),
                    help: help.clone(),
                });
            }
        }
        self.flush();
    }

    fn finish(&mut self) {
        self.urgent = true;
        if let Some(live) = &self.live {
            live.hide();
        }
        let lines = summary::lines(&self.tally, self.paint(), self.opts.run_dir.as_deref());
        for l in lines {
            self.write_line(&l);
        }
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RunStatus;
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
        Event { ts: "2026-11-24T21:43:38.123Z".into(), seq: None, job: job.map(str::to_string), kind }
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
            ev(
                None,
                EventKind::RunStart {
                    run_id: "r".into(),
                    git_ref: "refs/heads/main".into(),
                    sha: None,
                    tree: "t".into(),
                    dirty: true,
                    jobs: vec!["a".into(), "b".into()],
                    dir: Some("/runs/r".into()),
                },
            ),
            ev(Some("a"), EventKind::JobStart {}),
            ev(Some("a"), EventKind::ShStart { n: 1, cmd: serde_json::json!(["make", "it big"]) }),
            ev(Some("a"), EventKind::Stdout { n: 1, data: "allocating\npartial".into(), encoding: None }),
            ev(Some("a"), EventKind::ShExit { n: 1, exit: 137, signal: Some("SIGKILL".into()), duration_ms: 2500 }),
            ev(None, EventKind::ContainerDied { reason: "oom-killed".into() }),
            ev(
                Some("a"),
                EventKind::JobEnd {
                    outcome: Outcome::Failed,
                    duration_ms: 2600,
                    reason: Some("the container died: oom-killed".into()),
                    file: None,
                    line: None,
                    outputs: None,
                },
            ),
            ev(
                Some("b"),
                EventKind::JobEnd {
                    outcome: Outcome::Skipped,
                    duration_ms: 0,
                    reason: Some("not run: the container died (oom-killed)".into()),
                    file: None,
                    line: None,
                    outputs: None,
                },
            ),
            ev(
                None,
                EventKind::RunEnd {
                    status: RunStatus::Error,
                    duration_ms: 3000,
                    error: Some("the container died (oom-killed)".into()),
                    code: None,
                    help: None,
                },
            ),
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
(all of it: quire-ci logs --job a)

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
        let coloured = render(
            Renderer::new(Box::new(screen.clone()), RenderOptions { color: true, ..opts() }),
            &screen,
            &died_run(),
        );
        assert!(coloured.contains('\x1b'), "--color always keeps colours in plain mode");
    }
}
