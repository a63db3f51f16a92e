//! TEMPORARY: the old run harness, kept only for tests/faults.rs until it
//! moves into tests/scenarios/ (the next landing); new tests use tests/harness.
//! Harness for the `quire-ci run` integration tests: a temp git repo with a
//! ci.fnl, the real binary run against the real Docker engine, and readers
//! for what a run leaves behind (terminal text, state.json, log.jsonl).
//!
//! Owns: scenario setup and the checks every docker test ends with (every
//! record line valid against docs/log.schema.json, no container left).
//! Must not know about: quire-ci's internals — it only sees the binary and
//! the files it writes, as a user would.
#![allow(dead_code)]

#[path = "../harness/schema.rs"]
pub mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use tempfile::TempDir;

pub const IMAGE: &str = "quire-ci-test/busybox:latest";
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The quire-ci binary this test binary was built with.
///
/// The cargo target dir is shared by several worktrees, and the uplifted
/// `target/debug/quire-ci` is replaced by whichever worktree built last. A
/// hard link taken once and checked to come from this worktree (its debug
/// info names the manifest dir) pins the right binary for the whole test
/// run, however the shared path changes meanwhile.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_quire-ci"));
        let pinned_dir = exe.parent().map(|p| p.join("pinned")).unwrap_or_else(std::env::temp_dir);
        let _ = std::fs::create_dir_all(&pinned_dir);
        // Links left by test processes that are gone would keep old binaries
        // (hundreds of MB each) alive on disk.
        for e in std::fs::read_dir(&pinned_dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("quire-ci-runtests-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let pinned = pinned_dir.join(format!("quire-ci-runtests-{}", std::process::id()));
        let _ = std::fs::remove_file(&pinned);
        if std::fs::hard_link(&exe, &pinned).is_err() {
            std::fs::copy(&exe, &pinned).unwrap_or_else(|e| panic!("cannot pin {}: {e}", exe.display()));
        }
        let bytes = std::fs::read(&pinned).unwrap_or_else(|e| panic!("cannot read {}: {e}", pinned.display()));
        let needle = MANIFEST_DIR.as_bytes();
        if !bytes.windows(needle.len()).any(|w| w == needle) {
            // Only a hint: a build without debug info does not name its
            // directory either.
            eprintln!(
                "warning: {} does not name {MANIFEST_DIR}; if the target dir is shared with another worktree, \
                 it may be that worktree's build",
                exe.display()
            );
        }
        pinned
    })
}

/// Fails loudly (never skips) when no Docker engine answers, and makes sure
/// the local busybox image the tests run in exists (nothing can be pulled).
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
            .arg(format!("{MANIFEST_DIR}/scripts/test-images"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/test-images: {e}"));
        assert!(out.status.success(), "scripts/test-images failed: {}", String::from_utf8_lossy(&out.stderr));
    });
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

/// A throwaway git repository with a `.quire/ci.fnl`, on branch `main`.
pub struct Repo {
    _tmp: TempDir,
    pub path: PathBuf,
}

impl Repo {
    /// A repo whose ci.fnl is `ci_fnl`, committed.
    pub fn new(ci_fnl: &str) -> Repo {
        let repo = Repo::empty();
        repo.write(".quire/ci.fnl", ci_fnl);
        repo.commit("ci");
        repo
    }

    /// A repo holding a copy of `fixtures/<name>/`, committed.
    pub fn fixture(name: &str) -> Repo {
        let repo = Repo::empty();
        copy_tree(&Path::new(MANIFEST_DIR).join("fixtures").join(name), &repo.path);
        repo.commit("fixture");
        repo
    }

    pub fn empty() -> Repo {
        require_docker();
        let tmp = tempfile::Builder::new().prefix("quire-run-").tempdir().expect("temp dir");
        let path = tmp.path().join("repo");
        std::fs::create_dir_all(&path).expect("mkdir repo");
        let repo = Repo { _tmp: tmp, path };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test Pusher"]);
        repo.git(&["config", "user.email", "pusher@example.invalid"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn git(&self, args: &[&str]) -> String {
        sh_ok(Command::new("git").arg("-C").arg(&self.path).args(args))
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.path.join(".git/quire-ci/runs")
    }

    /// `quire-ci` with a clean, predictable environment, in the repo.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(&self.path);
        for (k, _) in std::env::vars() {
            if k.starts_with("QUIRE_SECRET_") || k == "QUIRE_CI_IMAGE" {
                c.env_remove(k);
            }
        }
        // Each test here is about one run as it happens; the result cache
        // (tests/hook.rs covers it) would answer repeated runs of a tree.
        c.env("QUIRE_CI_IMAGE", IMAGE).env("NO_COLOR", "1").env("QUIRE_CI_NO_CACHE", "1").stdin(Stdio::null());
        c
    }

    /// Runs `quire-ci ARGS` to the end and finds the run record it made.
    pub fn run(&self, args: &[&str]) -> Finished {
        self.run_cmd(self.cmd(args))
    }

    pub fn run_cmd(&self, mut cmd: Command) -> Finished {
        let before = self.run_ids();
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run quire-ci: {e}"));
        Finished::new(out, self.new_run_dir(&before))
    }

    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.runs_dir())
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The run directory that is in the runs dir now and was not in `before`.
    pub fn new_run_dir(&self, before: &[String]) -> Option<PathBuf> {
        self.run_ids().into_iter().rev().find(|id| !before.contains(id)).map(|id| self.runs_dir().join(id))
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// What one `quire-ci run` left: exit code, terminal text, run record.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub dir: Option<PathBuf>,
}

impl Finished {
    pub fn new(out: Output, dir: Option<PathBuf>) -> Finished {
        Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir,
        }
    }

    /// Terminal text, both streams, for messages and assertions.
    pub fn terminal(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or_else(|| panic!("the run left no record\n{}", self.terminal()))
    }

    pub fn run_id(&self) -> String {
        self.dir().file_name().map(|n| n.to_string_lossy().into_owned()).expect("run id")
    }

    pub fn state(&self) -> Value {
        read_json(&self.dir().join("state.json"))
    }

    pub fn meta(&self) -> Value {
        read_json(&self.dir().join("meta.json"))
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// A job's status in state.json ("" if the job is not there).
    pub fn job_status(&self, job: &str) -> String {
        self.job_state(job)["status"].as_str().unwrap_or("").to_string()
    }

    pub fn job_state(&self, job: &str) -> Value {
        self.state()["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == job).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn run_log(&self) -> Vec<Value> {
        read_jsonl(&self.dir().join("log.jsonl"))
    }

    /// A job's own log; empty when the job wrote none (skipped early).
    pub fn job_log(&self, job: &str) -> Vec<Value> {
        let p = self.dir().join("jobs").join(job).join("log.jsonl");
        if p.exists() {
            read_jsonl(&p)
        } else {
            Vec::new()
        }
    }

    /// The run-level `job-end` event of `job`.
    pub fn job_end(&self, job: &str) -> Value {
        self.run_log()
            .into_iter()
            .find(|e| e["kind"] == "job-end" && e["job"] == job)
            .unwrap_or_else(|| panic!("no job-end for {job} in the run log\n{}", self.terminal()))
    }

    /// Bytes a job's `sh` number `n` wrote to `stream`, decoded from the log.
    pub fn output(&self, job: &str, n: u64, stream: &str) -> Vec<u8> {
        use base64::Engine as _;
        let mut bytes = Vec::new();
        for e in self.job_log(job) {
            if e["kind"] == stream && e["n"] == n {
                let data = e["data"].as_str().unwrap_or("");
                if e["encoding"] == "base64" {
                    bytes.extend(base64::engine::general_purpose::STANDARD.decode(data).expect("valid base64"));
                } else {
                    bytes.extend_from_slice(data.as_bytes());
                }
            }
        }
        bytes
    }

    /// Every file under the run directory, concatenated (for leak checks).
    pub fn all_record_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, into: &mut Vec<u8>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, into);
                } else if let Ok(b) = std::fs::read(&p) {
                    into.extend(b);
                }
            }
        }
        let mut all = Vec::new();
        walk(self.dir(), &mut all);
        all
    }

    /// The checks every docker test ends with: each line of every log is
    /// valid against the schema, and no container of this run is left.
    pub fn assert_clean(&self) -> &Self {
        let lines = schema::assert_run_dir_valid(self.dir());
        assert!(lines > 0, "empty run record in {}", self.dir().display());
        let left = containers_of_run(&self.run_id());
        assert!(left.is_empty(), "containers of run {} left behind: {left:?}", self.run_id());
        self
    }
}

pub fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// Every line of a log.jsonl, each required to be complete JSON.
pub fn read_jsonl(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: torn or bad line ({e}): {l}", p.display(), i + 1)))
        .collect()
}

/// Kinds of the events in a log, in order.
pub fn kinds(log: &[Value]) -> Vec<String> {
    log.iter().map(|e| e["kind"].as_str().unwrap_or("").to_string()).collect()
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
