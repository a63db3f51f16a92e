//! Real project shapes (issue 16): what a user of a crate, a library or a C
//! program needs from a run. The real binary, real git repos, the real
//! Docker engine (quire-ci-test/busybox:latest).

use std::process::Command;
use std::time::UNIX_EPOCH;

use crate::harness::{self, Output, Repo, IMAGE, PRELUDE as HEADER};

/// A crate-shaped repository whose build decides by mtime, as cargo and make
/// do: `build.sh` "compiles" src/lib.rs into /cache/target only when the
/// source is newer than the output (busybox has no make; `test -nt` is the
/// rule make applies), and the test runs the built output.
const BUILD_SH: &str = r#"set -e
mkdir -p /cache/target
if [ ! -e /cache/target/lib.out ] || [ src/lib.rs -nt /cache/target/lib.out ]; then
  cp src/lib.rs /cache/target/lib.out
  echo "   Compiling crate"
else
  echo "       Fresh crate"
fi
"#;

const CI_BUILD: &str = r#"(ci.job :test [:quire/push]
  (fn [{: sh}]
    (let [b (sh "sh build.sh")
          t (sh "grep -q 'answer() -> u32 { 42 }' /cache/target/lib.out")
          m (sh "stat -c %Y Cargo.toml")]
      {:exit t.exit
       :compiled (not= nil (b.stdout:find "Compiling"))
       :cargo-toml-mtime (tonumber (m.stdout:match "%d+"))})))"#;

const GOOD: &str = "pub fn answer() -> u32 { 42 }\n";
const BUGGY: &str = "pub fn answer() -> u32 { 41 }\n";

fn crate_repo() -> Repo {
    let repo = Repo::new();
    repo.write("Cargo.toml", "[package]\nname = \"answer\"\nversion = \"0.1.0\"\n");
    repo.write("src/lib.rs", GOOD);
    repo.write("build.sh", BUILD_SH);
    repo.write(".quire/ci.fnl", format!("{HEADER}{CI_BUILD}\n"));
    repo.commit("crate");
    repo
}

struct Volume(String);

impl Volume {
    fn fresh(repo: &Repo) -> Volume {
        let name = quire_ci::executor::cache_volume_name(repo.path());
        let _ = Command::new("docker").args(["volume", "rm", "-f", &name]).output();
        Volume(name)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["volume", "rm", "-f", &self.0]).output();
    }
}

/// A run with the result cache consulted (the harness turns it off).
fn run_cached<'r>(repo: &'r Repo, args: &[&str]) -> Output<'r> {
    repo.quire(args).docker().env("QUIRE_CI_NO_CACHE", "0").run()
}

fn mtime_secs(path: &std::path::Path) -> i64 {
    let d =
        std::fs::metadata(path).expect("stat").modified().expect("mtime").duration_since(UNIX_EPOCH).expect("epoch");
    d.as_secs() as i64
}

// ---- 1. no false green from a warm cache -----------------------------------

#[test]
fn docker_edit_after_a_warm_cache_volume_rebuilds_and_goes_red() {
    let repo = crate_repo();
    let _volume = Volume::fresh(&repo);

    let first = run_cached(&repo, &["run", "--cache-volume"]);
    first.status(0);
    assert_eq!(first.rec().job_end("test")["outputs"]["compiled"], true, "{}", first.terminal());
    // Files arrive with the working tree's own times, not 1970.
    assert_eq!(
        first.rec().job_end("test")["outputs"]["cargo-toml-mtime"],
        mtime_secs(&repo.path().join("Cargo.toml")),
        "{}",
        first.terminal()
    );

    // Same content: the kept build is fresh (times did not move), and a
    // second run with the result cache is answered by it.
    let again = repo.run(&["run", "--cache-volume"]);
    again.status(0);
    assert_eq!(
        again.rec().job_end("test")["outputs"]["compiled"],
        false,
        "an unchanged tree rebuilt: {}",
        again.terminal()
    );

    // The edit: within the same second as the build is the hard case for
    // whole-second tools; the buggy source must be rebuilt and fail.
    repo.write("src/lib.rs", BUGGY);
    let red = run_cached(&repo, &["run", "--cache-volume"]);
    red.status(1);
    assert_eq!(red.rec().job_end("test")["outputs"]["compiled"], true, "the edit was not rebuilt: {}", red.terminal());
    assert_eq!(red.rec().run_status(), "failed");
    // The result cache cannot hide it: a red run is never an answer.
    let still_red = run_cached(&repo, &["run", "--cache-volume"]);
    still_red.status(1);
    assert!(!still_red.terminal().contains("already passed"), "{}", still_red.terminal());

    // Back to the good source: rebuilt again (its content moved back), green.
    repo.write("src/lib.rs", GOOD);
    let fixed = repo.run(&["run", "--cache-volume"]);
    fixed.status(0);
    assert_eq!(fixed.rec().job_end("test")["outputs"]["compiled"], true, "{}", fixed.terminal());
}

#[test]
fn docker_pushed_commits_get_commit_times_and_a_buggy_push_is_refused_with_a_warm_cache() {
    let repo = crate_repo();
    let _volume = Volume::fresh(&repo);
    let remote = repo.scratch().join("remote.git");
    sh(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&remote));
    repo.git(&["remote", "add", "origin", &format!("file://{}", remote.display())]);
    repo.quire(&["hook", "install"]).status(0).run();
    let push = || {
        let mut cmd = Command::new("git");
        cmd.args(["push", "-q", "origin", "main"]).current_dir(repo.path());
        harness::scrub(&mut cmd);
        cmd.env("QUIRE_CI_IMAGE", IMAGE).env("QUIRE_CI_CACHE_VOLUME", "1").output().expect("git push")
    };
    let first = push();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let dir = repo.runs().last().expect("a run").clone();
    let end = job_end(&dir, "test");
    assert_eq!(end["outputs"]["compiled"], true);
    // A pushed commit's files carry its committer time, as `git archive` gives them.
    let commit_time: i64 = repo.git(&["log", "-1", "--format=%ct"]).trim().parse().expect("time");
    assert_eq!(end["outputs"]["cargo-toml-mtime"], commit_time);

    // The buggy commit is made in the same second or so: its commit time
    // alone would not be newer than the kept build.
    repo.write("src/lib.rs", BUGGY);
    repo.commit("bug");
    let refused = push();
    assert!(!refused.status.success(), "a buggy push went through:\n{}", String::from_utf8_lossy(&refused.stderr));
    let dir = repo.runs().last().expect("a run").clone();
    assert_eq!(job_end(&dir, "test")["outputs"]["compiled"], true);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("push refused"));
}

fn sh(cmd: &mut Command) -> String {
    harness::sh_ok(cmd)
}

fn job_end(run_dir: &std::path::Path, job: &str) -> serde_json::Value {
    harness::record::read_jsonl(&run_dir.join("log.jsonl"))
        .into_iter()
        .find(|e| e["kind"] == "job-end" && e["job"] == job)
        .unwrap_or_else(|| panic!("no job-end for {job} in {}", run_dir.display()))
}

// ---- 2. jobs that never run here; secrets where the user is ----------------

/// A library with a tag-only publish job that needs a token, and an
/// announcement after it, as translated from a project's release workflow.
const CI_RELEASE: &str = r#"(ci.job :test [:quire/push] (fn [{: sh}] (sh "true") {}))
(ci.job :publish [:test :quire/push]
  (fn [{: sh : jobs : secret}]
    (let [p (jobs :quire/push)]
      (when p.tag
        (let [token (secret :PYPI_TOKEN)]
          (sh "echo uploading dist")
          {:published p.tag :token-length (length token)})))))
(ci.job :announce [:publish] (fn [{: jobs}] {:after (. (or (jobs :publish) {}) :published)}))"#;

fn release_repo() -> (Repo, std::path::PathBuf) {
    let repo = Repo::new();
    repo.write("pyproject.toml", "[project]\nname = \"lib\"\nversion = \"1.0.0\"\n");
    repo.write(".quire/ci.fnl", format!("{HEADER}{CI_RELEASE}\n"));
    repo.commit("lib");
    let remote = repo.scratch().join("remote.git");
    sh(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&remote));
    repo.git(&["remote", "add", "origin", &format!("file://{}", remote.display())]);
    repo.quire(&["hook", "install"]).status(0).run();
    (repo, remote)
}

fn git_push(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("git");
    cmd.arg("push").arg("origin").args(args).current_dir(repo.path());
    harness::scrub(&mut cmd);
    cmd.env("QUIRE_CI_IMAGE", IMAGE);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("git push")
}

fn latest_run(repo: &Repo) -> std::path::PathBuf {
    repo.runs().last().expect("a run").clone()
}

#[test]
fn docker_hook_skips_its_own_list_and_says_how_to_give_a_secret_in_the_hook() {
    let (repo, remote) = release_repo();
    repo.git(&["tag", "v1.0.0"]);

    // Unskipped, the tag push runs publish, whose secret the hook lacks: the
    // hint names what the hook reads, not a flag it cannot take.
    let refused = git_push(&repo, &["v1.0.0"], &[]);
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "{err}");
    let reason = job_end(&latest_run(&repo), "publish")["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("QUIRE_SECRET_PYPI_TOKEN") && reason.contains("QUIRE_CI_SECRETS_FILE"), "{reason}");
    assert!(!reason.contains("pass --secret"), "{reason}");
    assert!(err.contains("QUIRE_SECRET_PYPI_TOKEN"), "{err}");

    // The hook's own list: publish never runs from the laptop; what needs it
    // is skipped too, and both say why in the record.
    let pushed = git_push(&repo, &["v1.0.0"], &[("QUIRE_CI_HOOK_SKIP_JOBS", "publish")]);
    let err = String::from_utf8_lossy(&pushed.stderr).into_owned();
    assert!(pushed.status.success(), "{err}");
    let run = latest_run(&repo);
    let publish = job_end(&run, "publish");
    assert_eq!(publish["outcome"], "skipped");
    assert_eq!(publish["reason"], "skipped by QUIRE_CI_HOOK_SKIP_JOBS");
    assert_eq!(job_end(&run, "announce")["outcome"], "skipped");
    assert_eq!(job_end(&run, "test")["outcome"], "succeeded");
    assert!(err.contains("skipped by QUIRE_CI_HOOK_SKIP_JOBS"), "the summary does not say why: {err}");
    let publish_log = run.join("jobs/publish/log.jsonl");
    assert!(
        !publish_log.exists() || harness::record::read_jsonl(&publish_log).iter().all(|e| e["kind"] != "sh-start"),
        "a skipped job ran a command"
    );
    let tags = sh(Command::new("git").arg("-C").arg(&remote).args(["tag"]));
    assert_eq!(tags.trim(), "v1.0.0");

    // A secrets file named in the environment reaches the hook's run.
    repo.git(&["tag", "v1.0.1"]);
    let file = repo.scratch().join("secrets.env");
    std::fs::write(&file, "PYPI_TOKEN=pypi-abcdef\n").expect("write");
    let with_file = git_push(&repo, &["v1.0.1"], &[("QUIRE_CI_SECRETS_FILE", file.to_str().expect("utf8"))]);
    assert!(with_file.status.success(), "{}", String::from_utf8_lossy(&with_file.stderr));
    let run = latest_run(&repo);
    assert_eq!(job_end(&run, "publish")["outputs"]["token-length"], 11);
    assert_eq!(job_end(&run, "announce")["outputs"]["after"], "v1.0.1");
}

#[test]
fn docker_run_skip_flag_and_env_record_the_reason_and_refuse_unknown_names() {
    let (repo, _remote) = release_repo();
    let r = repo.run(&["run", "--ref", "refs/tags/v2.0.0", "--skip", "publish"]);
    r.status(0);
    assert_eq!(r.rec().job_end("publish")["reason"], "skipped by --skip");
    assert_eq!(r.rec().job_end("announce")["outcome"], "skipped");
    assert_eq!(r.rec().job_status("test"), "succeeded");

    let r =
        repo.quire(&["run", "--ref", "refs/tags/v2.0.0"]).docker().env("QUIRE_CI_SKIP_JOBS", "publish,announce").run();
    r.status(0);
    assert_eq!(r.rec().job_end("publish")["reason"], "skipped by QUIRE_CI_SKIP_JOBS");
    assert_eq!(r.rec().job_end("announce")["reason"], "skipped by QUIRE_CI_SKIP_JOBS");

    // Outside the hook the missing-secret hint names run's own flags.
    let r = repo.run(&["run", "--ref", "refs/tags/v2.0.0"]);
    r.status(1);
    assert!(r.rec().job_end("publish")["reason"].as_str().unwrap_or_default().contains("pass --secret PYPI_TOKEN"));

    let typo = repo.run(&["run", "--skip", "pubish"]);
    typo.status(2);
    assert!(typo.stderr.contains("cannot skip \"pubish\" (from --skip): no such job"), "{}", typo.stderr);
}

// ---- 3. an opt-in .git for git-aware tools ---------------------------------

/// A Python library versioned by setuptools-scm: its build asks git for
/// `describe --tags --dirty` and `status`. Busybox has no git, so the job
/// checks the layout and the test asks the host's git about a copy of /work
/// taken from the kept container (git is what setuptools-scm runs).
const CI_SCM: &str = r#"(ci.job :version [:quire/push]
  (fn [{: sh}]
    (let [head (sh "cat .git/HEAD")
          git (sh "test -d .git && echo yes || echo no")]
      {:head (head.stdout:match "[^\n]*") :git (git.stdout:match "%a+")})))"#;

fn host_git(dir: &std::path::Path, args: &[&str]) -> String {
    let out =
        Command::new("git").arg("-C").arg(dir).args(args).env("GIT_CONFIG_GLOBAL", "/dev/null").output().expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn docker_with_git_gives_work_a_git_that_describes_the_snapshot_and_the_default_has_none() {
    let repo = Repo::new();
    repo.write("pyproject.toml", "[build-system]\nrequires = [\"setuptools-scm\"]\n[tool.setuptools_scm]\n");
    repo.write("src/lib.py", "VALUE = 1\n");
    repo.write(".quire/ci.fnl", format!("{HEADER}{CI_SCM}\n"));
    repo.commit("lib");
    repo.git(&["tag", "-a", "v1.2.0", "-m", "release 1.2.0"]);
    let sha = repo.git(&["rev-parse", "HEAD"]).trim().to_string();

    // The default is unchanged: no .git, as on the server.
    let plain = repo.run(&["run"]);
    plain.status(0);
    assert_eq!(plain.job_end("version")["outputs"]["git"], "no");

    // Opt in, with an uncommitted edit: the commit is HEAD, the edit shows.
    repo.write("src/lib.py", "VALUE = 2\n");
    let r = repo.quire(&["run", "--with-git", "--keep"]).docker().keeps_container().run();
    r.status(0);
    let name = r
        .terminal()
        .lines()
        .find_map(|l| l.strip_prefix("quire-ci: kept container "))
        .and_then(|l| l.split_whitespace().next())
        .expect("kept container")
        .to_string();
    let copy = repo.scratch().join("work-copy");
    let cp = Command::new("docker")
        .args(["cp", &format!("{name}:/work"), copy.to_str().expect("utf8")])
        .output()
        .expect("docker cp");
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert!(cp.status.success(), "{}", String::from_utf8_lossy(&cp.stderr));
    assert_eq!(r.rec().job_end("version")["outputs"]["head"], "ref: refs/heads/main");
    assert_eq!(host_git(&copy, &["rev-parse", "HEAD"]), sha);
    assert_eq!(host_git(&copy, &["describe", "--tags", "--dirty"]), "v1.2.0-dirty");
    assert_eq!(host_git(&copy, &["status", "--porcelain"]), "M src/lib.py");
    assert_eq!(host_git(&copy, &["rev-parse", "--is-shallow-repository"]), "true");
    assert!(host_git(&copy, &["ls-files"]).lines().any(|l| l == "pyproject.toml"));

    // Env setting, as the hook reads it; a clean tree describes exactly.
    repo.write("src/lib.py", "VALUE = 1\n");
    let r = repo.quire(&["run", "--keep"]).docker().keeps_container().env("QUIRE_CI_WITH_GIT", "1").run();
    r.status(0);
    let name = r
        .terminal()
        .lines()
        .find_map(|l| l.strip_prefix("quire-ci: kept container "))
        .and_then(|l| l.split_whitespace().next())
        .expect("kept container")
        .to_string();
    let copy = repo.scratch().join("work-copy-2");
    let cp = Command::new("docker")
        .args(["cp", &format!("{name}:/work"), copy.to_str().expect("utf8")])
        .output()
        .expect("docker cp");
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert!(cp.status.success());
    assert_eq!(host_git(&copy, &["describe", "--tags", "--dirty"]), "v1.2.0");
    assert_eq!(host_git(&copy, &["status", "--porcelain"]), "");
}

// ---- 4. a failing .quire/Dockerfile says why --------------------------------

#[test]
fn docker_failing_dockerfile_step_shows_its_step_and_last_lines_plainly_and_logs_has_the_build() {
    let repo = Repo::new();
    // An apt-style failure, coloured as apt and the builder colour it.
    repo.write(
        ".quire/Dockerfile",
        format!(
            "FROM {IMAGE}\nRUN echo preparing\nRUN echo 'Reading package lists...' >&2 && printf '\\033[31mE: Unable to locate package libfoo-dev\\033[0m\\n' >&2 && exit 100\n"
        ),
    );
    repo.write(".quire/ci.fnl", format!("{HEADER}(ci.job :t [:quire/push] (fn [{{: sh}}] (sh \"true\") {{}}))\n"));
    repo.commit("dockerfile");
    let r = repo.run(&["run"]);
    r.status(3);
    let err = r.terminal();
    assert!(err.contains("failing step: Step 3/3 : RUN echo 'Reading package lists...'"), "{err}");
    assert!(err.contains("E: Unable to locate package libfoo-dev"), "apt's reason is not shown by default:\n{err}");
    assert!(err.contains("Reading package lists..."), "{err}");
    assert!(!err.contains('\u{1b}'), "raw escape codes despite NO_COLOR:\n{err:?}");
    // The record has the build, step by step, as events: `logs` shows it.
    let log = r.rec().run_log();
    let failed =
        log.iter().find(|e| e["kind"] == "image" && e["action"] == "build-failed").expect("a build-failed event");
    assert!(failed["detail"].as_str().unwrap_or_default().starts_with("Step 3/3"), "{failed}");
    assert!(log.iter().any(|e| e["action"] == "build" && e["detail"] == "E: Unable to locate package libfoo-dev"));
    let logs = repo.quire(&["logs", "-v"]).run();
    let shown = logs.terminal();
    assert!(shown.contains("E: Unable to locate package libfoo-dev"), "{shown}");
    assert!(shown.contains("failing step: Step 3/3"), "{shown}");

    // The excerpt's length is a setting.
    let short = repo.quire(&["run"]).docker().env("QUIRE_CI_EXCERPT_LINES", "1").run();
    short.status(3);
    assert!(
        short.terminal().contains("its last 1 line: E: Unable to locate package libfoo-dev"),
        "{}",
        short.terminal()
    );
    assert!(!short.terminal().contains("    Reading package lists"), "{}", short.terminal());
}

// ---- 5. what the job says, and how much of the failure -----------------------

/// An npm package tested with tape under nyc: the failing `not ok 68` comes
/// 180 lines above the end, under a coverage table.
const CI_TAPE: &str = r#"(ci.job :test [:quire/push]
  (fn [{: sh}]
    (let [r (sh "sh test.sh")
          failing []]
      (each [l (r.stdout:gmatch "[^\n]+")]
        (when (l:find "^not ok") (table.insert failing l)))
      {:exit r.exit
       :summary (.. (length failing) " failing\n" (table.concat failing "\n"))})))
(ci.job :lint [:quire/push] (fn [{: sh}] (sh "true") {:summary "0 problems"}))"#;

const TAPE_SH: &str = r#"i=1
while [ $i -le 70 ]; do
  if [ $i = 68 ]; then echo "not ok 68 adds two numbers"; else echo "ok $i"; fi
  i=$((i+1))
done
echo "File      | % Stmts | % Branch"
i=1
while [ $i -le 180 ]; do echo "src/f$i.js |   100 |   100"; i=$((i+1)); done
echo "All files |   99.5 |   100"
exit 1
"#;

#[test]
fn docker_a_returned_summary_is_shown_and_the_excerpt_length_is_a_setting() {
    let repo = Repo::new();
    repo.write("package.json", "{\"name\":\"adder\",\"scripts\":{\"test\":\"nyc tape test/*.js\"}}\n");
    repo.write("test.sh", TAPE_SH);
    repo.write(".quire/ci.fnl", format!("{HEADER}{CI_TAPE}\n"));
    repo.commit("npm package");

    let r = repo.run(&["run"]);
    r.status(1);
    let out = r.terminal();
    let summary_at = out.rfind("summary of :test:").unwrap_or_else(|| panic!("no :summary shown:\n{out}"));
    assert!(out[summary_at..].contains("  1 failing\n  not ok 68 adds two numbers"), "{}", &out[summary_at..]);
    assert!(out.contains("summary of :lint:\n  0 problems"), "a green job's :summary is shown too:\n{out}");
    // The default excerpt is the coverage table's tail, and says where the rest is.
    let excerpt_at = out.rfind("last lines of :test").expect("an excerpt");
    assert!(!out[excerpt_at..summary_at].contains("not ok 68"), "{out}");
    assert!(out.contains("(all of it: quire-ci logs --job test)"), "{out}");

    let long = repo.run(&["run", "--excerpt-lines", "200"]);
    long.status(1);
    let out = long.terminal();
    let excerpt_at = out.rfind("last lines of :test").expect("an excerpt");
    assert!(out[excerpt_at..].contains("not ok 68 adds two numbers"), "--excerpt-lines 200 did not reach it:\n{out}");

    // `logs --job` tells the whole story: every line the job printed.
    let logs = repo.quire(&["logs", "--job", "test"]).run();
    let shown = logs.stdout.clone();
    assert!(
        shown.contains("not ok 68 adds two numbers") && shown.contains("ok 1\n") && shown.contains("All files"),
        "{shown}"
    );
    assert!(shown.contains("summary of :test:"), "{shown}");
}

// ---- 7. artifacts come out -------------------------------------------------

const CI_WHEEL: &str = r#"(ci.job :build [:quire/push]
  (fn [{: sh}]
    (sh "mkdir -p dist && printf 'PK-wheel' > dist/lib-1.0-py3-none-any.whl && printf 'sdist' > dist/lib-1.0.tar.gz")
    {:artifacts ["dist/lib-1.0-py3-none-any.whl" "dist/missing.whl" "../etc/passwd"]}))"#;

#[test]
fn docker_artifacts_declared_by_a_job_or_named_by_flag_are_copied_out_and_summarised() {
    let repo = Repo::new();
    repo.write("pyproject.toml", "[project]\nname = \"lib\"\nversion = \"1.0\"\n");
    repo.write(".quire/ci.fnl", format!("{HEADER}{CI_WHEEL}\n"));
    repo.commit("lib");

    let r = repo.run(&["run", "--artifact", "dist/lib-1.0.tar.gz"]);
    r.status(0);
    let wheel = r.rec().dir().join("artifacts/dist/lib-1.0-py3-none-any.whl");
    assert_eq!(std::fs::read(&wheel).expect("the wheel came out"), b"PK-wheel");
    assert_eq!(
        std::fs::read(r.rec().dir().join("artifacts/dist/lib-1.0.tar.gz")).expect("the sdist came out"),
        b"sdist"
    );
    let arts: Vec<serde_json::Value> = r.rec().run_log().into_iter().filter(|e| e["kind"] == "artifact").collect();
    assert_eq!(arts.len(), 4, "{arts:?}");
    assert_eq!(arts[0]["job"], "build");
    assert_eq!(arts[0]["bytes"], 8);
    assert_eq!(arts[0]["dest"], wheel.display().to_string());
    assert!(arts[1]["error"].as_str().unwrap_or_default().contains("no such file"), "{}", arts[1]);
    assert!(arts[2]["error"].as_str().unwrap_or_default().contains("inside /work"), "{}", arts[2]);
    assert!(arts[3].get("job").is_none(), "a flag's artifact belongs to no job: {}", arts[3]);
    let out = r.terminal();
    let at = out.rfind("artifacts:").unwrap_or_else(|| panic!("no artifacts in the summary:\n{out}"));
    assert!(out[at..].contains("dist/lib-1.0-py3-none-any.whl → ") && out[at..].contains("(8 B)"), "{}", &out[at..]);
    assert!(out[at..].contains("dist/missing.whl not copied: no such file or directory in /work"), "{}", &out[at..]);

    // A directory the user names, from the environment (as the hook reads it).
    let into = repo.scratch().join("out");
    let r = repo.quire(&["run"]).docker().env("QUIRE_CI_ARTIFACTS_DIR", &into).env("QUIRE_CI_ARTIFACTS", "dist").run();
    r.status(0);
    assert_eq!(std::fs::read(into.join("dist/lib-1.0.tar.gz")).expect("dist copied whole"), b"sdist");
    assert!(into.join("dist/lib-1.0-py3-none-any.whl").is_file());
    assert!(!r.rec().dir().join("artifacts").exists());
}

// ---- 6. images: a mapping for offline and mirror users ----------------------

#[test]
fn docker_image_map_replaces_ci_image_and_dockerfile_froms_and_a_losing_image_flag_is_said() {
    // Every init starter declares a Docker Hub image, which cannot be pulled here.
    let repo = Repo::new()
        .ci(&format!("{HEADER}(ci.image \"python:3.12-slim\")\n(ci.job :t [:quire/push] (fn [{{: sh}}] (let [r (sh \"cat /etc/issue 2>/dev/null; echo ok\")] {{:ok (r.stdout:match \"ok\")}})))\n"))
        .file("pyproject.toml", "[project]\nname = \"lib\"\n")
        .committed();
    let unmapped = repo.quire(&["run", "--pull", "never"]).docker().run();
    unmapped.status(3);
    let r = repo.quire(&["run", "--image-map", &format!("python:3.12-slim={IMAGE}")]).docker().run();
    r.status(0);
    assert!(
        r.rec().run_log().iter().any(|e| e["kind"] == "container-start" && e["image"] == IMAGE),
        "{}",
        r.terminal()
    );
    // From the environment, as the hook reads it.
    let r = repo.quire(&["run"]).docker().env("QUIRE_CI_IMAGE_MAP", format!("python:3.12-slim={IMAGE}")).run();
    r.status(0);
    // --image loses to ci.image: said, with the way round it.
    let r =
        repo.quire(&["run", "--image", "other:1", "--image-map", &format!("python:3.12-slim={IMAGE}")]).docker().run();
    r.status(0);
    assert!(
        r.terminal().contains("--image other:1 does not apply: ci.fnl declares ci.image \"python:3.12-slim\""),
        "{}",
        r.terminal()
    );
    let bad = repo.quire(&["run", "--image-map", "python"]).run();
    bad.status(2);
    assert!(bad.stderr.contains("is not an image mapping: give FROM=TO"), "{}", bad.stderr);

    // A Dockerfile whose FROM cannot be pulled builds from the mapped image.
    let df = Repo::new()
        .file(".quire/Dockerfile", "FROM --platform=linux/amd64 node:20-bookworm AS base\nRUN echo built > /built\n")
        .ci(&format!(
            "{HEADER}(ci.job :t [:quire/push] (fn [{{: sh}}] (let [r (sh \"cat /built\")] {{:exit r.exit}})))\n"
        ))
        .committed();
    let r = df.quire(&["run", "--image-map", &format!("node:20-bookworm={IMAGE}")]).docker().run();
    r.status(0);
    // (present when an earlier run of this scenario built the same tag)
    assert!(
        r.rec().run_log().iter().any(|e| e["kind"] == "image" && (e["action"] == "built" || e["action"] == "present")),
        "{}",
        r.terminal()
    );

    // validate, list and doctor say the truth about a Dockerfile image.
    df.quire(&["validate"]).status(0).run().stdout_has("built from .quire/Dockerfile");
    df.quire(&["list"]).status(0).run().stdout_has("image: built from .quire/Dockerfile");
    let map = format!("node:20-bookworm={IMAGE}");
    let doctor = df.quire(&["doctor"]).env("QUIRE_CI_IMAGE_MAP", &map).run();
    assert!(doctor.terminal().contains("is present (reused by the next run)"), "{}", doctor.terminal());
    let doctor = df.quire(&["doctor"]).run();
    assert!(
        doctor.terminal().contains("FROM node:20-bookworm is neither present nor pullable"),
        "{}",
        doctor.terminal()
    );
    assert!(doctor.terminal().contains("--image-map node:20-bookworm="), "{}", doctor.terminal());
}
