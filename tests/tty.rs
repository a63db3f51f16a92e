//! The live view in a real pseudo-terminal (tmux): colours, the status line
//! while a command runs, `\r` progress kept off the scrollback, long lines
//! wrapped, and every output line on the screen exactly once (the status
//! line never tears or duplicates streamed lines). Needs Docker and tmux.

#[path = "common/repo.rs"]
mod repo;

use std::process::Command;
use std::time::{Duration, Instant};

use repo::Repo;

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let socket = format!("quire-ci-tty-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let ok = Command::new("tmux")
            .args(["-L", &t.socket, "new-session", "-d", "-x", "120", "-y", "40", "-s", "t", cmd])
            .status()
            .expect("tmux is installed");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    /// The pane with escapes (`-e`) and the whole scrollback.
    fn capture(&self, escapes: bool) -> String {
        let mut args = vec!["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-", "-t", "t"];
        if escapes {
            args.push("-e");
        }
        let out = Command::new("tmux").args(&args).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture(false);
            if screen.contains(needle) {
                return screen;
            }
            assert!(start.elapsed() < timeout, "no {needle:?} on the screen within {timeout:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

const CI: &str = r#"(local ci (require :quire.ci))
(ci.job :build [:quire/push]
  (fn [{: sh}]
    (sh "i=1; while [ $i -le 40 ]; do echo line-$i end; i=$((i+1)); done")
    (sh "for p in 10 20 30 40 50 60 70 80 90; do printf \"\\rdownloading $p%%\"; sleep 0.25; done; printf '\\rdownloaded all\\n'")
    (sh "echo before-sleep; sleep 3; echo after-sleep")
    (sh "printf 'x%.0s' $(seq 1 300); echo ' long-end'")
    {}))
(ci.job :test [:build] (fn [{: sh}] (sh "echo tested >&2") {}))
"#;

#[test]
fn docker_tty_live_view() {
    let repo = Repo::new(CI);
    let cmd = format!(
        "cd {} && env -u NO_COLOR QUIRE_CI_IMAGE={} {} run; echo __DONE__ $?; sleep 600",
        repo.path().display(),
        repo::IMAGE,
        env!("CARGO_BIN_EXE_quire-ci")
    );
    let tmux = Tmux::start("live", &cmd);

    // While `sleep 3` runs: the status line names job and command and counts.
    tmux.wait_for("before-sleep", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1200));
    let mid = tmux.capture(false);
    let status = mid.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    assert!(status.contains("build $ echo before-sleep; sleep 3"), "no status line at the bottom:\n{mid}");
    assert!(status.trim_end().ends_with('s'), "the status line shows elapsed time: {status:?}");

    let done = tmux.wait_for("__DONE__", Duration::from_secs(60));
    assert!(done.contains("__DONE__ 0"), "the run failed:\n{done}");
    let coloured = tmux.capture(true);
    assert!(coloured.contains("\x1b[38;5;"), "no job colour on a TTY:\n{coloured}");

    // Every streamed line exactly once; progress redraws not in the scrollback.
    for i in 1..=40 {
        let needle = format!("| line-{i} end");
        assert_eq!(done.matches(&needle).count(), 1, "{needle:?} is not on the screen exactly once:\n{done}");
    }
    for once in ["| before-sleep", "| after-sleep", "! tested", "| downloaded all", "run succeeded"] {
        assert_eq!(done.matches(once).count(), 1, "{once:?} is not on the screen exactly once:\n{done}");
    }
    assert!(!done.contains("downloading 50%"), "\\r progress flooded the scrollback:\n{done}");
    // The 300-column line is wrapped into rows under a continuation mark.
    assert!(done.contains("↳"), "long line not wrapped:\n{done}");
    let xs: usize = done
        .lines()
        .filter(|l| l.contains("build | x") || l.contains('↳'))
        .map(|l| l.matches('x').count())
        .sum();
    assert_eq!(xs, 300, "wrapping lost or duplicated characters:\n{done}");
    // No spinner left behind once the run is over.
    let tail: String = done.lines().rev().take(12).collect::<Vec<_>>().join("\n");
    assert!(!tail.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)), "a spinner stayed on screen:\n{tail}");
}

#[test]
fn docker_tty_shell_on_failure_opens_a_shell_in_the_container() {
    let repo = Repo::new(
        r#"(local ci (require :quire.ci))
(ci.job :test [:quire/push]
  (fn [{: sh}]
    (sh "echo state-from-the-job > left-behind.txt")
    (let [r (sh "exit 4")] {:exit r.exit})))
(ci.job :after [:test] (fn [{: sh}] (sh "echo never") {}))
"#,
    );
    let cmd = format!(
        "cd {} && env -u NO_COLOR QUIRE_CI_IMAGE={} {} run --shell-on-failure; echo __DONE__ $?; sleep 600",
        repo.path().display(),
        repo::IMAGE,
        env!("CARGO_BIN_EXE_quire-ci")
    );
    let tmux = Tmux::start("shell", &cmd);
    tmux.wait_for("opening a shell", Duration::from_secs(60));
    // The shell's prompt, then a command that shows the job's state.
    std::thread::sleep(Duration::from_millis(1500));
    let keys = ["cat /work/left-behind.txt; pwd", "Enter", "exit", "Enter"];
    for k in keys {
        let ok = Command::new("tmux").args(["-L", &tmux.socket, "send-keys", "-t", "t", k]).status().expect("send-keys");
        assert!(ok.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let done = tmux.wait_for("__DONE__", Duration::from_secs(60));
    assert!(done.contains("__DONE__ 1"), "the run should end failed after the shell:\n{done}");
    assert!(done.matches("state-from-the-job").count() >= 2, "the shell did not see the job's files:\n{done}");
    let after_shell = done.split("opening a shell").nth(1).unwrap_or_default();
    assert!(after_shell.contains("\n/work"), "the shell did not start in /work:\n{done}");
    assert!(after_shell.contains("skipped after: because :test failed"), "{done}");
    // Teardown after the shell: no container of this run is left.
    let left = Command::new("docker").args(["ps", "-aq", "--filter", "label=quire-ci.run"]).output().expect("docker ps");
    let ours = repo.path().display().to_string();
    let ids = String::from_utf8_lossy(&left.stdout).to_string();
    for id in ids.split_whitespace() {
        let o = Command::new("docker").args(["inspect", "-f", "{{json .Config.Labels}}", id]).output().expect("inspect");
        assert!(!String::from_utf8_lossy(&o.stdout).contains(&ours), "container {id} of this run is left behind");
    }
}

#[test]
fn docker_tty_no_color_means_plain() {
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo start; sleep 2; echo end\") {}))\n");
    let cmd = format!(
        "cd {} && env NO_COLOR=1 QUIRE_CI_IMAGE={} {} run; echo __DONE__ $?; sleep 600",
        repo.path().display(),
        repo::IMAGE,
        env!("CARGO_BIN_EXE_quire-ci")
    );
    let tmux = Tmux::start("nocolor", &cmd);
    tmux.wait_for("t | start", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(800));
    let mid = tmux.capture(false);
    assert!(!mid.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)), "a spinner under NO_COLOR:\n{mid}");
    tmux.wait_for("__DONE__", Duration::from_secs(60));
    let coloured = tmux.capture(true);
    assert!(!coloured.contains("\x1b["), "escape codes under NO_COLOR:\n{coloured:?}");
}

#[test]
fn docker_tty_ctrl_c_leaves_no_stale_status_line() {
    let repo = Repo::new("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo started; sleep 30\") {}))\n");
    let cmd = format!(
        "cd {} && env -u NO_COLOR QUIRE_CI_IMAGE={} {} run; echo __DONE__ $?; sleep 600",
        repo.path().display(),
        repo::IMAGE,
        env!("CARGO_BIN_EXE_quire-ci")
    );
    let tmux = Tmux::start("ctrlc", &cmd);
    tmux.wait_for("t | started", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(700));
    let ok = Command::new("tmux").args(["-L", &tmux.socket, "send-keys", "-t", "t", "C-c"]).status().expect("send-keys");
    assert!(ok.success());
    let done = tmux.wait_for("__DONE__", Duration::from_secs(60));
    assert!(done.contains("__DONE__ 130"), "{done}");
    assert!(!done.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)), "a status line was left on screen:\n{done}");
    assert!(done.contains("run canceled"), "{done}");
}
