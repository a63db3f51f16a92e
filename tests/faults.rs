//! Faults and bad input (issue 14): each test here failed on the code before
//! its fix. Real binary, real Docker engine, real git repositories.

mod run_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{containers_of_run, sh_ok, Finished, Repo};

/// A `quire-ci` in the background, its stdout read line by line.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
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
        Running { child, lines: rx }
    }

    /// Blocks until a stdout line contains `needle`; returns the lines so far.
    fn wait_for_line(&mut self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => {
                    seen.push(l);
                    return seen;
                }
                Ok(l) => seen.push(l),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("quire-ci never printed {needle:?}; it printed:\n{}", seen.join("\n"));
                }
            }
        }
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
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                let out: Vec<String> = self.lines.try_iter().collect();
                return (status.code(), out.join("\n"), err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("quire-ci did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

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
/// /tmp/go inside its container.
const WAITER: &str = r#"(local ci (require :quire.ci))
(ci.job :wait [:quire/push] (fn [{: sh}] (sh "echo started; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo released") {}))
"#;

const QUICK: &str = r#"(local ci (require :quire.ci))
(ci.job :quick [:quire/push] (fn [{: sh}] (sh "echo quick") {}))
"#;

/// The newest run id in a repo, once one appears after `before`.
fn new_run_id(repo: &Repo, before: &[String]) -> String {
    poll("the run's record", || {
        repo.new_run_dir(before).map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
    })
}

fn release(run_id: &str) {
    let ids = containers_of_run(run_id);
    assert_eq!(ids.len(), 1, "one running container for run {run_id}: {ids:?}");
    sh_ok(Command::new("docker").args(["exec", &ids[0], "touch", "/tmp/go"]));
}

fn in_new_pid_namespace(cmd: Command) -> Command {
    let mut u = Command::new("unshare");
    u.args(["--pid", "--fork", "--mount-proc"]).arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        u.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => u.env(k, v),
            None => u.env_remove(k),
        };
    }
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
    running.wait_for_line("started");
    let a_id = new_run_id(&a, &before);

    let b_cmd = if a_unshared { b.cmd(&["run"]) } else { in_new_pid_namespace(b.cmd(&["run"])) };
    let b_run = b.run_cmd(b_cmd);
    b_run.expect_code(0);
    assert!(
        !b_run.terminal().contains("left behind"),
        "B reaped a live run's container:\n{}",
        b_run.terminal()
    );
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

/// Item 3 through the hook: the push goes through.
#[test]
fn docker_non_utf8_environment_does_not_refuse_a_push() {
    let repo = Repo::new(QUICK);
    let remote = repo.path.parent().unwrap().join("remote.git");
    sh_ok(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&remote));
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    let install = repo.cmd(&["hook", "install"]).output().expect("hook install");
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let out = Command::new("git")
        .args(["push", "-q", "origin", "main"])
        .current_dir(&repo.path)
        .env("QUIRE_CI_IMAGE", run_support::IMAGE)
        .env("NO_COLOR", "1")
        .env("QUIRE_CI_NO_CACHE", "1")
        .env("OLDPWD", non_utf8())
        .output()
        .expect("git push");
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
    assert!(again.stderr.contains("cached"), "the same run is a hit:\n{}", again.terminal());

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
