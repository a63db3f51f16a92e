//! The terminal renderer, end to end: the real `quire-ci` binary against
//! the real Docker engine (tests with `docker` in their name need one and
//! fail loudly without it; images from `scripts/test-images`). Plain-mode
//! output is snapshotted (insta) with durations and the run directory
//! normalized; replay (`quire-ci logs`) must print exactly what the live
//! run printed; `--json` must print only schema-valid lines. Scripts sleep
//! between stdout and stderr writes: the engine reads the two pipes
//! separately, so without a pause their relative order is a race.

#[path = "common/repo.rs"]
mod repo;
#[path = "common/schema.rs"]
mod schema;

use repo::{normalize, stderr, stdout, Repo};

const SUCCESS: &str = r#"(local ci (require :quire.ci))
(ci.job :lint [:quire/push] (fn [{: sh}] (sh "echo lint ok") {}))
(ci.job :test [:lint] (fn [{: sh}] (sh "echo one; sleep 0.3; echo two >&2") (sh ["echo" "argv form"]) {:answer 42}))
"#;

const FAILING: &str = r#"(local ci (require :quire.ci))
(ci.job :lint [:quire/push] (fn [{: sh}] (sh "echo lint ok") {}))
(ci.job :test [:lint]
  (fn [{: sh}]
    (let [r (sh "echo compiling; sleep 0.3; echo 'error: expected ;' >&2; exit 3")]
      {:exit r.exit})))
(ci.job :build [:test] (fn [{: sh}] (sh "echo never runs") {}))
(ci.job :deploy [:build] (fn [{: sh}] (sh "echo never runs either") {}))
"#;

const SKIPPING: &str = r#"(local ci (require :quire.ci))
(ci.job :docs [:quire/push] (fn [{: sh}] (print "nothing to do on this branch") nil))
(ci.job :after [:docs] (fn [{: sh : jobs}] (sh (.. "echo docs gave " (tostring (jobs :docs)))) {}))
"#;

const SECRET: &str = r#"(local ci (require :quire.ci))
(ci.job :deploy [:quire/push]
  (fn [{: sh : secret}]
    (sh (.. "echo token=" (secret :TOKEN) "; echo 'half: hunter'; sleep 0.3; printf '%s' " (secret :TOKEN) " >&2"))
    (print (.. "printed " (secret :TOKEN)))
    {}))
"#;

const BINARY: &str = r#"(local ci (require :quire.ci))
(ci.job :bin [:quire/push]
  (fn [{: sh}]
    (sh "printf 'bytes: \\377\\376 end\\n'; printf 'no newline at the end'")
    (sh "printf 'tick 1\\rtick 2\\rtick 3\\n'")
    {}))
"#;

fn run_plain(repo: &Repo, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--color", "never", "run"];
    args.extend_from_slice(extra);
    repo.quire_env(&args, &[("TOKEN", "hunter2")])
}

fn snapshot_run(name: &str, ci: &str, extra: &[&str], code: i32) -> (Repo, String) {
    let repo = Repo::new(ci);
    let out = run_plain(&repo, extra);
    assert_eq!(out.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    insta::assert_snapshot!(name, normalize(&text, &repo));
    (repo, text)
}

#[test]
fn docker_success_plain() {
    snapshot_run("success", SUCCESS, &[], 0);
}

#[test]
fn docker_failed_job_skips_its_dependents() {
    let (_repo, text) = snapshot_run("failed", FAILING, &[], 1);
    assert!(!text.contains("never runs"), "a dependent of a failed job ran:\n{text}");
}

#[test]
fn docker_skipped_job_says_why_and_dependents_run() {
    snapshot_run("skipped", SKIPPING, &[], 0);
}

#[test]
fn compile_error_is_summarised() {
    let (_repo, text) = snapshot_run("compile_error", "(local ci (require :quire.ci))\n(ci.job :x [:quire/push]\n", &[], 2);
    assert!(text.contains("run error"), "{text}");
}

#[test]
fn docker_secrets_are_redacted_in_output_and_record() {
    let (repo, text) = snapshot_run("secrets", SECRET, &["--secret", "TOKEN"], 0);
    assert!(!text.contains("hunter2"), "{text}");
    let logs = repo.quire(&["--color", "never", "logs", "--json"]);
    assert!(!stdout(&logs).contains("hunter2"));
    assert!(stdout(&logs).contains("***"));
}

#[test]
fn docker_binary_and_carriage_return_output() {
    let (_repo, text) = snapshot_run("binary", BINARY, &[], 0);
    assert!(text.contains("bin | tick 3\n"), "only the last \\r segment stays:\n{text}");
    assert!(!text.contains("| tick 1"), "{text}");
}

#[test]
fn docker_quiet_shows_only_the_failing_job_and_the_summary() {
    let repo = Repo::new(FAILING);
    let out = repo.quire_env(&["--color", "never", "-q", "run"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains("lint ok"), "a passing job's output shows under -q:\n{text}");
    assert!(text.contains("test   | compiling"), "{text}");
    assert!(text.contains("FAILED test"), "{text}");
    assert!(text.contains("lint    succeeded"), "the summary lists every job:\n{text}");
    insta::assert_snapshot!("quiet", normalize(&text, &repo));
}

/// The replay property: for the same run, `logs` in plain mode prints
/// byte for byte what the live plain view printed — with and without colour.
#[test]
fn docker_logs_replays_exactly_what_the_run_printed() {
    for (i, ci) in [SUCCESS, FAILING, SKIPPING, SECRET, BINARY].iter().enumerate() {
        for color in ["never", "always"] {
            let repo = Repo::new(ci);
            let live = repo.quire_env(&["--color", color, "run", "--secret", "TOKEN"], &[("TOKEN", "hunter2")]);
            assert!(matches!(live.status.code(), Some(0 | 1)), "case {i}: {}", stderr(&live));
            let replay = repo.quire(&["--color", color, "logs"]);
            assert_eq!(replay.status.code(), Some(0), "case {i}: {}", stderr(&replay));
            assert_eq!(stdout(&replay), stdout(&live), "case {i} ({color}): replay differs from the live view");
        }
    }
}

#[test]
fn docker_json_prints_only_schema_valid_events() {
    let repo = Repo::new(FAILING);
    let out = repo.quire(&["run", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let mut kinds = Vec::new();
    for line in text.lines() {
        if let Err(e) = schema::validate_line(line) {
            panic!("stdout line does not match the log schema: {e}\n{line}");
        }
        let v: serde_json::Value = serde_json::from_str(line).expect("validated above");
        kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
        if matches!(v["kind"].as_str(), Some("sh-start" | "stdout" | "stderr" | "sh-exit")) {
            assert!(v["job"].is_string(), "--json job-level events carry `job`: {line}");
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("run-start"));
    assert_eq!(kinds.last().map(String::as_str), Some("run-end"));
    // The replayed --json is the same stream.
    let logs = repo.quire(&["logs", "--json"]);
    for line in stdout(&logs).lines() {
        schema::validate_line(line).unwrap_or_else(|e| panic!("logs --json: {e}\n{line}"));
    }
    assert_eq!(stdout(&logs).lines().count(), text.lines().count());
}

#[test]
fn docker_logs_job_filter_and_runs_listing() {
    let repo = Repo::new(FAILING);
    let first = repo.quire(&["run"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let only = repo.quire(&["--color", "never", "logs", "--job", "test"]);
    let text = stdout(&only);
    assert!(text.contains("test   | compiling"), "{text}");
    assert!(!text.contains("lint ok"), "--job test shows lint's output:\n{text}");
    assert!(text.contains("lint    succeeded"), "the summary stays whole:\n{text}");

    let bad = repo.quire(&["logs", "--job", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("no job \"nope\""), "{}", stderr(&bad));

    let runs = repo.quire(&["runs"]);
    let listing = stdout(&runs);
    assert_eq!(listing.lines().count(), 2, "header + one run:\n{listing}");
    assert!(listing.contains("refs/heads/main") && listing.contains("failed"), "{listing}");
    let id = listing.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a run id");
    let by_prefix = repo.quire(&["--color", "never", "logs", &id[..12]]);
    assert_eq!(by_prefix.status.code(), Some(0), "{}", stderr(&by_prefix));
    let unknown = repo.quire(&["logs", "1999"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn logs_without_runs_is_a_clear_error() {
    let repo = Repo::new(SUCCESS);
    let out = repo.quire(&["logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no runs recorded yet"), "{}", stderr(&out));
}

#[test]
fn docker_shell_on_failure_without_a_terminal_warns_and_goes_on() {
    let repo = Repo::new(FAILING);
    let out = repo.quire(&["--color", "never", "run", "--shell-on-failure"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--shell-on-failure needs a terminal"), "{}", stderr(&out));
    assert!(stdout(&out).contains("run failed"), "{}", stdout(&out));
}

#[test]
fn json_mode_keeps_stdout_clean_on_a_compile_error() {
    let repo = Repo::new("(local ci (require :quire.ci))\n(print \"top-level print\")\n(ci.job :x [:quire/push]\n");
    let out = repo.quire(&["run", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(!text.is_empty(), "run-start and run-end are still printed");
    for line in text.lines() {
        schema::validate_line(line).unwrap_or_else(|e| panic!("{e}\n{line}"));
    }
    assert!(stderr(&out).contains("ci.fnl"), "the diagnostic goes to stderr:\n{}", stderr(&out));
}

#[test]
fn docker_dockerfile_build_steps_are_shown() {
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"cat /built\") {}))\n");
    std::fs::write(
        repo.path().join(".quire/Dockerfile"),
        format!("FROM {}\nRUN echo built-by-dockerfile-{} > /built\n", repo::IMAGE, std::process::id()),
    )
    .expect("Dockerfile");
    repo.git(&["add", "-A"]);
    let out = repo.quire(&["--color", "never", "run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains(": building (.quire/Dockerfile)"), "{text}");
    assert!(text.contains("| Step 1/2 : FROM quire-ci-test/busybox:latest"), "{text}");
    assert!(text.contains("| Step 2/2 : RUN echo built-by-dockerfile"), "{text}");
    assert!(text.contains(": built"), "{text}");
    assert!(text.contains("t | built-by-dockerfile"), "{text}");
    // Replay shows the build steps too: they are recorded `image` events.
    assert_eq!(stdout(&repo.quire(&["--color", "never", "logs"])), text);
    // The built image is this test's own: remove it.
    if let Some(built) = text.lines().find_map(|l| l.strip_prefix("image ")?.strip_suffix(": built")) {
        let _ = std::process::Command::new("docker").args(["rmi", built]).output();
    }
}
