//! The command line's conventions, through the real binary: the colour
//! decision (`--color`, `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`,
//! `FORCE_COLOR`, `TERM`) on a pipe and on a real pseudo-terminal
//! (script(1)), `validate --json` and `doctor --json`, and the manual pages
//! (current in man/, every cross-reference a page, `man -l` renders each).

use std::process::{Command, Stdio};

use crate::harness::{self, Repo, Test, PRELUDE};

/// A ci.fnl that `validate` rejects, so miette draws a diagnostic on stderr.
fn bad_ci() -> String {
    format!("{PRELUDE}(ci.job :a [:nope] (fn [] {{}}))\n")
}

const ESC: char = '\u{1b}';

/// The colour variables the tests set one by one; every run starts with
/// none of them and a colour-capable TERM.
const COLOUR_VARS: [&str; 4] = ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR"];

/// `quire-ci ARGS` in `repo` with stdout and stderr on pipes and `env` on
/// top of a clean environment (TERM=xterm-256color); (stdout, stderr).
fn piped(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = Command::new(harness::bin());
    harness::scrub(&mut cmd);
    for k in COLOUR_VARS {
        cmd.env_remove(k);
    }
    cmd.env("TERM", "xterm-256color").args(args).current_dir(repo.path()).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running quire-ci");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `quire-ci ARGS` on a real pseudo-terminal (util-linux script(1)): what
/// the terminal received from stdout and stderr, and the exit status.
fn on_tty(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let mut line = shell_quote(&harness::bin().display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut cmd = Command::new("script");
    harness::scrub(&mut cmd);
    for k in COLOUR_VARS {
        cmd.env_remove(k);
    }
    cmd.env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"]).current_dir(repo.path()).stdin(Stdio::null());
    let out = cmd.output().expect("script(1) is installed (scripts/bootstrap --test-tools)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether the diagnostic `validate` prints for [`bad_ci`] is coloured,
/// on a terminal, with `env`.
fn tty_coloured(env: &[(&str, &str)], args: &[&str]) -> bool {
    let repo = Repo::new().ci(&bad_ci());
    let mut all = args.to_vec();
    all.push("validate");
    let (seen, code) = on_tty(&repo, &all, env);
    assert_eq!(code, 2, "validate rejects the file: {seen}");
    assert!(seen.contains("unknown input :nope"), "the diagnostic reached the terminal: {seen}");
    seen.contains(ESC)
}

/// Whether the same diagnostic is coloured when stderr is a pipe.
fn pipe_coloured(env: &[(&str, &str)], args: &[&str]) -> bool {
    let repo = Repo::new().ci(&bad_ci());
    let mut all = args.to_vec();
    all.push("validate");
    let (_, err) = piped(&repo, &all, env);
    assert!(err.contains("unknown input :nope"), "the diagnostic: {err}");
    err.contains(ESC)
}

#[test]
fn colour_on_a_terminal_follows_the_environment() {
    assert!(tty_coloured(&[], &[]), "a terminal with nothing set is coloured");
    assert!(!tty_coloured(&[("NO_COLOR", "1")], &[]), "NO_COLOR=1 turns it off");
    assert!(tty_coloured(&[("NO_COLOR", "")], &[]), "an empty NO_COLOR is not set (no-color.org)");
    assert!(!tty_coloured(&[("CLICOLOR", "0")], &[]), "CLICOLOR=0 turns it off");
    assert!(tty_coloured(&[("CLICOLOR", "1")], &[]), "CLICOLOR=1 leaves a terminal coloured");
    assert!(!tty_coloured(&[("TERM", "dumb")], &[]), "TERM=dumb gets no escape codes");
    assert!(!tty_coloured(&[("FORCE_COLOR", "0")], &[]), "FORCE_COLOR=0 turns it off");
    assert!(!tty_coloured(&[], &["--color", "never"]), "--color never");
}

#[test]
fn colour_into_a_pipe_only_when_forced() {
    assert!(!pipe_coloured(&[], &[]), "a pipe is plain");
    assert!(pipe_coloured(&[("CLICOLOR_FORCE", "1")], &[]), "CLICOLOR_FORCE=1 colours a pipe");
    assert!(!pipe_coloured(&[("CLICOLOR_FORCE", "0")], &[]), "CLICOLOR_FORCE=0 forces nothing");
    assert!(pipe_coloured(&[("FORCE_COLOR", "1")], &[]), "FORCE_COLOR=1 colours a pipe");
    assert!(pipe_coloured(&[("FORCE_COLOR", "3")], &[]), "FORCE_COLOR=3 (a level) too");
    assert!(pipe_coloured(&[("FORCE_COLOR", "true")], &[]), "FORCE_COLOR=true too");
    assert!(!pipe_coloured(&[("FORCE_COLOR", "false")], &[]), "FORCE_COLOR=false forces nothing");
    assert!(pipe_coloured(&[("TERM", "dumb"), ("CLICOLOR_FORCE", "1")], &[]), "forcing beats TERM=dumb");
    assert!(
        !pipe_coloured(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1"), ("FORCE_COLOR", "1")], &[]),
        "NO_COLOR beats the forcing variables"
    );
    assert!(pipe_coloured(&[], &["--color", "always"]), "--color always colours a pipe");
}

#[test]
fn the_color_flag_wins_over_every_variable() {
    assert!(pipe_coloured(&[("NO_COLOR", "1"), ("CLICOLOR", "0"), ("TERM", "dumb")], &["--color", "always"]));
    assert!(pipe_coloured(&[("NO_COLOR", "1")], &["--color=always"]));
    assert!(!tty_coloured(&[("CLICOLOR_FORCE", "1"), ("FORCE_COLOR", "1")], &["--color", "never"]));
    assert!(!pipe_coloured(&[("CLICOLOR_FORCE", "1")], &["--color=never"]));
}

/// stdout takes the same decision as stderr: doctor's ok/warn/fail words
/// (on stdout), in a directory that is not a repository.
#[test]
fn stdout_follows_the_same_decision() {
    let dir = Repo::plain_dir();
    let coloured = |env: &[(&str, &str)], args: &[&str]| {
        let mut all = args.to_vec();
        all.push("doctor");
        let (out, _) = piped(&dir, &all, env);
        assert!(out.contains("is not inside a git repository"), "doctor's report: {out}");
        out.contains(ESC)
    };
    assert!(!coloured(&[], &[]));
    assert!(coloured(&[("CLICOLOR_FORCE", "1")], &[]));
    assert!(coloured(&[("FORCE_COLOR", "1")], &[]));
    assert!(!coloured(&[("FORCE_COLOR", "1"), ("NO_COLOR", "1")], &[]));
    assert!(coloured(&[("NO_COLOR", "1")], &["--color", "always"]));
    let (seen, _) = on_tty(&dir, &["doctor"], &[]);
    assert!(seen.contains(ESC), "doctor on a terminal is coloured: {seen:?}");
    let (seen, _) = on_tty(&dir, &["doctor"], &[("TERM", "dumb")]);
    assert!(!seen.contains(ESC), "and not with TERM=dumb: {seen:?}");
}

/// clap's own help and usage errors follow the decision too.
#[test]
fn help_and_usage_errors_follow_the_decision() {
    let dir = Repo::plain_dir();
    let (help, _) = piped(&dir, &["--help"], &[("FORCE_COLOR", "1")]);
    assert!(help.contains(ESC), "forced colour reaches --help: {help:?}");
    let (help, _) = piped(&dir, &["--color", "never", "--help"], &[("FORCE_COLOR", "1")]);
    assert!(!help.contains(ESC), "--color never wins for --help: {help:?}");
    let (_, err) = piped(&dir, &["run", "--no-such-flag"], &[("CLICOLOR_FORCE", "1")]);
    assert!(err.contains("--no-such-flag") && err.contains(ESC), "forced colour reaches a usage error: {err:?}");
    let (_, err) = piped(&dir, &["--color=never", "run", "--no-such-flag"], &[("CLICOLOR_FORCE", "1")]);
    assert!(err.contains("--no-such-flag") && !err.contains(ESC), "{err:?}");
    let (seen, code) = on_tty(&dir, &["run", "--no-such-flag"], &[("NO_COLOR", "1")]);
    assert_eq!(code, 2, "{seen}");
    assert!(!seen.contains(ESC), "NO_COLOR reaches clap on a terminal: {seen:?}");
}

// ---------------------------------------------------------------- --json

#[test]
fn validate_json_lists_every_problem_with_its_place() {
    let ci = format!(
        "{PRELUDE}(ci.job :test [:quire/push] (fn [] {{}}))\n(ci.job :a [:nope] (fn [] {{}}))\n(ci.job :lonely [] (fn [] {{}}))\n"
    );
    let out = Test::new().ci(&ci).args(&["validate", "--json"]).run();
    out.status(2);
    let doc = out.stdout_json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["file"], ".quire/ci.fnl");
    let problems = doc["problems"].as_array().expect("problems is a list");
    let codes: Vec<&str> = problems.iter().map(|p| p["code"].as_str().unwrap_or("")).collect();
    assert!(codes.contains(&"quire_ci::unknown_input"), "{doc:#}");
    assert!(codes.contains(&"quire_ci::empty_inputs"), "{doc:#}");
    let unknown = problems.iter().find(|p| p["code"] == "quire_ci::unknown_input").expect("the unknown input");
    assert_eq!(unknown["severity"], "error");
    assert_eq!(unknown["file"], ".quire/ci.fnl");
    assert_eq!(unknown["line"], 3);
    assert!(unknown["message"].as_str().is_some_and(|m| m.contains(":nope")), "{unknown:#}");
    assert!(unknown["help"].as_str().is_some_and(|h| !h.is_empty()), "{unknown:#}");
    for key in ["code", "severity", "message", "file", "line", "column", "end_column", "label", "help"] {
        for p in problems {
            assert!(p.get(key).is_some(), "every problem has {key} (null when unknown): {p:#}");
        }
    }
    assert!(out.stderr.is_empty(), "nothing on stderr with --json: {}", out.stderr);
}

/// Columns are 1-based characters, as miette's `file:line:column` shows
/// them; `end_column` is just past the span.
#[test]
fn validate_json_gives_the_columns_miette_shows() {
    let ci = format!("{PRELUDE}(ci.job :test [:quire/push] (fn [] (undefined-thing) {{}}))\n");
    let out = Test::new().ci(&ci).args(&["validate", "--json"]).run();
    out.status(2);
    let doc = out.stdout_json();
    let p = &doc["problems"][0];
    assert_eq!(p["code"], "quire_ci::compile", "{doc:#}");
    assert_eq!((p["line"].as_u64(), p["column"].as_u64(), p["end_column"].as_u64()), (Some(2), Some(37), Some(52)));
    let text = Test::new().ci(&ci).args(&["validate"]).run();
    text.status(2).stderr_has(".quire/ci.fnl:2:37");
}

#[test]
fn validate_json_on_a_valid_file_gives_the_order_and_warnings() {
    let ci = format!(
        "{PRELUDE}(ci.image \"alpine:3\")\n(ci.job :test [:quire/push] (fn [] {{}}))\n(ci.job :deploy [:test] (fn [] {{}}))\n"
    );
    let out = Test::new().ci(&ci).args(&["validate", "--json"]).run();
    out.status(0);
    let doc = out.stdout_json();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["jobs"], serde_json::json!(["test", "deploy"]));
    assert_eq!(doc["image"]["name"], "alpine:3");
    assert_eq!(doc["problems"], serde_json::json!([]));
    // A file the forge's server would refuse: valid, with a warning.
    let warned = format!("{PRELUDE}(ci.job :test [:quire/push] (fn [] {{:x (math.clamp 1 0 2)}}))\n");
    let out = Test::new().ci(&warned).args(&["validate", "--json"]).run();
    out.status(0);
    let doc = out.stdout_json();
    assert_eq!(doc["valid"], true, "{doc:#}");
    let w = &doc["problems"][0];
    assert_eq!(w["severity"], "warning", "{doc:#}");
    assert!(w["code"].as_str().is_some_and(|c| c.starts_with("quire_ci::server_")), "{doc:#}");
}

#[test]
fn validate_json_outside_a_repository() {
    let out = Test::without_git().args(&["validate", "--json"]).run();
    out.status(2);
    let doc = out.stdout_json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["problems"][0]["code"], "quire_ci::no_repo");
    assert_eq!(doc["problems"][0]["file"], serde_json::Value::Null);
    assert_eq!(doc["problems"][0]["line"], serde_json::Value::Null);
}

#[test]
fn doctor_json_is_one_document_with_every_check() {
    // Not a repository: the repo check fails (exit 2 unless the engine is
    // down too, 3), and the checks before it are still reported.
    let out = Test::without_git().args(&["doctor", "--json"]).run();
    let doc = out.stdout_json();
    let checks = doc["checks"].as_array().expect("checks is a list");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap_or("")).collect();
    assert_eq!(&names[..3], ["engine", "fennel", "repo"], "{doc:#}");
    let repo = &checks[2];
    assert_eq!(repo["status"], "fail");
    assert!(repo["detail"].as_str().is_some_and(|d| d.contains("not inside a git repository")), "{doc:#}");
    assert!(repo["fix"].as_str().is_some_and(|f| f.contains("-C DIR")), "{doc:#}");
    assert_eq!(checks[1]["status"], "ok");
    assert_eq!(checks[1]["fix"], serde_json::Value::Null);
    let code = out.code.expect("an exit code");
    assert_eq!(doc["exit"], code, "the document names the exit code: {doc:#}");
    assert_eq!(doc["ok"], false);
    assert!(code == 2 || code == 3, "{code}");
    for c in checks {
        assert!(["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap_or("")), "{c:#}");
    }
}

#[test]
fn doctor_json_in_a_valid_repository_docker() {
    harness::require_docker();
    let repo = Repo::with_ci(&format!("{PRELUDE}(ci.job :test [:quire/push] (fn [] {{}}))\n"));
    let out = repo.quire(&["doctor", "--json"]).env("QUIRE_CI_IMAGE", harness::IMAGE).run();
    let doc = out.stdout_json();
    let by = |n: &str| doc["checks"].as_array().and_then(|cs| cs.iter().find(|c| c["name"] == n)).cloned();
    assert_eq!(by("engine").expect("an engine check")["status"], "ok", "{doc:#}");
    let ci = by("ci.fnl").expect("a ci.fnl check");
    assert_eq!(ci["status"], "ok", "{doc:#}");
    assert_eq!(ci["detail"], "valid, 1 job");
    assert_eq!(by("image").expect("an image check")["status"], "ok", "{doc:#}");
    assert_eq!(by("hook").expect("a hook check")["status"], "warn", "no hook installed: {doc:#}");
    out.status(0);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["exit"], 0);
}

// ---------------------------------------------------------------- man pages

/// The roff source as text: `\-` as `-`, font escapes dropped.
fn roff_text(roff: &str) -> String {
    roff.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fR", "").replace("\\fP", "")
}

/// Every `quire-ci…(N)` reference in `text`.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("quire-ci") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(tail.len());
        let name = &tail[..end];
        if let Some(sec) = tail[end..].strip_prefix('(').and_then(|t| t.split_once(')')).map(|(s, _)| s) {
            if sec.len() == 1 && sec.chars().all(|c| c.is_ascii_digit()) {
                out.push(format!("{name}.{sec}"));
            }
        }
        rest = &tail[end..];
    }
    out
}

/// man/ holds exactly the pages the binary writes: one for quire-ci and one
/// for every subcommand, nested ones too.
#[test]
fn man_pages_are_current_and_cover_every_subcommand() {
    let dir = Repo::plain_dir();
    let out_dir = dir.scratch().join("man");
    let out = Test::without_git().arg("man").arg("--out-dir").arg(&out_dir).run();
    out.status(0);
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect();
        v.sort();
        v
    };
    let written = names(&out_dir);
    for sub in [
        "quire-ci.1",
        "quire-ci-run.1",
        "quire-ci-validate.1",
        "quire-ci-list.1",
        "quire-ci-watch.1",
        "quire-ci-hook.1",
        "quire-ci-hook-install.1",
        "quire-ci-hook-uninstall.1",
        "quire-ci-hook-pre-push.1",
        "quire-ci-logs.1",
        "quire-ci-runs.1",
        "quire-ci-init.1",
        "quire-ci-doctor.1",
        "quire-ci-completions.1",
        "quire-ci-man.1",
        "quire-ci-config.1",
    ] {
        assert!(written.contains(&sub.to_string()), "{sub} is written: {written:?}");
    }
    let committed_dir = harness::repo_root().join("man");
    let committed = names(&committed_dir);
    let mut stale: Vec<String> = Vec::new();
    for n in written.iter().chain(committed.iter()) {
        let a = std::fs::read(out_dir.join(n)).ok();
        let b = std::fs::read(committed_dir.join(n)).ok();
        if a != b && !stale.contains(n) {
            stale.push(n.clone());
        }
    }
    assert!(stale.is_empty(), "stale or missing pages in man/: {stale:?}; run scripts/gen-docs and commit the result");
    // Every page names its sections and every reference has its page.
    for n in &written {
        let text = roff_text(&std::fs::read_to_string(out_dir.join(n)).expect("a page"));
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES", "EXIT STATUS", "SEE ALSO"] {
            assert!(
                text.contains(&format!(".SH {section}")) || text.contains(&format!(".SH \"{section}\"")),
                "{n} has {section}"
            );
        }
        for r in references(&text) {
            assert!(written.contains(&r), "{n} refers to {r}, which is not a page: {written:?}");
        }
    }
    let run = roff_text(&std::fs::read_to_string(out_dir.join("quire-ci-run.1")).expect("run's page"));
    for needle in [".SH OPTIONS", "--pull", "--secrets-file", "QUIRE_CI_IMAGE", "DOCKER_HOST", "NO_COLOR", "130"] {
        assert!(run.contains(needle), "quire-ci-run(1) has {needle}");
    }
    let top = roff_text(&std::fs::read_to_string(out_dir.join("quire-ci.1")).expect("the top page"));
    assert!(!top.contains(".SH EXTRA"), "exit codes are under EXIT STATUS, not EXTRA");
    assert!(
        top.contains("quire-ci-run(1)") && top.contains("quire-ci-hook(1)"),
        "the top page lists the commands' pages"
    );
}

/// `man -l` renders every page without a warning, with its sections.
#[test]
fn every_man_page_renders_with_man_l() {
    let dir = harness::repo_root().join("man");
    let mut pages: Vec<_> = std::fs::read_dir(&dir).expect("man/").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    pages.sort();
    assert!(pages.len() >= 15, "{pages:?}");
    for page in pages {
        let mut cmd = Command::new("man");
        harness::scrub(&mut cmd);
        let out = cmd
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .stdin(Stdio::null())
            .output()
            .expect("man is installed (scripts/bootstrap --test-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {}: {err}", page.display());
        assert!(err.trim().is_empty(), "man -l {} warns: {err}", page.display());
        for section in ["NAME", "SYNOPSIS", "ENVIRONMENT", "FILES", "EXIT STATUS", "SEE ALSO"] {
            assert!(text.lines().any(|l| l == section), "{} renders {section}:\n{text}", page.display());
        }
    }
}

#[test]
fn man_prints_one_commands_page() {
    let page = std::fs::read_to_string(harness::repo_root().join("man/quire-ci-hook-install.1")).expect("a page");
    Test::without_git().args(&["man", "hook", "install"]).status(0).stdout(&page).run();
    Test::without_git().args(&["man", "nosuch"]).run().status(2).stderr_has("no manual page for `quire-ci nosuch`");
}
