//! Image pull progress: `image-progress` events reach the live sinks with
//! per-layer bytes, and are transient — never in log.jsonl; `--json`
//! prints them. Pulls from the local registry of `scripts/registry` (nothing is
//! pulled from the internet). Needs Docker.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;

use crate::harness::{sh_ok, Repo, IMAGE};
use quire_ci::emitter::EventSink;
use quire_ci::events::{Event, EventKind};
use quire_ci::executor::{self as run, RunRequest};

/// A fresh image in the local registry, absent from the engine.
fn pushed_image() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/registry");
    crate::harness::require_docker();
    let addr = sh_ok(Command::new("bash").arg(script)).trim().to_string();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let name = format!("{addr}/quire-ci-test/render-pull:{}-{nanos}", std::process::id());
    // A layer of its own (random bytes), so the pull really downloads.
    let dockerfile = format!("FROM {}\nRUN head -c 2000000 /dev/urandom > /blob\n", IMAGE);
    let ctx = tempfile::tempdir().expect("build context");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    sh_ok(Command::new("docker").args(["build", "-q", "-t", &name]).arg(ctx.path()));
    sh_ok(Command::new("docker").args(["push", &name]));
    sh_ok(Command::new("docker").args(["rmi", &name]));
    name
}

/// Removes the pulled image once the run that pulled it (its record in
/// `dir`) has no container left: the run's removal goes on in the
/// background after it ends, and an image in use is not removed.
fn forget(image: &str, dir: &std::path::Path) {
    let run_id = dir.file_name().expect("a run directory").to_string_lossy().into_owned();
    crate::harness::wait_no_container_of_run(&run_id);
    sh_ok(Command::new("docker").args(["rmi", image]));
}

struct Collect(Rc<RefCell<Vec<Event>>>);

impl EventSink for Collect {
    fn event(&mut self, ev: &Event) {
        self.0.borrow_mut().push(ev.clone());
    }
}

#[test]
fn docker_pull_progress_is_live_only() {
    let image = pushed_image();
    let repo = Repo::with_ci(&format!(
        "(local ci (require :quire.ci))\n(ci.image {image:?})\n(ci.job :t [:quire/push] (fn [{{: sh}}] (sh \"echo pulled-and-ran\") {{}}))\n"
    ));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let req =
        RunRequest { sinks: vec![Box::new(Collect(seen.clone()))], no_cache: true, ..RunRequest::new(repo.path()) };
    let outcome = run::execute(rt.handle(), req);
    assert_eq!(outcome.status, quire_ci::events::RunStatus::Succeeded, "{:?}", outcome.error);
    let dir = outcome.dir.expect("a run directory");
    forget(&image, &dir);

    let events = seen.borrow();
    let progress: Vec<&EventKind> =
        events.iter().map(|e| &e.kind).filter(|k| matches!(k, EventKind::ImageProgress { .. })).collect();
    assert!(!progress.is_empty(), "no image-progress events reached the sinks");
    assert!(
        progress.iter().any(|k| matches!(k, EventKind::ImageProgress { layer: Some(_), total: Some(t), .. } if *t > 0)),
        "no per-layer byte counts: {progress:?}"
    );
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Image { action, .. } => Some(action.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(actions, ["pulling", "pulled"]);

    // The record keeps the start/end only.
    let log = std::fs::read_to_string(dir.join("log.jsonl")).expect("log.jsonl");
    assert!(!log.contains("image-progress"), "transient events were recorded:\n{log}");
    assert!(log.contains("\"action\":\"pulling\"") && log.contains("\"action\":\"pulled\""), "{log}");
}

#[test]
fn docker_json_carries_pull_progress_and_the_record_does_not() {
    let image = pushed_image();
    let repo = Repo::with_ci(&format!(
        "(local ci (require :quire.ci))\n(ci.image {image:?})\n(ci.job :t [:quire/push] (fn [{{: sh}}] {{}}))\n"
    ));
    let out = repo.quire(&["run", "--json"]).docker().run();
    let text = out.stdout.clone();
    assert_eq!(out.code, Some(0), "{}", out.stderr.clone());
    forget(&image, out.rec().dir());
    assert!(text.contains("\"action\":\"pulled\""), "{text}");
    // docs/log-format.md: `--json` carries the live view's pull progress
    // (issue 9); log.jsonl does not.
    assert!(text.contains("\"kind\":\"image-progress\""), "{text}");
    let log = std::fs::read_to_string(out.rec().dir().join("log.jsonl")).expect("log.jsonl");
    assert!(!log.contains("image-progress"), "{log}");
}
