//! `-j N`: independent jobs as concurrent execs into the run's one
//! container; `--fail-fast`; a signal stopping several running execs; the
//! error path of a run that cannot reach its engine. Real binary, real
//! Docker engine (the scheduler's rules are unit-tested against a fake host
//! in src/executor/scheduler.rs).

use std::time::Duration;

use crate::harness::Repo;

/// A bound on hangs, not a figure (timings belong to scripts/bench).
const LIMIT: Duration = Duration::from_secs(120);

/// Each of :a and :b marks that it started, then waits for the other's
/// mark: both succeed only if they ran at the same time (one after another,
/// the first gives up after ~20 s and fails). :join needs both.
const MEET: &str = r#"(local ci (require :quire.ci))
(fn meet [me other]
  (fn [{: sh}]
    (let [r (sh (.. "touch /tmp/" me "; i=0; until [ -e /tmp/" other " ]; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done"))]
      {:exit r.exit})))
(ci.job :a [:quire/push] (meet :a :b))
(ci.job :b [:quire/push] (meet :b :a))
(ci.job :join [:a :b] (fn [{: sh}] {:exit (. (sh "[ -e /tmp/a ] && [ -e /tmp/b ]") :exit)}))
"#;

#[test]
fn docker_j2_runs_independent_jobs_at_once_then_their_join() {
    let repo = Repo::with_ci(MEET);
    let r = repo.quire(&["run", "-j", "2"]).docker().run();
    r.status(0);
    r.assert_clean();
    for job in ["a", "b", "join"] {
        assert_eq!(r.job_status(job), "succeeded", "{job}\n{}", r.terminal());
    }
    assert_eq!(r.meta()["jobs"], 2, "meta.json records -j");
    // The join started after both its inputs ended (the record's times).
    let end = |job: &str| r.job_end(job)["ts"].as_str().unwrap_or_default().to_string();
    let join_start =
        r.run_log().into_iter().find(|e| e["kind"] == "job-start" && e["job"] == "join").expect("join started")["ts"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    assert!(join_start >= end("a") && join_start >= end("b"), "join {join_start} vs {} {}", end("a"), end("b"));
}

#[test]
fn docker_the_environment_sets_jobs_and_default_is_one_at_a_time() {
    let repo = Repo::with_ci(MEET);
    // One at a time, :a waits for :b in vain and fails; :b then waits for a
    // mark :a left, and passes; :join is skipped.
    let serial = repo.quire(&["run"]).docker().run();
    serial.status(1);
    assert_eq!(serial.meta()["jobs"], 1);
    assert_eq!(serial.job_status("a"), "failed");
    assert_eq!(serial.job_status("join"), "skipped");
    let env = repo.quire(&["run"]).docker().env("QUIRE_CI_JOBS", "2").run();
    env.status(0);
    assert_eq!(env.meta()["jobs"], 2);
}

/// :slow marks that it started and sleeps; :bad waits for that mark and
/// fails; :after needs :slow.
const FAIL_FAST: &str = r#"(local ci (require :quire.ci))
(ci.job :slow [:quire/push] (fn [{: sh}] (sh "touch /tmp/slow; echo started; sleep 60") {}))
(ci.job :bad [:quire/push] (fn [{: sh}] {:exit (. (sh "until [ -e /tmp/slow ]; do sleep 0.05; done; exit 1") :exit)}))
(ci.job :after [:slow] (fn [{: sh}] (sh "echo after") {}))
"#;

#[test]
fn docker_fail_fast_cancels_the_running_job_and_skips_the_rest() {
    let repo = Repo::with_ci(FAIL_FAST);
    let r = repo.quire(&["run", "-j", "2", "--fail-fast"]).docker().run();
    r.status(1);
    r.assert_clean();
    assert_eq!(r.run_status(), "failed");
    assert_eq!(r.job_status("bad"), "failed");
    let slow = r.job_end("slow");
    assert_eq!(slow["outcome"], "canceled", "{slow}");
    let reason = slow["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(":bad failed") && reason.contains("--fail-fast"), "{reason}");
    let after = r.job_end("after");
    assert_eq!(after["outcome"], "skipped");
    assert!(after["reason"].as_str().unwrap_or_default().starts_with("not run: :bad failed"), "{after}");
}

#[test]
fn docker_without_fail_fast_the_running_job_goes_on() {
    // Same pipeline, :slow shortened: without --fail-fast it runs to its end.
    let repo = Repo::with_ci(&FAIL_FAST.replace("sleep 60", "sleep 1"));
    let r = repo.quire(&["run", "-j", "2"]).docker().run();
    r.status(1);
    assert_eq!(r.job_status("slow"), "succeeded");
    assert_eq!(r.job_status("after"), "succeeded");
    assert_eq!(r.job_status("bad"), "failed");
}

const THREE_SLEEPERS: &str = r#"(local ci (require :quire.ci))
(ci.job :a [:quire/push] (fn [{: sh}] (sh "echo started; sleep 60") {}))
(ci.job :b [:quire/push] (fn [{: sh}] (sh "echo started; sleep 60") {}))
(ci.job :c [:quire/push] (fn [{: sh}] (sh "echo started; sleep 60") {}))
(ci.job :d [:a :b :c] (fn [{: sh}] (sh "echo d") {}))
"#;

#[test]
fn docker_sigint_stops_every_running_exec() {
    let repo = Repo::with_ci(THREE_SLEEPERS);
    let run = repo.quire(&["run", "-j", "3"]).docker().spawn();
    let rec = run.record(LIMIT);
    for job in ["a", "b", "c"] {
        run.wait_for_event("sh-start", Some(job), LIMIT);
    }
    run.signal("INT");
    let f = run.wait();
    f.status(130);
    f.assert_clean();
    assert_eq!(rec.run_status(), "canceled");
    for job in ["a", "b", "c"] {
        let end = rec.job_end(job);
        assert_eq!(end["outcome"], "canceled", "{job}: {end}");
        assert_eq!(end["reason"], "canceled by SIGINT", "{job}");
        let exit = rec.job_log(job).into_iter().find(|e| e["kind"] == "sh-exit").expect("sh-exit");
        assert_eq!(exit["signal"], "SIGKILL", "{job}: {exit}");
    }
    assert_eq!(rec.job_status("d"), "skipped");
}

/// A run-fn busy in Lua (no `sh` to stop) is cut off by Ctrl-C too, and
/// says so: `canceled`, with the signal, not a failure of its own.
#[test]
fn docker_sigint_cuts_off_a_run_fn_busy_in_lua_as_canceled() {
    let repo = Repo::with_ci(
        r#"(local ci (require :quire.ci))
(ci.job :spin [:quire/push] (fn [] (print "spinning") (while true nil) {}))
(ci.job :after [:spin] (fn [] {}))
"#,
    );
    let run = repo.quire(&["run"]).docker().spawn();
    let rec = run.record(LIMIT);
    run.wait_for_event("print", Some("spin"), LIMIT);
    run.signal("INT");
    let f = run.wait();
    f.status(130);
    f.assert_clean();
    assert_eq!(rec.run_status(), "canceled");
    let end = rec.job_end("spin");
    assert_eq!(end["outcome"], "canceled", "{end}");
    assert_eq!(end["reason"], "canceled by SIGINT", "{end}");
    assert_eq!(rec.job_status("after"), "skipped");
}

#[test]
fn docker_sigterm_exits_143() {
    let repo = Repo::with_ci(THREE_SLEEPERS);
    let run = repo.quire(&["run", "-j", "2"]).docker().spawn();
    run.wait_for_event("sh-start", Some("b"), LIMIT);
    run.signal("TERM");
    let f = run.wait();
    f.status(143);
    f.assert_clean();
    assert_eq!(f.run_status(), "canceled");
}

/// An unreachable engine: exit 3, the diagnostic (message, help, code) said
/// once, by the summary on stdout, with its help line; the error on one
/// line in the record, with its code and help.
#[test]
fn docker_unreachable_engine_is_one_diagnostic_with_code_and_help() {
    let repo =
        Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\") {}))\n");
    let r = repo.quire(&["run"]).env("DOCKER_HOST", "unix:///nonexistent.sock").run();
    r.status(3);
    r.once_on_stdout("no container engine answered")
        .once_on_stdout("quire_ci::engine::unreachable")
        .once_on_stdout("help: start Docker");
    assert!(r.stdout.contains("run error in "), "the summary says it:\n{}", r.stdout);
    assert!(!r.terminal().contains("^J"), "a newline shown as ^J:\n{}", r.terminal());
    assert_eq!(r.run_status(), "error");
    let end = r.run_log().into_iter().find(|e| e["kind"] == "run-end").expect("run-end");
    let error = end["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("no container engine answered") && !error.contains('\n'), "{error:?}");
    assert!(error.contains("unix:///nonexistent.sock"), "the record says what was tried: {error:?}");
    assert_eq!(end["code"], "quire_ci::engine::unreachable", "{end}");
    assert!(end["help"].as_str().unwrap_or_default().starts_with("start Docker"), "{end}");
}

/// Under `--json` nothing draws the summary: the diagnostic goes on stderr,
/// once, and stdout's `run-end` carries its code and help.
#[test]
fn docker_unreachable_engine_under_json_is_one_diagnostic_on_stderr() {
    let repo =
        Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\") {}))\n");
    let r = repo.quire(&["run", "--json"]).env("DOCKER_HOST", "unix:///nonexistent.sock").run();
    r.status(3);
    // stdout is data there (run-end's fields); the words a user reads are
    // the diagnostic on stderr, once.
    r.once_on_stderr("help: start Docker");
    for needle in ["quire_ci::engine::unreachable", "no container engine answered"] {
        assert_eq!(r.stderr.matches(needle).count(), 1, "{needle:?} once on stderr:\n{}", r.stderr);
    }
    let end: serde_json::Value = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|e| e["kind"] == "run-end")
        .expect("run-end on stdout");
    assert_eq!(end["code"], "quire_ci::engine::unreachable", "{end}");
    assert!(end["help"].as_str().unwrap_or_default().starts_with("start Docker"), "{end}");
}

/// A missing image: exit 3, its diagnostic with the image named and a help line.
#[test]
fn docker_missing_image_is_one_diagnostic_with_code_and_help() {
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.image \"quire-ci-test/no-such-image:never\")\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\") {}))\n",
    );
    let r = repo.quire(&["run", "--pull", "never"]).docker().run();
    r.status(3);
    r.assert_clean();
    r.once_on_stdout("quire_ci::engine::image_unavailable")
        .once_on_stdout("image quire-ci-test/no-such-image:never is not available")
        .once_on_stdout("help: check the image name");
}

/// A record that cannot be created: exit 3, a diagnostic naming the path.
#[test]
fn docker_unwritable_out_dir_is_a_record_diagnostic() {
    let repo =
        Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\") {}))\n");
    repo.write("blocker", "a file where the runs directory would be\n");
    let out = repo.path().join("blocker").join("runs");
    let r = repo.quire(&["run", "--out", out.to_str().unwrap_or_default()]).docker().run();
    r.status(3);
    // No record, so no summary: the diagnostic is on stderr.
    r.once_on_stderr("quire_ci::record::io")
        .once_on_stderr("cannot create the run record")
        .once_on_stderr("help: check that the runs directory");
}
