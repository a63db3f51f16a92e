//! Settings in layers (flags, `QUIRE_CI_*`, `<git-dir>/quire-ci.toml`,
//! `.quire/quire-ci.toml`, the user's `config.toml`, defaults), `quire-ci
//! config`, and secrets: the dotenv file, the short-secret warning, and
//! masking of every line quire-ci prints or writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::record::contains_bytes;
use crate::harness::{self, Repo, IMAGE, PRELUDE};

const GREEN: &str = "(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\")))\n";

fn ci(body: &str) -> String {
    format!("{PRELUDE}{body}")
}

/// A user config directory of the scenario's own (`XDG_CONFIG_HOME`).
fn user_dir(repo: &Repo) -> PathBuf {
    repo.scratch().join("xdg")
}

fn write_user(repo: &Repo, text: &str) {
    let p = user_dir(repo).join("quire-ci/config.toml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `quire-ci config` lines as (origin, key, value).
fn config_lines(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .map(|l| {
            let (origin, rest) = l.split_once('\t').unwrap_or_else(|| panic!("no tab in {l:?}"));
            let (key, value) = rest.split_once(" = ").unwrap_or_else(|| panic!("no ` = ` in {l:?}"));
            (origin.to_string(), key.to_string(), value.to_string())
        })
        .collect()
}

fn line_of<'a>(lines: &'a [(String, String, String)], key: &str) -> (&'a str, &'a str) {
    let l = lines.iter().find(|(_, k, _)| k == key).unwrap_or_else(|| panic!("no {key} in {lines:?}"));
    (l.0.as_str(), l.2.as_str())
}

#[test]
fn config_shows_each_setting_from_the_highest_layer_that_sets_it() {
    let repo = Repo::with_ci(&ci(GREEN));
    write_user(&repo, "image = \"from-user\"\nmemory = \"1g\"\npull = \"never\"\nnetwork = \"user-net\"\n");
    repo.write(
        ".quire/quire-ci.toml",
        "# committed\nimage = \"from-repo\"\nmemory = \"768m\"\npull = \"always\"\nout = \"../records\"\n[hook]\nskip = [\"publish\"]\n",
    );
    repo.write(".git/quire-ci.toml", "image = \"from-local\"\n\nmemory = 268435456\n");
    let out = repo
        .quire(&["config"])
        .env("XDG_CONFIG_HOME", user_dir(&repo))
        .env("QUIRE_CI_IMAGE", "from-env")
        .env("QUIRE_CI_EXCERPT_LINES", "7")
        .run();
    out.status(0);
    let lines = config_lines(&out.stdout);
    let root = std::fs::canonicalize(repo.path()).unwrap();
    let user = user_dir(&repo).join("quire-ci/config.toml");
    assert_eq!(line_of(&lines, "image"), ("env:QUIRE_CI_IMAGE", "\"from-env\""));
    assert_eq!(line_of(&lines, "excerpt-lines"), ("env:QUIRE_CI_EXCERPT_LINES", "7"));
    assert_eq!(line_of(&lines, "memory"), ("file:.git/quire-ci.toml:3", "\"256m\""));
    assert_eq!(line_of(&lines, "pull"), ("file:.quire/quire-ci.toml:4", "\"always\""));
    assert_eq!(line_of(&lines, "network").1, "\"user-net\"");
    assert_eq!(line_of(&lines, "network").0, format!("file:{}:4", user.display()));
    assert_eq!(line_of(&lines, "hook.skip"), ("file:.quire/quire-ci.toml:7", "[\"publish\"]"));
    assert_eq!(line_of(&lines, "eval-timeout"), ("default", "10.0"));
    assert_eq!(line_of(&lines, "secrets-file"), ("default", "(unset)"));
    // A path in a file is relative to that file's directory.
    let records = root.join(".quire/../records").display().to_string();
    assert_eq!(line_of(&lines, "out"), ("file:.quire/quire-ci.toml:5", format!("{records:?}").as_str()));

    let out = repo.quire(&["config", "--json"]).env("XDG_CONFIG_HOME", user_dir(&repo)).run();
    out.status(0);
    let v = out.stdout_json();
    let entry = |k: &str| v["settings"].as_array().unwrap().iter().find(|e| e["key"] == k).cloned().unwrap();
    assert_eq!(entry("image")["value"], "from-local");
    assert_eq!(entry("image")["origin"]["kind"], "file");
    assert_eq!(entry("image")["origin"]["level"], "local");
    assert_eq!(entry("image")["origin"]["line"], 1);
    assert_eq!(entry("image")["env"], "QUIRE_CI_IMAGE");
    assert_eq!(entry("jobs")["origin"]["kind"], "default");
    let levels: Vec<(&str, bool)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["level"].as_str().unwrap(), f["exists"].as_bool().unwrap()))
        .collect();
    assert_eq!(levels, [("local", true), ("repo", true), ("user", true)]);
}

#[test]
fn an_unknown_key_is_an_error_naming_the_file_and_line() {
    let repo = Repo::with_ci(&ci(GREEN));
    repo.write(".quire/quire-ci.toml", "image = \"x\"\n\nmemroy = \"1g\"\n");
    for args in [&["config"][..], &["run"][..], &["watch"][..], &["hook", "pre-push", "origin"][..]] {
        let stdin = format!("refs/heads/main {} refs/heads/main {}\n", "1".repeat(40), "0".repeat(40));
        let out = repo.quire(args).stdin(stdin).run();
        out.status(2)
            .stderr_has("quire_ci::settings_key")
            .stderr_has("unknown setting `memroy` in .quire/quire-ci.toml")
            .stderr_has(".quire/quire-ci.toml:3")
            .stderr_has("did you mean `memory`?");
        assert!(repo.runs().is_empty(), "{args:?} recorded a run");
    }
    // validate's closing count names the file the problem is in.
    let out = repo.quire(&["validate"]).run();
    out.status(2).stderr_has("1 problem in .quire/quire-ci.toml\n");
    assert!(!out.stderr.contains("in .quire/ci.fnl"), "{}", out.stderr);
    // doctor says so as a failed check.
    repo.quire(&["doctor"]).run().stdout_has("fail  settings").stdout_has("memroy");

    // The user's file and the local one are checked the same way.
    std::fs::remove_file(repo.path().join(".quire/quire-ci.toml")).unwrap();
    write_user(&repo, "[watch]\ndebounce = 100\nclear = \"yes\"\n");
    let user = user_dir(&repo).join("quire-ci/config.toml");
    let out = repo.quire(&["config"]).env("XDG_CONFIG_HOME", user_dir(&repo)).run();
    out.status(2)
        .stderr_has("quire_ci::settings_value")
        .stderr_has("`watch.clear`")
        .stderr_has(&format!("{}:3", user.display()));
    repo.write(".git/quire-ci.toml", "memory = \"lots\"\n");
    let out = repo.quire(&["config"]).run();
    out.status(2).stderr_has("quire_ci::settings_value").stderr_has(".git/quire-ci.toml:1").stderr_has("memory size");
}

#[test]
fn docker_each_layer_beats_the_one_below_it_in_a_run() {
    // No image in ci.fnl: the setting decides. Every image named below is
    // absent and `pull = "never"`, so the run says which one it wanted.
    let repo = Repo::with_ci(&ci(GREEN));
    write_user(&repo, "pull = \"never\"\nimage = \"quire-ci-test/absent-user:1\"\n");
    repo.write(".quire/quire-ci.toml", "image = \"quire-ci-test/absent-repo:1\"\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "settings"]);
    repo.write(".git/quire-ci.toml", "image = \"quire-ci-test/absent-local:1\"\n");
    let run = |flag: Option<&str>, env: Option<&str>| {
        let mut args = vec!["run"];
        if let Some(f) = flag {
            args.extend(["--image", f]);
        }
        let cmd = repo.quire(&args).docker().env("XDG_CONFIG_HOME", user_dir(&repo));
        let cmd = match env {
            Some(e) => cmd.env("QUIRE_CI_IMAGE", e),
            None => cmd.env_remove("QUIRE_CI_IMAGE"),
        };
        cmd.run()
    };
    let wanted = |out: &harness::Output, image: &str| {
        assert_eq!(out.code, Some(3), "{}", out.stderr);
        // The summary says which image was missing, once.
        out.once_on_stdout(&format!("quire-ci-test/{image}:1 is not available"));
        assert!(out.stdout.contains("the pull policy is never"), "wanted {image}:\n{}", out.stdout);
    };
    wanted(&run(Some("quire-ci-test/absent-flag:1"), Some("quire-ci-test/absent-env:1")), "absent-flag");
    wanted(&run(None, Some("quire-ci-test/absent-env:1")), "absent-env");
    wanted(&run(None, None), "absent-local");
    std::fs::remove_file(repo.path().join(".git/quire-ci.toml")).unwrap();
    wanted(&run(None, None), "absent-repo");
    std::fs::remove_file(repo.path().join(".quire/quire-ci.toml")).unwrap();
    wanted(&run(None, None), "absent-user");
    // And a value from a file drives a real run.
    write_user(&repo, &format!("image = \"{IMAGE}\"\nskip = [\"t\"]\n"));
    let out = run(None, None);
    out.status(0);
    let user = user_dir(&repo).join("quire-ci/config.toml");
    let end = out.rec().job_end("t");
    assert_eq!(end["outcome"], "skipped", "{end}");
    assert!(end["reason"].as_str().unwrap_or("").contains(&user.display().to_string()), "{end}");
}

/// The hook's git, without `QUIRE_CI_IMAGE`: only the committed file
/// names the test image.
fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("git");
    harness::scrub(&mut cmd);
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).output().expect("git runs")
}

#[test]
fn docker_the_pre_push_hook_reads_the_committed_settings_file() {
    harness::require_docker();
    let ci_text = ci("(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\")))\n\
         (ci.job :publish [:t] (fn [{: sh}] (sh \"exit 1\")))\n");
    let repo = Repo::new().with_remote().ci(&ci_text).file(
        ".quire/quire-ci.toml",
        format!("image = \"{IMAGE}\"\nno-cache = true\n\n[hook]\nskip = [\"publish\"]\n"),
    );
    repo.commit("ci and settings");
    let install = repo.quire(&["hook", "install"]).run();
    install.status(0);
    let out = git(repo.path(), &["push", "-q", "origin", "main"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the push was refused:\n{err}");
    let runs = repo.runs();
    assert_eq!(runs.len(), 1, "{err}");
    let rec = harness::Record::new(runs[0].clone());
    rec.assert_clean();
    assert_eq!(rec.job_status("t"), "succeeded");
    let end = rec.job_end("publish");
    assert_eq!(end["outcome"], "skipped", "{end}");
    assert!(end["reason"].as_str().unwrap_or("").contains(".quire/quire-ci.toml"), "{end}");
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n\
Yx2eqzDV+xhiWmZ5r3bqQ5rPj1Ptg0sMdQ2JN9vM2xZf3ULz4Qm0n5U7wG1bHk9Q\n\
-----END PRIVATE KEY-----";

#[test]
fn docker_a_pem_key_from_the_secrets_file_is_masked_everywhere() {
    let body = r#"
(ci.job :t [:quire/push]
  (fn [{: sh : secret}]
    (let [key (secret :DEPLOY_KEY)]
      (sh ["sh" "-c" "printf '%s\n' \"$0\"; printf '%s\n' \"$0\" >&2" key])
      (sh ["sh" "-c" "test \"$0\" = quoted" (secret :QUOTED)])
      (sh ["sh" "-c" "echo pin=$0" (secret :PIN)])
      {:key key})))"#;
    let repo = Repo::with_ci(&ci(body));
    repo.write(
        ".git/deploy.env",
        format!("# deploy\nexport DEPLOY_KEY=\"{PEM}\"\nQUOTED=\"quoted\" # a comment\nPIN=Zq\n"),
    );
    // Named by this clone's settings file, relative to the git dir.
    repo.write(".git/quire-ci.toml", "secrets-file = \"deploy.env\"\n");
    let out = repo.quire(&["run"]).docker().run();
    out.status(0).assert_clean();
    let terminal = out.terminal();
    let record = out.all_record_bytes();
    for line in PEM.lines() {
        assert!(!terminal.contains(line), "a line of the key on the terminal: {line}\n{terminal}");
        assert!(!contains_bytes(&record, line.as_bytes()), "a line of the key in the record: {line}");
    }
    assert!(out.stdout.contains("t | ***"), "{}", out.stdout);
    assert_eq!(out.job_end("t")["outputs"]["key"], "***");
    assert!(!terminal.contains("pin=Zq") && terminal.contains("pin=***"), "{terminal}");
    // Short secrets are still masked, but not silently: one warning, naming it, not its value.
    let warning = "warning: the secret PIN is only 2 characters long";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
}

#[test]
fn docker_a_secret_inside_an_engine_error_is_masked_on_stderr_and_in_the_record() {
    let secret = "qsecretnet42";
    let repo = Repo::with_ci(&ci(GREEN));
    let out = repo.quire(&["run", "--network", secret]).docker().env("QUIRE_SECRET_NET", secret).run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret), "{}{}", out.stdout, out.stderr);
    // The engine's own words are there, with the value masked.
    // (The run's error is printed once, by the summary: message, help, code.)
    out.once_on_stdout("quire_ci::engine::api");
    out.once_on_stdout("network *** not found");
    if out.record.is_some() {
        assert!(!contains_bytes(&out.all_record_bytes(), secret.as_bytes()), "the secret in the record");
    }
}

#[test]
fn a_secrets_file_that_does_not_parse_names_the_line_not_the_value() {
    let repo = Repo::with_ci(&ci(GREEN));
    let file = repo.scratch().join("bad.env");
    std::fs::write(&file, "A=1\n# note\nTOKEN=\"s3cr3t-open-quote\n").unwrap();
    let out = repo.quire(&["run", "--secrets-file"]).arg(&file).run();
    out.status(2).stderr_has(&format!("{}:3", file.display())).stderr_lacks("s3cr3t-open-quote");
}

#[test]
fn a_bad_quire_ci_environment_value_names_the_variable_in_the_hook() {
    let repo = Repo::with_ci(&ci(GREEN));
    let stdin = format!("refs/heads/main {} refs/heads/main {}\n", "1".repeat(40), "0".repeat(40));
    let out = repo.quire(&["hook", "pre-push", "origin"]).env("QUIRE_CI_MEMORY", "lots").stdin(stdin).run();
    out.status(2).stderr_has("QUIRE_CI_MEMORY").stderr_has("quire_ci::settings_value");
}

#[test]
fn docker_doctor_checks_the_image_the_settings_name() {
    let repo = Repo::with_ci(&ci(GREEN)).file(".quire/quire-ci.toml", "image = \"quire-ci-test/absent-doctor:1\"\n");
    let out = repo.quire(&["--color", "never", "doctor"]).docker().env_remove("QUIRE_CI_IMAGE").run();
    out.status(3)
        .stdout_has("ok    settings .quire/quire-ci.toml")
        .stdout_has("fail  image    quire-ci-test/absent-doctor:1 is not present");
}

#[test]
fn docker_watch_reads_the_settings_files() {
    let repo = Repo::with_ci(&ci(GREEN))
        .file(".quire/quire-ci.toml", format!("image = \"{IMAGE}\"\nskip = [\"t\"]\n[watch]\ndebounce = 50\n"));
    repo.commit("settings");
    let running = repo.quire(&["watch"]).docker().env_remove("QUIRE_CI_IMAGE").spawn();
    running.wait_for_output("watching for changes", std::time::Duration::from_secs(120));
    let runs = repo.runs();
    assert_eq!(runs.len(), 1, "{}", running.stderr());
    let end = harness::Record::new(runs[0].clone()).job_end("t");
    assert_eq!(end["outcome"], "skipped", "{end}");
    assert!(end["reason"].as_str().unwrap_or("").contains(".quire/quire-ci.toml"), "{end}");
    running.signal("INT");
    let out = running.wait();
    assert_eq!(out.code, Some(130), "{}", out.stderr);
}

#[test]
fn validate_takes_the_limits_from_the_settings_files() {
    let body =
        "(local big (string.rep \"x\" (* 40 1024 1024)))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"true\")))\n";
    let repo = Repo::with_ci(&ci(body));
    repo.quire(&["validate"]).run().status(0);
    repo.write(".quire/quire-ci.toml", "lua-memory = 16\n");
    repo.quire(&["validate"]).run().status(2).stderr_has("more than the 16 MiB memory cap");
    // The flag still beats the file.
    repo.quire(&["validate", "--lua-memory", "256"]).run().status(0);
}

#[test]
fn docker_keep_runs_from_a_file_prunes_older_records() {
    let repo = Repo::with_ci(&ci(GREEN)).file(".git/quire-ci.toml", "keep-runs = 2\n");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out = repo.quire(&["run"]).docker().run();
        out.status(0);
        ids.push(out.rec().run_id());
    }
    assert_eq!(repo.run_ids(), ids[1..], "the oldest run was not pruned");
    // The flag beats the file: 1 keeps only the newest.
    let out = repo.quire(&["run", "--keep-runs", "1"]).docker().run();
    out.status(0);
    assert_eq!(repo.run_ids(), [out.rec().run_id()]);
}

#[test]
fn config_dies_quietly_when_its_reader_goes_away() {
    let repo = Repo::with_ci(&ci(GREEN));
    let mut child = Command::new(harness::bin())
        .arg("config")
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", user_dir(&repo))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("config starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("config ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
