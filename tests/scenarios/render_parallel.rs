//! Several jobs at once, and the run's words about itself (`notice`,
//! `problem`, `cache-hit`), rendered from event fixtures with no engine:
//! fixtures/events/parallel*.jsonl are hand-written streams of jobs whose
//! output chunks interleave (lines cut mid-way by another job's chunk).
//! `quire-ci logs` must replay such a run, from a record written through
//! the record writer, in the order it was shown live: byte for byte, plain,
//! coloured and `--json`.

use std::path::Path;

use quire_ci::emitter::EventSink;
use quire_ci::events::{Event, EventKind};
use quire_ci::record::{read_run, RunMeta, RunRecord};
use quire_ci::render::{JsonLines, RenderOptions};

use crate::harness::events::{fixture, plain, render, Screen};
use crate::harness::{repo_root, schema, Repo};

fn snapshot(name: &str, opts: RenderOptions) -> String {
    let text = render(&fixture(name), opts, None);
    insta::assert_snapshot!(name.to_string(), text);
    text
}

/// The run's record, written event by event through the record writer as
/// the executor writes it, in a runs directory `logs --out` can read.
fn write_record(runs: &Path, events: &[Event]) -> std::path::PathBuf {
    let run_id = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStart { run_id, .. } => Some(run_id.clone()),
            _ => None,
        })
        .expect("the fixture has a run-start");
    let meta = RunMeta {
        run_id: run_id.clone(),
        repo: "/home/dev/project".into(),
        git_ref: "refs/heads/main".into(),
        sha: None,
        tree: "9d6c102a44e5f0ccf3263ec3f0dc9438430f8ab0".into(),
        dirty: false,
        image: None,
        ci_fnl_hash: "0".repeat(64),
        quire_ci_version: "test".into(),
        started_at: events[0].ts.clone(),
        pid: std::process::id(),
        extra: serde_json::Map::new(),
    };
    let dir = runs.join(&run_id);
    let mut record = RunRecord::create(&dir, &meta).expect("create the run directory");
    for e in events {
        record.record(e).expect("record an event");
    }
    dir
}

/// Every output line of `job` in `text` (its `|` and `!` lines).
fn output_lines<'t>(text: &'t str, job: &str) -> Vec<&'t str> {
    text.lines().filter(|l| l.starts_with(&format!("{job} ")) && (l.contains(" | ") || l.contains(" ! "))).collect()
}

#[test]
fn parallel_jobs_interleave_whole_lines_each_under_its_job() {
    let text = snapshot("parallel", plain());
    // Chunks of lint, test and docs alternate and cut lines mid-way; every
    // line is shown whole, once, under its own job.
    assert_eq!(
        output_lines(&text, "lint"),
        [
            "lint  |     Checking quire v0.1.0",
            "lint  |     Checking quire-ci v0.1.0",
            "lint  ! warning: unused variable: `x`",
            "lint  |     Finished `dev` profile",
        ]
    );
    assert_eq!(
        output_lines(&text, "test"),
        [
            "test  |    Compiling quire v0.1.0",
            "test  | running 3 tests",
            "test  | test a ... ok",
            "test  | test b ... ok",
            "test  | test c ... ok",
            "test  | test result: ok. 3 passed",
        ]
    );
    assert_eq!(
        output_lines(&text, "docs"),
        ["docs  ! INFO Book building has started", "docs  ! INFO Running the html backend"]
    );
    // Interleaved as they came: docs finished while lint and test ran.
    let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"));
    assert!(pos("ok docs") < pos("test  | test b ... ok"), "{text}");
    assert!(pos("lint  |     Checking quire v0.1.0") < pos("test  |    Compiling"), "{text}");
    assert!(text.contains("summary of :test:\n  3 passed\n"), "{text}");
}

#[test]
fn a_failed_job_among_parallel_ones_skips_only_its_dependents() {
    let text = snapshot("parallel_failed", plain());
    let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"));
    assert!(pos("FAILED test") < pos("lint  | lint ok"), "lint went on after test failed:\n{text}");
    assert!(text.contains("skipped build: because :test failed"), "{text}");
    assert!(text.contains("last lines of :test `echo compiling;"), "{text}");
}

#[test]
fn quiet_holds_each_parallel_job_apart() {
    let text = render(&fixture("parallel_failed"), RenderOptions { quiet: true, ..plain() }, None);
    assert!(!text.contains("lint ok"), "a passing job's output under -q:\n{text}");
    assert!(text.contains("test  | compiling\ntest  ! error: expected ;\n"), "{text}");
}

#[test]
fn logs_replays_a_parallel_run_in_the_order_it_was_shown() {
    let events = fixture("parallel");
    let repo = Repo::plain_dir();
    let runs = repo.scratch().join("runs");
    let dir = write_record(&runs, &events);

    // The files alone hold no order across jobs: seq does.
    let read = read_run(&dir).expect("read the record back");
    assert_eq!(read.events, events, "the record reads back in the shown order");

    for color in [false, true] {
        let shown = render(&events, RenderOptions { color, ..plain() }, None);
        let flag = if color { "always" } else { "never" };
        let runs_arg = runs.to_string_lossy().into_owned();
        let out = repo.quire(&["--color", flag, "logs", "--out", &runs_arg]).run();
        assert_eq!(out.code, Some(0), "{}", out.stderr.clone());
        assert_eq!(out.stdout.clone(), shown, "--color {flag}: the replay differs from what was shown");
    }
    // --json: the very lines the live `run --json` printed.
    let runs_arg = runs.to_string_lossy().into_owned();
    let json = repo.quire(&["logs", "--json", "--out", &runs_arg]).run();
    let want = std::fs::read_to_string(repo_root().join("fixtures/events/parallel.jsonl")).expect("fixture");
    assert_eq!(json.stdout.clone(), want);
}

#[test]
fn a_record_without_seq_still_replays_job_by_job() {
    let mut events = fixture("parallel");
    for e in &mut events {
        e.seq = None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = write_record(tmp.path(), &events);
    let read = read_run(&dir).expect("an old record reads");
    assert_eq!(read.events.len(), events.len(), "nothing recorded is lost");
    // The old order: each job's lines right after its job-start.
    let kinds: Vec<(Option<&str>, &str)> = read.events.iter().map(|e| (e.job.as_deref(), e.kind.name())).collect();
    let lint_start = kinds.iter().position(|k| *k == (Some("lint"), "job-start")).expect("lint starts");
    assert_eq!(kinds[lint_start + 1], (Some("lint"), "sh-start"), "{kinds:?}");
}

#[test]
fn notices_read_like_quire_ci_warnings_and_a_kept_container_says_how_to_enter_it() {
    let text = snapshot("notices", plain());
    assert!(text.contains("\nquire-ci: warning: --image alpine:3 does not apply: ci.fnl names quire-ci-test/busybox:latest\n  help: to replace an image, use --image-map FROM=alpine:3\n"), "{text}");
    assert!(text.starts_with("quire-ci: removed container quire-ci-20261130T101010.000Z-dead left behind"), "{text}");
    // The command to enter a kept container is the last thing said.
    assert!(
        text.ends_with("; get a shell in it with:\n  docker exec -it -w /work quire-ci-20261201T143200.100Z-0ce5 sh\n  remove it with: docker rm -f quire-ci-20261201T143200.100Z-0ce5\n"),
        "{text}"
    );
    assert_eq!(text.matches("docker exec -it").count(), 1, "{text}");
}

#[test]
fn problems_are_shown_as_validate_shows_them_every_one() {
    let text = snapshot("problems", plain());
    assert_eq!(text.matches("quire_ci::unknown_input\n\n  × ").count(), 2, "{text}");
    assert!(text.contains("   at .quire/ci.fnl:3:1\n  help: did you mean :test?\n"), "{text}");
    assert!(text.contains("quire_ci::server_stdlib\n\n  ⚠ "), "a server warning is a warning:\n{text}");
    assert!(text.contains("\n3 problems in .quire/ci.fnl, .quire/helpers.fnl\n"), "{text}");
    assert!(text.contains("run error in 41ms: .quire/ci.fnl is not valid"), "{text}");
}

#[test]
fn a_cache_hit_is_one_line_and_no_unfinished_run() {
    let text = snapshot("cache_hit", plain());
    assert_eq!(
        text,
        "quire-ci: already passed (cached): run 20261201T143000.100Z-a11e, same tree 9d6c102a44e5, ci.fnl, image, jobs and ref; not run again (--no-cache to force)\n"
    );
}

#[test]
fn colour_changes_nothing_but_colour_in_the_new_kinds() {
    for name in ["notices", "problems", "parallel"] {
        let coloured = render(&fixture(name), RenderOptions { color: true, ..plain() }, None);
        assert!(coloured.contains('\x1b'), "{name}");
        assert_eq!(console::strip_ansi_codes(&coloured), render(&fixture(name), plain(), None), "{name}");
    }
}

#[test]
fn json_prints_the_new_kinds_as_recorded() {
    for name in ["notices", "problems", "cache_hit", "parallel"] {
        let screen = Screen::default();
        let mut sink = JsonLines(Box::new(screen.clone()));
        for e in fixture(name) {
            sink.event(&e);
        }
        let text = screen.text();
        for line in text.lines() {
            schema::validate_line(line).unwrap_or_else(|e| panic!("{name}: {e}\n{line}"));
        }
        let want = std::fs::read_to_string(repo_root().join(format!("fixtures/events/{name}.jsonl"))).expect("fixture");
        assert_eq!(text, want, "{name}");
    }
}
// ---- end to end, once the executor runs jobs at once (`run -j N`) ----

/// `a` and `b` take turns through files in /work, so their lines
/// interleave in a known order only when they really run at once: `a`
/// leaves a line unfinished while `b` prints a whole one. `c` joins them.
/// (Bounded waits: run one at a time, they give up instead of hanging.
/// The pause after each turn leaves the engine time to deliver the other
/// job's line first, so the order on screen is the order of the turns.)
const TURNS: &str = r#"(local ci (require :quire.ci))
(local wait "i=0; until [ -f /work/.$F ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.4")
(ci.job :a [:quire/push]
  (fn [{: sh}]
    (sh (.. "echo a-1; printf 'a-half'; touch /work/.a1; F=b1; " wait "; echo ' a-rest'; touch /work/.a2"))
    {}))
(ci.job :b [:quire/push]
  (fn [{: sh}]
    (sh (.. "F=a1; " wait "; echo b-1; touch /work/.b1; F=a2; " wait "; echo b-2 >&2"))
    {}))
(ci.job :c [:a :b] (fn [{: sh}] (sh "echo joined") {}))
"#;

#[test]
fn docker_parallel_run_plain_output_is_what_logs_replays() {
    for color in ["never", "always"] {
        let repo = Repo::with_ci(TURNS);
        let live = repo.quire(&["--color", color, "run", "-j", "2"]).docker().run();
        live.status(0);
        let text = console::strip_ansi_codes(&live.stdout).into_owned();
        // Interleaved by whole lines: b's line went by while a's waited.
        let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"));
        assert!(pos("a | a-1\n") < pos("b | b-1\n"), "{text}");
        assert!(pos("b | b-1\n") < pos("a | a-half a-rest\n"), "a line was not kept whole:\n{text}");
        assert!(pos("a | a-half a-rest\n") < pos("b ! b-2\n"), "{text}");
        assert!(pos("ok a") < pos("==> c") && pos("ok b") < pos("==> c"), "{text}");
        let replay = repo.quire(&["--color", color, "logs"]).docker().run();
        replay.status(0);
        assert_eq!(replay.stdout.clone(), live.stdout.clone(), "--color {color}: logs differs from the live run");
    }
}

#[test]
fn docker_parallel_run_json_is_what_logs_json_replays() {
    let repo = Repo::with_ci(TURNS);
    let live = repo.quire(&["run", "-j", "2", "--json"]).docker().run();
    live.status(0);
    let mut seqs = Vec::new();
    let mut kept = String::new();
    for line in live.stdout.lines() {
        schema::validate_line(line).unwrap_or_else(|e| panic!("{e}\n{line}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("validated");
        // Transient events (`phase`) have no seq and no place in the record.
        if v["kind"] == "phase" {
            assert!(v["seq"].is_null(), "a transient event with a seq: {line}");
            continue;
        }
        seqs.push(v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {line}")));
        kept.push_str(line);
        kept.push('\n');
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "seq counts every event once, in order");
    let replay = repo.quire(&["logs", "--json"]).docker().run();
    replay.status(0);
    assert_eq!(replay.stdout.clone(), kept);
}
