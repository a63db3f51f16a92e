//! The run record on a real filesystem: write a run with every kind of
//! event, read it back, validate every line against docs/log.schema.json,
//! and check the crash/torn-line, forward-compatibility, atomic-state,
//! pruning and redaction rules of docs/log-format.md.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::harness::schema;
use quire_ci::events::{Event, EventKind, Level, Outcome, RunStatus, Stream};
use quire_ci::record::{
    decode_data, list_runs, now_ts, output_event, prune, read_run, runs_dir, JobStatus, RecordError, RunMeta,
    RunRecord, RunState, Utf8Carry,
};
use quire_ci::redact::Redactor;
use serde_json::{json, Value};

fn meta(run_id: &str) -> RunMeta {
    RunMeta {
        run_id: run_id.into(),
        repo: PathBuf::from("/src/app"),
        git_ref: "refs/heads/main".into(),
        sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        tree: "89abcdef0123456789abcdef0123456789abcdef".into(),
        dirty: true,
        image: Some("rust:1.76".into()),
        ci_fnl_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        quire_ci_version: env!("CARGO_PKG_VERSION").into(),
        started_at: now_ts(),
        pid: std::process::id(),
        extra: serde_json::Map::new(),
    }
}

fn ev(job: Option<&str>, kind: EventKind) -> Event {
    Event { ts: now_ts(), seq: None, job: job.map(Into::into), kind }
}

/// Output chunks of one stream as the executor makes them: through a
/// Utf8Carry so a split character stays text.
fn output_events(job: &str, stream: Stream, n: u32, chunks: &[&[u8]]) -> Vec<Event> {
    let mut carry = Utf8Carry::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let ready = carry.push(chunk);
        if !ready.is_empty() {
            out.push(ev(Some(job), output_event(stream, n, &ready)));
        }
    }
    let rest = carry.finish();
    if !rest.is_empty() {
        out.push(ev(Some(job), output_event(stream, n, &rest)));
    }
    out
}

/// A run with at least one event of every kind this build writes.
fn every_kind_run() -> Vec<Event> {
    let euro = "price: 5€\n".as_bytes();
    // Cut inside the three bytes of '€'.
    let (a, b) = euro.split_at(euro.len() - 3);
    let mut events = vec![
        ev(
            None,
            EventKind::RunStart {
                run_id: "r".into(),
                git_ref: "refs/heads/main".into(),
                sha: None,
                tree: "89ab".into(),
                dirty: true,
                jobs: vec!["build".into(), "test".into(), "deploy".into()],
                dir: None,
            },
        ),
        ev(None, EventKind::Image { image: "rust:1.76".into(), action: "present".into(), detail: None }),
        ev(None, EventKind::ContainerStart { image: "rust:1.76".into(), container_id: "c0ffee".into() }),
        ev(Some("build"), EventKind::JobStart {}),
        ev(Some("build"), EventKind::ShStart { n: 1, cmd: json!("cargo build") }),
    ];
    events.extend(output_events("build", Stream::Stdout, 1, &[a, b]));
    events.extend(output_events("build", Stream::Stderr, 1, &[&[0xff, 0xfe, b'x', b'\n']]));
    events.extend([
        ev(Some("build"), EventKind::ShExit { n: 1, exit: 0, signal: None, duration_ms: 812 }),
        ev(Some("build"), EventKind::Print { data: "built ok".into() }),
        ev(
            Some("build"),
            EventKind::JobEnd {
                outcome: Outcome::Succeeded,
                duration_ms: 900,
                reason: None,
                file: None,
                line: None,
                outputs: Some(json!({"artifacts": ["target/app"], "exit": 0})),
            },
        ),
        ev(Some("test"), EventKind::JobStart {}),
        ev(Some("test"), EventKind::ShStart { n: 1, cmd: json!(["cargo", "test"]) }),
        ev(Some("test"), EventKind::ShExit { n: 1, exit: 137, signal: Some("SIGKILL".into()), duration_ms: 5 }),
        ev(
            Some("test"),
            EventKind::JobEnd {
                outcome: Outcome::Failed,
                duration_ms: 10,
                reason: Some("exit 137".into()),
                file: Some(".quire/ci.fnl".into()),
                line: Some(9),
                outputs: None,
            },
        ),
        ev(
            Some("deploy"),
            EventKind::JobEnd {
                outcome: Outcome::Skipped,
                duration_ms: 0,
                reason: Some("input test failed".into()),
                file: None,
                line: None,
                outputs: None,
            },
        ),
        ev(None, EventKind::ContainerDied { reason: "oom-killed".into() }),
        ev(
            Some("build"),
            EventKind::Artifact {
                path: "dist/app".into(),
                dest: Some("/runs/r/artifacts/dist/app".into()),
                bytes: Some(5),
                error: None,
            },
        ),
        ev(
            None,
            EventKind::Notice {
                level: Level::Info,
                code: "orphan-reaped".into(),
                message: "removed container c0ffee left behind by a quire-ci that is gone".into(),
                help: None,
            },
        ),
        ev(
            None,
            EventKind::Problem {
                code: "quire_ci::unknown_input".into(),
                message: "unknown input :nope".into(),
                file: Some(".quire/ci.fnl".into()),
                line: Some(3),
                column: Some(7),
                help: Some("declare the job, or fix the name".into()),
            },
        ),
        ev(None, EventKind::CacheHit { run_id: "20261124T000000.000Z-0001".into(), tree: "89ab".into() }),
        ev(None, EventKind::ContainerEnd { status: RunStatus::Failed }),
        ev(
            None,
            EventKind::RunEnd { status: RunStatus::Failed, duration_ms: 1234, error: None, code: None, help: None },
        ),
    ]);
    events
}

fn write_run(dir: &Path, events: &[Event]) {
    let mut record = RunRecord::create(dir, &meta("20261124T214338.123Z-00aa")).expect("create run");
    for e in events {
        record.record(e).expect("record event");
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn a_run_with_every_kind_reads_back_equal_and_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let events = every_kind_run();
    let written: std::collections::BTreeSet<&str> = events.iter().map(|e| e.kind.name()).collect();
    for e in &events {
        let v = serde_json::to_value(e).expect("serialize");
        assert_eq!(v["kind"], e.kind.name(), "name() must be the serde spelling");
        assert!(EventKind::KINDS.contains(&e.kind.name()));
    }
    assert_eq!(written.len(), EventKind::KINDS.len(), "the fixture must cover every kind");
    write_run(&dir, &events);

    let run = read_run(&dir).expect("read run");
    assert_eq!(run.events, events);
    assert_eq!(run.meta.run_id, "20261124T214338.123Z-00aa");
    assert_eq!(run.state.status, RunStatus::Failed);
    assert_eq!(run.state.duration_ms, Some(1234));
    assert_eq!(run.state.container_id.as_deref(), Some("c0ffee"));
    let statuses: Vec<_> = run.state.jobs.iter().map(|j| (j.id.as_str(), j.status)).collect();
    assert_eq!(
        statuses,
        [("build", JobStatus::Succeeded), ("test", JobStatus::Failed), ("deploy", JobStatus::Skipped)]
    );

    // Split character: both halves went out as text, none as base64.
    let stdout: Vec<&Event> = run.events.iter().filter(|e| matches!(e.kind, EventKind::Stdout { .. })).collect();
    assert!(stdout.iter().all(|e| matches!(&e.kind, EventKind::Stdout { encoding: None, .. })));
    let text: Vec<u8> = stdout.iter().flat_map(|e| decode_data(&e.kind)).collect();
    assert_eq!(text, "price: 5€\n".as_bytes());
    // Non-UTF-8 stderr round-trips byte for byte through base64.
    let stderr = run.events.iter().find(|e| matches!(e.kind, EventKind::Stderr { .. })).expect("a stderr event");
    assert!(matches!(&stderr.kind, EventKind::Stderr { encoding: Some(enc), .. } if enc == "base64"));
    assert_eq!(decode_data(&stderr.kind), [0xff, 0xfe, b'x', b'\n']);
}

#[test]
fn files_are_split_by_level_and_job_key_is_only_kept_at_run_level() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    write_run(&dir, &every_kind_run());

    let run_lines = lines(&dir.join("log.jsonl"));
    let kinds: Vec<&str> = run_lines.iter().map(|l| l["kind"].as_str().unwrap_or("?")).collect();
    assert_eq!(
        kinds,
        [
            "run-start",
            "image",
            "container-start",
            "job-start",
            "job-end",
            "job-start",
            "job-end",
            "job-end",
            "container-died",
            "artifact",
            "notice",
            "problem",
            "cache-hit",
            "container-end",
            "run-end"
        ]
    );
    for l in &run_lines {
        // An artifact a job declared names its job, at run level too.
        let about_job = matches!(l["kind"].as_str(), Some("job-start" | "job-end" | "artifact"));
        assert_eq!(l.get("job").is_some(), about_job, "{l}");
    }
    let build = lines(&dir.join("jobs/build/log.jsonl"));
    assert_eq!(build.len(), 6);
    assert!(build.iter().all(|l| l.get("job").is_none()), "job-level lines carry no job key");
    // Key order is the documented envelope: ts first, then kind.
    let first = std::fs::read_to_string(dir.join("jobs/build/log.jsonl")).expect("read");
    assert!(first.starts_with("{\"ts\":\""), "{first}");
    assert!(first.contains("\",\"kind\":\"sh-start\",\"n\":1,\"cmd\":\"cargo build\"}\n"), "{first}");
    assert!(!dir.join("jobs/deploy").exists(), "a skipped job gets no log");
}

#[test]
fn every_line_of_every_file_and_of_json_output_matches_the_schema() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let events = every_kind_run();
    write_run(&dir, &events);
    let checked = schema::assert_run_dir_valid(&dir);
    assert_eq!(checked, events.len());

    // `--json` prints every event with its job key.
    for e in &events {
        let line = serde_json::to_string(e).expect("serialize");
        schema::validate_line(&line).unwrap_or_else(|err| panic!("{line}: {err}"));
    }
}

#[test]
fn the_schema_rejects_typos_and_misplaced_keys() {
    let ts = "2026-11-24T21:43:38.123Z";
    let good = format!(r#"{{"ts":"{ts}","kind":"sh-exit","n":1,"exit":0,"duration_ms":3}}"#);
    schema::validate_line(&good).expect("the good line validates");
    for bad in [
        format!(r#"{{"ts":"{ts}","kind":"sh-exit","n":1,"exti":0,"duration_ms":3}}"#),
        format!(r#"{{"ts":"{ts}","kind":"sh-exit","n":1,"exit":0,"duration_ms":3,"extra":1}}"#),
        format!(r#"{{"ts":"{ts}","kind":"stdout","n":1,"data":"x","encoding":"hex"}}"#),
        format!(r#"{{"ts":"{ts}","kind":"container-end","status":"ok"}}"#),
        format!(r#"{{"ts":"{ts}","kind":"container-died","reason":"x","job":"a"}}"#),
        format!(r#"{{"ts":"{ts}","kind":"job-start"}}"#),
        format!(r#"{{"ts":"{ts}","kind":"sh-start","n":0,"cmd":"x"}}"#),
        r#"{"ts":"2026-11-24 21:43:38","kind":"print","data":"x"}"#.to_string(),
        format!(r#"{{"ts":"{ts}","kind":"no-such-kind"}}"#),
    ] {
        assert!(schema::validate_line(&bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn a_torn_last_line_is_dropped_in_any_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let events = every_kind_run();
    write_run(&dir, &events);
    for file in ["log.jsonl", "jobs/build/log.jsonl"] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join(file)).expect("open");
        f.write_all(br#"{"ts":"2026-11-24T21:43:38.999Z","kind":"stdout","n":1,"da"#).expect("tear");
    }
    let run = read_run(&dir).expect("a torn last line must be tolerated");
    assert_eq!(run.events, events);
}

#[test]
fn a_damaged_line_mid_file_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    write_run(&dir, &every_kind_run());
    let path = dir.join("jobs/build/log.jsonl");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut ls: Vec<&str> = text.lines().collect();
    ls.insert(2, "{garbage");
    std::fs::write(&path, ls.join("\n") + "\n").expect("write");

    let err = read_run(&dir).expect_err("garbage mid-file must fail");
    match &err {
        RecordError::BadLine { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 3);
        }
        other => panic!("wrong error: {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("jobs/build/log.jsonl:3"), "{msg}");

    // A known kind with a wrong shape is damage too, not forward compatibility.
    let mut ls: Vec<&str> = text.lines().collect();
    ls.insert(1, r#"{"ts":"2026-11-24T21:43:38.999Z","kind":"sh-exit","n":"one"}"#);
    std::fs::write(&path, ls.join("\n") + "\n").expect("write");
    let err = read_run(&dir).expect_err("a malformed sh-exit must fail");
    assert!(err.to_string().contains(":2: bad sh-exit event"), "{err}");
}

#[test]
fn lines_of_unknown_kinds_are_skipped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let events = every_kind_run();
    write_run(&dir, &events);
    for file in ["log.jsonl", "jobs/build/log.jsonl"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let mut ls: Vec<&str> = text.lines().collect();
        ls.insert(1, r#"{"ts":"2026-11-24T21:43:38.999Z","kind":"from-the-future","x":[1]}"#);
        std::fs::write(&path, ls.join("\n") + "\n").expect("write");
    }
    let run = read_run(&dir).expect("unknown kinds are skipped");
    assert_eq!(run.events, events);
}

#[test]
fn state_json_is_never_seen_half_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let mut record = RunRecord::create(&dir, &meta("20261124T214338.123Z-00bb")).expect("create");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        let path = dir.join("state.json");
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let bytes = std::fs::read(&path).expect("state.json always exists");
                let state: RunState = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("partial state.json seen ({e}): {bytes:?}"));
                assert!(state.error.as_deref().is_none_or(|e| e.starts_with("update ")));
                reads += 1;
            }
            reads
        })
    };
    for i in 0..1000 {
        record
            .update_state(|s| {
                // Vary the size so a torn read could not pass by luck.
                s.error = Some(format!("update {i} {}", "x".repeat(i % 97)));
            })
            .expect("update state");
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader thread must not panic");
    assert!(reads > 0, "the reader never ran");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn creating_over_an_existing_run_fails_and_names_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let m = meta("20261124T214338.123Z-00cc");
    let _first = RunRecord::create(&dir, &m).expect("first create");
    let err = RunRecord::create(&dir, &m).expect_err("second create must fail");
    assert!(matches!(err, RecordError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
}

#[test]
fn a_job_level_event_without_a_job_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut record = RunRecord::create(&tmp.path().join("run"), &meta("20261124T214338.123Z-00dd")).expect("create");
    let err = record.append(&ev(None, EventKind::Print { data: "x".into() })).expect_err("must be refused");
    assert!(err.to_string().contains("print event must name its job"), "{err}");
    let err = record
        .append(&ev(Some("../escape"), EventKind::Print { data: "x".into() }))
        .expect_err("a job id with a slash must be refused");
    assert!(err.to_string().contains("../escape"), "{err}");
}

/// A pid that certainly belonged to a process which has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn prune_keeps_the_newest_runs_and_live_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let runs = runs_dir(&tmp.path().join(".git"));
    assert!(runs.ends_with(".git/quire-ci/runs"));
    assert!(list_runs(&runs).expect("missing dir lists as empty").is_empty());

    let id = |i: u32| format!("20261124T2143{i:02}.000Z-00{i:02}");
    for i in 0..8u32 {
        let mut m = meta(&id(i));
        // Run 1 is still running in this (live) process; run 2 claims to be
        // running but its owner is gone.
        m.pid = if i == 2 { dead_pid() } else { std::process::id() };
        let mut rec = RunRecord::create(&runs.join(id(i)), &m).expect("create");
        if i != 1 && i != 2 {
            rec.record(&ev(
                None,
                EventKind::RunEnd {
                    status: RunStatus::Succeeded,
                    duration_ms: 100 + i as u64,
                    error: None,
                    code: None,
                    help: None,
                },
            ))
            .expect("end");
        }
    }
    std::fs::create_dir_all(runs.join("notes")).expect("stray dir");

    let listed = list_runs(&runs).expect("list");
    let ids: Vec<_> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, (0..8).rev().map(id).collect::<Vec<_>>(), "newest first, strays left out");
    assert_eq!(listed[0].status, Some(RunStatus::Succeeded));
    assert_eq!(listed[0].duration_ms, Some(107));
    assert_eq!(listed[6].status, Some(RunStatus::Running));
    assert_eq!(listed[6].duration_ms, None);

    let removed = prune(&runs, 3).expect("prune");
    assert_eq!(removed, [id(4), id(3), id(2), id(0)]);
    let left: Vec<_> = list_runs(&runs).expect("list").into_iter().map(|r| r.id).collect();
    assert_eq!(left, [id(7), id(6), id(5), id(1)], "the live run 1 survives");
    assert!(runs.join("notes").is_dir(), "prune never touches what is not a run");
}

#[test]
fn secrets_split_across_output_chunks_never_reach_the_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let secret = "tok-9f8e7d6c5b4a";
    let redactor = Redactor::new(vec![secret.into(), String::new()]);
    let mut record = RunRecord::create(&dir, &meta("20261124T214338.123Z-00ee")).expect("create");

    let mut cmd = json!(["curl", "-H", format!("Authorization: {secret}")]);
    redactor.redact_json(&mut cmd);
    record.record(&ev(Some("j"), EventKind::JobStart {})).expect("rec");
    record.record(&ev(Some("j"), EventKind::ShStart { n: 1, cmd })).expect("rec");

    // The executor's pipeline per stream: redact, then hold back split
    // characters, then encode. The secret is cut in three places.
    let whole = format!("a {secret} b {secret}\n€");
    let bytes = whole.as_bytes();
    let cuts = [3, 9, 15, 20, bytes.len() - 2];
    let mut redact = redactor.stream();
    let mut carry = Utf8Carry::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        let ready = carry.push(&redact.push(&bytes[start..end]));
        if !ready.is_empty() {
            record.record(&ev(Some("j"), output_event(Stream::Stdout, 1, &ready))).expect("rec");
        }
        start = end;
    }
    let tail = carry.push(&redact.finish());
    let tail = [tail, carry.finish()].concat();
    if !tail.is_empty() {
        record.record(&ev(Some("j"), output_event(Stream::Stdout, 1, &tail))).expect("rec");
    }
    let mut msg = format!("failed: {secret}");
    msg = redactor.redact_str(&msg);
    record
        .record(&ev(
            Some("j"),
            EventKind::JobEnd {
                outcome: Outcome::Failed,
                duration_ms: 1,
                reason: Some(msg),
                file: None,
                line: None,
                outputs: None,
            },
        ))
        .expect("rec");
    drop(record);

    for file in ["log.jsonl", "jobs/j/log.jsonl", "state.json", "meta.json"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("read");
        assert!(!text.contains(secret), "{file} leaks the secret:\n{text}");
    }
    let run = read_run(&dir).expect("read");
    let out: Vec<u8> = run.events.iter().flat_map(|e| decode_data(&e.kind)).collect();
    assert_eq!(String::from_utf8_lossy(&out), "a *** b ***\n€");
    assert!(run.events.iter().all(|e| !matches!(&e.kind, EventKind::Stdout { encoding: Some(_), .. })));
    assert_eq!(run.state.job("j").and_then(|j| j.reason.clone()).as_deref(), Some("failed: ***"));
}

/// The writer half of `a_run_killed_mid_write_reads_back`: runs only when
/// that test starts this binary again with QUIRE_CI_TEST_CRASH_DIR set, and
/// writes events until it is killed (or gives up after 30 s).
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os("QUIRE_CI_TEST_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut record = RunRecord::create(&dir, &meta("20261124T214338.123Z-0fff")).expect("create");
    let chunk = "0123456789abcdef€".repeat(512);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut n = 0u32;
    while std::time::Instant::now() < deadline {
        n += 1;
        let job = format!("job{n}");
        record.record(&ev(Some(&job), EventKind::JobStart {})).expect("rec");
        record.record(&ev(Some(&job), EventKind::ShStart { n, cmd: json!("yes") })).expect("rec");
        for _ in 0..20 {
            record.record(&ev(Some(&job), output_event(Stream::Stdout, n, chunk.as_bytes()))).expect("rec");
        }
        record
            .record(&ev(
                Some(&job),
                EventKind::JobEnd {
                    outcome: Outcome::Succeeded,
                    duration_ms: 1,
                    reason: None,
                    file: None,
                    line: None,
                    outputs: None,
                },
            ))
            .expect("rec");
    }
}

#[test]
fn a_run_killed_mid_write_reads_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "record::crash_writer_child", "--nocapture"])
        .env("QUIRE_CI_TEST_CRASH_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the writer");
    // Let it write a good amount, then kill it without warning.
    let log = dir.join("log.jsonl");
    let start = std::time::Instant::now();
    while std::fs::metadata(&log).map_or(0, |m| m.len()) < 5_000 {
        assert!(start.elapsed().as_secs() < 20, "the writer never got going");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap");

    let run = read_run(&dir).expect("a killed run must read back");
    assert!(run.events.len() > 50, "only {} events", run.events.len());
    assert_eq!(run.state.status, RunStatus::Running, "nobody ended it");
    // Every job-level event was spliced under its job's job-start.
    let mut current: Option<String> = None;
    for e in &run.events {
        match &e.kind {
            EventKind::JobStart {} => current = e.job.clone(),
            k if k.is_job_level() => assert_eq!(e.job, current, "{e:?}"),
            _ => {}
        }
    }
    schema::assert_log_file_valid(&log);
}
