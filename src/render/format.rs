//! Formatting: how single facts read on the terminal — durations, commands
//! as a shell would write them, source references, the job-end line, and
//! colour that is on only when asked for.
//!
//! Owns: text of one fact at a time. Must not know about: the order of
//! events, what was shown before.

use console::Style;

use crate::events::Outcome;

/// Colours, or none (plain mode without `--color always`).
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    pub fn style(self, s: Style) -> Style {
        if self.color {
            s.force_styling(true)
        } else {
            Style::new()
        }
    }
}

/// `532 B`, `1.2 KiB`, `3.4 MiB`, `1.1 GiB`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
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

/// A `sh-start` command as shown after `$`: a script as written, an argv
/// with each word quoted where a shell would need it.
pub fn command_text(cmd: &serde_json::Value) -> String {
    match cmd {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => {
            a.iter().map(|v| shell_word(v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `ci.fnl:12`, or `helpers.fnl:7` for a module in `.quire/` (a record
/// written before job-end carried its file means ci.fnl).
pub fn source_ref(file: Option<&str>, line: u32) -> String {
    let file = file.unwrap_or(crate::pipeline::CI_FNL);
    format!("{}:{line}", file.strip_prefix(".quire/").unwrap_or(file))
}

/// `exit 137 (SIGKILL) · 2.5s`
pub fn exit_text(exit: i64, signal: Option<&str>, duration_ms: u64) -> String {
    let mut text = format!("exit {exit}");
    if let Some(s) = signal {
        text.push_str(&format!(" ({s})"));
    }
    text.push_str(&format!(" · {}", human_ms(duration_ms)));
    text
}

/// The line a job's end prints: `ok build 1.2s`, `FAILED test: … (ci.fnl:7)`.
pub fn job_end_line(
    paint: Paint,
    job: &str,
    outcome: Outcome,
    duration_ms: u64,
    reason: Option<&str>,
    at: Option<&str>,
) -> String {
    let reason_part = |r: &str| format!(": {r}");
    match outcome {
        Outcome::Succeeded => format!(
            "{} {} {}",
            paint.style(Style::new().green()).apply_to("ok"),
            job,
            paint.style(Style::new().dim()).apply_to(human_ms(duration_ms))
        ),
        Outcome::Skipped => format!(
            "{} {}{}",
            paint.style(Style::new().dim()).apply_to("skipped"),
            job,
            // The executor's reasons may start "skipped because ...".
            reason.map(|r| reason_part(r.strip_prefix("skipped ").unwrap_or(r))).unwrap_or_default()
        ),
        Outcome::Canceled => format!(
            "{} {}{}",
            paint.style(Style::new().yellow()).apply_to("canceled"),
            job,
            reason.map(reason_part).unwrap_or_default()
        ),
        Outcome::Failed => format!(
            "{} {}{}{}",
            paint.style(Style::new().red().bold()).apply_to("FAILED"),
            job,
            reason.map(reason_part).unwrap_or_default(),
            at.map(|a| format!(" ({a})")).unwrap_or_default()
        ),
    }
}

/// An `image` event's action (docs/log-format.md), as the renderer tells
/// them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageAction<'a> {
    Present,
    Pulling,
    Building,
    /// One line of a Dockerfile build's output.
    Build,
    /// `pulled`, `built` and any later action: shown as written.
    Other(&'a str),
}

impl<'a> ImageAction<'a> {
    pub fn parse(action: &'a str) -> ImageAction<'a> {
        match action {
            "present" => ImageAction::Present,
            "pulling" => ImageAction::Pulling,
            "building" => ImageAction::Building,
            "build" => ImageAction::Build,
            other => ImageAction::Other(other),
        }
    }

    pub fn as_str(self) -> &'a str {
        match self {
            ImageAction::Present => "present",
            ImageAction::Pulling => "pulling",
            ImageAction::Building => "building",
            ImageAction::Build => "build",
            ImageAction::Other(a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_their_scale() {
        assert_eq!(human_ms(999), "999ms");
        assert_eq!(human_ms(2500), "2.5s");
        assert_eq!(human_ms(61_000), "1m01s");
    }

    #[test]
    fn argv_words_are_quoted_as_a_shell_needs() {
        assert_eq!(command_text(&serde_json::json!(["make", "it big", "a'b"])), "make 'it big' 'a'\\''b'");
        assert_eq!(command_text(&serde_json::json!("make test")), "make test");
    }

    #[test]
    fn module_files_are_named_without_the_quire_dir() {
        assert_eq!(source_ref(None, 12), "ci.fnl:12");
        assert_eq!(source_ref(Some(".quire/helpers.fnl"), 7), "helpers.fnl:7");
    }
}
