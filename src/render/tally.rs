//! Per-job view state and the tally the summary reads: which jobs there
//! are (in the order the run named them), each job's colour, held and
//! trailing lines, failing command and outcome, and how the run ended.
//!
//! Owns: what the renderer remembers between events. Must not know about:
//! how lines are written (mod.rs), how the summary lays them out.

use std::collections::{HashMap, VecDeque};

use console::{Color, Style};

use super::summary::JobRow;
use crate::events::RunStatus;

/// How many trailing output lines of a failed command the summary repeats.
pub const TAIL_LINES: usize = 15;

/// Under `-q` a job's output is held until it ends (it is shown only if the
/// job fails); at most this many lines, so memory stays bounded.
pub const HELD_LINES: usize = 5000;

/// The jobs' colours, in turn. The basic ones are written as the short
/// `ESC[3Nm`, not `ESC[38;5;Nm`: the prefix goes on every line a job
/// prints, so on a job streaming short lines that is 5% fewer bytes for
/// the terminal to take (scripts/bench-render).
const PALETTE: [Color; 6] =
    [Color::Cyan, Color::Magenta, Color::Yellow, Color::Blue, Color::Green, Color::Color256(14)];

/// What the renderer remembers about one job.
pub struct JobView {
    pub colour: Style,
    /// Output lines of the job, kept for `-q` (printed if it fails): the
    /// last HELD_LINES of them, and how many earlier ones were let go.
    pub held: Held,
    /// The last lines of the current (or last) command.
    pub tail: VecDeque<String>,
    /// The last command that exited non-zero.
    pub failed_cmd: Option<FailedCommand>,
    /// What the run-fn returned as `:summary`, shown in the summary.
    pub summary: Option<String>,
    /// The command now running (or last run), as shown after `$`.
    pub cmd: String,
    /// Its run-fn started (a `job-start` event), so its time means something.
    pub started: bool,
    pub outcome: Option<JobRow>,
}

/// A command that exited non-zero, with the last lines it printed.
#[derive(Debug, Clone)]
pub struct FailedCommand {
    pub cmd: String,
    pub exit: i64,
    pub tail: VecDeque<String>,
}

/// How the run ended, from its `run-end` event.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The error's diagnostic code and help, shown under its line.
    pub code: Option<String>,
    pub help: Option<String>,
}

/// Everything the summary is built from.
#[derive(Default)]
pub struct Tally {
    /// Job ids in the order first seen (run-start names them all).
    pub jobs: Vec<String>,
    pub views: HashMap<String, JobView>,
    /// The widest job id, for the job column.
    pub width: usize,
    pub run_end: Option<RunEnd>,
    /// Why the container died, if it did.
    pub died: Option<String>,
    /// How many last lines of a command are kept for the summary
    /// (`--excerpt-lines`); `None`: [`TAIL_LINES`].
    pub excerpt_lines: Option<usize>,
    /// One line per `artifact` event, for the summary.
    pub artifacts: Vec<String>,
    /// How many `problem` events, and the files they were in (first seen
    /// first), for the summary's count.
    pub problems: usize,
    pub problem_files: Vec<String>,
    /// Lines said after the summary (a kept container and how to enter it).
    pub after_summary: Vec<String>,
    /// The run was answered by the result cache (a `cache-hit` event): it
    /// has no run-end of its own and nothing more to say.
    pub cache_hit: bool,
}

impl Tally {
    /// The job's view, made (with the next palette colour) on first sight.
    pub fn view(&mut self, job: &str, color: bool) -> &mut JobView {
        if !self.views.contains_key(job) {
            let colour = Style::new().fg(PALETTE[self.views.len() % PALETTE.len()]);
            let colour = if color { colour.force_styling(true) } else { Style::new() };
            self.views.insert(
                job.to_string(),
                JobView {
                    colour,
                    held: Held::default(),
                    tail: VecDeque::new(),
                    failed_cmd: None,
                    summary: None,
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
}

impl JobView {
    /// Remembers an output line among the command's last lines.
    pub fn remember_tail(&mut self, line: &str, keep: usize) {
        if keep == 0 {
            return;
        }
        // The line let go lends its allocation to the new one: a command
        // printing millions of lines allocates nothing here.
        let mut slot = if self.tail.len() >= keep { self.tail.pop_front().unwrap_or_default() } else { String::new() };
        slot.clear();
        slot.push_str(line);
        self.tail.push_back(slot);
        while self.tail.len() > keep {
            self.tail.pop_front();
        }
    }

    /// Holds a line under `-q` until the job's outcome is known.
    pub fn hold(&mut self, line: &str) {
        self.held.push(line);
    }
}

/// The last [`HELD_LINES`] lines of a job, in one buffer (one allocation
/// per job, not one per line), and how many earlier ones were let go.
#[derive(Default)]
pub struct Held {
    /// Each line followed by `\n` (held lines never contain one).
    text: String,
    /// Bytes at the start of `text` already let go.
    dead: usize,
    /// Where each held line ends in `text` (after its `\n`), oldest first.
    ends: VecDeque<usize>,
    pub dropped: usize,
}

impl Held {
    pub fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        self.ends.push_back(self.text.len());
        if self.ends.len() > HELD_LINES {
            self.dead = self.ends.pop_front().unwrap_or(0);
            self.dropped += 1;
            // Compact once half the buffer is let go: amortised, each byte
            // moves a bounded number of times.
            if self.dead > 64 * 1024 && self.dead * 2 > self.text.len() {
                self.text.drain(..self.dead);
                self.ends.iter_mut().for_each(|e| *e -= self.dead);
                self.dead = 0;
            }
        }
    }

    /// The held lines, oldest first, and how many were let go; empties it.
    pub fn take(&mut self) -> (Vec<String>, usize) {
        let held = std::mem::take(self);
        let lines = held.text[held.dead..].split_terminator('\n').map(str::to_string).collect();
        (lines, held.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keeps_the_last_lines_and_counts_the_rest() {
        let mut h = Held::default();
        let n = HELD_LINES * 3 + 7;
        for i in 0..n {
            h.push(&format!("line {i} {}", "x".repeat(i % 40)));
        }
        let (lines, dropped) = h.take();
        assert_eq!(dropped, n - HELD_LINES);
        assert_eq!(lines.len(), HELD_LINES);
        assert_eq!(lines[0], format!("line {} {}", n - HELD_LINES, "x".repeat((n - HELD_LINES) % 40)));
        assert_eq!(lines[HELD_LINES - 1], format!("line {} {}", n - 1, "x".repeat((n - 1) % 40)));
        assert_eq!(h.take(), (Vec::new(), 0), "taken: empty again");
    }

    #[test]
    fn jobs_keep_the_order_first_seen_and_the_widest_id() {
        let mut t = Tally::default();
        t.view("test", false);
        t.view("a", false);
        t.view("test", false);
        assert_eq!(t.jobs, vec!["test", "a"]);
        assert_eq!(t.width, 4);
    }

    #[test]
    fn held_and_tail_lines_stay_bounded() {
        let mut t = Tally::default();
        let v = t.view("a", false);
        for i in 0..HELD_LINES + 7 {
            v.hold(&i.to_string());
            v.remember_tail(&i.to_string(), TAIL_LINES);
        }
        let (held, dropped) = v.held.take();
        assert_eq!(held.len(), HELD_LINES);
        assert_eq!(dropped, 7);
        assert_eq!(v.tail.len(), TAIL_LINES);
        assert_eq!(v.tail.back().map(String::as_str), Some((HELD_LINES + 6).to_string().as_str()));
    }
}
