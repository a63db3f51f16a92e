//! The terminal renderer: a consumer of the run's event stream, used live
//! and (fed from log.jsonl) for replay, so both show the same thing.
//!
//! Owns: how a run looks — job prefixes, `$ cmd` / `exit N · 2.3s` lines,
//! skip and failure lines, the summary. Must not know about: Docker, Lua,
//! where events come from.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;

use console::Style;

use crate::emitter::EventSink;
use crate::events::{Event, EventKind, Outcome, RunStatus, Stream};
use crate::record::decode_data;

/// How many trailing output lines of a failed job the summary repeats.
const TAIL_LINES: usize = 15;

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub color: bool,
    /// Only failing jobs' output and the summary.
    pub quiet: bool,
    pub verbose: bool,
    /// The run directory, named in the summary.
    pub run_dir: Option<PathBuf>,
}

struct JobView {
    colour: Style,
    /// Output lines of the job, kept for `-q` (printed if it fails) and
    /// for the failure tail in the summary.
    held: Vec<String>,
    tail: VecDeque<String>,
    outcome: Option<(Outcome, u64, Option<String>, Option<u32>)>,
}

pub struct Renderer {
    out: Box<dyn Write>,
    opts: RenderOptions,
    /// Partial lines per (job, n, stream), waiting for their newline.
    partial: HashMap<(String, u32, Stream), Vec<u8>>,
    jobs: Vec<String>,
    views: HashMap<String, JobView>,
    width: usize,
    run_end: Option<(RunStatus, u64, Option<String>)>,
    died: Option<String>,
}

/// The longest piece of a newline-free output line shown at once.
const MAX_LINE: usize = 64 * 1024;

const PALETTE: [u8; 6] = [6, 5, 3, 4, 2, 14];

impl Renderer {
    pub fn new(out: Box<dyn Write>, opts: RenderOptions) -> Renderer {
        Renderer { out, opts, partial: HashMap::new(), jobs: Vec::new(), views: HashMap::new(), width: 0, run_end: None, died: None }
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
                JobView { colour, held: Vec::new(), tail: VecDeque::new(), outcome: None },
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
        let _ = writeln!(self.out, "{line}");
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
        if self.opts.quiet {
            self.view(job).held.push(line);
        } else {
            self.write_line(&line);
        }
    }

    fn output(&mut self, job: &str, n: u32, stream: Stream, bytes: &[u8], flush: bool) {
        let key = (job.to_string(), n, stream);
        let mut buf = self.partial.remove(&key).unwrap_or_default();
        // Only the new bytes can hold a newline: rescanning the held part on
        // every chunk made a long newline-free output quadratic.
        let mut scan_from = buf.len();
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut lines: Vec<Vec<u8>> = Vec::new();
        while let Some(pos) = buf[scan_from..].iter().position(|&b| b == b'\n') {
            let end = scan_from + pos;
            lines.push(buf[start..end].to_vec());
            start = end + 1;
            scan_from = start;
        }
        // A line that never ends is shown in MAX_LINE pieces, so memory stays
        // bounded whatever a command prints (the log keeps every byte).
        while buf.len() - start >= MAX_LINE {
            lines.push(buf[start..start + MAX_LINE].to_vec());
            start += MAX_LINE;
        }
        buf.drain(..start);
        if flush && !buf.is_empty() {
            lines.push(buf);
        } else if !buf.is_empty() {
            self.partial.insert(key, buf);
        }
        let mark = match stream {
            Stream::Stdout => "|",
            Stream::Stderr => "!",
        };
        for raw in lines {
            let text = visible_text(&raw);
            let prefix = self.prefix(job, mark);
            let body = match stream {
                Stream::Stderr => self.style(Style::new().yellow()).apply_to(text).to_string(),
                Stream::Stdout => text,
            };
            self.job_line(job, format!("{prefix}{body}"), true);
        }
    }

    fn flush_partials(&mut self, job: &str, n: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.partial.contains_key(&(job.to_string(), n, stream)) {
                self.output(job, n, stream, &[], true);
            }
        }
    }

    fn summary(&mut self) {
        let Some((status, duration_ms, error)) = self.run_end.clone() else { return };
        let dim = self.style(Style::new().dim());
        let mut lines = Vec::new();
        // The failing jobs' last lines come first, closest to the table.
        for job in self.jobs.clone() {
            let v = &self.views[&job];
            if let Some((Outcome::Failed, ..)) = v.outcome {
                if !v.tail.is_empty() {
                    lines.push(String::new());
                    lines.push(format!("last lines of :{job}:"));
                    lines.extend(v.tail.iter().cloned());
                }
            }
        }
        lines.push(String::new());
        let width = self.jobs.iter().map(|j| j.chars().count()).max().unwrap_or(3).max(3);
        if !self.jobs.is_empty() {
            lines.push(dim.apply_to(format!("{:<width$}  {:<9}  {:>8}  {}", "job", "outcome", "time", "why")).to_string());
        }
        for job in self.jobs.clone() {
            let v = &self.views[&job];
            let Some((outcome, ms, reason, line)) = v.outcome.clone() else { continue };
            let (word, style) = match outcome {
                Outcome::Succeeded => ("succeeded", Style::new().green()),
                Outcome::Failed => ("failed", Style::new().red().bold()),
                Outcome::Skipped => ("skipped", Style::new().dim()),
            };
            let mut why = reason.unwrap_or_default();
            if let Some(l) = line {
                why = format!("{why} (ci.fnl:{l})");
            }
            lines.push(format!(
                "{:<width$}  {}  {:>8}  {}",
                job,
                self.style(style).apply_to(format!("{word:<9}")),
                human_ms(ms),
                why.trim()
            ));
        }
        let (word, style) = match status {
            RunStatus::Succeeded => ("succeeded", Style::new().green().bold()),
            RunStatus::Failed => ("failed", Style::new().red().bold()),
            RunStatus::Error => ("error", Style::new().red().bold()),
            RunStatus::Canceled => ("canceled", Style::new().yellow().bold()),
            RunStatus::Superseded => ("superseded", Style::new().yellow().bold()),
            RunStatus::Running => ("running", Style::new()),
        };
        lines.push(String::new());
        let mut end = format!("run {} in {}", self.style(style).apply_to(word), human_ms(duration_ms));
        if let Some(e) = error.or(self.died.clone()) {
            end.push_str(&format!(": {e}"));
        }
        lines.push(end);
        if let Some(dir) = &self.opts.run_dir {
            lines.push(dim.apply_to(format!("record: {}", dir.display())).to_string());
        }
        for l in lines {
            self.write_line(&l);
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
            EventKind::Image { image, action, detail } => {
                let text = match (action.as_str(), detail) {
                    ("build", Some(d)) => {
                        if !self.opts.verbose {
                            return;
                        }
                        format!("image {image} | {}", d.trim_end())
                    }
                    ("present", _) => {
                        if !self.opts.verbose {
                            return;
                        }
                        format!("image {image} is present")
                    }
                    (a, Some(d)) => format!("image {image}: {a} ({d})"),
                    (a, None) => format!("image {image}: {a}"),
                };
                if !self.opts.quiet {
                    let l = self.style(Style::new().dim()).apply_to(text).to_string();
                    self.write_line(&l);
                }
            }
            EventKind::ContainerStart { image, container_id } => {
                if self.opts.verbose {
                    let short: String = container_id.chars().take(12).collect();
                    let l = self.style(Style::new().dim()).apply_to(format!("container {short} from {image}")).to_string();
                    self.write_line(&l);
                }
            }
            EventKind::JobStart {} => {
                let l = format!("{} {}", self.style(Style::new().bold()).apply_to("==>"), self.view(&job).colour.apply_to(&job));
                self.job_line(&job, l, false);
            }
            EventKind::ShStart { cmd, .. } => {
                let shown = match cmd {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => a.iter().map(|v| shell_word(v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(" "),
                    other => other.to_string(),
                };
                let prefix = self.prefix(&job, "$");
                let l = format!("{prefix}{}", self.style(Style::new().bold()).apply_to(shown));
                self.job_line(&job, l, true);
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
                self.job_line(&job, l, true);
            }
            EventKind::Print { data } => {
                let prefix = self.prefix(&job, ":");
                for line in data.lines() {
                    self.job_line(&job, format!("{prefix}{line}"), true);
                }
            }
            EventKind::JobEnd { outcome, duration_ms, reason, line, .. } => {
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
                        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                    Outcome::Failed => format!(
                        "{} {}{}{}",
                        self.style(Style::new().red().bold()).apply_to("FAILED"),
                        job,
                        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default(),
                        line.map(|l| format!(" (ci.fnl:{l})")).unwrap_or_default()
                    ),
                };
                let failed = *outcome == Outcome::Failed;
                let v = self.view(&job);
                v.outcome = Some((*outcome, *duration_ms, reason.clone(), *line));
                let held = std::mem::take(&mut v.held);
                if self.opts.quiet {
                    if failed {
                        for h in held {
                            self.write_line(&h);
                        }
                        self.write_line(&l);
                    }
                } else {
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
                self.run_end = Some((*status, *duration_ms, error.clone()));
            }
        }
    }

    fn finish(&mut self) {
        self.summary();
        let _ = self.out.flush();
    }
}

/// What a terminal would leave visible of a line written with `\r`
/// redraws (progress bars): the text after the last carriage return.
fn visible_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let last = match raw.iter().rposition(|&b| b == b'\r') {
        Some(p) => &raw[p + 1..],
        None => raw,
    };
    String::from_utf8_lossy(last).into_owned()
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
