//! `quire-ci init` and `quire-ci doctor`, run as the real binary. Each
//! starter ci.fnl `init` writes must pass `quire-ci validate`; doctor runs
//! against the real engine (tests with `docker` in their name need one).

use crate::harness::{Repo, IMAGE};

fn init_then_validate(files: &[(&str, &str)], image: &str, command: &str) {
    let repo = Repo::with_files(files);
    let out = repo.quire(&["init"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr.clone());
    let written = std::fs::read_to_string(repo.path().join(".quire/ci.fnl")).expect("init wrote .quire/ci.fnl");
    assert!(written.contains(&format!("(ci.image {image:?})")), "{files:?}: wrong image in\n{written}");
    assert!(written.contains(command), "{files:?}: no {command:?} in\n{written}");
    let valid = repo.quire(&["validate"]).run();
    assert_eq!(valid.code, Some(0), "{files:?}: the starter does not validate:\n{}\n{written}", valid.stderr.clone());
    assert!(valid.stdout.contains(&format!("image {image}")), "{}", valid.stdout.clone());
}

#[test]
fn init_writes_a_valid_starter_for_each_kind_of_repo() {
    init_then_validate(&[("Cargo.toml", "[package]\nname = \"x\"\n")], "rust:1", "cargo test");
    init_then_validate(&[("package.json", "{}"), ("package-lock.json", "{}")], "node:20", "npm ci");
    init_then_validate(&[("package.json", "{}")], "node:20", "npm install");
    init_then_validate(&[("go.mod", "module x\n")], "golang:1", "go test ./...");
    init_then_validate(&[("pyproject.toml", "[project]\nname = \"x\"\n")], "python:3", "python -m pytest");
    init_then_validate(&[("Makefile", "test:\n\ttrue\n")], "debian:bookworm-slim", "make test");
    init_then_validate(&[("README", "hi\n")], "debian:bookworm-slim", "echo");
    // Cargo wins over a Makefile beside it.
    init_then_validate(&[("Cargo.toml", "[package]\n"), ("Makefile", "")], "rust:1", "cargo build --release");
}

#[test]
fn init_never_overwrites() {
    let repo = Repo::with_ci("(local ci (require :quire.ci))\n; mine\n");
    let out = repo.quire(&["init"]).run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("already exists"), "{}", out.stderr.clone());
    let kept = std::fs::read_to_string(repo.path().join(".quire/ci.fnl")).expect("still there");
    assert!(kept.contains("; mine"));
}

#[test]
fn docker_starter_runs_green_in_a_container() {
    // The no-marker starter needs only `echo`, so it runs in the test image.
    let repo = Repo::with_files(&[("README", "hi\n")]);
    assert_eq!(repo.quire(&["init"]).docker().run().code, Some(0));
    let text = std::fs::read_to_string(repo.path().join(".quire/ci.fnl")).expect("written");
    std::fs::write(repo.path().join(".quire/ci.fnl"), text.replace("debian:bookworm-slim", IMAGE))
        .expect("rewrite image");
    let run = repo.quire(&["--color", "never", "run"]).docker().run();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout.clone(), run.stderr.clone());
    assert!(run.stdout.contains("replace this with your checks"));
}

#[test]
fn docker_doctor_reports_each_check() {
    let repo = Repo::with_ci(&format!(
        "(local ci (require :quire.ci))\n(ci.image {:?})\n(ci.job :t [:quire/push] (fn [{{: sh}}] {{}}))\n",
        IMAGE
    ));
    let out = repo.quire(&["--color", "never", "doctor"]).docker().run();
    let text = out.stdout.clone();
    assert_eq!(out.code, Some(0), "{text}\n{}", out.stderr.clone());
    for line in
        ["ok    engine", "ok    fennel", "ok    repo", "ok    ci.fnl   valid, 1 job", "ok    image", "warn  hook"]
    {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(text.contains("API 1."), "{text}");
    assert!(text.contains("fix: run `quire-ci hook install`"), "{text}");

    // A hook that mentions quire-ci is detected.
    let hooks = repo.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    std::fs::write(hooks.join("pre-push"), "#!/bin/sh\nexec quire-ci hook run \"$@\"\n").expect("hook");
    let again = repo.quire(&["--color", "never", "doctor"]).docker().run().stdout;
    assert!(again.contains("ok    hook"), "{again}");
}

#[test]
fn docker_doctor_exit_codes() {
    let bad = Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:nope] (fn [] {}))\n");
    let out = bad.quire(&["--color", "never", "doctor"]).docker().run();
    assert_eq!(out.code, Some(2), "{}", out.stdout.clone());
    assert!(out.stdout.contains("fail  ci.fnl"), "{}", out.stdout.clone());

    let missing = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.image \"quire-ci-test/no-such-image:1\")\n(ci.job :t [:quire/push] (fn [] {}))\n",
    );
    let out = missing.quire(&["--color", "never", "doctor"]).docker().run();
    assert_eq!(out.code, Some(3), "{}", out.stdout.clone());
    assert!(
        out.stdout.contains("fail  image    quire-ci-test/no-such-image:1 is not present"),
        "{}",
        out.stdout.clone()
    );

    let unreachable = missing
        .quire(&["--color", "never", "doctor"])
        .docker()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    assert_eq!(unreachable.code, Some(3));
    assert!(unreachable.stdout.contains("fail  engine"), "{}", unreachable.stdout.clone());
}
