//! `quire-ci init`: writes a starter `.quire/ci.fnl` whose commands and
//! image fit what the repository holds. Never overwrites an existing one.

use std::path::Path;

use super::{exit, Context};

/// What kind of project a repository looks like, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    Cargo,
    Npm,
    Go,
    Python,
    Make,
    Empty,
}

impl Starter {
    /// Picks by the files at the repository's root.
    pub fn detect(root: &Path) -> Starter {
        let has = |f: &str| root.join(f).is_file();
        if has("Cargo.toml") {
            Starter::Cargo
        } else if has("package.json") {
            Starter::Npm
        } else if has("go.mod") {
            Starter::Go
        } else if has("pyproject.toml") {
            Starter::Python
        } else if has("Makefile") || has("makefile") || has("GNUmakefile") {
            Starter::Make
        } else {
            Starter::Empty
        }
    }

    pub fn image(self) -> &'static str {
        match self {
            Starter::Cargo => "rust:1",
            Starter::Npm => "node:20",
            Starter::Go => "golang:1",
            Starter::Python => "python:3",
            Starter::Make | Starter::Empty => "debian:bookworm-slim",
        }
    }

    /// The `test` job's commands, then the `build` job's (empty: no build job).
    fn commands(self, root: &Path) -> (Vec<&'static str>, Vec<&'static str>) {
        match self {
            Starter::Cargo => (vec!["cargo test"], vec!["cargo build --release"]),
            // `npm ci` needs a lockfile; without one, install resolves afresh.
            Starter::Npm if root.join("package-lock.json").is_file() => (vec!["npm ci", "npm test"], vec![]),
            Starter::Npm => (vec!["npm install", "npm test"], vec![]),
            Starter::Go => (vec!["go vet ./...", "go test ./..."], vec!["go build ./..."]),
            Starter::Python => (vec!["pip install . pytest", "python -m pytest"], vec![]),
            // The slim image has no make; install it first.
            Starter::Make => {
                (vec!["apt-get update -qq && apt-get install -y -qq make >/dev/null", "make test"], vec![])
            }
            Starter::Empty => (vec!["echo 'replace this with your checks, e.g. ./run-tests'"], vec![]),
        }
    }

    /// The whole starter file.
    pub fn ci_fnl(self, root: &Path) -> String {
        let (test, build) = self.commands(root);
        let list = |cmds: &[&str]| cmds.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join("\n              ");
        let mut s = format!(
            r#";; .quire/ci.fnl, written by `quire-ci init`. Run it with `quire-ci run`;
;; check it with `quire-ci validate`. Every job runs in one container
;; made from the image below, with the repository at /work.
(local ci (require :quire.ci))
(ci.image {image:?})

(fn steps [sh cmds]
  "Runs each command in order; stops at the first that fails."
  (var exit 0)
  (each [_ cmd (ipairs cmds) &until (not= exit 0)]
    (set exit (. (sh cmd) :exit)))
  {{:exit exit}})

(ci.job :test [:quire/push]
  (fn [{{: sh}}]
    (steps sh [{test}])))
"#,
            image = self.image(),
            test = list(&test)
        );
        if !build.is_empty() {
            s.push_str(&format!(
                r#"
(ci.job :build [:test]
  (fn [{{: sh}}]
    (steps sh [{build}])))
"#,
                build = list(&build)
            ));
        }
        s
    }
}

pub fn run(ctx: &Context) -> i32 {
    let root = match super::repo_root(ctx) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let path = root.join(crate::pipeline::CI_FNL);
    // Written only inside the repository: a `.quire` that is a link leads
    // elsewhere (and a run would see the link, not a ci.fnl).
    let dot_quire = root.join(".quire");
    if std::fs::symlink_metadata(&dot_quire).is_ok_and(|m| m.file_type().is_symlink()) {
        let to = std::fs::read_link(&dot_quire).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
        eprintln!(
            "quire-ci: {} is a symbolic link{to}; init writes only inside the repository (make .quire a directory)",
            dot_quire.display()
        );
        return exit::BAD_INPUT;
    }
    if path.exists() {
        eprintln!(
            "quire-ci: {} already exists; init never overwrites it (edit it, or remove it and run init again)",
            path.display()
        );
        return exit::BAD_INPUT;
    }
    let starter = Starter::detect(&root);
    let text = starter.ci_fnl(&root);
    if let Some(dir) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("quire-ci: cannot create {}: {e}", dir.display());
            return exit::INFRA;
        }
    }
    // create_new: a file that appeared since the check is still not overwritten.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    if let Err(e) = written {
        eprintln!("quire-ci: cannot write {}: {e}", path.display());
        return if e.kind() == std::io::ErrorKind::AlreadyExists { exit::BAD_INPUT } else { exit::INFRA };
    }
    if !ctx.quiet {
        println!("wrote {} ({:?} starter, image {})", path.display(), starter, starter.image());
        println!("next: `quire-ci validate`, then `quire-ci run`; commit .quire/ci.fnl when it passes");
    }
    exit::OK
}
