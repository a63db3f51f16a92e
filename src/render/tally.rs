//! Per-job view state and the tally the summary reads: which jobs there
//! are (in the order the run named them), each job's colour, held and
//! trailing lines, failing command and outcome, and how the run ended.
//!
//! Owns: what the renderer remembers between events. Must not know about:
//! how lines are written (mod.rs), how the summary lays them out.

use std::collections::{HashMap, VecDeque};

use console::Style;

use super::summary::JobRow;
use crate::events::RunStatus;

/// How many trailing output lines of a failed command the summary repeats.
pub const TAIL_LINES: usize = 15;

/// Under `-q` a job's output is held until it ends (it is shown only if the
/// job fails); at most this many lines, so memory stays bounded.
pub const HELD_LINES: usize = 5000;

const PALETTE: [u8; 6] = [6, 5, 3, 4, 2, 14];

/// What the renderer remembers about one job.
pub struct JobView {
    pub colour: Style,
    /// Output lines of the job, kept for `-q` (printed if it fails): the
    /// last HELD_LINES of them, and how many earlier ones were let go.
    pub held: VecDeque<String>,
    pub held_dropped: usize,
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
            let colour = Style::new().color256(PALETTE[self.views.len() % PALETTE.len()]);
            let colour = if color { colour.force_styling(true) } else { Style::new() };
            self.views.insert(
                job.to_string(),
                JobView {
                    colour,
                    held: VecDeque::new(),
                    held_dropped: 0,
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
    pub fn remember_tail(&mut self, line: String, keep: usize) {
        self.tail.push_back(line);
        while self.tail.len() > keep {
            self.tail.pop_front();
        }
    }

    /// Holds a line under `-q` until the job's outcome is known.
    pub fn hold(&mut self, line: String) {
        self.held.push_back(line);
        if self.held.len() > HELD_LINES {
            self.held.pop_front();
            self.held_dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            v.hold(i.to_string());
            v.remember_tail(i.to_string(), TAIL_LINES);
        }
        assert_eq!(v.held.len(), HELD_LINES);
        assert_eq!(v.held_dropped, 7);
        assert_eq!(v.tail.len(), TAIL_LINES);
        assert_eq!(v.tail.back().map(String::as_str), Some((HELD_LINES + 6).to_string().as_str()));
    }
}
