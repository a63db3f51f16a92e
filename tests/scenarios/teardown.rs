//! Issue 15: a run's steps said as `phase` events (deliverable 2), and the
//! teardown off the user's clock (deliverable 1; the faults around it —
//! Ctrl-C in teardown, a held or dead remover — are in faults.rs).

use serde_json::Value;

use crate::harness::{containers_of_run, sh_ok, Repo};

const ONE_JOB: &str = "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\") {}))\n";

/// The steps of a one-job run, in the order they start.
const STEPS: &[&str] =
    &["snapshot", "evaluate", "engine", "image", "create", "start", "upload", "jobs", "teardown", "record"];

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

fn position(events: &[Value], f: impl Fn(&Value) -> bool, what: &str) -> usize {
    events.iter().position(f).unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

#[test]
fn docker_a_one_job_run_says_each_step_as_a_phase_with_its_duration() {
    let repo = Repo::with_ci(ONE_JOB);
    let r = repo.run(&["run", "--json"]);
    r.status(0).assert_clean();
    let events = json_lines(&r.stdout);
    let at = |name: &str, state: &str| {
        position(&events, |e| e["kind"] == "phase" && e["phase"] == name && e["state"] == state, name)
    };
    let mut last_start = 0;
    for name in STEPS {
        let (start, end) = (at(name, "start"), at(name, "end"));
        assert!(start < end, "{name} ends before it starts");
        assert!(start >= last_start, "{name} starts out of order");
        last_start = start;
        assert!(events[end]["duration_ms"].is_u64(), "{name}'s end has no duration: {}", events[end]);
        for state in ["start", "end"] {
            let n = events.iter().filter(|e| e["phase"] == *name && e["state"] == state).count();
            assert_eq!(n, 1, "{name} {state} said {n} times");
        }
    }
    let kind = |k: &str| position(&events, |e| e["kind"] == k, k);
    // The jobs run inside `jobs`; the container ends before it is torn
    // down; the run ends after everything else.
    assert!(at("jobs", "start") < kind("job-start") && kind("job-end") < at("jobs", "end"));
    assert!(kind("container-end") < at("teardown", "start"));
    assert!(at("record", "end") < kind("run-end"));
    assert_eq!(events.last().map(|e| e["kind"].clone()), Some("run-end".into()));
    // Transient: none in the record.
    let log = std::fs::read_to_string(r.rec().dir().join("log.jsonl")).expect("log.jsonl");
    assert!(!log.contains("\"phase\""), "{log}");
}

/// `--keep`: no teardown at all — the container outlives the run (and the
/// next run's reaper), running, with the job's files.
#[test]
fn docker_keep_has_no_teardown_and_the_container_stays() {
    let repo = Repo::with_ci(ONE_JOB);
    let r = repo.run(&["run", "--json", "--keep"]);
    r.status(0);
    let events = json_lines(&r.stdout);
    assert!(!events.iter().any(|e| e["phase"] == "teardown"), "{}", r.stdout);
    let id = r.rec().run_id();
    let next = Repo::with_ci(ONE_JOB);
    next.run(&["run"]).status(0).assert_clean();
    let left = containers_of_run(&id);
    assert_eq!(left.len(), 1, "--keep's container went");
    let state = sh_ok(std::process::Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", &left[0]]));
    assert_eq!(state.trim(), "true");
    sh_ok(std::process::Command::new("docker").args(["rm", "-f", &left[0]]));
}
