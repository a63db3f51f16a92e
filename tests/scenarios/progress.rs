//! The run's steps as they happen (`phase` events): the snapshot's upload
//! counted as the engine takes it (bytes and files), said by `--json`,
//! drawn on a terminal as a row while it lasts, said by nobody in plain
//! output. Real binary, real engine; the upload is held mid-way by a relay
//! in front of the engine, so "while it lasts" is a state the test waits
//! for, not a duration it hopes for.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::tty::{has_spinner, Tmux};
use crate::harness::{wait_for, Host, Repo};

const LIMIT: Duration = Duration::from_secs(120);

const CI: &str =
    "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"ls data | wc -l\") {}))\n";

/// How many data files, and how big each: 12 MiB in all, more than a unix
/// socket's buffers hold, so a held upload stops part of the way.
const FILES: usize = 48;
const SIZE: usize = 256 * 1024;

/// A committed repository with ci.fnl and [`FILES`] data files.
fn repo() -> Repo {
    with_data(Repo::new())
}

/// `repo` with ci.fnl and [`FILES`] data files, committed.
fn with_data(repo: Repo) -> Repo {
    let mut repo = repo.ci(CI);
    for i in 0..FILES {
        // Distinct bytes per file, so nothing is deduplicated anywhere.
        let data: Vec<u8> = (0..SIZE).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        repo = repo.file(&format!("data/f{i:02}.bin"), data);
    }
    repo.committed()
}

/// A unix socket relaying to the shared engine that holds what `held`
/// picks (the snapshot's upload, a stop or a removal) until released;
/// everything else passes.
struct Hold {
    path: PathBuf,
    release: Arc<AtomicBool>,
    holding: Arc<AtomicBool>,
}

/// Which bytes a [`Hold`] holds: given the first chunk a client sent on
/// its connection (its request line and headers), the index of this chunk
/// on it, and the chunk.
type Held = fn(&[u8], usize, &[u8]) -> bool;

/// The snapshot's upload, part of the way: on the new container's stdin
/// (an attach with stdin) after its first 64 KiB, or the engine's archive
/// endpoint (`PUT /containers/…/archive`) at its start.
fn upload(first: &[u8], index: usize, _: &[u8]) -> bool {
    let attach = first.starts_with(b"POST ") && first.windows(8).any(|w| w == b"/attach?");
    let stdin = first.windows(10).any(|w| w == b"stdin=true");
    let archive = first.starts_with(b"PUT ") && first.windows(8).any(|w| w == b"/archive");
    (attach && stdin && index >= 2) || (archive && index == 0)
}

impl Hold {
    fn start(dir: &Path, held: Held) -> Hold {
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
            .unwrap_or_else(|| "/var/run/docker.sock".to_string());
        let path = dir.join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind the relay socket");
        let hold = Hold { path, release: Default::default(), holding: Default::default() };
        let (release, holding) = (hold.release.clone(), hold.holding.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = UnixStream::connect(&engine) else { continue };
                for (from, to, requests) in [
                    (client.try_clone(), upstream.try_clone(), true),
                    (upstream.try_clone(), client.try_clone(), false),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                    let (release, holding) = (release.clone(), holding.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut first = Vec::new();
                        for index in 0.. {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if index == 0 {
                                first = buf[..n].to_vec();
                            }
                            if requests && held(&first, index, &buf[..n]) {
                                holding.store(true, Ordering::SeqCst);
                                while !release.load(Ordering::SeqCst) {
                                    std::thread::sleep(Duration::from_millis(5));
                                }
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        hold
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

/// The `phase upload` events of a `--json` run's stdout.
fn upload_phases(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|e| e["kind"] == "phase" && e["phase"] == "upload")
        .collect()
}

#[test]
fn docker_json_says_the_upload_as_it_goes_and_the_whole_tree_at_the_end() {
    let repo = repo();
    let hold = Hold::start(repo.scratch(), upload);
    let run = repo.quire(&["run", "--json"]).docker().env("DOCKER_HOST", hold.docker_host()).spawn();
    // Held part of the way: progress is said while nothing moves on.
    let part = wait_for(
        "upload progress while the upload is held",
        LIMIT,
        || {
            let progress = upload_phases(&run.stdout());
            let last = progress.iter().rev().find(|e| e["state"] == "progress")?.clone();
            hold.holding.load(Ordering::SeqCst).then_some(last)
        },
        || run.stdout(),
    );
    hold.release();
    let out = run.wait();
    out.status(0).assert_clean();
    let progress: Vec<Value> = upload_phases(&out.stdout).into_iter().filter(|e| e["state"] == "progress").collect();
    let bytes: Vec<u64> = progress.iter().map(|e| e["done"].as_u64().expect("done")).collect();
    let files: Vec<u64> = progress.iter().map(|e| e["files"].as_u64().expect("files")).collect();
    assert!(bytes.windows(2).all(|w| w[0] <= w[1]) && files.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let whole = progress.last().expect("a last progress");
    // The data files and ci.fnl; directories are not files.
    assert_eq!(whole["files"], (FILES + 1) as u64, "{whole}");
    let total = whole["done"].as_u64().unwrap_or(0);
    assert!(total >= (FILES * SIZE) as u64, "the whole tar is more than its files' bytes: {whole}");
    let held_at = part["done"].as_u64().unwrap_or(0);
    assert!(held_at < total, "held part of the way, not at the end: {part} vs {whole}");
    // Transient: the record has none.
    assert!(out.run_log().iter().all(|e| e["kind"] != "phase"), "a phase event in log.jsonl");
    assert!(out.stdout.contains("\"kind\":\"run-end\""), "{}", out.stdout);
}

#[test]
fn docker_plain_output_says_nothing_of_the_upload() {
    let repo = repo();
    let out = repo.quire(&["--color", "never", "run"]).docker().run();
    out.status(0).assert_clean();
    out.stdout_lacks("upload").stdout_lacks("phase").stderr_lacks("upload");
    out.stdout_has(&format!("t | {FILES}"));
}

#[test]
fn docker_tty_upload_shows_a_row_with_bytes_and_files_while_it_lasts() {
    let repo = repo();
    let hold = Hold::start(repo.scratch(), upload);
    let tmux = Tmux::quire("upload", &repo, &format!("DOCKER_HOST={}", hold.docker_host()), "run");
    let screen = tmux.wait_until("the upload's row", LIMIT, |s| {
        s.lines().any(|l| l.contains("uploading the snapshot into /work · ") && l.contains(" file"))
    });
    let row = screen.lines().find(|l| l.contains("uploading the snapshot")).unwrap_or_default().to_string();
    assert!(has_spinner(&row), "the row is a status row: {row:?}");
    assert!(row.contains("KiB") || row.contains("MiB"), "bytes on the row: {row:?}");
    assert!(hold.holding.load(Ordering::SeqCst), "the row came while the upload was held");
    hold.release();
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 0"), "the run failed:\n{done}");
    assert!(done.contains(&format!("t | {FILES}")), "{done}");
    // The row went when the upload ended: not in the scrollback.
    assert!(!done.contains("uploading the snapshot"), "the upload's row stayed:\n{done}");
}

/// The pre-push hook on a terminal: git leaves the hook's stderr on it, so
/// the hook draws the live view there, the upload's row included.
#[test]
fn docker_tty_push_shows_the_upload_row_on_stderr() {
    let repo = with_data(Repo::new().with_remote());
    repo.quire(&["hook", "install"]).run().status(0);
    let hold = Hold::start(repo.scratch(), upload);
    let env = format!("DOCKER_HOST={}", hold.docker_host());
    let tmux = Tmux::shell("push", &repo, &env, "git push -q origin main");
    let screen = tmux.wait_until("the upload's row", LIMIT, |s| {
        s.lines().any(|l| l.contains("uploading the snapshot into /work · ") && l.contains(" file"))
    });
    assert!(has_spinner(&screen), "{screen}");
    hold.release();
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 0"), "the push was refused:\n{done}");
    assert!(done.contains(&format!("t | {FILES}")), "{done}");
    assert!(!done.contains("uploading the snapshot"), "the upload's row stayed:\n{done}");
    let pushed = repo.git(&["ls-remote", "origin", "refs/heads/main"]);
    assert!(!pushed.trim().is_empty(), "the remote has no main");
}

/// A request that would stop or remove a container: a kill or a DELETE.
fn stop_or_remove(first: &[u8], index: usize, _: &[u8]) -> bool {
    let kill = first.starts_with(b"POST ") && first.windows(6).any(|w| w == b"/kill?");
    index == 0 && (kill || first.starts_with(b"DELETE /"))
}

/// `-v` says every step of the run once it ended, with its time; the
/// upload's with its bytes and the tree's file count. Without `-v`, none.
#[test]
fn docker_verbose_prints_each_step_with_its_time() {
    let repo = repo();
    let out = repo.quire(&["--color", "never", "-v", "run"]).docker().run();
    out.status(0).assert_clean();
    for step in ["snapshot", "evaluate", "engine", "image", "create", "start", "upload", "jobs", "teardown", "record"] {
        let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with(&format!("phase {step} "))).collect();
        assert_eq!(lines.len(), 1, "one line for {step}:\n{}", out.stdout);
        let time = lines[0].split(' ').nth(2).unwrap_or_default();
        assert!(time.ends_with("ms") || time.ends_with('s'), "{step} with its time: {:?}", lines[0]);
    }
    let upload = out.stdout.lines().find(|l| l.starts_with("phase upload ")).unwrap_or_default();
    assert!(upload.ends_with(&format!(" MiB · {} files", FILES + 1)), "{upload:?}");
    // The steps come in the order they end: the jobs before the teardown.
    let at = |s: &str| out.stdout.find(&format!("phase {s} ")).unwrap_or(usize::MAX);
    assert!(at("upload") < at("jobs") && at("jobs") < at("teardown"), "{}", out.stdout);
    // The record is named once (the summary's line), -v or not.
    let dir = out.rec().dir().display().to_string();
    out.once_on_stdout(&format!("record: {dir}"));
    let plain = repo.quire(&["--color", "never", "run"]).docker().run();
    plain.status(0).stdout_lacks("phase ");
}

#[test]
fn docker_tty_teardown_asks_the_engine_nothing_and_shows_no_row() {
    // The teardown hands the container to a background remover and asks
    // the engine nothing itself: a stop or removal it waited for, held
    // here, would keep the summary from coming.
    let repo = repo();
    let hold = Hold::start(repo.scratch(), stop_or_remove);
    let before = repo.run_ids();
    // On a host of its own: no other test's run reaps the container while
    // its removal is held.
    let host = Host::new();
    let run = host.shell(&format!("{} run", crate::harness::bin().display()));
    let tmux = Tmux::shell("teardown", &repo, &format!("DOCKER_HOST={}", hold.docker_host()), &run);
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 0") && done.contains("run succeeded"), "the run failed:\n{done}");
    assert!(!done.contains("stopping the container"), "a teardown row:\n{done}");
    // What is held is the remover's removal; let through, the container goes.
    let id = repo.run_ids().into_iter().find(|r| !before.contains(r)).expect("the run's id");
    wait_for("the remover's removal, held", LIMIT, || hold.holding.load(Ordering::SeqCst).then_some(()), String::new);
    assert_eq!(crate::harness::containers_of_run(&id).len(), 1, "gone before its removal was let through");
    hold.release();
    crate::harness::wait_no_container_of_run(&id);
}
