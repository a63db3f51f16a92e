//! The end-of-run summary: the failing command's last lines, a table of
//! job, outcome, duration and why, the total time and the run directory.
//! Built only from the tally the renderer kept from events, so a replay
//! prints the same summary.

use console::Style;

use std::path::Path;

use super::format::{human_ms, Paint};
use super::tally::{FailedCommand, RunEnd, Tally};
use crate::events::{Outcome, RunStatus};

/// One row of the table, remembered from a `job-end` event.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// False for a job skipped before its run-fn ran: its time shows as `-`.
    pub started: bool,
    pub reason: Option<String>,
    /// Where it failed: `ci.fnl:12`, `helpers.fnl:7`.
    pub at: Option<String>,
    /// The last command of the job that exited non-zero, and its code.
    pub last_exit: Option<(String, i64)>,
}

/// At most this many lines of a job's `:summary` are shown.
const SUMMARY_LINES: usize = 40;

pub fn lines(r: &Tally, paint: Paint, run_dir: Option<&Path>) -> Vec<String> {
    let mut lines = body(r, paint, run_dir);
    lines.extend(r.after_summary.iter().cloned());
    lines
}

fn body(r: &Tally, paint: Paint, run_dir: Option<&Path>) -> Vec<String> {
    let Some(RunEnd { status, duration_ms, error, code, help }) = r.run_end.clone() else {
        if r.cache_hit {
            // Its one line, shown when it came, is the whole story.
            return Vec::new();
        }
        // Only a replay gets here: the live run always ends with run-end.
        let mut lines = vec![
            String::new(),
            "the run did not finish: no run-end was recorded (still running, or quire-ci was killed)".to_string(),
        ];
        if let Some(dir) = run_dir {
            lines.push(format!("record: {}", dir.display()));
        }
        return lines;
    };
    let dim = paint.style(Style::new().dim());
    let mut lines = Vec::new();
    // The failing commands' last lines come first, closest to the table.
    for job in &r.jobs {
        let v = &r.views[job];
        let Some(JobRow { outcome: Outcome::Failed, .. }) = v.outcome else { continue };
        let (title, tail) = match &v.failed_cmd {
            Some(FailedCommand { cmd, exit, tail }) => {
                (format!("last lines of :{job} `{}` (exit {exit}):", first_line(cmd)), tail)
            }
            None => (format!("last lines of :{job}:"), &v.tail),
        };
        if !tail.is_empty() {
            lines.push(String::new());
            lines.push(paint.style(Style::new().bold()).apply_to(title).to_string());
            lines.extend(tail.iter().cloned());
            lines.push(dim.apply_to(format!("(all of it: quire-ci logs --job {job})")).to_string());
        }
    }
    // What the jobs said about themselves (a run-fn's `:summary`).
    for job in &r.jobs {
        let Some(said) = &r.views[job].summary else { continue };
        let all: Vec<&str> = said.trim_end().lines().collect();
        lines.push(String::new());
        lines.push(paint.style(Style::new().bold()).apply_to(format!("summary of :{job}:")).to_string());
        lines.extend(all.iter().take(SUMMARY_LINES).map(|l| format!("  {l}")));
        if all.len() > SUMMARY_LINES {
            lines.push(
                dim.apply_to(format!(
                    "  … {} more lines (quire-ci logs --job {job} --json has the whole :summary)",
                    all.len() - SUMMARY_LINES
                ))
                .to_string(),
            );
        }
    }
    let width = r.jobs.iter().map(|j| j.chars().count()).max().unwrap_or(3).max(3);
    let rows: Vec<(&String, &JobRow)> =
        r.jobs.iter().filter_map(|j| r.views[j].outcome.as_ref().map(|o| (j, o))).collect();
    if !rows.is_empty() {
        lines.push(String::new());
        lines.push(dim.apply_to(format!("{:<width$}  {:<9}  {:>7}  {}", "job", "outcome", "time", "why")).to_string());
    }
    for (job, row) in rows {
        let (word, style) = match row.outcome {
            Outcome::Succeeded => ("succeeded", Style::new().green()),
            Outcome::Failed => ("failed", Style::new().red().bold()),
            Outcome::Skipped => ("skipped", Style::new().dim()),
            Outcome::Canceled => ("canceled", Style::new().yellow()),
        };
        let mut why: Vec<String> = Vec::new();
        if let Some(reason) = &row.reason {
            why.push(reason.trim().to_string());
        }
        if row.outcome == Outcome::Failed {
            if let Some(at) = &row.at {
                why.push(format!("at {at}"));
            }
            if let Some((cmd, exit)) = &row.last_exit {
                why.push(format!("`{}` exited {exit}", shorten(first_line(cmd), 40)));
            }
        }
        let time = if !row.started { "-".to_string() } else { human_ms(row.duration_ms) };
        lines.push(
            format!(
                "{:<width$}  {}  {:>7}  {}",
                job,
                paint.style(style).apply_to(format!("{word:<9}")),
                time,
                why.join(" · ")
            )
            .trim_end()
            .to_string(),
        );
    }
    if !r.artifacts.is_empty() {
        lines.push(String::new());
        lines.push(paint.style(Style::new().bold()).apply_to("artifacts:").to_string());
        lines.extend(r.artifacts.iter().map(|a| format!("  {}", a.strip_prefix("artifact ").unwrap_or(a))));
    }
    if r.problems > 0 {
        // Each problem ends with a blank line already.
        lines.push(super::notices::problems_count_line(r.problems, &r.problem_files));
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
    let mut end = format!("run {} in {}", paint.style(style).apply_to(word), human_ms(duration_ms));
    if let Some(e) = error.or(r.died.clone()) {
        end.push_str(&format!(": {e}"));
    }
    lines.push(end);
    // The error's diagnostic, said here once (the command prints it on
    // stderr only when no renderer drew run-end): its help, then its code.
    lines.extend(super::notices::help_lines(paint, help.as_deref()));
    if let Some(code) = code {
        lines.push(dim.apply_to(format!("  code: {code}")).to_string());
    }
    if let Some(dir) = run_dir {
        lines.push(dim.apply_to(format!("record: {}", dir.display())).to_string());
    }
    lines
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}
