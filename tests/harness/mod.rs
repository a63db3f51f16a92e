//! The one integration-test harness: a scenario per test, run through the
//! real `quire-ci` binary in a fresh temporary git repository, in the manner
//! of casey/just's `tests/test.rs`.
//!
//! ```ignore
//! Test::new().ci(PRELUDE).args(&["validate"]).status(2).stderr_has("no job").run();
//! let repo = Repo::new().ci(CI).committed();
//! let out = repo.quire(&["run"]).docker().status(1).run();
//! assert_eq!(out.job_status("test"), "failed");
//! ```
//!
//! Owns, in one place: making repositories (files, fixtures, commits, a bare
//! remote), the environment every run gets (scrubbed of the caller's
//! `QUIRE_*`, colour and git settings), the per-run timeout (a hang fails
//! that test, never the suite), the Docker requirement (fails loudly, never
//! skips), and the clean-run invariants checked after every run that made a
//! record: every log line valid against docs/log.schema.json and no
//! container of that run left behind; and a host of its own ([`Host`]) for
//! a test whose dead owner's container must outlive the other tests' runs
//! (each reaps such leftovers). Must not know about: quire-ci's
//! internals — it sees the binary and the files it writes, as a user would.
#![allow(dead_code)] // each scenario module uses a different part of it

pub mod events;
pub mod record;
pub mod schema;
pub mod tty;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use record::Record;

/// The image every Docker scenario runs in (built by scripts/test-images;
/// nothing can be pulled).
pub const IMAGE: &str = "quire-ci-test/busybox:latest";

/// The prelude most ci.fnl fixtures start with.
pub const PRELUDE: &str = "(local ci (require :quire.ci))\n";

/// The longest one run of the binary may take before its test fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quire-ci"))
}

/// The repository's own root (for `fixtures/`, `docs/`, `scripts/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails loudly (never skips) when no Docker engine answers, and makes sure
/// the local test image exists. Once per test binary.
pub fn require_docker() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let info = Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::piped()).output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "this test needs a Docker engine and `docker info` failed: {}\n(run scripts/bootstrap --engine)",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("this test needs a Docker engine and the docker CLI cannot run: {e}"),
        }
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/test-images"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/test-images: {e}"));
        assert!(out.status.success(), "scripts/test-images failed: {}", String::from_utf8_lossy(&out.stderr));
    });
}

/// The environment every command a test runs gets (quire-ci, git, and the
/// hook git runs): nothing of the caller's quire-ci settings, colour
/// preferences or git configuration leaks in; output is plain and of a
/// fixed width.
pub fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("QUIRE_")
            || k.starts_with("GIT_")
            || matches!(k.as_str(), "CLICOLOR" | "CLICOLOR_FORCE" | "FORCE_COLOR" | "NO_COLOR")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("NO_COLOR", "1").env("COLUMNS", "100").env("TERM", "dumb").env("LC_ALL", "C.UTF-8");
    // No user settings file (~/.config/quire-ci/config.toml) of the caller's.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/quire-ci-test-config");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd.env("GIT_AUTHOR_NAME", "Quire Test").env("GIT_AUTHOR_EMAIL", "test@quire.invalid");
    cmd.env("GIT_COMMITTER_NAME", "Quire Test").env("GIT_COMMITTER_EMAIL", "test@quire.invalid");
}

/// Runs git in `dir` (scrubbed, fixed identity); fails the test if git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs git in `dir` and returns what it did, success or not.
pub fn git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("git");
    scrub(&mut cmd);
    cmd.args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("running git {args:?}: {e}"))
}

/// Runs a command to completion; panics with its stderr when it fails.
pub fn sh_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Container ids (running or not) carrying `quire-ci.run=<run_id>`.
pub fn containers_of_run(run_id: &str) -> Vec<String> {
    let out = sh_ok(Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=quire-ci.run={run_id}")]));
    out.split_whitespace().map(str::to_string).collect()
}

/// The unpackers a large snapshot is shared among on the engine at
/// `docker_host` (a `-H` value, `None` for the default one): one per core
/// of the engine's machine, as its `NCPU` says, at most four.
pub fn unpackers(docker_host: Option<&str>) -> usize {
    let mut docker = Command::new("docker");
    if let Some(host) = docker_host {
        docker.args(["-H", host]);
    }
    let ncpu = sh_ok(docker.args(["info", "-f", "{{.NCPU}}"]));
    ncpu.trim().parse::<usize>().unwrap_or_else(|e| panic!("the engine's NCPU {ncpu:?}: {e}")).min(4)
}

/// A machine of its own sharing the engine: quire-ci run under it has a
/// hostname of its own (a UTS namespace, as root), which goes on its
/// containers' owner labels. The tests run side by side and every run
/// reaps what dead owners left on the engine, so a container whose owner
/// has exited may go at any moment, taken by another test's run; one
/// owned on another host no other test's run touches (it cannot see that
/// host's processes), while a run under the same `Host` judges it as
/// its owner's machine does. For tests that need a dead owner's container
/// to stay until their own next run reaps it. Bind it for the test's
/// length: dropped, it removes what its runs left (see its `Drop`).
pub struct Host(String);

impl Host {
    pub fn new() -> Host {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Host(format!("quire-test-{}-{n}", std::process::id()))
    }

    /// The words that run a program under this host (for
    /// [`Cmd::wrapped_in`]): the program and its arguments follow.
    pub fn wrapper(&self) -> [&str; 6] {
        ["unshare", "--uts", "sh", "-c", Host::NAMED, &self.0]
    }

    /// Run by `sh -c` in the new UTS namespace: names it `$0`, then
    /// becomes the program (`"$@"`), so its pid is the one spawned.
    const NAMED: &'static str = r#"printf %s "$0" > /proc/sys/kernel/hostname && exec "$@""#;

    /// `cmd` (one made by [`Repo::cmd`]) run under this host.
    pub fn wrap(&self, cmd: Command) -> Command {
        wrapped(&self.wrapper(), cmd)
    }

    /// A shell command line (for a terminal) running `command` under this host.
    pub fn shell(&self, command: &str) -> String {
        format!("unshare --uts sh -c '{}' {} {command}", Host::NAMED, self.0)
    }
}

impl Default for Host {
    fn default() -> Host {
        Host::new()
    }
}

/// No run of any other host reaps this host's containers: whatever a test
/// that failed half-way left goes when its `Host` does.
impl Drop for Host {
    fn drop(&mut self) {
        let label = format!("label=quire-ci.owner-host={}", self.0);
        let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &label]).output() else { return };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
    }
}

/// `cmd` run under `wrapper` (e.g. `unshare --pid --fork`): the wrapper's
/// words, then `cmd`'s program and arguments, in `cmd`'s working directory
/// and environment.
pub fn wrapped(wrapper: &[&str], cmd: Command) -> Command {
    let (program, args) = wrapper.split_first().expect("a wrapper program");
    let mut u = Command::new(program);
    u.args(args).arg(cmd.get_program()).args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        u.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => u.env(k, v),
            None => u.env_remove(k),
        };
    }
    u
}

/// How long a run's container may outlive its run: quire-ci hands the
/// removal to a detached remover and exits, and the engine takes its time
/// (seconds for a large tree, more on a loaded machine).
pub const REMOVAL_LIMIT: Duration = Duration::from_secs(90);

/// Waits until no container of run `run_id` is left (gone shortly after
/// the run: see [`REMOVAL_LIMIT`]).
pub fn wait_no_container_of_run(run_id: &str) {
    wait_none_left(&format!("the containers of run {run_id}"), || containers_of_run(run_id));
}

/// Waits until `list` (the containers of some run, on some engine) is
/// empty, for at most [`REMOVAL_LIMIT`]; `what` names them.
pub fn wait_none_left(what: &str, list: impl Fn() -> Vec<String>) {
    wait_for(
        &format!("{what} to be removed"),
        REMOVAL_LIMIT,
        || list().is_empty().then_some(()),
        || format!("left: {:?}", list()),
    );
}

/// Polls `check` until it gives a value; panics with `what` (and whatever
/// `context` says then) after `limit`. The only way tests wait.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}\n{}", context());
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Copies a directory tree (files, directories, exec bits, symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the copy's root");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            copy_tree(&src, &dst);
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).expect("reading a symlink");
            std::os::unix::fs::symlink(target, &dst).expect("making a symlink");
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
        }
    }
}

/// A scenario's repository: a temporary git work tree on branch `main`,
/// optionally with a bare remote `origin`.
pub struct Repo {
    tmp: tempfile::TempDir,
    path: PathBuf,
    remote: Option<PathBuf>,
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

impl Repo {
    /// An empty git repository (no commit yet).
    pub fn new() -> Repo {
        let repo = Repo::plain_dir();
        git(&repo.path, &["init", "-q", "-b", "main"]);
        // The same identity as the environment's, for what reads the config.
        git(&repo.path, &["config", "user.name", "Quire Test"]);
        git(&repo.path, &["config", "user.email", "test@quire.invalid"]);
        repo
    }

    /// A repository whose ci.fnl is `text`, committed.
    pub fn with_ci(text: &str) -> Repo {
        Repo::new().ci(text).committed()
    }

    /// A repository holding a copy of `fixtures/NAME/`, committed.
    pub fn from_fixture(name: &str) -> Repo {
        Repo::new().fixture(name).committed()
    }

    /// A git repository (no commit) holding these files and no ci.fnl.
    pub fn with_files(files: &[(&str, &str)]) -> Repo {
        let repo = Repo::new();
        for (name, text) in files {
            repo.write(name, text);
        }
        repo
    }

    /// A temporary directory that is not a git repository.
    pub fn plain_dir() -> Repo {
        let tmp = tempfile::Builder::new().prefix("quire-ci-test-").tempdir().expect("a temp dir for the test");
        let path = tmp.path().join("repo");
        std::fs::create_dir_all(&path).expect("creating the repo dir");
        Repo { tmp, path, remote: None }
    }

    /// Writes `.quire/ci.fnl`.
    pub fn ci(self, text: &str) -> Repo {
        self.file(".quire/ci.fnl", text)
    }

    /// Writes a file (parents created), relative to the repository root.
    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Repo {
        self.write(rel, contents);
        self
    }

    /// Writes `n` small files of varied sizes, `dNN/sN/fNNNNN.txt`, 500 to
    /// a directory and 50 to a subdirectory: a tree large enough to be
    /// unpacked side by side (src/executor/container.rs).
    pub fn many_files(self, n: usize) -> Repo {
        for i in 0..n {
            let path = self.path.join(format!("d{:02}/s{}/f{i:05}.txt", i / 500, (i / 50) % 10));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, format!("file {i}\n").repeat(i % 7)).expect("write");
        }
        self
    }

    /// Copies `fixtures/NAME/` into the repository root.
    pub fn fixture(self, name: &str) -> Repo {
        let from = repo_root().join("fixtures").join(name);
        assert!(from.is_dir(), "no fixture {}", from.display());
        copy_tree(&from, &self.path);
        self
    }

    /// Commits everything written so far.
    pub fn committed(self) -> Repo {
        self.commit("fixture");
        self
    }

    /// Adds a bare repository as remote `origin`.
    pub fn with_remote(mut self) -> Repo {
        let remote = self.tmp.path().join("remote.git");
        git(self.tmp.path(), &["init", "-q", "--bare", "-b", "main", remote.to_str().expect("a UTF-8 temp path")]);
        git(&self.path, &["remote", "add", "origin", &format!("file://{}", remote.display())]);
        self.remote = Some(remote);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bare remote (see [`Repo::with_remote`]).
    pub fn remote(&self) -> &Path {
        self.remote.as_deref().expect("the scenario has no remote (Repo::with_remote)")
    }

    /// Where tests may keep files outside the work tree.
    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("creating the file's directory");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.path.join(".git/quire-ci/runs")
    }

    /// Run directories, oldest first.
    pub fn runs(&self) -> Vec<PathBuf> {
        record::run_dirs(&self.runs_dir())
    }

    /// The command [`Repo::quire`]`(args).docker()` would run, for a test
    /// that must shape it itself (wrap it, give it raw env values); hand it
    /// back to [`Repo::run_cmd`] or [`Repo::spawn_cmd`] so the harness's
    /// timeout and clean-run checks still apply.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.quire(args).docker().command()
    }

    /// Runs a command made by [`Repo::cmd`] to its end, as [`Cmd::run`] does.
    pub fn run_cmd(&self, cmd: Command) -> Output<'_> {
        self.spawn_cmd(cmd).wait()
    }

    /// Starts a command made by [`Repo::cmd`], as [`Cmd::spawn`] does.
    pub fn spawn_cmd(&self, cmd: Command) -> Running<'_> {
        self.quire(&[]).docker().prepared(cmd).spawn()
    }

    /// Run ids, oldest first.
    pub fn run_ids(&self) -> Vec<String> {
        record::run_ids(&self.runs_dir())
    }

    /// The newest run directory not in `before` (ids from [`Repo::run_ids`]).
    pub fn new_run_dir(&self, before: &[String]) -> Option<PathBuf> {
        record::new_run_dir(&self.runs_dir(), before)
    }

    /// `quire-ci ARGS` in this repository.
    pub fn quire(&self, args: &[&str]) -> Cmd<'_> {
        Cmd::new(Where::Borrowed(self), args)
    }

    /// `quire-ci ARGS`, the command owning the repository (for a run that
    /// outlives the test's borrow, such as `watch`).
    pub fn into_quire(self, args: &[&str]) -> Cmd<'static> {
        Cmd::new(Where::Owned(Box::new(self)), args)
    }

    /// `quire-ci ARGS` against the engine, to its end (see [`Cmd::docker`]).
    pub fn run(&self, args: &[&str]) -> Output<'_> {
        self.quire(args).docker().run()
    }

    /// `temp path → [REPO]`, the runs dir → `[RUN]`, durations → `[T]`.
    pub fn normalize(&self, text: &str) -> String {
        let runs = self.runs_dir().display().to_string();
        let mut out = String::new();
        for line in text.lines() {
            // Other tests on the shared engine leave orphans on purpose
            // (killed runs); any run may reap them and say so. Those lines
            // are about other tests (tests of the reaper read them raw).
            if line.contains(" left behind by a quire-ci that is gone") {
                continue;
            }
            let line = match line.find(&runs) {
                Some(i) => format!("{}[RUN]", &line[..i]),
                None => line.to_string(),
            };
            out.push_str(&normalize_durations(&line));
            out.push('\n');
        }
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        for p in [real.as_path(), self.path.as_path()] {
            out = out.replace(&*p.to_string_lossy(), "[REPO]");
        }
        out
    }
}

/// Durations become `[T]`, with the padding that right-aligned them dropped.
pub fn normalize_durations(line: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for w in line.split(' ') {
        let (core, tail) = match w.strip_suffix(':') {
            Some(c) => (c, ":"),
            None => (w, ""),
        };
        if is_duration(core) {
            while words.last().is_some_and(|x| x.is_empty()) {
                words.pop();
            }
            words.push(format!("[T]{tail}"));
        } else {
            words.push(w.to_string());
        }
    }
    words.join(" ")
}

fn is_duration(w: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if let Some(n) = w.strip_suffix("ms") {
        return digits(n);
    }
    if let Some(n) = w.strip_suffix('s') {
        if let Some((a, b)) = n.split_once('.') {
            return digits(a) && digits(b);
        }
        if let Some((m, s)) = n.split_once('m') {
            return digits(m) && digits(s);
        }
    }
    false
}

enum Where<'r> {
    Borrowed(&'r Repo),
    Owned(Box<Repo>),
    /// Handed on to the run's [`Output`].
    Gone,
}

impl Where<'_> {
    fn repo(&self) -> &Repo {
        match self {
            Where::Borrowed(r) => r,
            Where::Owned(r) => r,
            Where::Gone => panic!("the scenario's repository went to the run's output"),
        }
    }
}

/// One run of the binary: arguments, environment, and what it must do,
/// declared before it runs.
pub struct Cmd<'r> {
    repo: Where<'r>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    docker: bool,
    keeps_container: bool,
    record_in: Option<PathBuf>,
    wrapper: Vec<OsString>,
    /// A command shaped by the test (see [`Repo::cmd`]).
    prepared: Option<Command>,
    status: Option<i32>,
    stdout_is: Option<String>,
    stdout_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_has: Vec<String>,
    stderr_lacks: Vec<String>,
}

impl<'r> Cmd<'r> {
    fn new(repo: Where<'r>, args: &[&str]) -> Cmd<'r> {
        Cmd {
            repo,
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            docker: false,
            keeps_container: false,
            record_in: None,
            wrapper: Vec::new(),
            prepared: None,
            status: None,
            stdout_is: None,
            stdout_has: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr_has: Vec::new(),
            stderr_lacks: Vec::new(),
        }
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        self.env.extend(vars.iter().map(|(k, v)| (OsString::from(k), Some(OsString::from(v)))));
        self
    }

    /// Runs from this directory, relative to the repository root.
    pub fn current_dir(mut self, rel: &str) -> Self {
        self.cwd = Some(PathBuf::from(rel));
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// How long the binary may take before the test fails.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The run needs the engine: fail loudly without one; run in the test
    /// image, without the result cache (each test is about one run as it
    /// happens; the cache's own tests turn it back on).
    pub fn docker(mut self) -> Self {
        require_docker();
        self.docker = true;
        self
    }

    /// The run is meant to leave its container (`--keep`): the invariant
    /// "no container left" is the test's own business then.
    pub fn keeps_container(mut self) -> Self {
        self.keeps_container = true;
        self
    }

    /// Runs this command (made by [`Repo::cmd`] and shaped by the test)
    /// instead of the one the builder would make.
    pub fn prepared(mut self, cmd: Command) -> Self {
        self.prepared = Some(cmd);
        self
    }

    /// Runs the binary under `wrapper` (e.g. `unshare --pid --fork`).
    pub fn wrapped_in(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(OsString::from).collect();
        self
    }

    /// The record goes to this runs directory (`--out`), not the repo's.
    pub fn record_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record_in = Some(dir.into());
        self
    }

    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout_is = Some(text.to_string());
        self
    }

    pub fn stdout_has(mut self, needle: &str) -> Self {
        self.stdout_has.push(needle.to_string());
        self
    }

    pub fn stdout_lacks(mut self, needle: &str) -> Self {
        self.stdout_lacks.push(needle.to_string());
        self
    }

    pub fn stderr_has(mut self, needle: &str) -> Self {
        self.stderr_has.push(needle.to_string());
        self
    }

    pub fn stderr_lacks(mut self, needle: &str) -> Self {
        self.stderr_lacks.push(needle.to_string());
        self
    }

    fn runs_dir(&self) -> PathBuf {
        self.record_in.clone().unwrap_or_else(|| self.repo.repo().runs_dir())
    }

    /// The command, scrubbed, with the scenario's settings on top.
    pub fn command(&self) -> Command {
        let repo = self.repo.repo();
        let cwd = self.cwd.as_ref().map(|rel| repo.path.join(rel)).unwrap_or_else(|| repo.path.clone());
        std::fs::create_dir_all(&cwd).expect("creating the working directory");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.args(&self.args).current_dir(&cwd);
        scrub(&mut cmd);
        if self.docker {
            cmd.env("QUIRE_CI_IMAGE", IMAGE).env("QUIRE_CI_NO_CACHE", "1");
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary to its end, then checks what was declared and the
    /// clean-run invariants.
    pub fn run(self) -> Output<'r> {
        self.spawn().wait()
    }

    /// Starts the binary; the test waits on what it prints or records.
    pub fn spawn(mut self) -> Running<'r> {
        let before = record::run_ids(&self.runs_dir());
        let mut cmd = match self.prepared.take() {
            Some(c) => {
                self.args = c.get_args().map(OsString::from).collect();
                c
            }
            None => self.command(),
        };
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.stdin.is_none() {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", bin().display()));
        if let Some(bytes) = self.stdin.take() {
            use std::io::Write;
            let mut sin = child.stdin.take().expect("piped stdin");
            // A child that exits early closes the pipe; that is its business.
            let _ = sin.write_all(&bytes);
        }
        let stdout = Pipe::read(child.stdout.take().expect("piped stdout"));
        let stderr = Pipe::read(child.stderr.take().expect("piped stderr"));
        Running { cmd: self, child, stdout, stderr, before, started: Instant::now() }
    }
}

/// A pipe of the child, read on a thread into a buffer the test can poll.
struct Pipe {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pipe {
    fn read(mut pipe: impl Read + Send + 'static) -> Pipe {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let into = buf.clone();
        let thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                into.lock().expect("pipe buffer").extend_from_slice(&chunk[..n]);
            }
        });
        Pipe { buf, thread: Some(thread) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("pipe buffer")).into_owned()
    }

    fn finish(&mut self, limit: Duration) -> String {
        if let Some(t) = self.thread.take() {
            // A grandchild holding the pipe open must not hang the test.
            let deadline = Instant::now() + limit;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.text()
    }
}

/// The binary, running.
pub struct Running<'r> {
    cmd: Cmd<'r>,
    child: Child,
    stdout: Pipe,
    stderr: Pipe,
    before: Vec<String>,
    started: Instant,
}

impl<'r> Running<'r> {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    fn context(&self) -> String {
        format!("--- stdout:\n{}\n--- stderr:\n{}", self.stdout(), self.stderr())
    }

    /// Waits until stdout or stderr shows `needle`.
    pub fn wait_for_output(&self, needle: &str, limit: Duration) {
        wait_for(
            &format!("{needle:?} printed"),
            limit,
            || (self.stdout().contains(needle) || self.stderr().contains(needle)).then_some(()),
            || self.context(),
        )
    }

    /// The record this run is writing, once its directory exists.
    pub fn record(&self, limit: Duration) -> Record {
        let runs = self.cmd.runs_dir();
        wait_for("a run record", limit, || record::new_run_dir(&runs, &self.before).map(Record::new), || self.context())
    }

    /// Waits until an event of `kind` (for `job`, if given) is recorded.
    pub fn wait_for_event(&self, kind: &str, job: Option<&str>, limit: Duration) -> Record {
        let rec = self.record(limit);
        wait_for(&format!("a {kind} event"), limit, || rec.has_event(kind, job).then_some(()), || self.context());
        rec
    }

    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().expect("kill runs");
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// True while the binary has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("waiting for quire-ci").is_none()
    }

    /// Waits for the binary to exit (within the run's timeout), then checks
    /// what was declared and the clean-run invariants.
    pub fn wait(mut self) -> Output<'r> {
        let limit = self.cmd.timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if self.started.elapsed() > limit => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("quire-ci {:?} did not finish within {limit:?}\n{}", self.cmd.args, self.context());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for quire-ci: {e}"),
            }
        };
        let stdout = self.stdout.finish(Duration::from_secs(10));
        let stderr = self.stderr.finish(Duration::from_secs(10));
        let record = record::new_run_dir(&self.cmd.runs_dir(), &self.before).map(Record::new);
        let out = Output { code: status.code(), stdout, stderr, record, args: self.cmd.args.clone(), repo: None };
        out.check(&self.cmd);
        Output { repo: Some(std::mem::replace(&mut self.cmd.repo, Where::Gone)), ..out }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one run of the binary did, and the record it left (if any).
pub struct Output<'r> {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub record: Option<Record>,
    args: Vec<OsString>,
    repo: Option<Where<'r>>,
}

impl Output<'_> {
    fn check(&self, cmd: &Cmd) {
        if let Some(code) = cmd.status {
            self.status(code);
        }
        if let Some(text) = &cmd.stdout_is {
            assert_eq!(&self.stdout, text, "stdout of quire-ci {:?}\n--- stderr:\n{}", self.args, self.stderr);
        }
        for n in &cmd.stdout_has {
            self.stdout_has(n);
        }
        for n in &cmd.stdout_lacks {
            self.stdout_lacks(n);
        }
        for n in &cmd.stderr_has {
            self.stderr_has(n);
        }
        for n in &cmd.stderr_lacks {
            self.stderr_lacks(n);
        }
        if let Some(rec) = &self.record {
            rec.assert_valid();
            // `--keep` keeps the container: that is the test's business then.
            let kept = cmd.keeps_container || cmd.args.iter().any(|a| a == "--keep");
            if !kept && cmd.docker {
                rec.assert_no_container_left();
            }
        }
    }

    /// The scenario's repository.
    pub fn repo(&self) -> &Repo {
        self.repo.as_ref().expect("an output of a finished run").repo()
    }

    pub fn path(&self) -> &Path {
        self.repo().path()
    }

    /// The record this run made; fails the test when it made none.
    pub fn rec(&self) -> &Record {
        self.record.as_ref().unwrap_or_else(|| panic!("the run left no record\n{}", self.terminal()))
    }

    /// Both streams, for messages and assertions.
    pub fn terminal(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code, showing both streams when it is wrong.
    pub fn status(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code of quire-ci {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(!self.stdout.contains(needle), "stdout has {needle:?}\n--- stdout:\n{}", self.stdout);
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n--- stderr:\n{}", self.stderr);
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(!self.stderr.contains(needle), "stderr has {needle:?}\n--- stderr:\n{}", self.stderr);
        self
    }

    /// An error said once in all: `needle` appears exactly once in stdout
    /// and not at all in stderr (the summary shows a run's error when a
    /// renderer drew the run).
    pub fn once_on_stdout(&self, needle: &str) -> &Self {
        self.once_in(needle, &self.stdout, "stdout")
    }

    /// An error said once in all, on stderr (`--json`, a hook's renderer,
    /// an error before any record).
    pub fn once_on_stderr(&self, needle: &str) -> &Self {
        self.once_in(needle, &self.stderr, "stderr")
    }

    fn once_in(&self, needle: &str, stream: &str, name: &str) -> &Self {
        let (out, err) = (self.stdout.matches(needle).count(), self.stderr.matches(needle).count());
        let here = stream.matches(needle).count();
        assert!(
            here == 1 && out + err == 1,
            "{needle:?} should be said once, on {name}: {out}× on stdout, {err}× on stderr\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as one JSON document (`list --json`).
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    pub fn stderr_normalized(&self) -> String {
        self.normalize(&self.stderr)
    }

    pub fn stdout_normalized(&self) -> String {
        self.normalize(&self.stdout)
    }

    fn normalize(&self, text: &str) -> String {
        let root = self.repo().path();
        let mut out = text.to_string();
        let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        for p in [real.as_path(), root] {
            out = out.replace(&*p.to_string_lossy(), "[REPO]");
        }
        out
    }
}

impl std::ops::Deref for Output<'_> {
    type Target = Record;

    /// The record's readers (`out.state()`, `out.job_log("t")`) straight
    /// from the output.
    fn deref(&self) -> &Record {
        self.rec()
    }
}

/// A whole scenario in one expression: a fresh repository, one run.
pub struct Test {
    repo: Repo,
    commit: bool,
    build: Vec<Box<dyn FnOnce(Cmd<'static>) -> Cmd<'static>>>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test { repo: Repo::new(), commit: false, build: Vec::new() }
    }

    /// A scenario whose directory is not a git repository.
    pub fn without_git() -> Test {
        Test { repo: Repo::plain_dir(), ..Test::new() }
    }

    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    pub fn ci(self, text: &str) -> Test {
        self.file(".quire/ci.fnl", text)
    }

    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Test {
        self.repo.write(rel, contents);
        self
    }

    pub fn fixture(mut self, name: &str) -> Test {
        self.repo = self.repo.fixture(name);
        self
    }

    /// Commits every file before the run.
    pub fn commit(mut self) -> Test {
        self.commit = true;
        self
    }

    fn with(mut self, f: impl FnOnce(Cmd<'static>) -> Cmd<'static> + 'static) -> Test {
        self.build.push(Box::new(f));
        self
    }

    pub fn args(self, args: &[&str]) -> Test {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.with(move |c| c.args(&args.iter().map(String::as_str).collect::<Vec<_>>()))
    }

    pub fn arg(self, arg: impl Into<OsString>) -> Test {
        let arg = arg.into();
        self.with(move |c| c.arg(arg))
    }

    pub fn env(self, key: &str, value: impl Into<OsString>) -> Test {
        let (key, value) = (key.to_string(), value.into());
        self.with(move |c| c.env(&key, value))
    }

    pub fn env_remove(self, key: &str) -> Test {
        let key = key.to_string();
        self.with(move |c| c.env_remove(&key))
    }

    pub fn current_dir(self, rel: &str) -> Test {
        let rel = rel.to_string();
        self.with(move |c| c.current_dir(&rel))
    }

    pub fn stdin(self, bytes: impl Into<Vec<u8>>) -> Test {
        let bytes = bytes.into();
        self.with(move |c| c.stdin(bytes))
    }

    pub fn timeout(self, t: Duration) -> Test {
        self.with(move |c| c.timeout(t))
    }

    pub fn docker(self) -> Test {
        self.with(|c| c.docker())
    }

    pub fn status(self, code: i32) -> Test {
        self.with(move |c| c.status(code))
    }

    pub fn stdout(self, text: &str) -> Test {
        let text = text.to_string();
        self.with(move |c| c.stdout(&text))
    }

    pub fn stdout_has(self, needle: &str) -> Test {
        let needle = needle.to_string();
        self.with(move |c| c.stdout_has(&needle))
    }

    pub fn stderr_has(self, needle: &str) -> Test {
        let needle = needle.to_string();
        self.with(move |c| c.stderr_has(&needle))
    }

    pub fn stderr_lacks(self, needle: &str) -> Test {
        let needle = needle.to_string();
        self.with(move |c| c.stderr_lacks(&needle))
    }

    /// Prepares the repository and runs the binary once.
    pub fn run(self) -> Output<'static> {
        if self.commit {
            self.repo.commit("fixture");
        }
        let mut cmd = Cmd::new(Where::Owned(Box::new(self.repo)), &[]);
        for f in self.build {
            cmd = f(cmd);
        }
        cmd.run()
    }
}

/// An image of [`IMAGE`] whose `sh` (and, with `gnu_tar`, `tar`) are the
/// host's dash and GNU tar with their libraries: busybox's own `sh` runs its
/// applets whatever PATH says, so only another shell can lack `tar` or run a
/// different one. Without `gnu_tar` the image has no `tar` at all. Built once
/// per process (the tag says which); returns the tag.
pub fn image_with_host_shell(gnu_tar: bool) -> String {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let tag = format!("quire-ci-test/dash-{}:latest", if gnu_tar { "gnu-tar" } else { "no-tar" });
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built.contains(&tag) {
        return tag;
    }
    require_docker();
    let ctx = tempfile::tempdir().expect("tempdir");
    let root = ctx.path().join("root");
    let mut tools = vec![("/usr/bin/dash", "bin/sh")];
    if gnu_tar {
        tools.push(("/usr/bin/tar", "bin/tar"));
    }
    for (host, inside) in &tools {
        let to = root.join(inside);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(host, &to).unwrap_or_else(|e| panic!("copying {host}: {e}"));
        // Each library at the path the loader looks for it (ldd's right column).
        for line in sh_ok(Command::new("ldd").arg(host)).lines() {
            let lib = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
            if lib.starts_with('/') {
                let to = root.join(lib.trim_start_matches('/'));
                std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("copying {lib}: {e}"));
            }
        }
    }
    let dockerfile = format!("FROM {IMAGE}\nRUN rm -f /bin/sh /bin/tar\nCOPY root/ /\n");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    sh_ok(Command::new("docker").args(["build", "-q", "-t", &tag]).arg(ctx.path()));
    built.push(tag.clone());
    tag
}
