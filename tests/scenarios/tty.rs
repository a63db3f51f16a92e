//! The live view in a real pseudo-terminal (tmux): colours, the status line
//! while a command runs, `\r` progress kept off the scrollback, long lines
//! wrapped, and every output line on the screen exactly once (the status
//! line never tears or duplicates streamed lines). Needs Docker and tmux.

use std::time::Duration;

use crate::harness::tty::{has_spinner, Tmux};
use crate::harness::{containers_of_run, Repo};

/// A bound on hangs, not a figure.
const LIMIT: Duration = Duration::from_secs(120);

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
    let repo = Repo::with_ci(CI);
    let tmux = Tmux::quire("live", &repo, "", "run");

    // While `sleep 3` runs: the status line names job and command and counts.
    tmux.wait_for("before-sleep", LIMIT);
    let status = tmux.wait_until("the status line of `sleep 3`", LIMIT, |s| {
        s.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.contains("build $ echo before-sleep; sleep 3"))
    });
    let status = status.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    assert!(status.trim_end().ends_with('s'), "the status line shows elapsed time: {status:?}");

    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 0"), "the run failed:\n{done}");
    let coloured = tmux.capture(true);
    // The first job's colour: cyan, in the short form (src/render/tally.rs).
    assert!(coloured.contains("\x1b[36m"), "no job colour on a TTY:\n{coloured}");

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
    let xs: usize =
        done.lines().filter(|l| l.contains("build | x") || l.contains('↳')).map(|l| l.matches('x').count()).sum();
    assert_eq!(xs, 300, "wrapping lost or duplicated characters:\n{done}");
    // No spinner left behind once the run is over.
    let tail: String = done.lines().rev().take(12).collect::<Vec<_>>().join("\n");
    assert!(!has_spinner(&tail), "a spinner stayed on screen:\n{tail}");
}

#[test]
fn docker_tty_shell_on_failure_opens_a_shell_in_the_container() {
    let repo = Repo::with_ci(
        r#"(local ci (require :quire.ci))
(ci.job :test [:quire/push]
  (fn [{: sh}]
    (sh "echo state-from-the-job > left-behind.txt")
    (let [r (sh "exit 4")] {:exit r.exit})))
(ci.job :after [:test] (fn [{: sh}] (sh "echo never") {}))
"#,
    );
    let tmux = Tmux::quire("shell", &repo, "", "run --shell-on-failure");
    tmux.wait_for("opening a shell", LIMIT);
    // The shell's prompt, then a command that shows the job's state.
    tmux.wait_until("the container shell's prompt", LIMIT, |s| {
        s.split("opening a shell")
            .nth(1)
            .is_some_and(|after| after.lines().any(|l| l.trim_end().ends_with('#') || l.trim_end().ends_with('$')))
    });
    tmux.send("cat /work/left-behind.txt; pwd");
    tmux.send("Enter");
    tmux.wait_until("the shell's answer", LIMIT, |s| {
        s.split("opening a shell").nth(1).is_some_and(|a| a.contains("\n/work"))
    });
    tmux.send("exit");
    tmux.send("Enter");
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 1"), "the run should end failed after the shell:\n{done}");
    assert!(done.matches("state-from-the-job").count() >= 2, "the shell did not see the job's files:\n{done}");
    let after_shell = done.split("opening a shell").nth(1).unwrap_or_default();
    assert!(after_shell.contains("\n/work"), "the shell did not start in /work:\n{done}");
    assert!(after_shell.contains("skipped after: because :test failed"), "{done}");
    // Teardown after the shell: the record is clean, no container left.
    let run = repo.runs().pop().expect("a run record");
    crate::harness::Record::new(run.clone()).assert_clean();
    let id = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    crate::harness::wait_no_container_of_run(&id);
}

#[test]
fn docker_tty_no_color_means_plain() {
    let repo = Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo start; sleep 2; echo end\") {}))\n");
    let tmux = Tmux::quire("nocolor", &repo, "NO_COLOR=1", "run");
    // Every capture while the command runs, from its first line to its
    // last: a status line would show in them (the live test proves it
    // does on a colour terminal).
    tmux.wait_for("t | start", LIMIT);
    tmux.wait_until("the command's last line", LIMIT, |s| {
        assert!(!has_spinner(s), "a spinner under NO_COLOR:\n{s}");
        s.contains("t | end")
    });
    tmux.wait_for("__DONE__", LIMIT);
    let coloured = tmux.capture(true);
    assert!(!coloured.contains("\x1b["), "escape codes under NO_COLOR:\n{coloured:?}");
}

#[test]
fn docker_tty_ctrl_c_leaves_no_stale_status_line() {
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo started; sleep 30\") {}))\n",
    );
    let tmux = Tmux::quire("ctrlc", &repo, "", "run");
    tmux.wait_for("t | started", LIMIT);
    // Ctrl-C once the status line is drawn: that is what must not stay.
    tmux.wait_until("the status line", LIMIT, |_| has_spinner(&tmux.bottom()));
    tmux.send("C-c");
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 130"), "{done}");
    assert!(!has_spinner(&done), "a status line was left on screen:\n{done}");
    assert!(done.contains("run canceled"), "{done}");
}

#[test]
fn docker_tty_one_status_row_per_running_job() {
    // Both jobs wait for a file the test puts in the container once it has
    // seen both rows.
    let repo = Repo::with_ci(
        r#"(local ci (require :quire.ci))
(local gate "i=0; until [ -f /work/.go ] || [ $i -ge 1200 ]; do sleep 0.05; i=$((i+1)); done")
(ci.job :alpha [:quire/push] (fn [{: sh}] (sh (.. "echo alpha-up; " gate)) {}))
(ci.job :beta [:quire/push] (fn [{: sh}] (sh (.. "echo beta-up; " gate)) {}))
"#,
    );
    let tmux = Tmux::quire("rows", &repo, "", "run -j 2");
    let screen = tmux.wait_until("a status row for each running job", LIMIT, |s| {
        let rows: Vec<&str> = s.lines().filter(|l| has_spinner(l)).collect();
        rows.len() == 2
            && rows.iter().any(|r| r.contains("alpha $ echo alpha-up"))
            && rows.iter().any(|r| r.contains("beta $ echo beta-up"))
            && s.contains("alpha | alpha-up")
            && s.contains("beta  | beta-up")
    });
    let rows: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).rev().take(2).collect();
    assert!(
        rows.iter().all(|r| has_spinner(r) && r.trim_end().ends_with('s')),
        "the rows are the last two, each with its clock:\n{screen}"
    );
    assert!(screen.contains("alpha | alpha-up") && screen.contains("beta  | beta-up"), "{screen}");
    let run = repo.runs().pop().expect("the run's record");
    let id = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for c in containers_of_run(&id) {
        crate::harness::sh_ok(std::process::Command::new("docker").args(["exec", &c, "touch", "/work/.go"]));
    }
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 0"), "{done}");
    assert!(!has_spinner(&done), "a status row was left on screen:\n{done}");
    assert_eq!(done.matches("alpha | alpha-up").count(), 1, "{done}");
    assert_eq!(done.matches("beta  | beta-up").count(), 1, "{done}");
}

#[test]
fn docker_tty_ctrl_c_with_several_rows_leaves_none_behind() {
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :one [:quire/push] (fn [{: sh}] (sh \"echo one-up; sleep 30\") {}))\n(ci.job :two [:quire/push] (fn [{: sh}] (sh \"echo two-up; sleep 30\") {}))\n",
    );
    let tmux = Tmux::quire("ctrlc-rows", &repo, "", "run -j 2");
    tmux.wait_until("both rows", LIMIT, |s| s.lines().filter(|l| has_spinner(l)).count() == 2);
    tmux.send("C-c");
    let done = tmux.wait_for("__DONE__", LIMIT);
    assert!(done.contains("__DONE__ 130"), "{done}");
    assert!(!has_spinner(&done), "a status row was left on screen:\n{done}");
    assert!(done.contains("canceling the run"), "the interrupt message was drawn over:\n{done}");
    assert!(done.contains("run canceled"), "{done}");
}
