//! How the run's words about itself read: `notice` (warnings and things the
//! run did besides its jobs), `problem` (what evaluating ci.fnl found, laid
//! out as `quire-ci validate` lays out a diagnostic) and `cache-hit`. The
//! lines are the ones quire-ci printed on stderr before these were events,
//! so a user reads the same words, now also in a replay and in `--json`.
//!
//! Owns: the text of those three kinds. Must not know about: when they are
//! shown (mod.rs decides), where they came from.

use console::Style;

use super::format::Paint;
use crate::events::Level;

/// The `code` of the notice that says the run's container was kept; its
/// `help` holds the command to enter it (docs/log-format.md).
pub const CONTAINER_KEPT: &str = "container-kept";

/// `quire-ci: warning: MESSAGE` (or `quire-ci: MESSAGE` for `info`), then
/// its help. A kept container's help is the command to enter it, shown on a
/// line of its own so it can be copied whole.
pub fn notice_lines(paint: Paint, level: Level, code: &str, message: &str, help: Option<&str>) -> Vec<String> {
    let lead = match level {
        Level::Warning => format!("quire-ci: {} ", paint.style(Style::new().yellow().bold()).apply_to("warning:")),
        Level::Info => "quire-ci: ".to_string(),
    };
    let help: Vec<&str> = help.map(|h| h.lines().filter(|l| !l.trim().is_empty()).collect()).unwrap_or_default();
    let mut lines = Vec::new();
    if code == CONTAINER_KEPT && !help.is_empty() {
        lines.push(format!("{lead}{message}; get a shell in it with:"));
        lines.extend(help.iter().map(|h| format!("  {}", paint.style(Style::new().bold()).apply_to(h))));
        return lines;
    }
    lines.push(format!("{lead}{message}"));
    lines.extend(help_lines(paint, Some(&help.join("\n"))));
    lines
}

/// `  help: FIRST`, then the help's other lines under it: a notice's help,
/// or the summary's for the error that ended the run.
pub fn help_lines(paint: Paint, help: Option<&str>) -> Vec<String> {
    let help = help.unwrap_or("").lines().filter(|l| !l.trim().is_empty());
    help.enumerate()
        .map(|(i, h)| {
            let label = if i == 0 { "help:" } else { "     " };
            format!("  {} {h}", paint.style(Style::new().cyan()).apply_to(label))
        })
        .collect()
}

/// One evaluation problem as `validate` shows it (miette's layout): the
/// code, the message under `×` (`⚠` for a warning), where it is, and help.
/// The event carries no source text, so the location is a line of its own
/// instead of a snippet.
pub fn problem_lines(paint: Paint, code: &str, message: &str, at: Option<String>, help: Option<&str>) -> Vec<String> {
    let (mark, style) = if is_warning_code(code) { ("⚠", Style::new().yellow()) } else { ("×", Style::new().red()) };
    let mut lines = vec![paint.style(style.clone()).apply_to(code).to_string(), String::new()];
    let mut message_lines = message.lines();
    lines.push(format!("  {} {}", paint.style(style).apply_to(mark), message_lines.next().unwrap_or("")));
    lines.extend(message_lines.map(|l| format!("    {l}")));
    if let Some(at) = at {
        lines.push(format!("   {} {at}", paint.style(Style::new().dim()).apply_to("at")));
    }
    if let Some(help) = help {
        let mut help_lines = help.lines();
        lines.push(format!(
            "  {} {}",
            paint.style(Style::new().cyan()).apply_to("help:"),
            help_lines.next().unwrap_or("")
        ));
        lines.extend(help_lines.map(|l| format!("        {l}")));
    }
    lines.push(String::new());
    lines
}

/// `.quire/ci.fnl:3:7`, `.quire/ci.fnl:3`, or none without a line.
pub fn problem_at(file: Option<&str>, line: Option<u32>, column: Option<u32>) -> Option<String> {
    let file = file.unwrap_or(crate::pipeline::CI_FNL);
    match (line, column) {
        (Some(l), Some(c)) => Some(format!("{file}:{l}:{c}")),
        (Some(l), None) => Some(format!("{file}:{l}")),
        _ => None,
    }
}

/// What the server would refuse is a warning (the file is valid): the
/// `quire_ci::server_*` codes (`Code::is_warning` in src/diagnostic.rs).
fn is_warning_code(code: &str) -> bool {
    code.starts_with("quire_ci::server_")
}

/// `validate`'s closing count: `2 problems in .quire/ci.fnl`.
pub fn problems_count_line(count: usize, files: &[String]) -> String {
    let n = if count == 1 { "1 problem".to_string() } else { format!("{count} problems") };
    let files = if files.is_empty() { crate::pipeline::CI_FNL.to_string() } else { files.join(", ") };
    format!("{n} in {files}")
}

/// A cache hit, as it read on stderr before it was an event.
pub fn cache_hit_line(run_id: &str, tree: &str) -> String {
    let tree: String = tree.chars().take(12).collect();
    format!(
        "quire-ci: already passed (cached): run {run_id}, same tree {tree}, ci.fnl, image, jobs and ref; not run again (--no-cache to force)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Paint = Paint { color: false };

    #[test]
    fn a_warning_reads_like_the_old_stderr_line() {
        let l = notice_lines(PLAIN, Level::Warning, "prune-failed", "pruning old runs in /r: denied", None);
        assert_eq!(l, vec!["quire-ci: warning: pruning old runs in /r: denied"]);
        let l = notice_lines(PLAIN, Level::Info, "orphan-reaped", "removed container c1", Some("why\nmore"));
        assert_eq!(l, vec!["quire-ci: removed container c1", "  help: why", "        more"]);
    }

    #[test]
    fn a_kept_container_shows_the_command_to_enter_it() {
        let l = notice_lines(
            PLAIN,
            Level::Info,
            CONTAINER_KEPT,
            "kept container quire-ci-1 (image busybox)",
            Some("docker exec -it -w /work quire-ci-1 sh\nremove it with: docker rm -f quire-ci-1"),
        );
        assert_eq!(
            l,
            vec![
                "quire-ci: kept container quire-ci-1 (image busybox); get a shell in it with:",
                "  docker exec -it -w /work quire-ci-1 sh",
                "  remove it with: docker rm -f quire-ci-1",
            ]
        );
    }

    #[test]
    fn a_problem_has_code_message_place_and_help() {
        let at = problem_at(Some(".quire/ci.fnl"), Some(3), Some(1));
        let l = problem_lines(
            PLAIN,
            "quire_ci::unknown_input",
            "job :build has unknown input :tset",
            at,
            Some("did you mean :test?"),
        );
        assert_eq!(
            l.join("\n"),
            "quire_ci::unknown_input\n\n  × job :build has unknown input :tset\n   at .quire/ci.fnl:3:1\n  help: did you mean :test?\n"
        );
        let w = problem_lines(PLAIN, "quire_ci::server_stdlib", "m", None, None);
        assert_eq!(w[2], "  ⚠ m");
        assert_eq!(problems_count_line(2, &[]), "2 problems in .quire/ci.fnl");
    }

    #[test]
    fn a_cache_hit_names_the_run_and_a_short_tree() {
        assert_eq!(
            cache_hit_line("20261201T1-ab", "88e2fa18810bfb2ba012ceca94888fa036cfaefe"),
            "quire-ci: already passed (cached): run 20261201T1-ab, same tree 88e2fa18810b, ci.fnl, image, jobs and ref; not run again (--no-cache to force)"
        );
    }
}
