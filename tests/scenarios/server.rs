//! ci.fnl written for the forge's server (quire at 5be79b0) run through the
//! real binary against the real Docker engine: one fixture per server idiom
//! (fixtures/server-*), each asserting the outcome quire-ci gives
//! (docs/server-differences.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::record::contains_bytes;
use crate::harness::{self, wait_for, Record, Repo, Test, IMAGE};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `pushed-at` as a time, checked to be RFC 3339 in UTC with milliseconds.
fn pushed_at(v: &Value) -> OffsetDateTime {
    let s = v.as_str().unwrap_or_else(|| panic!("pushed-at is not a string: {v}"));
    assert!(
        s.ends_with('Z') && s.len() == "2026-12-01T11:00:00.000Z".len(),
        "pushed-at {s} is not UTC with milliseconds"
    );
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("pushed-at {s} is not RFC 3339: {e}"))
}

/// Now, truncated to the millisecond the record keeps.
fn now_ms() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).expect("ms")
}

// ---- :pushed-at ---------------------------------------------------------------

#[test]
fn docker_pushed_at_is_when_run_reads_the_push_and_event_can_set_it() {
    let repo = Repo::from_fixture("server-pushed-at");
    let before = now_ms();
    let r = repo.run(&["run"]);
    let after = OffsetDateTime::now_utc();
    r.status(0).assert_clean();
    let out = &r.job_end("stamp")["outputs"];
    let at = pushed_at(&out["pushed-at"]);
    assert!(before <= at && at <= after, "pushed-at {at} is not within the run ({before} .. {after})");
    assert_eq!(out["ref"], "refs/heads/main");

    let event = repo.scratch().join("event.json");
    std::fs::write(&event, r#"{"pushed-at": "2026-08-20T00:34:34.123Z"}"#).expect("event");
    let r = repo.run(&["run", "--event", event.to_str().expect("utf-8")]);
    r.status(0).assert_clean();
    assert_eq!(r.job_end("stamp")["outputs"]["pushed-at"], "2026-08-20T00:34:34.123Z");
}

#[test]
fn event_with_a_pushed_at_the_server_cannot_send_is_bad_usage() {
    let repo = Repo::from_fixture("server-pushed-at");
    for bad in [r#""yesterday""#, "1767225600", r#""2026-08-20 00:34:34""#] {
        let event = repo.scratch().join("event.json");
        std::fs::write(&event, format!(r#"{{"pushed-at": {bad}}}"#)).expect("event");
        let o = repo.quire(&["run", "--event", event.to_str().expect("utf-8")]).docker().status(2).run();
        assert!(
            o.stderr.contains("\"pushed-at\" must be an RFC 3339 time") && o.stderr.contains("--event"),
            "{bad}: {}",
            o.stderr
        );
        assert!(o.record.is_none(), "{bad}: a refused --event made a run record");
    }
}

/// The hook's runs, newest last.
fn runs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(".git/quire-ci/runs"))
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn job_end_outputs(run: &Path, job: &str) -> Value {
    // job-end sits in the run's log.jsonl or the job's, by kind: read both.
    let text = ["log.jsonl".to_string(), format!("jobs/{job}/log.jsonl")]
        .iter()
        .map(|f| std::fs::read_to_string(run.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["kind"] == "job-end" && (e["job"] == job || e["job"].is_null()))
        .map(|e| e["outputs"].clone())
        .unwrap_or_else(|| panic!("no job-end for {job} in {}", run.display()))
}

#[test]
fn docker_pushed_at_is_one_instant_for_every_ref_of_a_push() {
    harness::require_docker();
    let repo = Repo::new().fixture("server-pushed-at").committed().with_remote();
    repo.git(&["branch", "second"]);
    repo.quire(&["hook", "install"]).status(0).run();
    let before = now_ms();
    let mut push = Command::new("git");
    harness::scrub(&mut push);
    push.args(["push", "-q", "origin", "main", "second"])
        .current_dir(repo.path())
        .env("QUIRE_CI_IMAGE", IMAGE)
        // Both refs are the same tree: without this the second is a cache hit.
        .env("QUIRE_CI_NO_CACHE", "1");
    let push = push.output().expect("git push");
    let after = OffsetDateTime::now_utc();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let runs = runs_in(repo.path());
    for r in &runs {
        Record::new(r.clone()).assert_clean();
    }
    assert_eq!(runs.len(), 2, "one run per ref: {runs:?}");
    let stamps: Vec<Value> = runs.iter().map(|r| job_end_outputs(r, "stamp")["pushed-at"].clone()).collect();
    assert_eq!(stamps[0], stamps[1], "the refs of one push got different pushed-at");
    let at = pushed_at(&stamps[0]);
    assert!(before <= at && at <= after, "pushed-at {at} is not within the push ({before} .. {after})");
}

#[test]
fn docker_watch_stamps_each_run_with_its_own_pushed_at() {
    let repo = Repo::from_fixture("server-pushed-at");
    let watch = repo.quire(&["watch"]).docker().spawn();
    let finished = |n: usize| -> PathBuf {
        wait_for(
            &format!("watch run {n} finished"),
            Duration::from_secs(120),
            || repo.runs().get(n - 1).filter(|d| Record::new(d.to_path_buf()).finished()).cloned(),
            || format!("{}{}", watch.stdout(), watch.stderr()),
        )
    };
    let first = pushed_at(&job_end_outputs(&finished(1), "stamp")["pushed-at"]);
    let changed = now_ms();
    repo.write("touched.txt", "a change\n");
    let second = pushed_at(&job_end_outputs(&finished(2), "stamp")["pushed-at"]);
    watch.signal("INT");
    watch.wait().status(130);
    assert!(
        first < changed && changed <= second,
        "the re-run kept an old pushed-at: {first} then {second} (change at {changed})"
    );
}

// ---- runtime in the quire.ci module ----------------------------------------------

#[test]
fn docker_server_runtime_idiom_runs_each_job_through_its_own_runtime() {
    let repo = Repo::from_fixture("server-runtime");
    let r = repo.quire(&["run", "--secret", "DEPLOY_TOKEN"]).docker().env("DEPLOY_TOKEN", "s3cr3t-value").run();
    r.status(0).assert_clean();
    assert_eq!(r.job_status("build"), "succeeded");
    assert_eq!(r.job_end("build")["outputs"]["said"], "building refs/heads/main\n");
    let publish = &r.job_end("publish")["outputs"];
    // runtime.jobs gave publish build's outputs; runtime.secret the secret,
    // masked wherever it was recorded.
    assert_eq!(publish["built"], "building refs/heads/main\n");
    assert_eq!(publish["said"], "token-is ***\n");
    assert!(!contains_bytes(&r.all_record_bytes(), b"s3cr3t-value"), "the secret reached the record");
    // Each runtime.sh is recorded under the job that ran it.
    let starts = |job: &str| -> Vec<Value> {
        r.job_log(job).into_iter().filter(|e| e["kind"] == "sh-start").map(|e| e["cmd"].clone()).collect()
    };
    assert_eq!(starts("build"), vec![serde_json::json!(["echo", "building", "refs/heads/main"])]);
    assert_eq!(starts("publish").len(), 1);
}

#[test]
fn docker_runtime_in_a_helper_module_means_whichever_job_calls_it() {
    let repo = Repo::new();
    repo.write(
        ".quire/helpers.fnl",
        "(local {: runtime} (require :quire.ci))\n(fn say [word] (runtime.sh [\"echo\" word]))\n{: say}\n",
    );
    repo.write(
        ".quire/ci.fnl",
        "(local {: job} (require :quire.ci))\n(local {: say} (require :helpers))\n(job :one [:quire/push] (fn [] {:out (. (say \"first\") :stdout)}))\n(job :two [:one] (fn [] {:out (. (say \"second\") :stdout)}))\n",
    );
    repo.commit("helpers");
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    assert_eq!(r.job_end("one")["outputs"]["out"], "first\n");
    assert_eq!(r.job_end("two")["outputs"]["out"], "second\n");
    for (job, word) in [("one", "first"), ("two", "second")] {
        let cmds: Vec<Value> =
            r.job_log(job).into_iter().filter(|e| e["kind"] == "sh-start").map(|e| e["cmd"].clone()).collect();
        assert_eq!(cmds, vec![serde_json::json!(["echo", word])], "job {job}");
    }
}

#[test]
fn runtime_outside_a_run_fn_is_refused_naming_the_call_and_its_line() {
    let out = Test::new()
        .ci("(local {: job : runtime} (require :quire.ci))\n(local greeting\n  (runtime.sh \"echo hi\"))\n(job :a [:quire/push] (fn [] nil))\n")
        .args(&["validate"])
        .run();
    out.status(2)
        .stderr_has("quire_ci::eval")
        .stderr_has("(runtime.sh ...) was called outside a run-fn")
        .stderr_has(".quire/ci.fnl:3:")
        .stderr_has("call it inside a run-fn");
    // The same through a module's top level, and for runtime.secret.
    let out = Test::new()
        .ci("(local ci (require :quire.ci))\n(local h (require :helpers))\n(ci.job :a [:quire/push] (fn [] nil))\n")
        .file(".quire/helpers.fnl", "(local {: runtime} (require :quire.ci))\n{:token (runtime.secret :T)}\n")
        .args(&["validate"])
        .run();
    out.status(2).stderr_has("(runtime.secret ...) was called outside a run-fn").stderr_has(".quire/helpers.fnl:2:");
}

#[test]
fn validate_refuses_a_runtime_key_that_does_not_exist() {
    for ci in [
        "(local {: job : runtime} (require :quire.ci))\n(job :a [:quire/push]\n  (fn [] (runtime.shh \"make\")))\n",
        "(local ci (require :quire.ci))\n(ci.job :a [:quire/push]\n  (fn [] (ci.runtime.secrets :T)))\n",
    ] {
        let out = Test::new().ci(ci).args(&["validate"]).run();
        out.status(2)
            .stderr_has("quire_ci::runtime_key")
            .stderr_has("(it has sh, jobs, secret)")
            .stderr_has(".quire/ci.fnl:3:");
    }
}

#[test]
fn docker_a_runtime_key_typo_reached_at_run_time_fails_the_job_clearly() {
    // Not a literal key, so only the run can see it.
    let repo = Repo::with_ci(
        "(local {: job : runtime} (require :quire.ci))\n(job :a [:quire/push]\n  (fn [] ((. runtime (.. :s :hh)) \"make\")))\n",
    );
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    assert_eq!(r.job_status("a"), "failed");
    let reason = r.job_end("a")["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("runtime has no key :shh (it has sh, jobs, secret)"), "{reason}");
}

// ---- quire.stdlib -------------------------------------------------------------

#[test]
fn docker_server_stdlib_idiom_requires_the_module_and_its_helper_works() {
    let repo = Repo::from_fixture("server-stdlib");
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    let check = &r.job_end("check")["outputs"];
    assert_eq!(check["all-passed"], true);
    assert_eq!(check["some-failed"], false);
    assert_eq!(r.job_end("gate")["outputs"]["upstream-passed"], true);
}

#[test]
fn validate_accepts_quire_stdlib_and_warns_its_helpers_are_not_on_the_server() {
    let out = Test::new().fixture("server-stdlib").args(&["validate"]).run();
    out.status(0)
        .stdout_has("is valid")
        .stderr_has("quire_ci::server_stdlib")
        .stderr_has("all-passed is nil on the server");
}

// ---- Lua 5.4 numbers ------------------------------------------------------------

#[test]
fn docker_server_number_idioms_answer_as_lua_5_4_where_luau_can() {
    let repo = Repo::from_fixture("server-numbers");
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    let out = &r.job_end("numbers")["outputs"];
    assert_eq!(out["count-type"], "integer");
    assert_eq!(out["half"], 5);
    assert_eq!(out["fraction"], "float");
    assert_eq!(out["from-string"], 16);
    assert_eq!(out["not-a-number"], true);
    // What cannot be made equal: the server prints 5.0.
    assert_eq!(out["printed"], "5");
}

// ---- what the server refuses: validate warns ----------------------------------------

#[test]
fn validate_warns_where_the_server_would_fail_and_still_passes() {
    let ci = r#"(local {: job} (require :quire.ci))
(job :a [:quire/push]
  (fn [{: sh : jobs}]
    (let [push (jobs :quire/push)]
      (sh ["sleep" 1] {:cwd "sub"})
      {:b push.branch :u (unpack [1 2])})))
"#;
    let out = Test::new().ci(ci).args(&["validate"]).run();
    out.status(0)
        .stdout_has("is valid")
        .stderr_has("quire_ci::server_sh_argv")
        .stderr_has("quire_ci::server_sh_option")
        .stderr_has("quire_ci::server_push_key")
        .stderr_has("quire_ci::server_luau_only")
        .stderr_has("4 warnings about the forge's server (quire 5be79b0)");
    // A file the server runs as is gets none.
    let out = Test::new().fixture("server-pushed-at").args(&["validate"]).run();
    out.status(0).stderr_lacks("warning");
}
