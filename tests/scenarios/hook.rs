//! The pre-push hook end to end: the real binary installed as a hook, real
//! `git push` to a local bare remote, real Docker
//! (`QUIRE_CI_IMAGE=quire-ci-test/busybox:latest`; run `scripts/test-images`
//! once). Tests that need the engine say `docker` in their name and fail
//! loudly without one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{self, IMAGE};

/// A job that reports the `:quire/push` table as its outputs (nil → "nil").
const REPORT_PUSH: &str = r#"(local ci (require :quire.ci))
(ci.job :t [:quire/push]
  (fn [{: sh : jobs}]
    (let [p (jobs :quire/push)
          r (sh "cat state.txt")]
      {:exit (if (= r.stdout "red\n") 1 0)
       :seen r.stdout
       :ref p.ref
       :branch (or p.branch "nil")
       :tag (or p.tag "nil")
       :prev (or (. p :previous-sha) "nil")
       :files (table.concat (. p :files-changed) ",")})))
"#;

/// The scenario's repository with its bare remote, and the commands these
/// tests run in it (git push runs the installed hook, which runs quire-ci).
struct Repo {
    repo: harness::Repo,
    dir: PathBuf,
    remote: PathBuf,
}

/// git (scrubbed by the harness) with the settings the hook passes on to
/// quire-ci: the test image, plain output.
fn git(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("git");
    harness::scrub(&mut cmd);
    cmd.args(args).current_dir(dir).env("QUIRE_CI_IMAGE", IMAGE).stdin(std::process::Stdio::null());
    cmd.output().expect("git runs")
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(out.status.success(), "git {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Repo {
    fn new() -> Repo {
        harness::require_docker();
        let repo = harness::Repo::new().with_remote().ci(REPORT_PUSH);
        let (dir, remote) = (repo.path().to_path_buf(), repo.remote().to_path_buf());
        Repo { repo, dir, remote }
    }

    fn write(&self, path: &str, body: &str) {
        self.repo.write(path, body);
    }

    fn commit(&self, msg: &str) {
        self.repo.commit(msg);
    }

    /// `quire-ci ARGS` through the harness (the result cache on: these
    /// tests are about it), in the shape git's outputs have here.
    fn quire(&self, args: &[&str]) -> Output {
        use std::os::unix::process::ExitStatusExt;
        let out = self.repo.quire(args).env("QUIRE_CI_IMAGE", IMAGE).run();
        let status = match out.code {
            Some(c) => std::process::ExitStatus::from_raw(c << 8),
            None => std::process::ExitStatus::from_raw(9),
        };
        Output { status, stdout: out.stdout.clone().into_bytes(), stderr: out.stderr.clone().into_bytes() }
    }

    fn push(&self, args: &[&str]) -> Output {
        let mut all = vec!["push", "origin"];
        all.extend_from_slice(args);
        git(&self.dir, &all)
    }

    fn remote_ref(&self, name: &str) -> Option<String> {
        let out = git(&self.remote, &["rev-parse", "--verify", "-q", name]);
        out.status.success().then(|| text(&out.stdout).trim().to_string())
    }

    /// Run directories, oldest first; each checked for the clean-run
    /// invariants (these runs are started by git, not by the harness).
    fn runs(&self) -> Vec<PathBuf> {
        let runs = self.repo.runs();
        for r in &runs {
            harness::Record::new(r.clone()).assert_clean();
        }
        runs
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The outputs job `t` returned in the run recorded at `run`.
fn outputs(run: &Path) -> Value {
    let mut events = read_jsonl(&run.join("log.jsonl"));
    events.extend(read_jsonl(&run.join("jobs/t/log.jsonl")));
    events
        .into_iter()
        .find(|e| e["kind"] == "job-end")
        .map(|e| e["outputs"].clone())
        .unwrap_or_else(|| panic!("no job-end in {}", run.display()))
}

fn meta(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).expect("meta.json")).expect("json")
}

fn install(repo: &Repo) {
    let out = repo.quire(&["hook", "install"]);
    assert!(out.status.success(), "install failed: {}", text(&out.stderr));
}

#[test]
fn docker_red_push_is_refused_green_passes_and_same_tree_hits_the_cache() {
    let repo = Repo::new();
    install(&repo);
    repo.write("state.txt", "red\n");
    repo.commit("red");
    let out = repo.push(&["main"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a red pipeline let the push through:\n{err}");
    assert!(err.contains("push refused"), "{err}");
    assert_eq!(repo.remote_ref("refs/heads/main"), None, "the remote ref moved");
    assert_eq!(repo.runs().len(), 1);

    repo.write("state.txt", "green\n");
    repo.commit("green");
    let out = repo.push(&["main"]);
    assert!(out.status.success(), "a green pipeline was refused:\n{}", text(&out.stderr));
    let head = git_ok(&repo.dir, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(repo.remote_ref("refs/heads/main").as_deref(), Some(head.as_str()));
    assert_eq!(repo.runs().len(), 2);

    // A new commit with the same tree, pushed to the same ref: cached.
    repo.commit("empty: same tree");
    let out = repo.push(&["main"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("already passed (cached)"), "no cache hit reported:\n{err}");
    assert_eq!(repo.runs().len(), 2, "a cache hit wrote a run record");
}

#[test]
fn docker_run_then_push_of_the_same_commit_costs_no_run() {
    let repo = Repo::new();
    install(&repo);
    repo.write("state.txt", "green\n");
    repo.commit("green");
    let out = repo.quire(&["run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = repo.push(&["main"]);
    let err = text(&out.stderr);
    assert!(out.status.success() && err.contains("already passed (cached)"), "{err}");
    assert_eq!(repo.runs().len(), 1);
    // --no-cache forces a run (and the result is cached again).
    let out = repo.quire(&["run", "--no-cache"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(repo.runs().len(), 2);
}

#[test]
fn docker_new_branch_and_tag_get_the_servers_push_table() {
    let repo = Repo::new();
    install(&repo);
    repo.write("state.txt", "green\n");
    repo.commit("base");
    assert!(repo.push(&["main"]).status.success());
    let base = git_ok(&repo.dir, &["rev-parse", "HEAD"]).trim().to_string();
    // The push made origin/main known locally, as a fetch would.
    git_ok(&repo.dir, &["fetch", "-q", "origin"]);

    git_ok(&repo.dir, &["checkout", "-q", "-b", "topic"]);
    repo.write("new.txt", "n\n");
    repo.commit("topic work");
    let out = repo.push(&["topic"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = repo.runs().pop().expect("a run");
    let o = outputs(&run);
    assert_eq!(o["ref"], "refs/heads/topic");
    assert_eq!(o["branch"], "topic");
    assert_eq!(o["tag"], "nil");
    assert_eq!(o["prev"], "nil", "a new ref has no previous sha");
    assert_eq!(o["files"], "new.txt", "files-changed is against the merge base with main");

    // An existing branch: previous-sha is the remote's old sha.
    git_ok(&repo.dir, &["checkout", "-q", "main"]);
    repo.write("more.txt", "m\n");
    repo.commit("more");
    assert!(repo.push(&["main"]).status.success());
    let o = outputs(&repo.runs().pop().expect("a run"));
    assert_eq!(o["prev"], base.as_str());
    assert_eq!(o["files"], "more.txt");

    git_ok(&repo.dir, &["tag", "v1.0.0"]);
    let out = repo.push(&["refs/tags/v1.0.0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = repo.runs().pop().expect("a run");
    let o = outputs(&run);
    assert_eq!(o["ref"], "refs/tags/v1.0.0");
    assert_eq!(o["tag"], "v1.0.0");
    assert_eq!(o["branch"], "nil");
    assert_eq!(meta(&run)["ref"], "refs/tags/v1.0.0");
}

#[test]
fn docker_dirty_working_tree_does_not_leak_into_the_pushed_run() {
    let repo = Repo::new();
    install(&repo);
    repo.write("state.txt", "green\n");
    repo.commit("green");
    // Uncommitted: would fail the job if the run saw it.
    repo.write("state.txt", "red\n");
    repo.write("untracked.txt", "u\n");
    let out = repo.push(&["main"]);
    assert!(out.status.success(), "the working tree leaked into the pushed run:\n{}", text(&out.stderr));
    let run = repo.runs().pop().expect("a run");
    assert_eq!(outputs(&run)["seen"], "green\n");
    assert_eq!(meta(&run)["dirty"], false);
}

#[test]
fn docker_several_refs_run_once_each_and_a_deletion_runs_nothing() {
    let repo = Repo::new();
    install(&repo);
    repo.write("state.txt", "green\n");
    repo.commit("one");
    git_ok(&repo.dir, &["branch", "a"]);
    repo.write("b.txt", "b\n");
    repo.commit("two");
    git_ok(&repo.dir, &["branch", "b"]);
    let out = repo.push(&["a", "b"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refs: Vec<String> =
        repo.runs().iter().map(|r| meta(r)["ref"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(refs.contains(&"refs/heads/a".to_string()) && refs.contains(&"refs/heads/b".to_string()), "{refs:?}");

    let out = repo.push(&["--delete", "a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(repo.remote_ref("refs/heads/a"), None);
    assert_eq!(repo.runs().len(), 2, "a deletion started a run");
}

#[test]
fn docker_foreign_hook_is_refused_then_chained_and_restored() {
    let repo = Repo::new();
    let hooks = repo.dir.join(".git/hooks");
    std::fs::create_dir_all(&hooks).expect("mkdir");
    let foreign = "#!/bin/sh\ncat > \"$(dirname \"$0\")/../../foreign-saw\"\n[ -e \"$(dirname \"$0\")/../../block\" ] && exit 1\nexit 0\n";
    let hook = hooks.join("pre-push");
    std::fs::write(&hook, foreign).expect("write");
    let ok = Command::new("chmod").arg("+x").arg(&hook).status().expect("chmod");
    assert!(ok.success());

    let out = repo.quire(&["hook", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--force"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), foreign);

    let out = repo.quire(&["hook", "install", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    repo.write("state.txt", "green\n");
    repo.commit("green");

    // The foreign hook fails: the push is refused before any run.
    std::fs::write(repo.dir.join("block"), "").expect("write");
    let out = repo.push(&["main"]);
    assert!(!out.status.success());
    assert_eq!(repo.remote_ref("refs/heads/main"), None);
    assert_eq!(repo.runs().len(), 0);

    // It passes: it saw git's ref lines, and then quire-ci ran.
    std::fs::remove_file(repo.dir.join("block")).expect("rm");
    let out = repo.push(&["main"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saw = std::fs::read_to_string(repo.dir.join("foreign-saw")).expect("the foreign hook ran");
    assert!(saw.starts_with("refs/heads/main "), "{saw:?}");
    assert_eq!(repo.runs().len(), 1);

    let out = repo.quire(&["hook", "uninstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), foreign);
}

#[test]
fn hook_goes_where_git_looks_core_hooks_path_and_skip() {
    let repo = Repo::new();
    git_ok(&repo.dir, &["config", "core.hooksPath", ".githooks"]);
    install(&repo);
    let git_says = git_ok(&repo.dir, &["rev-parse", "--git-path", "hooks"]);
    let git_says = repo.dir.join(git_says.trim());
    assert!(git_says.join("pre-push").is_file(), "no hook at {}", git_says.display());
    assert!(repo.dir.join(".githooks/pre-push").is_file());
    assert!(!repo.dir.join(".git/hooks/pre-push").exists());

    // QUIRE_CI_SKIP=1 and --no-verify push without a run (no engine needed).
    repo.write("state.txt", "red\n");
    repo.commit("red");
    let out = Command::new("git")
        .args(["push", "-q", "origin", "main"])
        .current_dir(&repo.dir)
        .env("QUIRE_CI_SKIP", "1")
        .output()
        .expect("git");
    assert!(out.status.success(), "{}", text(&out.stderr));
    repo.commit("still red");
    assert!(git(&repo.dir, &["push", "-q", "--no-verify", "origin", "main"]).status.success());
    assert_eq!(repo.runs().len(), 0);

    // The hook command itself: empty stdin is nothing to do.
    repo.repo.quire(&["hook", "pre-push", "origin", "file:///nowhere"]).status(0).run();

    let out = repo.quire(&["hook", "uninstall"]);
    assert!(out.status.success());
    assert!(!repo.dir.join(".githooks/pre-push").exists());
}

#[test]
fn hook_reads_run_settings_from_the_environment_and_refuses_a_bad_one() {
    // git passes the hook no flags of ours: QUIRE_CI_MEMORY and friends are
    // how a push gets `run`'s settings, parsed as `run` parses them. A bad
    // value refuses the push before any engine is asked (none needed here).
    let repo = Repo::new();
    install(&repo);
    repo.commit("one");
    let out = Command::new("git")
        .args(["push", "-q", "origin", "main"])
        .current_dir(&repo.dir)
        .env("QUIRE_CI_MEMORY", "lots")
        .env("DOCKER_HOST", "unix:///nonexistent-for-this-test.sock")
        .env_remove("QUIRE_CI_SKIP")
        .output()
        .expect("git");
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a bad QUIRE_CI_MEMORY let the push through:\n{err}");
    assert!(err.contains("\"lots\" is not a memory size") && err.contains("QUIRE_CI_MEMORY"), "{err}");
    assert!(!err.contains("nonexistent-for-this-test"), "the engine was asked first:\n{err}");
    assert_eq!(repo.remote_ref("refs/heads/main"), None, "the push went through");
    assert_eq!(repo.runs().len(), 0);
}

/// No engine: the push is refused, and the error is said once (the hook's
/// summary, on stderr, with its help line), not again as a diagnostic.
#[test]
fn docker_hook_without_an_engine_says_the_error_once() {
    let repo = Repo::new();
    install(&repo);
    repo.commit("one");
    let out = Command::new("git")
        .args(["push", "-q", "origin", "main"])
        .current_dir(&repo.dir)
        .env("DOCKER_HOST", "unix:///nonexistent-for-this-test.sock")
        .env("QUIRE_CI_IMAGE", IMAGE)
        .env_remove("QUIRE_CI_SKIP")
        .output()
        .expect("git");
    let (out_text, err) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "a push without an engine went through:\n{err}");
    assert_eq!(repo.remote_ref("refs/heads/main"), None, "the push went through");
    let all = format!("{out_text}{err}");
    for needle in ["no container engine answered", "help: start Docker", "quire_ci::engine::unreachable"] {
        assert_eq!(all.matches(needle).count(), 1, "{needle:?} once:\n{all}");
        assert!(err.contains(needle), "{needle:?} on stderr:\n{err}");
    }
    assert!(err.contains("push refused"), "{err}");
    assert_eq!(repo.runs().len(), 1, "the run has its record");
}

#[test]
fn hook_in_a_linked_worktree_goes_to_the_common_hooks_dir() {
    let repo = Repo::new();
    repo.write("state.txt", "green\n");
    repo.commit("base");
    let wt = repo.dir.parent().expect("parent").join("linked");
    git_ok(&repo.dir, &["worktree", "add", "-q", wt.to_str().expect("utf8"), "-b", "side"]);
    repo.repo.quire(&["hook", "install"]).current_dir("../linked").status(0).run();
    let git_says = git_ok(&wt, &["rev-parse", "--path-format=absolute", "--git-path", "hooks"]);
    let hook = PathBuf::from(git_says.trim()).join("pre-push");
    assert!(hook.is_file(), "no hook at {}", hook.display());
    assert_eq!(
        hook.canonicalize().expect("canon"),
        repo.dir.join(".git/hooks/pre-push").canonicalize().expect("canon")
    );
}

#[test]
fn docker_cache_misses_on_a_ci_fnl_edit_and_never_caches_a_failure() {
    let repo = Repo::new();
    repo.write("state.txt", "green\n");
    repo.commit("green");
    assert!(repo.quire(&["run"]).status.success());
    let out = repo.quire(&["run"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("already passed (cached)"), "{said}");
    assert_eq!(repo.runs().len(), 1);

    // ci.fnl changed (even a comment): a new run.
    let edited = format!(";; edited\n{REPORT_PUSH}");
    repo.write(".quire/ci.fnl", &edited);
    let out = repo.quire(&["run"]);
    assert!(out.status.success() && !text(&out.stderr).contains("cached"), "{}", text(&out.stderr));
    assert_eq!(repo.runs().len(), 2);

    // Another ref: a new run (pipelines branch on it).
    let out = repo.quire(&["run", "--ref", "refs/tags/v9"]);
    assert!(out.status.success() && !text(&out.stderr).contains("cached"), "{}", text(&out.stderr));
    assert_eq!(repo.runs().len(), 3);

    // A red tree runs every time.
    repo.write("state.txt", "red\n");
    for expected in [4, 5] {
        let out = repo.quire(&["run"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(repo.runs().len(), expected);
    }
}
