//! `quire-ci run` when things go wrong: signals, a SIGKILLed quire-ci, the
//! engine going away mid-run, a container killed from outside, no engine, a
//! missing image, an OOM under `--memory`, run-fns that raise, `--keep`, a
//! broken ci.fnl. Real binary, real Docker engine.

use std::process::Command;
use std::time::Duration;

use crate::harness::record::read_jsonl;
use crate::harness::{containers_of_run, schema, sh_ok, wait_no_container_of_run, Cmd, Host, Repo, Running};

/// The tests in this file run one at a time: a `--keep` container's owner
/// is gone once its run ends, so any other quire-ci started meanwhile reaps
/// it as an orphan (see the report on --keep), and the SIGKILL test wants
/// to see which run reaps what.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

const SLEEPER: &str = r#"(local ci (require :quire.ci))
(ci.job :slow [:quire/push] (fn [{: sh}] (sh "echo started; sleep 30") {}))
(ci.job :after [:slow] (fn [{: sh}] (sh "echo after") {}))
"#;

/// How long a step of these scenarios may take (a bound on hangs, not a
/// figure: timings belong to scripts/bench*).
const LIMIT: Duration = Duration::from_secs(120);

/// `quire-ci run` (`cmd`) in the background, once its slow command runs.
fn started(cmd: Cmd<'_>) -> Running<'_> {
    let run = cmd.spawn();
    // The job's output line, not the command's echo (`slow $ echo
    // started…`), which comes before the command runs.
    run.wait_for_output("| started", LIMIT);
    run
}

fn assert_all_lines_complete(dir: &std::path::Path) {
    // read_jsonl panics on a torn line; the schema check covers the shapes.
    read_jsonl(&dir.join("log.jsonl"));
    for e in std::fs::read_dir(dir.join("jobs")).into_iter().flatten().flatten() {
        let log = e.path().join("log.jsonl");
        if log.exists() {
            read_jsonl(&log);
        }
    }
}

/// SIGINT exits 130 and SIGTERM 143 (128 + the signal), as shells do.
fn cancel_with(sig: &str, name: &str, code: i32) {
    let repo = Repo::with_ci(SLEEPER);
    let run = started(repo.quire(&["run"]).docker());
    run.signal(sig);
    // The harness checks the record against the schema and that the run's
    // container is gone.
    let f = run.wait();
    f.status(code);
    assert_all_lines_complete(f.dir());
    assert_eq!(f.run_status(), "canceled", "{name}");
    assert_eq!(f.job_status("after"), "skipped", "{name}: the job after the canceled one must not run");
    assert!(f.job_log("after").is_empty() || f.job_log("after").iter().all(|e| e["kind"] != "sh-start"));
    assert!(f.stderr.contains(name), "{name}: {}", f.stderr);
}

#[test]
fn docker_sigint_cancels_and_removes_the_container() {
    let _serial = serial();
    cancel_with("INT", "SIGINT", 130);
}

#[test]
fn docker_sigterm_cancels_and_removes_the_container() {
    let _serial = serial();
    cancel_with("TERM", "SIGTERM", 143);
}

#[test]
fn docker_sigkilled_run_leaves_a_container_the_next_run_reaps_but_live_ones_stay() {
    let _serial = serial();
    // All three runs on a host of their own: no other test's run reaps the
    // victim's container first, and the next run judges both owners.
    let host = Host::new();
    // The victim: SIGKILLed mid-command, so nothing can clean up.
    let victim_repo = Repo::with_ci(SLEEPER);
    let victim = victim_repo.quire(&["run"]).docker().wrapped_in(&host.wrapper()).keeps_container().spawn();
    victim.wait_for_output("started", LIMIT);
    let victim_id = victim.record(LIMIT).run_id();
    // A live run in another repo owns its container the whole time.
    let live_repo = Repo::with_ci(SLEEPER);
    let live = started(live_repo.quire(&["run"]).docker().wrapped_in(&host.wrapper()));
    let live_id = live.record(LIMIT).run_id();

    victim.signal("KILL");
    let code = victim.wait().code;
    assert_eq!(code, None, "SIGKILL leaves no exit code");
    assert_eq!(containers_of_run(&victim_id).len(), 1, "the SIGKILLed run's container should still be there");
    // The victim's record: every line that made it is complete.
    assert_all_lines_complete(&victim_repo.runs_dir().join(&victim_id));

    // Any next run, in any repo, reaps the orphan.
    let next = Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [] {}))\n");
    let r = next.quire(&["run"]).docker().wrapped_in(&host.wrapper()).run();
    r.status(0).assert_clean();
    let name = quire_ci::engine::container_name(&victim_id);
    assert!(r.terminal().lines().any(|l| l.contains("left behind") && l.contains(&name)), "{}", r.terminal());
    // The reaper hands it to a detached remover: gone shortly after.
    wait_no_container_of_run(&victim_id);
    assert_eq!(containers_of_run(&live_id).len(), 1, "a container owned by a live quire-ci was touched");

    live.signal("INT");
    live.wait().status(130);
    wait_no_container_of_run(&live_id);
}

#[test]
fn docker_container_killed_from_outside_is_container_died_exit_3() {
    let _serial = serial();
    let repo = Repo::with_ci(SLEEPER);
    let run = started(repo.quire(&["run"]).docker());
    let ids = containers_of_run(&run.record(LIMIT).run_id());
    assert_eq!(ids.len(), 1, "{ids:?}");
    sh_ok(Command::new("docker").args(["kill", &ids[0]]));
    let f = run.wait();
    f.status(3);
    assert_eq!(f.run_status(), "error");
    let died: Vec<_> = f.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", f.run_log());
    assert!(!died[0]["reason"].as_str().unwrap_or("").is_empty(), "container-died without a reason");
    // Said as it happened, and the run's error once, by the summary's last
    // line, on stdout only.
    f.once_on_stdout("run error in ").stderr_lacks("died");
    assert_eq!(f.stdout.lines().filter(|l| l.starts_with("container died: killed")).count(), 1, "{}", f.stdout);
    let end = f.stdout.lines().find(|l| l.starts_with("run error in ")).unwrap_or_default();
    assert!(end.ends_with("the container died (killed (exit 137))"), "{end}");
    assert_eq!(f.job_status("after"), "skipped");
}

#[test]
fn docker_out_of_memory_under_memory_flag_is_container_died_oom_exit_3() {
    let _serial = serial();
    let repo = Repo::with_ci(
        r#"(local ci (require :quire.ci))
(ci.job :hog [:quire/push] (fn [{: sh}] (sh "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}") {}))
(ci.job :after [:hog] (fn [{: sh}] (sh "echo after") {}))
"#,
    );
    let r = repo.run(&["run", "--memory", "32m"]);
    r.status(3).assert_clean();
    assert_eq!(r.run_status(), "error");
    let died: Vec<_> = r.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", r.run_log());
    assert_eq!(died[0]["reason"], "oom-killed");
    assert!(r.stderr.contains("oom-killed") || r.stdout.contains("oom-killed"), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.job_status("after"), "skipped");
}

#[test]
fn bad_memory_size_is_refused_before_anything_runs() {
    let _serial = serial();
    let repo = Repo::with_ci(SLEEPER);
    for bad in ["lots", "1k", "12q"] {
        let r = repo.run(&["run", "--memory", bad]);
        r.status(2);
        assert!(r.stderr.contains("--memory"), "{bad}: {}", r.stderr);
    }
    assert!(repo.runs().is_empty(), "a refused flag wrote a run record");
}

/// A unix socket relaying to the real engine, which the test can cut: to
/// quire-ci that is the engine stopping mid-run (its socket gone, every
/// connection dropped), without stopping the engine other tests share.
struct EngineRelay {
    path: std::path::PathBuf,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl EngineRelay {
    fn start(dir: &std::path::Path) -> EngineRelay {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
            .unwrap_or_else(|| "/var/run/docker.sock".to_string());
        let path = dir.join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind the relay socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let relay = EngineRelay { path, cut: Default::default(), open: Default::default() };
        let (cut, open) = (relay.cut.clone(), relay.open.clone());
        std::thread::spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(upstream) = UnixStream::connect(&engine) else { continue };
                let pairs = [(client.try_clone(), upstream.try_clone()), (upstream.try_clone(), client.try_clone())];
                open.lock().expect("lock").extend([client, upstream]);
                for (from, to) in pairs {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Write);
                        });
                    }
                }
            }
        });
        relay
    }

    /// The engine "stops": no socket, and every connection is dropped.
    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
        for s in self.open.lock().expect("lock").iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn docker_engine_gone_mid_run_is_container_died_exit_3_and_the_next_run_cleans_up() {
    let _serial = serial();
    // On a host of its own: no other test's run reaps the container first.
    let host = Host::new();
    let repo = Repo::with_ci(SLEEPER);
    let relay = EngineRelay::start(repo.scratch());
    let run = repo
        .quire(&["run"])
        .docker()
        .wrapped_in(&host.wrapper())
        .env("DOCKER_HOST", format!("unix://{}", relay.path.display()))
        .keeps_container()
        .spawn();
    // The job's output line, not the command's echo (`slow $ echo
    // started…`), which comes before the command runs.
    run.wait_for_output("| started", LIMIT);
    let id = run.record(LIMIT).run_id();
    relay.cut();
    let f = run.wait();
    f.status(3);
    assert_eq!(f.run_status(), "error");
    let died: Vec<_> = f.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", f.run_log());
    let reason = died[0]["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.starts_with("engine connection lost"), "{reason}");
    assert_eq!(f.job_status("after"), "skipped");
    // Its teardown handed the container to a background remover, which
    // cannot reach the engine through the gone socket: still there.
    assert!(!f.run_log().iter().any(|e| e["code"] == "teardown-failed"), "{:?}", f.run_log());
    assert_eq!(containers_of_run(&id).len(), 1, "the container should still be there");
    // With the engine back (here: asked directly), the next run reaps it.
    let next = Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [] {}))\n");
    next.quire(&["run"]).docker().wrapped_in(&host.wrapper()).run().status(0).assert_clean();
    // The next run's reaper hands it to a remover of its own.
    wait_no_container_of_run(&id);
}

#[test]
fn no_engine_reachable_exits_3_naming_where_it_looked() {
    let _serial = serial();
    let repo = Repo::with_ci(SLEEPER);
    let r = repo.quire(&["run"]).docker().env("DOCKER_HOST", "unix:///nonexistent.sock").run();
    r.status(3);
    r.once_on_stdout("unix:///nonexistent.sock (no such socket)").once_on_stdout("help: start Docker");
    assert_eq!(r.run_status(), "error");
    schema::assert_run_dir_valid(r.dir());
}

#[test]
fn docker_missing_image_exits_3_naming_it() {
    let _serial = serial();
    let repo = Repo::with_ci(SLEEPER);
    let r = repo.run(&["run", "--image", "quire-ci-test/nope:1", "--pull", "never"]);
    r.status(3).assert_clean();
    r.once_on_stdout("image quire-ci-test/nope:1 is not available").once_on_stdout("help: check the image name");
    assert_eq!(r.run_status(), "error");
    let r = repo.run(&["run", "--image", "127.0.0.1:5999/nope:1", "--pull", "missing"]);
    r.status(3).assert_clean();
    r.once_on_stdout("quire_ci::engine::").stdout_has("127.0.0.1:5999/nope:1").stderr_lacks("127.0.0.1:5999");
    assert_eq!(r.run_status(), "error");
    assert!(r.state()["error"].as_str().unwrap_or("").contains("127.0.0.1:5999/nope:1"), "{}", r.state());
}

#[test]
fn docker_run_fn_that_raises_or_returns_a_string_fails_with_message_and_line() {
    let _serial = serial();
    let repo = Repo::with_ci(
        r#"(local ci (require :quire.ci))
(ci.job :raises [:quire/push]
  (fn [{: sh}]
    (sh "true")
    (error "boom: the widget is broken")))
(ci.job :stringy [:quire/push] (fn [] "not a table"))
(ci.job :fine [:quire/push] (fn [] {}))
"#,
    );
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    assert_eq!(r.run_status(), "failed");
    let end = r.job_end("raises");
    assert_eq!(end["outcome"], "failed");
    assert!(end["reason"].as_str().unwrap_or("").contains("boom: the widget is broken"), "{end}");
    assert_eq!(end["line"], 5, "{end}");
    assert_eq!(r.job_state("raises")["line"], 5);
    assert!(r.terminal().contains("boom: the widget is broken"), "{}", r.terminal());
    assert!(
        r.terminal().contains("ci.fnl:5") || r.terminal().contains("line 5"),
        "no line on the terminal:\n{}",
        r.terminal()
    );
    let s = r.job_end("stringy");
    assert_eq!(s["outcome"], "failed");
    assert!(s["reason"].as_str().unwrap_or("").contains("string"), "{s}");
    assert_eq!(r.job_status("fine"), "succeeded", "an unrelated job still runs");
}

#[test]
fn docker_keep_leaves_the_container_and_says_how_to_enter_it() {
    let _serial = serial();
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo kept > k.txt\") {}))\n",
    );
    let r = repo.quire(&["run", "--keep"]).docker().keeps_container().run();
    r.status(0);
    let ids = containers_of_run(&r.run_id());
    assert_eq!(ids.len(), 1, "--keep must keep the container");
    assert!(r.terminal().contains("docker exec -it"), "{}", r.terminal());
    // The kept container is usable: the job's file is in /work.
    let got = sh_ok(Command::new("docker").args(["exec", &ids[0], "cat", "/work/k.txt"]));
    assert_eq!(got, "kept\n");
    // Its owner is gone now, yet the next run (which reaps leftovers) keeps it.
    repo.run(&["run"]).status(0);
    assert_eq!(containers_of_run(&r.run_id()), ids, "a later run reaped the kept container");
    sh_ok(Command::new("docker").args(["rm", "-f", &ids[0]]));
    assert!(containers_of_run(&r.run_id()).is_empty());
}

#[test]
fn docker_broken_ci_fnl_exits_2_with_a_diagnostic_and_an_error_record() {
    let _serial = serial();
    let repo =
        Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push]\n  (fn [{: sh}] (sh \"true\") {})\n");
    let r = repo.run(&["run"]);
    r.status(2).assert_clean();
    // Shown once, by the renderer, from the record's `problem` events.
    assert_eq!(r.terminal().matches("quire_ci::parse").count(), 1, "{}", r.terminal());
    assert!(r.stdout.contains(".quire/ci.fnl:2:1"), "the diagnostic must name the file: {}", r.stdout);
    let problems: Vec<_> = r.run_log().into_iter().filter(|e| e["kind"] == "problem").collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(r.run_status(), "error");
    assert!(!r.state()["error"].as_str().unwrap_or("").is_empty(), "{}", r.state());
    assert!(r.run_log().iter().all(|e| e["kind"] != "container-start"), "no container for a broken ci.fnl");
}
