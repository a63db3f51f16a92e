//! Faults and bad input (issue 14): each test here failed on the code before
//! its fix. Real binary, real Docker engine, real git repositories. These
//! drive quire-ci processes by hand (signals at chosen moments, an engine
//! relay that freezes or cuts, a registry that never finishes a pull, pid
//! namespaces), on top of the harness's repositories and records.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, containers_of_run, sh_ok, Host, Record};

/// The harness's repository, with the few calls these scenarios make
/// (they drive processes by hand: signals mid-pull, relays, namespaces).
struct Repo {
    inner: harness::Repo,
    path: PathBuf,
}

impl Repo {
    /// A repository whose committed `.quire/ci.fnl` is `ci_fnl`.
    fn new(ci_fnl: &str) -> Repo {
        harness::require_docker();
        Repo::wrap(harness::Repo::with_ci(ci_fnl))
    }

    fn empty() -> Repo {
        harness::require_docker();
        Repo::wrap(harness::Repo::new())
    }

    fn wrap(inner: harness::Repo) -> Repo {
        let path = inner.path().to_path_buf();
        Repo { inner, path }
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        self.inner.write(rel, contents)
    }

    fn git(&self, args: &[&str]) -> String {
        self.inner.git(args)
    }

    fn commit(&self, msg: &str) {
        self.inner.commit(msg)
    }

    fn runs_dir(&self) -> PathBuf {
        self.inner.runs_dir()
    }

    fn run_ids(&self) -> Vec<String> {
        harness::record::run_ids(&self.runs_dir())
    }

    fn new_run_dir(&self, before: &[String]) -> Option<PathBuf> {
        harness::record::new_run_dir(&self.runs_dir(), before)
    }

    /// `quire-ci ARGS` in the repo: scrubbed environment, the test image,
    /// no result cache (see [`cached_run`]), stdin closed.
    fn cmd(&self, args: &[&str]) -> Command {
        self.inner.quire(args).docker().command()
    }

    fn run(&self, args: &[&str]) -> Finished {
        self.run_cmd(self.cmd(args))
    }

    fn run_cmd(&self, mut cmd: Command) -> Finished {
        let before = self.run_ids();
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run quire-ci: {e}"));
        Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.new_run_dir(&before),
        }
    }
}

/// What one quire-ci process left: exit code, terminal text, its record.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    dir: Option<PathBuf>,
}

impl Finished {
    fn terminal(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or_else(|| panic!("the run left no record\n{}", self.terminal()))
    }

    fn rec(&self) -> Record {
        Record::new(self.dir().to_path_buf())
    }

    fn meta(&self) -> Value {
        self.rec().meta()
    }

    fn status(&self) -> String {
        self.rec().run_status()
    }

    fn job_status(&self, job: &str) -> String {
        self.rec().job_status(job)
    }

    fn run_log(&self) -> Vec<Value> {
        self.rec().run_log()
    }

    fn job_log(&self, job: &str) -> Vec<Value> {
        self.rec().job_log(job)
    }

    fn job_end(&self, job: &str) -> Value {
        self.rec().job_end(job)
    }

    fn output(&self, job: &str, n: u64, stream: &str) -> Vec<u8> {
        self.rec().output(job, n, stream)
    }

    fn all_record_bytes(&self) -> Vec<u8> {
        self.rec().all_record_bytes()
    }

    /// Every log line valid against the schema, no container of the run left.
    fn assert_clean(&self) -> &Self {
        self.rec().assert_clean();
        self
    }
}

/// A `quire-ci` in the background, its stdout read line by line.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    errs: std::sync::mpsc::Receiver<String>,
}

fn line_reader(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Blocks until a line from `rx` contains `needle`; returns the lines so far.
fn wait_in(rx: &std::sync::mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn quire-ci");
        let lines = line_reader(child.stdout.take().expect("stdout"));
        let errs = line_reader(child.stderr.take().expect("stderr"));
        Running { child, lines, errs }
    }

    /// Blocks until a stdout line contains `needle`; returns the lines so far.
    fn wait_for_line(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        if !wait_in(&self.lines, needle, &mut seen) {
            let _ = self.child.kill();
            panic!("quire-ci never printed {needle:?}; it printed:\n{}", seen.join("\n"));
        }
        seen
    }

    /// The same for stderr.
    fn wait_for_err(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        if !wait_in(&self.errs, needle, &mut seen) {
            let _ = self.child.kill();
            panic!("quire-ci never said {needle:?} on stderr; it said:\n{}", seen.join("\n"));
        }
        seen
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    /// Waits (with a generous deadline, so a hang fails instead of blocking
    /// the suite) for the exit: code, rest of stdout, stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The readers end at EOF once the process is gone.
                let out: Vec<String> = self.lines.iter().collect();
                let err: Vec<String> = self.errs.iter().collect();
                return (status.code(), out.join("\n"), err.join("\n"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("quire-ci did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A unix socket relaying to the shared engine that the test can freeze:
/// to quire-ci that is an engine that takes requests and never answers
/// (a stopped or wedged dockerd), without touching the engine others use.
/// With `hold`, the relay freezes by itself on the first request that
/// contains those bytes (e.g. [`DELETE`]) and names a container
/// created through it (not another test's orphan, which a reaper may hand
/// to a remover that comes through here too), so a test can act while
/// quire-ci (or its detached remover) tears down.
struct Relay {
    path: std::path::PathBuf,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl Relay {
    fn start(dir: &std::path::Path, hold: Option<&'static [u8]>) -> Relay {
        use std::io::{Read, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
            .unwrap_or_else(|| "/var/run/docker.sock".to_string());
        let path = dir.join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind the relay socket");
        let relay = Relay {
            path,
            frozen: Arc::new(AtomicBool::new(false)),
            held: Arc::new(AtomicBool::new(false)),
            open: Default::default(),
        };
        let (frozen, held, open) = (relay.frozen.clone(), relay.held.clone(), relay.open.clone());
        // Ids of the containers created through the relay, read from the
        // answers to `POST …/containers/create`.
        let created: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = UnixStream::connect(&engine) else { continue };
                if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
                    open.lock().unwrap().extend([c, u]);
                }
                let creating = Arc::new(AtomicBool::new(false));
                for (from, to, requests) in [
                    (client.try_clone(), upstream.try_clone(), true),
                    (upstream.try_clone(), client.try_clone(), false),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                    let (frozen, held, created, creating) =
                        (frozen.clone(), held.clone(), created.clone(), creating.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            let has = |needle: &[u8]| chunk.windows(needle.len()).any(|w| w == needle);
                            if requests && has(b"/containers/create") {
                                creating.store(true, Ordering::SeqCst);
                            }
                            if !requests && creating.load(Ordering::SeqCst) {
                                // The answer's body may come after its headers.
                                let text = String::from_utf8_lossy(chunk);
                                if let Some(id) = text.split("\"Id\":\"").nth(1).and_then(|r| r.get(..64)) {
                                    created.lock().unwrap().push(id.to_string());
                                    creating.store(false, Ordering::SeqCst);
                                }
                            }
                            let ours = || created.lock().unwrap().iter().any(|id| has(id.as_bytes()));
                            if requests && hold.is_some_and(has) && ours() {
                                held.store(true, Ordering::SeqCst);
                                frozen.store(true, Ordering::SeqCst);
                            }
                            while frozen.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(5));
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
        relay
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The engine "stops": its socket goes, every connection is dropped.
    fn cut(&self) {
        let _ = std::fs::remove_file(&self.path);
        for s in self.open.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// True once the `hold` request came (and everything froze).
    fn holding(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The request that removes a container (the detached remover's).
const DELETE: &[u8] = b"DELETE /";

/// Polls `f` until it gives `Some`, for at most a minute.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job that says `started` and then waits until the test creates
/// /tmp/go inside its container. Tests wait for its output line,
/// `wait | started` (the command's own echo line names it too).
const WAITER: &str = r#"(local ci (require :quire.ci))
(ci.job :wait [:quire/push] (fn [{: sh}] (sh "echo started; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo released") {}))
"#;

const QUICK: &str = r#"(local ci (require :quire.ci))
(ci.job :quick [:quire/push] (fn [{: sh}] (sh "echo quick") {}))
"#;

/// The newest run id in a repo, once one appears after `before`.
fn new_run_id(repo: &Repo, before: &[String]) -> String {
    poll("the run's record", || repo.new_run_dir(before).map(|d| d.file_name().unwrap().to_string_lossy().into_owned()))
}

fn release(run_id: &str) {
    let ids = containers_of_run(run_id);
    assert_eq!(ids.len(), 1, "one running container for run {run_id}: {ids:?}");
    sh_ok(Command::new("docker").args(["exec", &ids[0], "touch", "/tmp/go"]));
}

fn in_new_pid_namespace(cmd: Command) -> Command {
    let mut u = harness::wrapped(&["unshare", "--pid", "--fork", "--mount-proc"], cmd);
    u.stdin(Stdio::null());
    u
}

/// Item 1: run A's owner lives in one pid namespace, run B starts in
/// another; B must not take A's container for an orphan.
fn reaper_spares_a_live_run_across_namespaces(a_unshared: bool) {
    let a = Repo::new(WAITER);
    let b = Repo::new(QUICK);
    let before = a.run_ids();
    let a_cmd = if a_unshared { in_new_pid_namespace(a.cmd(&["run"])) } else { a.cmd(&["run"]) };
    let mut running = Running::spawn(a_cmd);
    running.wait_for_line("| started");
    let a_id = new_run_id(&a, &before);

    let b_cmd = if a_unshared { b.cmd(&["run"]) } else { in_new_pid_namespace(b.cmd(&["run"])) };
    let b_run = b.run_cmd(b_cmd);
    b_run.expect_code(0);
    // Other tests on the same engine leave orphans on purpose (killed runs),
    // and B may rightly reap those: only a line naming A's container counts.
    let a_name = quire_ci::engine::container_name(&a_id);
    let a_reaped = b_run.terminal().lines().any(|l| l.contains("left behind") && l.contains(&a_name));
    assert!(!a_reaped, "B reaped a live run's container:\n{}", b_run.terminal());
    assert_eq!(containers_of_run(&a_id).len(), 1, "A's container is gone after B ran:\n{}", b_run.terminal());

    release(&a_id);
    let (code, out, err) = running.finish();
    assert_eq!(code, Some(0), "A must succeed\n{out}\n{err}");
    let a_run = Finished { code, stdout: out, stderr: err, dir: Some(a.runs_dir().join(&a_id)) };
    assert_eq!(a_run.status(), "succeeded");
    a_run.assert_clean();
}

#[test]
fn docker_reaper_outside_spares_a_run_under_unshare_pid() {
    reaper_spares_a_live_run_across_namespaces(true);
}

#[test]
fn docker_reaper_under_unshare_pid_spares_a_run_outside() {
    reaper_spares_a_live_run_across_namespaces(false);
}

fn non_utf8() -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(b"/tmp/caf\xe9".to_vec())
}

/// Item 3: a variable that is not UTF-8 (and holds no secret) is no
/// concern of `run`; one that holds a secret is a plain error.
#[test]
fn docker_non_utf8_environment_does_not_panic_run() {
    let repo = Repo::new(QUICK);
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("OLDPWD", non_utf8());
    let f = repo.run_cmd(cmd);
    f.expect_code(0);
    assert!(!f.terminal().contains("panicked"), "{}", f.terminal());

    let mut cmd = repo.cmd(&["run", "--secret", "OLDPWD"]);
    cmd.env("OLDPWD", non_utf8());
    let f = repo.run_cmd(cmd);
    f.expect_code(2);
    assert!(f.stderr.contains("OLDPWD") && f.stderr.contains("UTF-8"), "{}", f.terminal());
}

/// `git push` of main to a fresh bare remote, through quire-ci's pre-push
/// hook, with `env` added.
fn push_through_hook(repo: &Repo, env: &[(&str, std::ffi::OsString)]) -> std::process::Output {
    let remote = repo.path.parent().unwrap().join("remote.git");
    sh_ok(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&remote));
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    let install = repo.cmd(&["hook", "install"]).output().expect("hook install");
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let mut push = Command::new("git");
    push.args(["push", "-q", "origin", "main"])
        .current_dir(&repo.path)
        .env("QUIRE_CI_IMAGE", harness::IMAGE)
        .env("NO_COLOR", "1")
        .env("QUIRE_CI_NO_CACHE", "1");
    for (k, v) in env {
        push.env(k, v);
    }
    push.output().expect("git push")
}

/// Item 3 through the hook: the push goes through.
#[test]
fn docker_non_utf8_environment_does_not_refuse_a_push() {
    let repo = Repo::new(QUICK);
    let out = push_through_hook(&repo, &[("OLDPWD", non_utf8())]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "push refused:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// `quire-ci run` with the result cache on (Repo::cmd turns it off).
fn cached_run(repo: &Repo, args: &[&str]) -> Finished {
    let mut cmd = repo.cmd(args);
    cmd.env_remove("QUIRE_CI_NO_CACHE");
    repo.run_cmd(cmd)
}

/// Item 8: a green run answers only runs under the same settings.
#[test]
fn docker_cache_key_covers_memory_and_lua_limits() {
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :hog [:quire/push]
  (fn [{: sh}]
    (local big (string.rep "x" (* 24 1024 1024)))
    (sh "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}")
    {:len (# big)}))
"#,
    );
    let green = cached_run(&repo, &["run"]);
    green.expect_code(0);
    let again = cached_run(&repo, &["run"]);
    again.expect_code(0);
    assert!(again.terminal().contains("cached"), "the same run is a hit:\n{}", again.terminal());

    let oom = cached_run(&repo, &["run", "--memory", "16m"]);
    assert!(!oom.terminal().contains("cached"), "--memory 16m answered from the cache:\n{}", oom.terminal());
    oom.expect_code(3);
    assert!(oom.terminal().contains("oom-killed"), "{}", oom.terminal());

    let lua = cached_run(&repo, &["run", "--lua-memory", "8"]);
    assert!(!lua.terminal().contains("cached"), "--lua-memory 8 answered from the cache:\n{}", lua.terminal());
    assert_eq!(lua.code, Some(1), "a run-fn over its Lua memory fails the job\n{}", lua.terminal());

    for args in [&["run", "--eval-timeout", "9"][..], &["run", "--job-lua-timeout", "9"][..]] {
        let other = cached_run(&repo, args);
        other.expect_code(0);
        assert!(!other.terminal().contains("cached"), "{args:?} answered from the cache:\n{}", other.terminal());
    }
}

/// Item 9: a SIGINT that arrives after the last job passed, while the run
/// still works with its container (here: copying an `--artifact` out, the
/// copy held), is still an interrupted run: exit 130, `canceled`, not
/// cached, and the container still goes. (The teardown itself asks the
/// engine nothing: the container goes to a background remover.)
#[test]
fn docker_sigint_after_the_last_job_passed_is_canceled_not_green() {
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :quick [:quire/push] (fn [{: sh}] (sh \"echo quick > out.txt\") {}))\n");
    let relay = Relay::start(repo.path.parent().unwrap(), Some(b"/archive?path=%2Fwork%2Fout.txt"));
    let before = repo.run_ids();
    let mut cmd = repo.cmd(&["run", "--artifact", "out.txt"]);
    cmd.env_remove("QUIRE_CI_NO_CACHE").env("DOCKER_HOST", relay.docker_host());
    let mut running = Running::spawn(cmd);
    poll("quire-ci copying the artifact out", || relay.holding().then_some(()));
    let id = new_run_id(&repo, &before);
    let log = || harness::record::read_jsonl_lenient(&repo.runs_dir().join(&id).join("log.jsonl"));
    poll("the job's end in the record", || {
        harness::record::kinds(&log()).contains(&"job-end".to_string()).then_some(())
    });
    running.signal(libc::SIGINT);
    // The signal has landed before the copy goes through.
    running.wait_for_err("canceling the run");
    relay.freeze(false);
    let (code, out, err) = running.finish();
    assert_eq!(code, Some(130), "SIGINT after the last job\n{out}\n{err}");
    let f = Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(&id)) };
    assert_eq!(f.status(), "canceled", "{}", f.terminal());
    assert_eq!(f.job_status("quick"), "succeeded");
    let end = f.run_log().into_iter().find(|e| e["kind"] == "run-end").expect("run-end");
    assert_eq!(end["status"], "canceled");
    f.assert_clean();
    // Not green: the next run is a real one.
    let next = cached_run(&repo, &["run", "--artifact", "out.txt"]);
    next.expect_code(0);
    assert!(!next.terminal().contains("cached"), "an interrupted run was cached:\n{}", next.terminal());
}

/// Issue 15: the exit code does not wait for the container's removal. The
/// relay holds the detached remover's `DELETE`: quire-ci has exited, green
/// and with its record complete, while the container still exists; once
/// the engine answers, it is gone. Run on a host of its own: no other
/// test's run reaps the container meanwhile.
#[test]
fn docker_exit_does_not_wait_for_the_container_removal() {
    let host = Host::new();
    let repo = Repo::new(QUICK);
    let relay = Relay::start(repo.path.parent().unwrap(), Some(DELETE));
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", relay.docker_host());
    let f = repo.run_cmd(host.wrap(cmd));
    f.expect_code(0);
    let id = f.rec().run_id();
    let log = f.run_log();
    assert_eq!(log.last().map(|e| e["kind"].clone()), Some("run-end".into()), "{log:?}");
    assert_eq!(f.status(), "succeeded");
    // quire-ci itself never waited on the held removal (which it would
    // have reported as a teardown that failed after its deadline).
    assert!(!log.iter().any(|e| e["code"] == "teardown-failed"), "{}", f.terminal());
    // The removal was handed on, not done: it is held, the container there.
    poll("the remover's removal request", || relay.holding().then_some(()));
    assert_eq!(containers_of_run(&id).len(), 1, "the container went before its removal was let through");
    relay.freeze(false);
    harness::wait_no_container_of_run(&id);
}

/// Issue 15: a remover that dies before the engine removed the container
/// (here: killed while its request is held, the request dropped) leaves a
/// container whose owner is gone; the next run's reaper removes it. On a
/// host of its own, so that no other test's run reaps it first.
#[test]
fn docker_reaper_removes_a_container_its_remover_left() {
    let host = Host::new();
    let repo = Repo::new(QUICK);
    let relay = Relay::start(repo.path.parent().unwrap(), Some(DELETE));
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", relay.docker_host());
    let f = repo.run_cmd(host.wrap(cmd));
    f.expect_code(0);
    let id = f.rec().run_id();
    poll("the remover's removal request", || relay.holding().then_some(()));
    let container = containers_of_run(&id).pop().expect("the run's container");
    let remover = poll("the remover process", || remover_of(&container));
    // SAFETY: kill(2) on a pid we just read from /proc.
    assert_eq!(unsafe { libc::kill(remover, libc::SIGKILL) }, 0);
    // Its request never reaches the engine.
    relay.cut();
    relay.freeze(false);
    poll("the remover to die", || {
        (!Path::new(&format!("/proc/{remover}/cmdline")).exists() || remover_of(&container).is_none()).then_some(())
    });
    assert_eq!(containers_of_run(&id), vec![container.clone()], "the container went without its remover");
    // Any next run on that host (on the engine itself) reaps it.
    let next = Repo::new(QUICK);
    next.run_cmd(host.wrap(next.cmd(&["run"]))).expect_code(0).assert_clean();
    harness::wait_no_container_of_run(&id);
}

/// The pid of the detached remover that was handed `container` (an id
/// prefix), from the processes' command lines.
fn remover_of(container: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_remover = args.get(1).is_some_and(|a| *a == b"__remove-containers");
        let has = args.iter().skip(3).any(|a| a.starts_with(container.as_bytes()));
        (is_remover && has).then_some(pid)
    })
}

/// Item 9: with an engine that takes requests and never answers, the first
/// Ctrl-C still ends the run, recorded canceled: the cancel's kill has a
/// deadline, and the teardown asks the engine nothing (a background
/// remover takes the container, and removes it once the engine answers).
#[test]
fn docker_first_sigint_with_a_frozen_engine_ends_the_run() {
    let repo = Repo::new(WAITER);
    let relay = Relay::start(repo.path.parent().unwrap(), None);
    let before = repo.run_ids();
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", relay.docker_host());
    let mut running = Running::spawn(cmd);
    running.wait_for_line("| started");
    let id = new_run_id(&repo, &before);
    relay.freeze(true);
    running.signal(libc::SIGINT);
    let (code, out, err) = running.finish();
    relay.freeze(false);
    // Thawed, the engine carries out the removal it was asked for.
    poll("the held removal to go through", || containers_of_run(&id).is_empty().then_some(()));
    assert_eq!(code, Some(130), "\n{out}\n{err}");
    let f = Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(&id)) };
    assert_eq!(f.status(), "canceled");
    f.rec().assert_valid();
    assert!(!f.run_log().iter().any(|e| e["code"] == "teardown-failed"), "{}", f.terminal());
}

/// A TCP relay in front of the local registry (scripts/registry) that
/// holds every blob download until released: a pull that does not end.
struct SlowRegistry {
    addr: String,
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRegistry {
    fn start() -> SlowRegistry {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/registry");
        let upstream_addr = sh_ok(Command::new("bash").arg(script)).trim().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let release = std::sync::Arc::new(AtomicBool::new(false));
        let rel = release.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(&upstream_addr) else { continue };
                let blob = std::sync::Arc::new(AtomicBool::new(false));
                for (from, to, requests) in [
                    (client.try_clone(), upstream.try_clone(), true),
                    (upstream.try_clone(), client.try_clone(), false),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                    let (rel, blob) = (rel.clone(), blob.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if requests && buf[..n].windows(7).any(|w| w == b"/blobs/") {
                                blob.store(true, Ordering::SeqCst);
                            }
                            while !requests && blob.load(Ordering::SeqCst) && !rel.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
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
        SlowRegistry { addr, release }
    }

    /// A fresh image (a layer of its own) pushed straight to the registry,
    /// named through this relay, absent from the engine.
    fn image(&self, upstream: &str) -> String {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = format!("quire-ci-test/faults-pull:{}-{nanos}", std::process::id());
        let direct = format!("{upstream}/{path}");
        let dockerfile = format!("FROM {}\nRUN head -c 3000000 /dev/urandom > /blob\n", harness::IMAGE);
        let ctx = tempfile::tempdir().expect("build context");
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
        sh_ok(Command::new("docker").args(["build", "-q", "-t", &direct]).arg(ctx.path()));
        sh_ok(Command::new("docker").args(["push", &direct]));
        sh_ok(Command::new("docker").args(["rmi", &direct]));
        format!("{}/{path}", self.addr)
    }
}

impl Drop for SlowRegistry {
    fn drop(&mut self) {
        self.release.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn interrupt_while(repo: &Repo, needle: &str, sig: i32) -> Finished {
    let before = repo.run_ids();
    let mut running = Running::spawn(repo.cmd(&["run"]));
    running.wait_for_line(needle);
    running.signal(sig);
    let (code, out, err) = running.finish();
    let id = new_run_id(repo, &before);
    Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(id)) }
}

/// Item 4: a signal during a pull that would not end stops the run.
#[test]
fn docker_sigint_and_sigterm_during_an_image_pull_stop_the_run() {
    let slow = SlowRegistry::start();
    let upstream =
        sh_ok(Command::new("bash").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/registry"))).trim().to_string();
    let image = slow.image(&upstream);
    let repo = Repo::new(&format!(
        "(local ci (require :quire.ci))\n(ci.image {image:?})\n(ci.job :t [:quire/push] (fn [{{: sh}}] (sh \"echo ran\") {{}}))\n"
    ));
    for (sig, name, code) in [(libc::SIGINT, "SIGINT", 130), (libc::SIGTERM, "SIGTERM", 143)] {
        let f = interrupt_while(&repo, "pulling", sig);
        assert_eq!(f.code, Some(code), "{name} during a pull\n{}", f.terminal());
        assert_eq!(f.status(), "canceled", "{name}");
        assert!(!f.terminal().contains("ran\n"), "the job ran: {}", f.terminal());
        f.assert_clean();
        // It stopped during the pull, not after it: the image never arrived.
        let present =
            Command::new("docker").args(["image", "inspect", &image]).output().expect("docker").status.success();
        assert!(!present, "{name}: quire-ci waited for the pull to finish");
    }
    drop(slow);
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

/// Item 4: a signal during a `.quire/Dockerfile` build that would not end.
#[test]
fn docker_sigint_during_a_dockerfile_build_stops_the_run() {
    let repo = Repo::empty();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    repo.write(".quire/Dockerfile", format!("FROM {}\nRUN echo building-{nanos}; sleep 3600\n", harness::IMAGE));
    repo.write(".quire/ci.fnl", QUICK);
    repo.commit("ci");
    let mut cmd = repo.cmd(&["run"]);
    cmd.env_remove("QUIRE_CI_IMAGE");
    let before = repo.run_ids();
    let mut running = Running::spawn(cmd);
    running.wait_for_line(&format!("building-{nanos}"));
    running.signal(libc::SIGINT);
    let (code, out, err) = running.finish();
    let f = Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(new_run_id(&repo, &before))) };
    assert_eq!(f.code, Some(130), "SIGINT during a build\n{}", f.terminal());
    assert_eq!(f.status(), "canceled");
    f.assert_clean();
    // The engine stopped the build too: no build step is left running.
    let marker = format!("building-{nanos}");
    poll("the build step to stop", || {
        let ps = sh_ok(Command::new("docker").args(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]));
        (!ps.contains(&marker)).then_some(())
    });
}

/// Lists /work as the job sees it, and the content of `x`.
const LISTER: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh}] (sh "ls -a /work; cat x") {}))
"#;

/// Item 5: `--out` inside the working tree is never in the snapshot: the
/// second run neither sees the first one's record nor gets another tree.
#[test]
fn docker_out_inside_the_tree_is_not_in_the_snapshot() {
    let repo = Repo::new(LISTER);
    repo.write("x", "v1\n");
    repo.commit("x");
    let out = repo.path.join("ci-runs");
    let first = repo.run(&["run", "--out", "ci-runs"]);
    first.expect_code(0);
    let runs: Vec<_> = std::fs::read_dir(&out).expect("--out dir").flatten().collect();
    assert_eq!(runs.len(), 1);
    let first_dir = runs[0].path();
    let first = Finished { dir: Some(first_dir.clone()), ..first };
    let second = repo.run(&["run", "--out", "ci-runs"]);
    second.expect_code(0);
    let second_dir = std::fs::read_dir(&out)
        .expect("--out")
        .flatten()
        .map(|e| e.path())
        .find(|p| p != &first_dir)
        .expect("second run");
    let second = Finished { dir: Some(second_dir), ..second };
    let listing = String::from_utf8_lossy(&second.output("t", 1, "stdout")).into_owned();
    assert!(listing.contains("x\n") && !listing.contains("ci-runs"), "the record went into /work:\n{listing}");
    assert_eq!(first.meta()["tree"], second.meta()["tree"], "the run directory changed the tree");
}

/// `quire-ci watch` in the background, its output in a file.
struct Watching {
    child: Child,
    log: std::path::PathBuf,
}

impl Watching {
    fn start(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> Watching {
        let log = repo.path.parent().unwrap().join("watch.log");
        let f = std::fs::File::create(&log).expect("log");
        let mut cmd = repo.cmd(args);
        cmd.stdout(f.try_clone().expect("clone")).stderr(f);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Watching { child: cmd.spawn().expect("spawn watch"), log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// The finished runs in `dir`, oldest first, with what `cat x` printed.
fn finished_runs(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut runs: Vec<_> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    runs.sort();
    runs.into_iter()
        .filter(|d| {
            std::fs::read_to_string(d.join("log.jsonl"))
                .unwrap_or_default()
                .lines()
                .last()
                .is_some_and(|l| l.contains("\"run-end\""))
        })
        .map(|d| {
            let f = Finished { code: None, stdout: String::new(), stderr: String::new(), dir: Some(d.clone()) };
            let out = String::from_utf8_lossy(&f.output("t", 1, "stdout")).into_owned();
            (d, out)
        })
        .collect()
}

fn watch_with_out_inside(env: &[(&str, &str)]) {
    let repo = Repo::new(LISTER);
    repo.write("x", "v1\n");
    repo.commit("x");
    let out = repo.path.join("ci-runs");
    let w = Watching::start(&repo, &["watch", "--out", "ci-runs", "--debounce", "50"], env);
    for (n, v) in ["v1", "v2", "v3"].iter().enumerate() {
        if n > 0 {
            repo.write("x", format!("{v}\n"));
        }
        poll(&format!("a run that saw {v}"), || {
            finished_runs(&out).iter().any(|(_, o)| o.contains(&format!("{v}\n"))).then_some(())
        });
    }
    let runs = finished_runs(&out);
    let seen: Vec<String> = runs.iter().map(|(_, o)| o.lines().last().unwrap_or("").to_string()).collect();
    assert_eq!(seen, ["v1", "v2", "v3"], "one run per edit, none set off by the run directory\n{}", w.output());
    for (_, o) in &runs {
        assert!(!o.contains("ci-runs"), "the record went into /work:\n{o}");
    }
}

/// Item 5, polling watcher (also the fallback when inotify limits are hit).
#[test]
fn docker_watch_polling_with_out_inside_runs_once_per_edit() {
    watch_with_out_inside(&[("QUIRE_CI_WATCH_POLL", "1")]);
}

/// Item 5, inotify watcher.
#[test]
fn docker_watch_inotify_with_out_inside_runs_once_per_edit() {
    watch_with_out_inside(&[]);
}

/// Item 6: relative links that climb out of the repository arrive in /work
/// as git stores them (the engine's unpacker alone refuses them).
#[test]
fn docker_links_climbing_out_of_the_repo_arrive_as_git_stores_them() {
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh}] (sh "readlink docs/CONTRIBUTING.md; readlink only/deep; readlink up; cat README") {}))
"#,
    );
    repo.write("README", "readme\n");
    std::fs::create_dir_all(repo.path.join("docs")).unwrap();
    std::fs::create_dir_all(repo.path.join("only")).unwrap();
    std::os::unix::fs::symlink("../../shared/CONTRIBUTING.md", repo.path.join("docs/CONTRIBUTING.md")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../etc/hostname", repo.path.join("only/deep")).unwrap();
    std::os::unix::fs::symlink("..", repo.path.join("up")).unwrap();
    repo.commit("links");
    let want = "../../shared/CONTRIBUTING.md\n../../../../../../../etc/hostname\n..\nreadme\n";
    let f = repo.run(&["run"]);
    f.expect_code(0).assert_clean();
    assert_eq!(String::from_utf8_lossy(&f.output("t", 1, "stdout")), want, "{}", f.terminal());
    // From a commit (the hook's snapshot): the links come from the objects.
    let before = repo.run_ids();
    let out = push_through_hook(&repo, &[]);
    assert!(out.status.success(), "push refused:\n{}", String::from_utf8_lossy(&out.stderr));
    let hooked =
        Finished { code: Some(0), stdout: String::new(), stderr: String::new(), dir: repo.new_run_dir(&before) };
    assert_eq!(String::from_utf8_lossy(&hooked.output("t", 1, "stdout")), want);
}

fn assert_nowhere(f: &Finished, what: &str, needles: &[&str]) {
    let record = f.all_record_bytes();
    let terminal = f.terminal();
    for n in needles {
        assert!(!harness::record::contains_bytes(&record, n.as_bytes()), "{what}: {n:?} is in the run record");
        assert!(!terminal.contains(n), "{what}: {n:?} is on the terminal:\n{terminal}");
    }
}

/// Item 7: a secret in a bad `:cwd` is masked in every form the error shows.
#[test]
fn docker_a_secret_in_a_bad_cwd_is_masked_everywhere() {
    let secret = "/etc/s3cr\"et\\x\tz\nq";
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh : secret}] (sh "pwd" {:cwd (secret :DIR)}) {}))
"#,
    );
    for json in [false, true] {
        let mut cmd = repo.cmd(if json { &["run", "--json"][..] } else { &["run"][..] });
        cmd.env("QUIRE_SECRET_DIR", secret);
        let f = repo.run_cmd(cmd);
        assert_eq!(f.code, Some(1), "{}", f.terminal());
        assert!(f.terminal().contains("outside /work"), "{}", f.terminal());
        let escaped_debug = format!("{secret:?}");
        let escaped_json = serde_json::to_string(secret).unwrap();
        let inner = |q: &str| q[1..q.len() - 1].to_string();
        let (d, j) = (inner(&escaped_debug), inner(&escaped_json));
        assert_nowhere(&f, "cwd error", &[secret, "s3cr", &d, &j]);
    }
}

/// Item 7: a number made from a secret is masked in outputs, the log and --json.
#[test]
fn docker_a_numeric_output_made_from_a_secret_is_masked() {
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: secret}] {:pin (tonumber (secret :PIN)) :twice (* 2 (tonumber (secret :PIN)))}))
"#,
    );
    for json in [false, true] {
        let mut cmd = repo.cmd(if json { &["run", "--json"][..] } else { &["run", "-v"][..] });
        cmd.env("QUIRE_SECRET_PIN", "734519");
        let f = repo.run_cmd(cmd);
        f.expect_code(0);
        assert_nowhere(&f, "numeric output", &["734519"]);
        assert_eq!(f.job_end("t")["outputs"]["pin"], "***");
    }
}

/// A job that prints every kind of hostile sequence, then fails.
const HOSTILE: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push]
  (fn [{: sh}]
    (sh "printf 'x\\033]52;c;ZXZpbA==\\a\\033]0;pwned\\a\\033[2Kerased\\033[1A\\033[31mred\\033[8mhidden\\007\\n'; exit 3")
    {:exit 1}))
"#;

/// The escape sequences in `text` that are not SGR (`ESC[…m`), and whether
/// a conceal (SGR 8) is among the SGRs.
fn unsafe_escapes(text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        let seq = &rest[at..];
        let sgr = seq.strip_prefix("\x1b[").and_then(|s| s.find('m').map(|end| &s[..end]));
        match sgr {
            Some(params) if params.chars().all(|c| c.is_ascii_digit() || c == ';') => {
                if params.split(';').any(|p| p == "8") {
                    bad.push(format!("conceal in {params:?}"));
                }
            }
            _ => bad.push(seq.chars().take(8).collect()),
        }
        rest = &seq[1..];
    }
    if text.contains('\x07') {
        bad.push("BEL".into());
    }
    bad
}

/// `text` without its SGR sequences (what a reader sees of it).
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('m') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Item 10: what job output draws on the terminal is safe, in plain and
/// coloured mode, live, in the summary's excerpt and in `logs`; the log
/// keeps the bytes.
#[test]
fn docker_terminal_control_sequences_in_job_output_are_not_drawn() {
    let repo = Repo::new(HOSTILE);
    for colour in ["never", "always"] {
        let f = repo.run(&["--color", colour, "run"]);
        f.expect_code(1);
        let bad = unsafe_escapes(&f.stdout);
        assert!(bad.is_empty(), "--color {colour}: unsafe sequences drawn: {bad:?}\n{:?}", f.stdout);
        if colour == "never" {
            assert!(!f.stdout.contains('\x1b'), "plain mode draws no escape at all: {:?}", f.stdout);
        }
        // Everything stays readable: the text, the FAILED line, the summary.
        let text = strip_sgr(&f.stdout);
        for want in ["erased", "red", "hidden", "FAILED t", "run failed"] {
            assert!(text.contains(want), "--color {colour}: {want:?} missing:\n{text}");
        }
        // The summary's excerpt of the job's last lines is safe too: the
        // line appears twice (live and excerpt), both safe.
        assert!(text.matches("hidden").count() >= 2, "no excerpt in the summary:\n{text}");
        let raw = f.output("t", 1, "stdout");
        assert!(harness::record::contains_bytes(&raw, b"\x1b]52;c;ZXZpbA==\x07"), "the log must keep the raw bytes");

        let logs = repo.cmd(&["--color", colour, "logs"]).output().expect("logs");
        let shown = String::from_utf8_lossy(&logs.stdout);
        let bad = unsafe_escapes(&shown);
        assert!(bad.is_empty(), "logs --color {colour}: {bad:?}\n{shown:?}");
        let shown = strip_sgr(&shown);
        assert!(shown.contains("hidden") && shown.contains("FAILED t"), "{shown}");
    }
}

/// Runs `quire-ci ARGS` in `repo`; a run that does not end within a minute
/// (a blocked read) is killed and fails the test.
fn quire_bounded(repo: &Repo, args: &[&str]) -> (Option<i32>, String) {
    let mut child = repo.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let out = line_reader(child.stdout.take().unwrap());
    let err = line_reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("quire-ci {args:?} never ended");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text: Vec<String> = out.iter().chain(err.iter()).collect();
    (status.code(), text.join("\n"))
}

const REQUIRES_EVIL: &str = r#"(local ci (require :quire.ci))
(local evil (require :evil))
(ci.job :t [:quire/push] (fn [] {}))
"#;

/// Item 2: `.quire/` reads stay in the repository, read regular files only,
/// and are bounded — for validate, list and doctor.
#[test]
fn quire_dir_reads_refuse_links_out_special_files_and_huge_files() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("host.fnl"), "{:stolen true}\n").unwrap();
    std::fs::create_dir_all(outside.path().join("dotquire")).unwrap();
    std::fs::write(outside.path().join("dotquire/ci.fnl"), QUICK).unwrap();
    type Setup = Box<dyn Fn(&Repo)>;
    let host = outside.path().join("host.fnl");
    let dotquire = outside.path().join("dotquire");
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "module -> /dev/zero",
            Box::new(|r: &Repo| {
                r.write(".quire/ci.fnl", REQUIRES_EVIL);
                std::os::unix::fs::symlink("/dev/zero", r.path.join(".quire/evil.fnl")).unwrap();
            }),
            "symbolic link",
        ),
        (
            "module -> a host file",
            Box::new(move |r: &Repo| {
                r.write(".quire/ci.fnl", REQUIRES_EVIL);
                std::os::unix::fs::symlink(&host, r.path.join(".quire/evil.fnl")).unwrap();
            }),
            "symbolic link",
        ),
        (
            ".quire -> a host directory",
            Box::new(move |r: &Repo| {
                std::os::unix::fs::symlink(&dotquire, r.path.join(".quire")).unwrap();
            }),
            "symbolic link",
        ),
        (
            "ci.fnl is a FIFO",
            Box::new(|r: &Repo| {
                std::fs::create_dir_all(r.path.join(".quire")).unwrap();
                sh_ok(Command::new("mkfifo").arg(r.path.join(".quire/ci.fnl")));
            }),
            "not a regular file",
        ),
        (
            "a 9 MiB module",
            Box::new(|r: &Repo| {
                r.write(".quire/ci.fnl", REQUIRES_EVIL);
                r.write(".quire/evil.fnl", vec![b' '; 9 * 1024 * 1024]);
            }),
            "at most 8 MiB",
        ),
    ];
    for (name, setup, want) in cases {
        let repo = Repo::empty();
        setup(&repo);
        for args in [&["validate"][..], &["list"][..]] {
            let (code, text) = quire_bounded(&repo, args);
            assert_eq!(code, Some(2), "{name}: {args:?}\n{text}");
            assert!(text.contains(want), "{name}: {args:?} should say {want:?}:\n{text}");
            assert!(!text.contains("stolen"), "{name}: a host file was evaluated");
        }
        let (code, text) = quire_bounded(&repo, &["doctor"]);
        assert_ne!(code, Some(0), "{name}: doctor said ok\n{text}");
        assert!(text.contains(want), "{name}: doctor should say {want:?}:\n{text}");
    }
}

/// Smaller item: a run whose quire-ci was killed shows as `abandoned` in
/// `runs`, not `running` forever.
#[test]
fn docker_a_killed_run_is_listed_as_abandoned() {
    let repo = Repo::new(WAITER);
    let before = repo.run_ids();
    let mut running = Running::spawn(repo.cmd(&["run"]));
    running.wait_for_line("| started");
    let id = new_run_id(&repo, &before);
    running.signal(libc::SIGKILL);
    let _ = running.finish();
    for c in containers_of_run(&id) {
        let _ = Command::new("docker").args(["rm", "-f", &c]).output();
    }
    let listing = sh_ok(&mut repo.cmd(&["runs"]));
    let line = listing.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} not listed:\n{listing}"));
    assert!(line.contains("abandoned"), "{line}");
    let json = sh_ok(&mut repo.cmd(&["runs", "--json"]));
    assert!(json.contains("\"abandoned\":true"), "{json}");
}

/// Smaller item: `init` does not write through a `.quire` linked out of the repo.
#[test]
fn init_refuses_a_dot_quire_linked_out_of_the_repository() {
    let repo = Repo::empty();
    let outside = tempfile::tempdir().expect("outside");
    std::os::unix::fs::symlink(outside.path(), repo.path.join(".quire")).unwrap();
    let out = repo.cmd(&["init"]).output().expect("init");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "init wrote outside the repository");
}

/// Smaller items: a job cut off by its container's death is `canceled`
/// (docs/log-format.md), not `failed`; a command killed with its container
/// exits 137 (SIGKILL), one whose engine went away has no known exit (-1).
#[test]
fn docker_container_death_cancels_the_job_and_an_engine_death_is_no_sigkill() {
    // Killed from outside.
    let repo = Repo::new(WAITER);
    let before = repo.run_ids();
    let mut running = Running::spawn(repo.cmd(&["run"]));
    running.wait_for_line("| started");
    let id = new_run_id(&repo, &before);
    let c = containers_of_run(&id);
    sh_ok(Command::new("docker").args(["kill", &c[0]]));
    let (code, out, err) = running.finish();
    let f = Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(&id)) };
    f.expect_code(3).assert_clean();
    assert_eq!(f.job_end("wait")["outcome"], "canceled", "{}", f.terminal());
    let exit = f.job_log("wait").into_iter().find(|e| e["kind"] == "sh-exit").expect("sh-exit");
    assert_eq!((exit["exit"].as_i64(), exit["signal"].as_str()), (Some(137), Some("SIGKILL")));

    // The engine gone.
    let repo = Repo::new(WAITER);
    let relay = Relay::start(repo.path.parent().unwrap(), None);
    let before = repo.run_ids();
    let mut cmd = repo.cmd(&["run"]);
    cmd.env("DOCKER_HOST", relay.docker_host());
    let mut running = Running::spawn(cmd);
    running.wait_for_line("| started");
    let id = new_run_id(&repo, &before);
    relay.cut();
    let (code, out, err) = running.finish();
    for c in containers_of_run(&id) {
        let _ = Command::new("docker").args(["rm", "-f", &c]).output();
    }
    let f = Finished { code, stdout: out, stderr: err, dir: Some(repo.runs_dir().join(&id)) };
    f.expect_code(3);
    f.rec().assert_valid();
    assert_eq!(f.job_end("wait")["outcome"], "canceled", "{}", f.terminal());
    let exit = f.job_log("wait").into_iter().find(|e| e["kind"] == "sh-exit").expect("sh-exit");
    assert_eq!(exit["exit"], -1, "{exit}");
    assert!(exit.get("signal").is_none_or(|s| s.is_null()), "{exit}");
}

/// Smaller item: a SHA-256 repository is named as such, by run and doctor.
#[test]
fn a_sha256_repository_is_named_not_missing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("r");
    sh_ok(Command::new("git").args(["init", "-q", "--object-format=sha256", "-b", "main"]).arg(&dir));
    std::fs::create_dir_all(dir.join(".quire")).unwrap();
    std::fs::write(dir.join(".quire/ci.fnl"), QUICK).unwrap();
    for args in [&["run"][..], &["validate"][..], &["doctor"][..]] {
        let out =
            Command::new(harness::bin()).args(args).current_dir(&dir).env("NO_COLOR", "1").output().expect("quire-ci");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("SHA-256"), "{args:?}:\n{text}");
        assert!(!text.contains("not inside a git repository"), "{args:?}:\n{text}");
        assert_ne!(out.status.code(), Some(0), "{args:?}:\n{text}");
    }
}

/// Smaller items: `include` and a string literal past the reader's reach
/// are explained, not reported as a Lua internal or "nested thousands deep".
#[test]
fn include_and_a_huge_string_literal_get_plain_messages() {
    let repo = Repo::empty();
    repo.write(".quire/helpers.fnl", "{}\n");
    repo.write(
        ".quire/ci.fnl",
        "(local ci (require :quire.ci))\n(include :helpers)\n(ci.job :t [:quire/push] (fn [] {}))\n",
    );
    let (code, text) = quire_bounded(&repo, &["validate"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("include is not available") && text.contains("(require :NAME)"), "{text}");
    let long = "a".repeat(30_000);
    repo.write(
        ".quire/ci.fnl",
        format!("(local ci (require :quire.ci))\n(local s \"{long}\")\n(ci.job :t [:quire/push] (fn [] {{}}))\n"),
    );
    let (code, text) = quire_bounded(&repo, &["validate"]);
    assert_eq!(code, Some(2), "{}", &text[..text.len().min(2000)]);
    assert!(text.contains("a string literal of 30000 characters"), "{}", &text[..text.len().min(2000)]);
    assert!(!text.contains("nested thousands deep"));
}
