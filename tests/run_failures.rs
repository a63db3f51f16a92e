//! `quire-ci run` when things go wrong: signals, a SIGKILLed quire-ci, the
//! engine going away mid-run, a container killed from outside, no engine, a
//! missing image, an OOM under `--memory`, run-fns that raise, `--keep`, a
//! broken ci.fnl. Real binary, real Docker engine.

mod run_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{containers_of_run, read_jsonl, Finished, Repo};

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

/// A `quire-ci run` in the background, with its stdout read line by line.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    started: Instant,
}

impl Running {
    fn spawn(repo: &Repo, args: &[&str]) -> Running {
        Running::spawn_cmd(repo.cmd(args))
    }

    fn spawn_cmd(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn quire-ci");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines: rx, started: Instant::now() }
    }

    /// Blocks until a stdout line contains `needle` (a command is running).
    fn wait_for_line(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("quire-ci never printed {needle:?} (after {:?})", self.started.elapsed());
                }
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    /// Waits (bounded) for the exit; returns the code and how long it took.
    fn wait(mut self, within: Duration) -> (Option<i32>, Duration, String) {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), t.elapsed(), err);
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                panic!("quire-ci did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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

fn cancel_with(sig: i32, name: &str) {
    let repo = Repo::new(SLEEPER);
    let before = repo.run_ids();
    let mut run = Running::spawn(&repo, &["run"]);
    run.wait_for_line("started");
    let sent = Instant::now();
    run.signal(sig);
    let (code, _, stderr) = run.wait(Duration::from_secs(10));
    let took = sent.elapsed();
    assert_eq!(code, Some(130), "{name}: exit code; stderr:\n{stderr}");
    assert!(took < Duration::from_secs(5), "{name}: took {took:?} to exit");
    let dir = repo.new_run_dir(&before).expect("run dir");
    assert_all_lines_complete(&dir);
    let f = Finished { code, stdout: String::new(), stderr, dir: Some(dir) };
    f.assert_clean();
    assert_eq!(f.status(), "canceled", "{name}");
    assert_eq!(f.job_status("after"), "skipped", "{name}: the job after the canceled one must not run");
    assert!(f.job_log("after").is_empty() || f.job_log("after").iter().all(|e| e["kind"] != "sh-start"));
    assert!(f.stderr.contains(name), "{name}: {}", f.stderr);
}

#[test]
fn docker_sigint_cancels_within_five_seconds_and_removes_the_container() {
    let _serial = serial();
    cancel_with(libc::SIGINT, "SIGINT");
}

#[test]
fn docker_sigterm_cancels_within_five_seconds_and_removes_the_container() {
    let _serial = serial();
    cancel_with(libc::SIGTERM, "SIGTERM");
}

#[test]
fn docker_sigkilled_run_leaves_a_container_the_next_run_reaps_but_live_ones_stay() {
    let _serial = serial();
    // The victim: SIGKILLed mid-command, so nothing can clean up.
    let victim_repo = Repo::new(SLEEPER);
    let before = victim_repo.run_ids();
    let mut victim = Running::spawn(&victim_repo, &["run"]);
    victim.wait_for_line("started");
    let victim_id = victim_repo.new_run_dir(&before).and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let victim_id = victim_id.expect("victim run id");
    victim.signal(libc::SIGKILL);
    let (code, _, _) = victim.wait(Duration::from_secs(10));
    assert_eq!(code, None, "SIGKILL leaves no exit code");
    assert_eq!(containers_of_run(&victim_id).len(), 1, "the SIGKILLed run's container should still be there");
    // The victim's record: every line that made it is complete.
    assert_all_lines_complete(&victim_repo.runs_dir().join(&victim_id));

    // A live run in another repo owns its container the whole time.
    let live_repo = Repo::new(SLEEPER);
    let live_before = live_repo.run_ids();
    let mut live = Running::spawn(&live_repo, &["run"]);
    live.wait_for_line("started");
    let live_dir = live_repo.new_run_dir(&live_before).expect("live run dir");
    let live_id = live_dir.file_name().map(|n| n.to_string_lossy().into_owned()).expect("id");

    // Any next run, in any repo, reaps the orphan.
    let next = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [] {}))\n");
    let r = next.run(&["run"]);
    r.expect_code(0).assert_clean();
    assert!(containers_of_run(&victim_id).is_empty(), "the orphan of the SIGKILLed run was not removed");
    // Not asserted: that *this* run reported the reaping. Any quire-ci
    // started meanwhile (a parallel test) may have reaped it first.
    assert_eq!(containers_of_run(&live_id).len(), 1, "a container owned by a live quire-ci was touched");

    live.signal(libc::SIGINT);
    let (code, _, _) = live.wait(Duration::from_secs(10));
    assert_eq!(code, Some(130));
    assert!(containers_of_run(&live_id).is_empty());
}

#[test]
fn docker_container_killed_from_outside_is_container_died_exit_3() {
    let _serial = serial();
    let repo = Repo::new(SLEEPER);
    let before = repo.run_ids();
    let mut run = Running::spawn(&repo, &["run"]);
    run.wait_for_line("started");
    let dir = repo.new_run_dir(&before).expect("run dir");
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).expect("id");
    let ids = containers_of_run(&id);
    assert_eq!(ids.len(), 1, "{ids:?}");
    run_support::sh_ok(Command::new("docker").args(["kill", &ids[0]]));
    let (code, _, stderr) = run.wait(Duration::from_secs(20));
    let f = Finished { code, stdout: String::new(), stderr, dir: Some(dir) };
    f.expect_code(3).assert_clean();
    assert_eq!(f.status(), "error");
    let died: Vec<_> = f.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", f.run_log());
    assert!(!died[0]["reason"].as_str().unwrap_or("").is_empty(), "container-died without a reason");
    assert!(f.stderr.contains("died"), "{}", f.stderr);
    assert_eq!(f.job_status("after"), "skipped");
}

#[test]
fn docker_out_of_memory_under_memory_flag_is_container_died_oom_exit_3() {
    let _serial = serial();
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :hog [:quire/push] (fn [{: sh}] (sh "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}") {}))
(ci.job :after [:hog] (fn [{: sh}] (sh "echo after") {}))
"#,
    );
    let r = repo.run(&["run", "--memory", "32m"]);
    r.expect_code(3).assert_clean();
    assert_eq!(r.status(), "error");
    let died: Vec<_> = r.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", r.run_log());
    assert_eq!(died[0]["reason"], "oom-killed");
    assert!(r.stderr.contains("oom-killed") || r.stdout.contains("oom-killed"), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.job_status("after"), "skipped");
}

#[test]
fn bad_memory_size_is_refused_before_anything_runs() {
    let _serial = serial();
    let repo = Repo::new(SLEEPER);
    for bad in ["lots", "1k", "12q"] {
        let r = repo.run(&["run", "--memory", bad]);
        r.expect_code(2);
        assert!(r.stderr.contains("--memory"), "{bad}: {}", r.stderr);
    }
    assert!(repo.run_ids().is_empty(), "a refused flag wrote a run record");
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
    let repo = Repo::new(SLEEPER);
    let relay = EngineRelay::start(&repo.path);
    let before = repo.run_ids();
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", format!("unix://{}", relay.path.display()));
    let mut run = Running::spawn_cmd(cmd);
    run.wait_for_line("started");
    let dir = repo.new_run_dir(&before).expect("run dir");
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).expect("id");
    relay.cut();
    let (code, took, stderr) = run.wait(Duration::from_secs(30));
    let f = Finished { code, stdout: String::new(), stderr, dir: Some(dir) };
    f.expect_code(3);
    assert!(took < Duration::from_secs(10), "took {took:?} to notice the engine was gone");
    run_support::schema::assert_run_dir_valid(f.dir());
    assert_eq!(f.status(), "error");
    let died: Vec<_> = f.run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", f.run_log());
    let reason = died[0]["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.starts_with("engine connection lost"), "{reason}");
    assert_eq!(f.job_status("after"), "skipped");
    // It could not remove its container, and says what happens to it.
    assert!(f.stderr.contains("could not remove container"), "{}", f.stderr);
    assert!(f.stderr.contains("the next quire-ci run removes it"), "{}", f.stderr);
    assert_eq!(containers_of_run(&id).len(), 1, "the container should still be there");
    // With the engine back (here: asked directly), the next run reaps it.
    let next = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [] {}))\n");
    next.run(&["run"]).expect_code(0).assert_clean();
    assert!(containers_of_run(&id).is_empty(), "the next run did not remove the left-behind container");
}

#[test]
fn no_engine_reachable_exits_3_naming_where_it_looked() {
    let _serial = serial();
    let repo = Repo::new(SLEEPER);
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock");
    let r = repo.run_cmd(cmd);
    r.expect_code(3);
    assert!(r.stderr.contains("/nonexistent.sock"), "{}", r.stderr);
    assert_eq!(r.status(), "error");
    run_support::schema::assert_run_dir_valid(r.dir());
}

#[test]
fn docker_missing_image_exits_3_naming_it() {
    let _serial = serial();
    let repo = Repo::new(SLEEPER);
    let r = repo.run(&["run", "--image", "quire-ci-test/nope:1", "--pull", "never"]);
    r.expect_code(3).assert_clean();
    assert!(r.stderr.contains("quire-ci-test/nope:1"), "{}", r.stderr);
    assert_eq!(r.status(), "error");
    let r = repo.run(&["run", "--image", "127.0.0.1:5999/nope:1", "--pull", "missing"]);
    r.expect_code(3).assert_clean();
    assert!(r.stderr.contains("127.0.0.1:5999/nope:1"), "{}", r.stderr);
    assert_eq!(r.status(), "error");
    assert!(r.state()["error"].as_str().unwrap_or("").contains("127.0.0.1:5999/nope:1"), "{}", r.state());
}

#[test]
fn docker_run_fn_that_raises_or_returns_a_string_fails_with_message_and_line() {
    let _serial = serial();
    let repo = Repo::new(
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
    r.expect_code(1).assert_clean();
    assert_eq!(r.status(), "failed");
    let end = r.job_end("raises");
    assert_eq!(end["outcome"], "failed");
    assert!(end["reason"].as_str().unwrap_or("").contains("boom: the widget is broken"), "{end}");
    assert_eq!(end["line"], 5, "{end}");
    assert_eq!(r.job_state("raises")["line"], 5);
    assert!(r.terminal().contains("boom: the widget is broken"), "{}", r.terminal());
    assert!(r.terminal().contains("ci.fnl:5") || r.terminal().contains("line 5"), "no line on the terminal:\n{}", r.terminal());
    let s = r.job_end("stringy");
    assert_eq!(s["outcome"], "failed");
    assert!(s["reason"].as_str().unwrap_or("").contains("string"), "{s}");
    assert_eq!(r.job_status("fine"), "succeeded", "an unrelated job still runs");
}

#[test]
fn docker_keep_leaves_the_container_and_says_how_to_enter_it() {
    let _serial = serial();
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo kept > k.txt\") {}))\n");
    let r = repo.run(&["run", "--keep"]);
    r.expect_code(0);
    run_support::schema::assert_run_dir_valid(r.dir());
    let ids = containers_of_run(&r.run_id());
    assert_eq!(ids.len(), 1, "--keep must keep the container");
    assert!(r.terminal().contains("docker exec -it"), "{}", r.terminal());
    // The kept container is usable: the job's file is in /work.
    let got = run_support::sh_ok(Command::new("docker").args(["exec", &ids[0], "cat", "/work/k.txt"]));
    assert_eq!(got, "kept\n");
    // Its owner is gone now, yet the next run (which reaps leftovers) keeps it.
    repo.run(&["run"]).expect_code(0);
    assert_eq!(containers_of_run(&r.run_id()), ids, "a later run reaped the kept container");
    run_support::sh_ok(Command::new("docker").args(["rm", "-f", &ids[0]]));
    assert!(containers_of_run(&r.run_id()).is_empty());
}

#[test]
fn docker_broken_ci_fnl_exits_2_with_a_diagnostic_and_an_error_record() {
    let _serial = serial();
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push]\n  (fn [{: sh}] (sh \"true\") {})\n");
    let r = repo.run(&["run"]);
    r.expect_code(2).assert_clean();
    assert!(r.stderr.contains("ci.fnl"), "the diagnostic must name the file: {}", r.stderr);
    assert_eq!(r.status(), "error");
    assert!(!r.state()["error"].as_str().unwrap_or("").is_empty(), "{}", r.state());
    assert!(r.run_log().iter().all(|e| e["kind"] != "container-start"), "no container for a broken ci.fnl");
}
