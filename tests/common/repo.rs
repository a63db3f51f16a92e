//! A throwaway git repository with a `.quire/ci.fnl`, and a way to run the
//! real `quire-ci` binary in it (for tests/render*.rs and tests/tty.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const IMAGE: &str = "quire-ci-test/busybox:latest";

pub struct Repo {
    pub tmp: tempfile::TempDir,
}

impl Repo {
    /// A committed repository holding `ci` as `.quire/ci.fnl`.
    pub fn new(ci: &str) -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let repo = Repo { tmp };
        std::fs::create_dir_all(repo.path().join(".quire")).expect("mkdir .quire");
        std::fs::write(repo.path().join(".quire/ci.fnl"), ci).expect("write ci.fnl");
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["add", "-A"]);
        repo.git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]);
        repo
    }

    /// A git repository with no ci.fnl and these files.
    pub fn with_files(files: &[(&str, &str)]) -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let repo = Repo { tmp };
        for (name, text) in files {
            std::fs::write(repo.path().join(name), text).expect("write file");
        }
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where runs go (`--out`), inside the temp dir so tests never share.
    pub fn runs(&self) -> PathBuf {
        self.path().join(".git/quire-ci/runs")
    }

    pub fn git(&self, args: &[&str]) {
        let s = Command::new("git").arg("-C").arg(self.path()).args(args).status().expect("git runs");
        assert!(s.success(), "git {args:?} failed");
    }

    /// `quire-ci ARGS` in the repository, stdout not a terminal.
    pub fn quire(&self, args: &[&str]) -> Output {
        self.quire_env(args, &[])
    }

    pub fn quire_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quire-ci"));
        cmd.current_dir(self.path()).args(args).env("QUIRE_CI_IMAGE", IMAGE).env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("quire-ci runs")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Makes rendered output deterministic: durations become `[T]` (with the
/// padding in front of them squeezed), the run directory `[RUN]`.
pub fn normalize(text: &str, repo: &Repo) -> String {
    let runs = repo.runs().display().to_string();
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.find(&runs) {
            Some(i) => format!("{}[RUN]", &line[..i]),
            None => line.to_string(),
        };
        let mut words: Vec<String> = Vec::new();
        for w in line.split(' ') {
            let (core, tail) = match w.strip_suffix(':') {
                Some(c) => (c, ":"),
                None => (w, ""),
            };
            if is_duration(core) {
                // Drop the padding that right-aligned the duration.
                while words.last().is_some_and(|x| x.is_empty()) {
                    words.pop();
                }
                words.push(format!("[T]{tail}"));
            } else {
                words.push(w.to_string());
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
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
