//! `quire-ci watch` end to end: the real binary as a child process, real
//! file changes in a real git repo, real Docker
//! (`QUIRE_CI_IMAGE=quire-ci-test/busybox:latest`). Assertions are on the
//! run records and on the engine's containers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, Cmd, Host, Repo, Running};

struct Watch {
    dir: PathBuf,
    run: Option<Running<'static>>,
    /// Once watch has exited: what it did (it owns the repository now).
    done: Option<harness::Output<'static>>,
}

impl Watch {
    fn start(ci_fnl: &str, extra: &[(&str, &str)], env: &[(&str, &str)]) -> Watch {
        Watch::start_with(ci_fnl, extra, env, &[])
    }

    /// As [`Watch::start`], with more arguments after `watch`.
    fn start_with(ci_fnl: &str, extra: &[(&str, &str)], env: &[(&str, &str)], args: &[&str]) -> Watch {
        Watch::launch(ci_fnl, extra, args, |c| c.envs(env))
    }

    /// As [`Watch::start`], on `host` (see [`Host`]).
    fn start_on(host: &Host, ci_fnl: &str, extra: &[(&str, &str)]) -> Watch {
        Watch::launch(ci_fnl, extra, &[], |c| c.wrapped_in(&host.wrapper()))
    }

    fn launch(
        ci_fnl: &str,
        extra: &[(&str, &str)],
        args: &[&str],
        shape: impl FnOnce(Cmd<'static>) -> Cmd<'static>,
    ) -> Watch {
        let mut repo = Repo::new().ci(ci_fnl);
        for (p, body) in extra {
            repo = repo.file(p, body);
        }
        let repo = repo.committed();
        let dir = repo.path().to_path_buf();
        let cmd = repo
            .into_quire(&[&["-v", "watch", "--no-cache"][..], args].concat())
            .docker()
            .timeout(Duration::from_secs(600));
        Watch { dir, run: Some(shape(cmd).spawn()), done: None }
    }

    fn output(&self) -> String {
        match (&self.run, &self.done) {
            (Some(r), _) => format!("{}{}", r.stdout(), r.stderr()),
            (None, Some(d)) => d.terminal(),
            (None, None) => String::new(),
        }
    }

    fn runs(&self) -> Vec<PathBuf> {
        harness::record::run_dirs(&self.dir.join(".git/quire-ci/runs"))
    }

    /// Waits until `n` runs exist and the `n`th has ended (or panics).
    fn wait_finished(&self, n: usize, limit: Duration) -> PathBuf {
        let run = self.wait_ended(n, limit);
        harness::Record::new(run.clone()).assert_clean();
        run
    }

    /// As [`Watch::wait_finished`], without the clean-run check (`--keep`).
    fn wait_ended(&self, n: usize, limit: Duration) -> PathBuf {
        let deadline = Instant::now() + limit;
        loop {
            let runs = self.runs();
            // run-end is the record's last line: the run is complete.
            if runs.len() >= n && jsonl(&runs[n - 1].join("log.jsonl")).last().is_some_and(|e| e["kind"] == "run-end") {
                return runs[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "run {n} did not finish in {limit:?}; runs: {runs:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until run `n`'s job `t` has printed something.
    fn wait_stdout(&self, n: usize, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let runs = self.runs();
            if runs.len() >= n && !stdout_of(&runs[n - 1]).is_empty() {
                return stdout_of(&runs[n - 1]);
            }
            assert!(Instant::now() < deadline, "run {n} printed nothing in {limit:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until run `n` has started its first `sh` in job `t`.
    fn wait_sh_started(&self, n: usize, limit: Duration) -> PathBuf {
        let deadline = Instant::now() + limit;
        loop {
            let runs = self.runs();
            if runs.len() >= n && job_log(&runs[n - 1]).iter().any(|e| e["kind"] == "sh-start") {
                return runs[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "run {n} started no sh in {limit:?}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until watch has said `needle`.
    fn wait_for_stderr(&self, needle: &str) {
        self.run.as_ref().expect("watch is running").wait_for_output(needle, Duration::from_secs(30));
    }

    fn still_running(&mut self) -> bool {
        self.run.as_mut().is_some_and(|r| r.is_running())
    }

    fn sigint_and_wait(&mut self) -> Option<i32> {
        let run = self.run.take().expect("watch is running");
        run.signal("INT");
        let done = self.done.insert(run.wait());
        done.code
    }

    fn signal_and_wait(&mut self, sig: &str) -> Option<i32> {
        let run = self.run.take().expect("watch is running");
        run.signal(sig);
        let done = self.done.insert(run.wait());
        done.code
    }

    /// Waits until watch holds a started container kept ready for the next
    /// run, other than those in `not`; its full id.
    fn wait_warm(&self, not: &[&str]) -> String {
        harness::wait_for(
            "a container kept ready",
            Duration::from_secs(30),
            || {
                self.listed().into_iter().find_map(|(id, name, state)| {
                    (name.starts_with("quire-ci-warm-") && state == "running" && !not.contains(&id.as_str()))
                        .then_some(id)
                })
            },
            || format!("containers: {:?}\n{}", self.listed(), self.output()),
        )
    }

    /// This repository's containers: (full id, name, state).
    fn listed(&self) -> Vec<(String, String, String)> {
        let filter = format!("label=quire-ci.repo={}", self.dir.display());
        let out = harness::sh_ok(Command::new("docker").args([
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &filter,
            "--format",
            "{{.ID}} {{.Names}} {{.State}}",
        ]));
        out.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace().map(str::to_string);
                Some((w.next()?, w.next()?, w.next()?))
            })
            .collect()
    }

    /// Waits until this repository has no container at all.
    fn wait_no_containers(&self) {
        harness::wait_for(
            "no container left",
            harness::REMOVAL_LIMIT,
            || self.listed().is_empty().then_some(()),
            || format!("containers: {:?}\n{}", self.listed(), self.output()),
        )
    }
}

/// The container id the run's `container-start` names.
fn container_started(run: &Path) -> String {
    jsonl(&run.join("log.jsonl"))
        .iter()
        .find(|e| e["kind"] == "container-start")
        .and_then(|e| e["container-id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no container-start in {}", run.display()))
}

/// The run's `container-warm` notice (`-v`).
fn warm_notice(run: &Path) -> String {
    jsonl(&run.join("log.jsonl"))
        .iter()
        .find(|e| e["kind"] == "notice" && e["code"] == "container-warm")
        .and_then(|e| e["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `docker inspect -f FORMAT id`, or None when the container is gone.
fn inspect(id: &str, format: &str) -> Option<String> {
    let out = Command::new("docker").args(["inspect", "-f", format, id]).output().expect("docker inspect");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn wait_gone(id: &str, why: &str) {
    harness::wait_for(why, harness::REMOVAL_LIMIT, || inspect(id, "{{.Id}}").is_none().then_some(()), String::new);
}

fn status(run: &Path) -> String {
    std::fs::read_to_string(run.join("state.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn job_log(run: &Path) -> Vec<Value> {
    jsonl(&run.join("jobs/t/log.jsonl"))
}

fn stdout_of(run: &Path) -> String {
    job_log(run).iter().filter(|e| e["kind"] == "stdout").filter_map(|e| e["data"].as_str()).collect()
}

const QUICK: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh}] (sh "cat f0") {}))
"#;

#[test]
fn docker_watch_one_run_per_burst_ignored_paths_do_nothing_sigint_exits_130() {
    // ignored/ exists before watch starts: a file made in a directory
    // created a moment before may come before inotify watches it.
    let mut w = Watch::start(QUICK, &[("f0", "0\n"), (".gitignore", "ignored/\n*.log\n"), ("ignored/.keep", "")], &[]);
    let first = w.wait_finished(1, Duration::from_secs(30));
    assert_eq!(status(&first), "succeeded", "{}", w.output());

    // Ignored paths, .git and editor droppings: watch sees each (-v names
    // it) and counts none; so nothing can have started.
    let ignored =
        [w.dir.join("ignored/x.txt"), w.dir.join("build.log"), w.dir.join(".git/scratch"), w.dir.join(".f0.swp")];
    for p in &ignored {
        std::fs::write(p, "x").expect("write");
    }
    for p in &ignored {
        w.wait_for_stderr(&format!("quire-ci: ignored: {}", p.display()));
        assert!(
            !w.output().contains(&format!("quire-ci: change: {}", p.display())),
            "{} counted\n{}",
            p.display(),
            w.output()
        );
    }
    assert_eq!(w.runs().len(), 1, "an ignored path started a run\n{}", w.output());

    // A burst of 20 writes: one run.
    for i in 0..20 {
        std::fs::write(w.dir.join(format!("f{i}")), format!("burst {i}\n")).expect("write");
    }
    let second = w.wait_finished(2, Duration::from_secs(30));
    assert_eq!(status(&second), "succeeded");
    assert_eq!(stdout_of(&second), "burst 0\n");
    assert!(w.output().contains("watching for changes"), "{}", w.output());

    // An editor that saves by writing a temp file and renaming it over. The
    // next run is of this save (a second run of the burst would be here,
    // printing "burst 0").
    std::fs::write(w.dir.join("f0.tmp"), "renamed\n").expect("write");
    std::fs::rename(w.dir.join("f0.tmp"), w.dir.join("f0")).expect("rename");
    let third = w.wait_finished(3, Duration::from_secs(30));
    assert_eq!(stdout_of(&third), "renamed\n", "one burst gave several runs\n{}", w.output());

    // While git holds index.lock (a checkout in progress) no run starts:
    // watch says it is waiting for git, and nothing has run.
    let lock = w.dir.join(".git/index.lock");
    std::fs::write(&lock, "").expect("lock");
    std::fs::write(w.dir.join("f0"), "after checkout\n").expect("write");
    w.wait_for_stderr("quire-ci: waiting for git to finish");
    assert_eq!(w.runs().len(), 3, "a run started while index.lock existed\n{}", w.output());
    std::fs::remove_file(&lock).expect("unlock");
    let fourth = w.wait_finished(4, Duration::from_secs(30));
    assert_eq!(stdout_of(&fourth), "after checkout\n");

    // Idle Ctrl-C: exits at once with 130, nothing left behind.
    assert_eq!(w.sigint_and_wait(), Some(130));
    w.wait_no_containers();
}

const SLOW: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh}] (sh "cat f0; sleep 30") {}))
"#;

#[test]
fn docker_watch_change_supersedes_ci_fnl_edits_apply_broken_waits_sigint_cancels() {
    let mut w = Watch::start(SLOW, &[("f0", "first\n")], &[]);
    let first = w.wait_sh_started(1, Duration::from_secs(30));

    // A change mid-run: the run ends superseded, its record complete, its
    // container gone; a new run starts with the new content.
    std::fs::write(w.dir.join("f0"), "second\n").expect("write");
    let first_done = w.wait_finished(1, Duration::from_secs(20));
    assert_eq!(first_done, first);
    assert_eq!(status(&first), "superseded", "{}", w.output());
    let run_log = jsonl(&first.join("log.jsonl"));
    assert!(run_log.iter().any(|e| e["kind"] == "container-end"), "no container-end: {run_log:?}");
    assert!(run_log.last().is_some_and(|e| e["kind"] == "run-end" && e["status"] == "superseded"), "{run_log:?}");
    let second = w.wait_stdout(2, Duration::from_secs(30));
    assert!(second.starts_with("second"), "{second}");
    let first_id = first.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    // The superseded run's container is gone (its removal is detached).
    crate::harness::wait_no_container_of_run(&first_id);

    // An edit of ci.fnl itself takes effect (and supersedes run 2).
    std::fs::write(
        w.dir.join(".quire/ci.fnl"),
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo v2\") {}))\n",
    )
    .expect("write");
    let third = w.wait_finished(3, Duration::from_secs(30));
    assert_eq!(status(&w.runs()[1]), "superseded");
    assert_eq!(status(&third), "succeeded", "{}", w.output());
    assert_eq!(stdout_of(&third), "v2\n");

    // A broken ci.fnl: its diagnostic, and watch keeps waiting.
    std::fs::write(w.dir.join(".quire/ci.fnl"), "(local ci (require :quire.ci))\n(ci.job :t [:quire/push]\n")
        .expect("write");
    let fourth = w.wait_finished(4, Duration::from_secs(30));
    assert_eq!(status(&fourth), "error");
    assert!(w.still_running(), "watch exited on a broken ci.fnl\n{}", w.output());

    // Fixed again, slow: Ctrl-C during the run cancels it, exits 130, and
    // leaves no container.
    std::fs::write(w.dir.join(".quire/ci.fnl"), SLOW).expect("write");
    let fifth = w.wait_sh_started(5, Duration::from_secs(30));
    assert_eq!(w.sigint_and_wait(), Some(130), "{}", w.output());
    assert_eq!(status(&fifth), "canceled");
    w.wait_no_containers();
}

#[test]
fn docker_watch_poll_fallback_runs_on_change() {
    let mut w = Watch::start(QUICK, &[("f0", "0\n")], &[("QUIRE_CI_WATCH_POLL", "1")]);
    w.wait_finished(1, Duration::from_secs(30));
    assert!(w.output().contains("QUIRE_CI_WATCH_POLL=1: polling"), "{}", w.output());
    std::fs::write(w.dir.join("f0"), "polled\n").expect("write");
    let second = w.wait_finished(2, Duration::from_secs(30));
    assert_eq!(stdout_of(&second), "polled\n");
    assert_eq!(w.sigint_and_wait(), Some(130));
}

/// No engine: each run's error is said once (the summary on stdout, with
/// its help line), not again as a diagnostic on stderr, and watch goes on.
#[test]
fn docker_watch_without_an_engine_says_each_runs_error_once() {
    let mut w = Watch::start(QUICK, &[("f0", "0\n")], &[("DOCKER_HOST", "unix:///nonexistent-for-watch.sock")]);
    w.wait_finished(1, Duration::from_secs(30));
    w.wait_for_stderr("watching for changes");
    assert_eq!(status(&w.runs()[0]), "error");
    assert_eq!(w.sigint_and_wait(), Some(130));
    let done = w.done.as_ref().expect("watch exited");
    done.once_on_stdout("no container engine answered")
        .once_on_stdout("help: start Docker")
        .once_on_stdout("quire_ci::engine::unreachable");
}

/// Writes a file in /work, so a container that had held this run's /work
/// would show it; sleeps when f0 says so (to look at the container mid-run).
const MARKS: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push] (fn [{: sh}] (sh "cat f0; touch made-by-run; if grep -q slow f0; then sleep 30; fi") {}))
"#;

#[test]
fn docker_watch_next_run_takes_the_container_kept_ready_fresh_each_time() {
    let mut w = Watch::start(MARKS, &[("f0", "0\n")], &[]);
    let first = w.wait_finished(1, Duration::from_secs(30));
    assert_eq!(status(&first), "succeeded", "{}", w.output());
    let first_container = container_started(&first);

    // While watch waits: a started container of the run's image, with an
    // empty /work, labelled for the reaper but for no run.
    let warm = w.wait_warm(&[&first_container]);
    assert_eq!(inspect(&warm, "{{.Config.Image}}").as_deref(), Some(harness::IMAGE));
    let label = inspect(&warm, "{{index .Config.Labels \"quire-ci.run\"}}").unwrap_or_default();
    assert!(label.starts_with("warm-"), "the warm container's run label: {label:?}");
    let pid = inspect(&warm, "{{index .Config.Labels \"quire-ci.owner-pid\"}}").unwrap_or_default();
    assert_eq!(pid, w.run.as_ref().expect("watch runs").pid().to_string(), "owner label");
    let work = harness::sh_ok(Command::new("docker").args(["exec", &warm, "ls", "-A", "/work"]));
    assert_eq!(work.trim(), "", "the container kept ready already holds a /work");

    // The change's run takes it: its container-start names the container
    // that existed before the change was written.
    std::fs::write(w.dir.join("f0"), "1\n").expect("write");
    let second = w.wait_finished(2, Duration::from_secs(30));
    assert_eq!(status(&second), "succeeded", "{}", w.output());
    assert_eq!(stdout_of(&second), "1\n");
    assert_eq!(container_started(&second), warm, "the second run did not take the container kept ready");
    assert!(warm_notice(&second).starts_with("took the container watch kept ready"), "{}", warm_notice(&second));
    wait_gone(&warm, "the second run's container removed");

    // The next one is made afresh (never the previous run's /work); the run
    // that takes it carries its name (quire-ci-<run id>) while it runs.
    let next = w.wait_warm(&[&first_container, &warm]);
    let work = harness::sh_ok(Command::new("docker").args(["exec", &next, "ls", "-A", "/work"]));
    assert_eq!(work.trim(), "", "the next container kept ready holds a /work");
    std::fs::write(w.dir.join("f0"), "slow\n").expect("write");
    let third = w.wait_sh_started(3, Duration::from_secs(30));
    assert_eq!(container_started(&third), next);
    let run_id = third.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    assert_eq!(inspect(&next, "{{.Name}}"), Some(format!("/quire-ci-{run_id}")), "not renamed for its run");

    // SIGINT mid-run: canceled, 130, and no container left (neither the
    // run's nor one kept ready).
    assert_eq!(w.sigint_and_wait(), Some(130), "{}", w.output());
    assert_eq!(status(&third), "canceled");
    w.wait_no_containers();
}

#[test]
fn docker_watch_image_change_removes_the_container_kept_ready_sigterm_leaves_none() {
    let mut w = Watch::start(QUICK, &[("f0", "0\n")], &[]);
    let first = w.wait_finished(1, Duration::from_secs(30));
    let old = w.wait_warm(&[&container_started(&first)]);

    // A .quire/Dockerfile: the next run's image is another, so the
    // container kept ready goes and the run makes its own.
    std::fs::write(w.dir.join(".quire/Dockerfile"), format!("FROM {}\nRUN echo built > /built\n", harness::IMAGE))
        .expect("write");
    let second = w.wait_finished(2, Duration::from_secs(120));
    assert_eq!(status(&second), "succeeded", "{}", w.output());
    assert_ne!(container_started(&second), old, "a container of the old image was used");
    let built = jsonl(&second.join("log.jsonl"))
        .iter()
        .find(|e| e["kind"] == "container-start")
        .and_then(|e| e["image"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(built.starts_with("quire-ci-local/"), "the run's image: {built}");
    assert!(warm_notice(&second).starts_with("the image or settings changed"), "{}", warm_notice(&second));
    wait_gone(&old, "the container kept ready for the old image removed");

    // Kept ready now: one of the new image.
    let new = w.wait_warm(&[&old, &container_started(&second)]);
    assert_eq!(inspect(&new, "{{.Config.Image}}"), Some(built));

    // SIGTERM while idle: 143, and the container kept ready is removed.
    assert_eq!(w.signal_and_wait("TERM"), Some(143), "{}", w.output());
    w.wait_no_containers();
}

#[test]
fn docker_watch_killed_leaves_a_container_kept_ready_that_the_next_run_reaps() {
    // On a host of its own: no other test's run reaps the container first.
    let host = Host::new();
    let mut w = Watch::start_on(&host, QUICK, &[("f0", "0\n")]);
    let first = w.wait_finished(1, Duration::from_secs(30));
    let warm = w.wait_warm(&[&container_started(&first)]);
    let name = inspect(&warm, "{{.Name}}").unwrap_or_default();

    // SIGKILL: watch cannot clean up; its container kept ready stays...
    assert_eq!(w.signal_and_wait("KILL"), None);
    assert!(inspect(&warm, "{{.Id}}").is_some(), "the container kept ready is gone already");

    // ...until the next quire-ci's reaper, which sees its owner is gone and
    // says so.
    let repo = w.done.as_ref().expect("watch has exited").repo();
    let out = repo.quire(&["run"]).docker().wrapped_in(&host.wrapper()).status(0).run();
    let said = format!("removing container {}, left behind", name.trim_start_matches('/'));
    let reaped_here = out.rec().run_log().iter().any(|e| {
        e["kind"] == "notice"
            && e["code"] == "orphan-reaped"
            && e["message"].as_str().is_some_and(|m| m.contains(&said))
    });
    assert!(reaped_here, "the next run did not reap {name}:\n{}", out.terminal());
    wait_gone(&warm, "the reaper removed the container kept ready");
    w.wait_no_containers();
}

/// `--keep`: each run keeps its own container, and
/// watch keeps none ready (a kept container's label is written when it is
/// created): the second run makes its own, and exit leaves the kept ones.
#[test]
fn docker_watch_keep_keeps_each_runs_container_and_none_ready() {
    let mut w = Watch::start_with(QUICK, &[("f0", "0\n")], &[], &["--keep"]);
    let first = w.wait_ended(1, Duration::from_secs(30));
    let kept_first = container_started(&first);
    std::fs::write(w.dir.join("f0"), "1\n").expect("write");
    let second = w.wait_ended(2, Duration::from_secs(30));
    let kept_second = container_started(&second);
    assert_ne!(kept_first, kept_second);
    assert_eq!(warm_notice(&second), "", "a run under --keep looked for a container kept ready");
    assert_eq!(w.sigint_and_wait(), Some(130), "{}", w.output());
    let mut left: Vec<String> = w.listed().into_iter().map(|(id, _, _)| id).collect();
    left.sort();
    let mut kept = vec![kept_first, kept_second];
    kept.sort();
    for id in &left {
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
    assert_eq!(left, kept, "exactly the two kept containers, none kept ready");
}
