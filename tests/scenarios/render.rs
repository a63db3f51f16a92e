//! The terminal renderer, end to end: the real `quire-ci` binary against
//! the real Docker engine (tests with `docker` in their name need one and
//! fail loudly without it; images from `scripts/test-images`). Plain-mode
//! output is snapshotted (insta) with durations and the run directory
//! normalized; replay (`quire-ci logs`) must print exactly what the live
//! run printed; `--json` must print only schema-valid lines. The engine reads
//! a command's stdout and stderr on separate pipes, so their relative order
//! within one command is not defined: these scripts write each stream from
//! a command of its own. (Interleaved streams are rendered from recorded
//! events in events.rs.)

use crate::harness::{schema, Output, Repo, IMAGE};

const SUCCESS: &str = r#"(local ci (require :quire.ci))
(ci.job :lint [:quire/push] (fn [{: sh}] (sh "echo lint ok") {}))
(ci.job :test [:lint] (fn [{: sh}] (sh "echo one") (sh "echo two >&2") (sh ["echo" "argv form"]) {:answer 42}))
"#;

const FAILING: &str = r#"(local ci (require :quire.ci))
(ci.job :lint [:quire/push] (fn [{: sh}] (sh "echo lint ok") {}))
(ci.job :test [:lint]
  (fn [{: sh}]
    (sh "echo compiling")
    (let [r (sh "echo 'error: expected ;' >&2; exit 3")]
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
    (sh (.. "echo token=" (secret :TOKEN) "; echo 'half: hunter'"))
    (sh (.. "printf '%s' " (secret :TOKEN) " >&2"))
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

fn run_plain<'r>(repo: &'r Repo, extra: &[&str]) -> Output<'r> {
    let mut args = vec!["--color", "never", "run"];
    args.extend_from_slice(extra);
    repo.quire(&args).docker().envs(&[("TOKEN", "hunter2")]).run()
}

fn snapshot_run(name: &str, ci: &str, extra: &[&str], code: i32) -> (Repo, String) {
    let repo = Repo::with_ci(ci);
    let out = run_plain(&repo, extra);
    assert_eq!(out.code, Some(code), "stdout:\n{}\nstderr:\n{}", out.stdout.clone(), out.stderr.clone());
    let text = out.stdout.clone();
    insta::assert_snapshot!(name, repo.normalize(&text));
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
    let (_repo, text) =
        snapshot_run("compile_error", "(local ci (require :quire.ci))\n(ci.job :x [:quire/push]\n", &[], 2);
    assert!(text.contains("run error"), "{text}");
}

#[test]
fn docker_secrets_are_redacted_in_output_and_record() {
    let (repo, text) = snapshot_run("secrets", SECRET, &["--secret", "TOKEN"], 0);
    assert!(!text.contains("hunter2"), "{text}");
    let logs = repo.quire(&["--color", "never", "logs", "--json"]).docker().run();
    assert!(!logs.stdout.contains("hunter2"));
    assert!(logs.stdout.contains("***"));
}

#[test]
fn docker_binary_and_carriage_return_output() {
    let (_repo, text) = snapshot_run("binary", BINARY, &[], 0);
    assert!(text.contains("bin | tick 3\n"), "only the last \\r segment stays:\n{text}");
    assert!(!text.contains("| tick 1"), "{text}");
}

#[test]
fn docker_quiet_shows_only_the_failing_job_and_the_summary() {
    let repo = Repo::with_ci(FAILING);
    let out = repo.quire(&["--color", "never", "-q", "run"]).docker().run();
    assert_eq!(out.code, Some(1));
    let text = out.stdout.clone();
    assert!(!text.contains("lint ok"), "a passing job's output shows under -q:\n{text}");
    assert!(text.contains("test   | compiling"), "{text}");
    assert!(text.contains("FAILED test"), "{text}");
    assert!(text.contains("lint    succeeded"), "the summary lists every job:\n{text}");
    insta::assert_snapshot!("quiet", repo.normalize(&text));
}

/// The replay property: for the same run, `logs` in plain mode prints
/// byte for byte what the live plain view printed — with and without colour.
#[test]
fn docker_logs_replays_exactly_what_the_run_printed() {
    for (i, ci) in [SUCCESS, FAILING, SKIPPING, SECRET, BINARY].iter().enumerate() {
        for color in ["never", "always"] {
            let repo = Repo::with_ci(ci);
            let live =
                repo.quire(&["--color", color, "run", "--secret", "TOKEN"]).docker().env("TOKEN", "hunter2").run();
            assert!(matches!(live.code, Some(0 | 1)), "case {i}: {}", live.stderr.clone());
            let replay = repo.quire(&["--color", color, "logs"]).docker().run();
            assert_eq!(replay.code, Some(0), "case {i}: {}", replay.stderr.clone());
            assert_eq!(
                replay.stdout.clone(),
                live.stdout.clone(),
                "case {i} ({color}): replay differs from the live view"
            );
        }
    }
}

#[test]
fn docker_json_prints_only_schema_valid_events() {
    let repo = Repo::with_ci(FAILING);
    let out = repo.quire(&["run", "--json"]).docker().run();
    assert_eq!(out.code, Some(1), "{}", out.stderr.clone());
    let text = out.stdout.clone();
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
    // Transient `phase` events may come first: the snapshot's and the
    // evaluation's are said before the run's record (and `run-start`) exist.
    let lasting: Vec<&String> = kinds.iter().filter(|k| *k != "phase").collect();
    assert_eq!(lasting.first().map(|k| k.as_str()), Some("run-start"));
    assert_eq!(kinds.last().map(String::as_str), Some("run-end"));
    // The replayed --json is the same stream, but for the transient
    // events (`phase`: the upload's progress), which no record keeps.
    let logs = repo.quire(&["logs", "--json"]).docker().run();
    for line in logs.stdout.lines() {
        schema::validate_line(line).unwrap_or_else(|e| panic!("logs --json: {e}\n{line}"));
    }
    assert!(kinds.iter().any(|k| k == "phase"), "the live stream says the upload: {kinds:?}");
    assert_eq!(logs.stdout.lines().count(), kinds.iter().filter(|k| *k != "phase").count());
}

#[test]
fn docker_logs_job_filter_and_runs_listing() {
    let repo = Repo::with_ci(FAILING);
    let first = repo.quire(&["run"]).docker().run();
    assert_eq!(first.code, Some(1), "{}", first.stderr.clone());
    let only = repo.quire(&["--color", "never", "logs", "--job", "test"]).docker().run();
    let text = only.stdout.clone();
    assert!(text.contains("test   | compiling"), "{text}");
    assert!(!text.contains("lint ok"), "--job test shows lint's output:\n{text}");
    assert!(text.contains("lint    succeeded"), "the summary stays whole:\n{text}");

    let bad = repo.quire(&["logs", "--job", "nope"]).docker().run();
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("no job \"nope\""), "{}", bad.stderr.clone());

    let runs = repo.quire(&["runs"]).docker().run();
    let listing = runs.stdout.clone();
    assert_eq!(listing.lines().count(), 2, "header + one run:\n{listing}");
    assert!(listing.contains("refs/heads/main") && listing.contains("failed"), "{listing}");
    let id = listing.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a run id");
    let by_prefix = repo.quire(&["--color", "never", "logs", &id[..12]]).docker().run();
    assert_eq!(by_prefix.code, Some(0), "{}", by_prefix.stderr.clone());
    let unknown = repo.quire(&["logs", "1999"]).docker().run();
    assert_eq!(unknown.code, Some(2));
}

#[test]
fn logs_without_runs_is_a_clear_error() {
    let repo = Repo::with_ci(SUCCESS);
    let out = repo.quire(&["logs"]).run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("no runs recorded yet"), "{}", out.stderr.clone());
}

#[test]
fn docker_shell_on_failure_without_a_terminal_warns_and_goes_on() {
    let repo = Repo::with_ci(FAILING);
    let out = repo.quire(&["--color", "never", "run", "--shell-on-failure"]).docker().run();
    assert_eq!(out.code, Some(1), "{}", out.stderr.clone());
    assert!(out.stderr.contains("--shell-on-failure needs a terminal"), "{}", out.stderr.clone());
    assert!(out.stdout.contains("run failed"), "{}", out.stdout.clone());
}

#[test]
fn json_mode_keeps_stdout_clean_on_a_compile_error() {
    let repo = Repo::with_ci("(local ci (require :quire.ci))\n(print \"top-level print\")\n(ci.job :x [:quire/push]\n");
    let out = repo.quire(&["run", "--json"]).run();
    assert_eq!(out.code, Some(2));
    let text = out.stdout.clone();
    assert!(!text.is_empty(), "run-start and run-end are still printed");
    for line in text.lines() {
        schema::validate_line(line).unwrap_or_else(|e| panic!("{e}\n{line}"));
    }
    assert!(out.stderr.contains("ci.fnl"), "the diagnostic goes to stderr:\n{}", out.stderr.clone());
}

#[test]
fn docker_dockerfile_build_steps_are_shown() {
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"cat /built\") {}))\n",
    );
    std::fs::write(
        repo.path().join(".quire/Dockerfile"),
        format!("FROM {}\nRUN echo built-by-dockerfile-{} > /built\n", IMAGE, std::process::id()),
    )
    .expect("Dockerfile");
    repo.git(&["add", "-A"]);
    let out = repo.quire(&["--color", "never", "run"]).docker().run();
    let text = out.stdout.clone();
    assert_eq!(out.code, Some(0), "{text}\n{}", out.stderr.clone());
    assert!(text.contains(": building (.quire/Dockerfile)"), "{text}");
    assert!(text.contains("| Step 1/2 : FROM quire-ci-test/busybox:latest"), "{text}");
    assert!(text.contains("| Step 2/2 : RUN echo built-by-dockerfile"), "{text}");
    assert!(text.contains(": built"), "{text}");
    assert!(text.contains("t | built-by-dockerfile"), "{text}");
    // Replay shows the build steps too: they are recorded `image` events.
    assert_eq!(repo.quire(&["--color", "never", "logs"]).docker().run().stdout, text);
    // The built image is this test's own: remove it.
    if let Some(built) = text.lines().find_map(|l| l.strip_prefix("image ")?.strip_suffix(": built")) {
        let _ = std::process::Command::new("docker").args(["rmi", built]).output();
    }
}
