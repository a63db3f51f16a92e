//! TEMPORARY: the old validate harness, kept only for tests/server.rs until
//! it moves into tests/scenarios/ (the next landing); new tests use tests/harness.
//! The integration-test harness: one scenario per test, run through the real
//! `quire-ci` binary in a fresh temporary git repository.
//!
//! Owns: making the repository (files, fixtures, `git init`, commits),
//! running the binary with a stable environment (no colour, fixed width, a
//! hard timeout so a hang fails the test instead of the suite), and reading
//! back what it printed. Must not know about: what any command does, Docker.
//!
//! ```ignore
//! mod support;
//! use support::Test;
//! let out = Test::new().ci("(local ci (require :quire.ci))").args(&["validate"]).run();
//! out.status(0).stdout_has("valid");
//! ```
#![allow(dead_code)] // each test file uses a different part of it

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test. Cargo builds it for integration tests and names it.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quire-ci"))
}

/// The repository's own root (for `fixtures/`, `completions/`, `man/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The prelude most ci.fnl fixtures start with.
pub const PRELUDE: &str = "(local ci (require :quire.ci))\n";

/// One scenario: a temporary repository, the arguments, the environment.
pub struct Test {
    dir: tempfile::TempDir,
    git: bool,
    commit: bool,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    stdin: Option<Vec<u8>>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    /// A scenario in a fresh temporary directory that will be a git work tree.
    pub fn new() -> Test {
        let dir = tempfile::Builder::new().prefix("quire-ci-test-").tempdir().expect("creating a temp dir for the test");
        Test {
            dir,
            git: true,
            commit: false,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout: Duration::from_secs(60),
            stdin: None,
        }
    }

    /// A scenario whose directory is not a git repository.
    pub fn without_git() -> Test {
        Test { git: false, ..Test::new() }
    }

    /// The temporary directory (the repository root).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (parents created), relative to the repository root.
    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Test {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating the file's directory");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self
    }

    /// Writes `.quire/ci.fnl`.
    pub fn ci(self, text: &str) -> Test {
        self.file(".quire/ci.fnl", text)
    }

    /// Copies `fixtures/NAME/` into the repository root.
    pub fn fixture(self, name: &str) -> Test {
        let from = repo_root().join("fixtures").join(name);
        assert!(from.is_dir(), "no fixture {}", from.display());
        copy_tree(&from, self.dir.path());
        self
    }

    /// Commits every file after writing them (`git add -A && git commit`).
    pub fn commit(mut self) -> Test {
        self.commit = true;
        self
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Test {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Test {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Test {
        self.env.push((key.into(), None));
        self
    }

    /// Runs the binary from this directory, relative to the repository root.
    pub fn current_dir(mut self, rel: &str) -> Test {
        self.cwd = Some(PathBuf::from(rel));
        self
    }

    /// The longest the binary may take before the test fails (default 60 s).
    pub fn timeout(mut self, t: Duration) -> Test {
        self.timeout = t;
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(bytes.into());
        self
    }

    /// Prepares the repository and runs the binary once.
    pub fn run(self) -> Output {
        let root = self.dir.path().to_path_buf();
        if self.git {
            git(&root, &["init", "-q", "-b", "main"]);
            if self.commit {
                git(&root, &["add", "-A"]);
                git(&root, &["commit", "-q", "--allow-empty", "-m", "fixture"]);
            }
        }
        let cwd = match &self.cwd {
            Some(rel) => root.join(rel),
            None => root.clone(),
        };
        std::fs::create_dir_all(&cwd).expect("creating the working directory");
        let mut cmd = Command::new(bin());
        cmd.args(&self.args).current_dir(&cwd);
        stable_env(&mut cmd);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", bin().display()));
        if let Some(bytes) = self.stdin {
            use std::io::Write;
            let mut sin = child.stdin.take().expect("piped stdin");
            // A child that exits early closes the pipe; that is its business.
            let _ = sin.write_all(&bytes);
        }
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "quire-ci {:?} did not finish within {:?}; stderr so far is lost with the kill",
                        self.args, self.timeout
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for quire-ci: {e}"),
            }
        };
        let elapsed = started.elapsed();
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        Output {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed,
            dir: self.dir,
        }
    }
}

/// An environment that makes output the same on every machine: no colour,
/// a fixed width, no user settings leaking in.
fn stable_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("QUIRE_") || k == "CLICOLOR_FORCE" || k == "FORCE_COLOR" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("NO_COLOR", "1").env("COLUMNS", "100").env("TERM", "dumb").env("LC_ALL", "C.UTF-8");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs git in `dir` with a fixed identity, failing the test if git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Quire Test", "-c", "user.email=test@quire.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("running git {args:?}: {e}"));
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// What one run of the binary did. Keeps the temporary repository alive so
/// a test can look at files afterwards.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    dir: tempfile::TempDir,
}

impl Output {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Asserts the exit code, showing both streams when it is wrong.
    pub fn status(&self, code: i32) -> &Output {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout:\n{}\n--- stderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Output {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n--- stdout:\n{}", self.stdout);
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Output {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n--- stderr:\n{}", self.stderr);
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Output {
        assert!(!self.stderr.contains(needle), "stderr has {needle:?}\n--- stderr:\n{}", self.stderr);
        self
    }

    /// stdout parsed as one JSON document (`list --json`).
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// stderr with the temporary directory replaced by `[REPO]`, for snapshots.
    pub fn stderr_normalized(&self) -> String {
        self.normalize(&self.stderr)
    }

    pub fn stdout_normalized(&self) -> String {
        self.normalize(&self.stdout)
    }

    fn normalize(&self, text: &str) -> String {
        let mut out = text.to_string();
        // The temp dir may be reached through a symlink (/tmp on some systems).
        let real = std::fs::canonicalize(self.dir.path()).unwrap_or_else(|_| self.dir.path().to_path_buf());
        for p in [real.as_path(), self.dir.path()] {
            out = out.replace(&*p.to_string_lossy(), "[REPO]");
        }
        out
    }
}
