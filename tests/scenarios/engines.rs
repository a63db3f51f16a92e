//! Every engine a user already has (docs/engine.md): a second dockerd with
//! TLS reached by DOCKER_HOST and by a docker context, the same engine over
//! ssh://, a registry with htpasswd auth, rootful Podman, `--network`. The
//! engines and services are real and local (scripts/test-engines starts
//! them, on 127.0.0.1); the docker config is a temporary one per test.
//! Filter: `cargo test --test main engines::`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{containers_of_run, schema, sh_ok, Cmd, Output, Repo, IMAGE};

/// A bound on hangs, not a figure (timings belong to scripts/bench*).
const LIMIT: Duration = Duration::from_secs(120);

const TLS_HOST: &str = "tcp://127.0.0.1:23760";
const SSH_HOST: &str = "ssh://root@127.0.0.1:22022";
const REGISTRY: &str = "127.0.0.1:5001";
const REGISTRY_USER: &str = "quire";
const REGISTRY_PASS: &str = "ci-test-pass";

/// The state directory of scripts/test-engines, after running it once
/// (idempotent: it starts only what is not running). Fails, never skips,
/// when the engines cannot be had.
fn engines() -> &'static Path {
    static STATE: OnceLock<PathBuf> = OnceLock::new();
    STATE.get_or_init(|| {
        crate::harness::require_docker();
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-engines"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/test-engines: {e}"));
        assert!(out.status.success(), "scripts/test-engines failed:\n{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn docker2_sock() -> String {
    format!("unix://{}/docker2/docker.sock", engines().display())
}

fn podman_sock() -> String {
    format!("unix://{}/podman/podman.sock", engines().display())
}

fn certs() -> PathBuf {
    engines().join("certs")
}

/// `quire-ci ARGS` in `repo` against an engine, with no engine or docker
/// config of the ambient environment: `DOCKER_CONFIG` is `config` (a temp dir).
fn cmd<'r>(repo: &'r Repo, config: &Path, args: &[&str]) -> Cmd<'r> {
    let mut c = repo.quire(args).docker();
    for k in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH"] {
        c = c.env_remove(k);
    }
    c.env("DOCKER_CONFIG", config)
}

/// The docker CLI against `host` (a `-H` value), with `config` as DOCKER_CONFIG.
fn docker_at(host: &str, config: &Path) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_CONFIG", config).env_remove("DOCKER_CONTEXT").env_remove("DOCKER_HOST");
    if host.starts_with("tcp://") {
        c.env("DOCKER_CERT_PATH", certs()).args(["-H", host, "--tlsverify"]);
    } else {
        c.args(["-H", host]);
    }
    c
}

/// Ids of the containers of run `run_id` on the engine at `host`.
fn containers_at(host: &str, run_id: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("temp");
    let out =
        sh_ok(docker_at(host, tmp.path()).args(["ps", "-aq", "--filter", &format!("label=quire-ci.run={run_id}")]));
    out.split_whitespace().map(str::to_string).collect()
}

/// Waits until no container of `run_id` is left on the engine at `host`:
/// a run hands its container to a background remover and exits, so it goes
/// shortly after (within [`crate::harness::REMOVAL_LIMIT`]).
fn wait_gone_at(host: &str, run_id: &str) {
    crate::harness::wait_none_left(&format!("the containers of run {run_id} on {host}"), || {
        containers_at(host, run_id)
    });
}

/// The line of the `--keep` message that is the command to enter the
/// container, split into words (it has no quoting in these tests).
fn kept_shell_command(f: &Output) -> Vec<String> {
    let text = f.terminal();
    let line = text
        .lines()
        .skip_while(|l| !l.contains("get a shell in it with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no shell command in the --keep message:\n{text}"));
    line.split_whitespace().map(str::to_string).collect()
}

/// Runs the printed `docker ... exec -it -w /work NAME sh` as a
/// non-interactive `cat /work/k.txt`, with the given environment.
fn run_printed_command(words: &[String], env: &[(&str, &str)]) -> String {
    assert_eq!(words.first().map(String::as_str), Some("docker"), "{words:?}");
    let exec = words.iter().position(|w| w == "exec").expect("exec in the command");
    let name = words.get(exec + 4).expect("container name").clone();
    let mut c = Command::new("docker");
    c.env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(&words[1..exec]).args(["exec", &name, "cat", "/work/k.txt"]);
    sh_ok(&mut c)
}

/// The image a run built from .quire/Dockerfile (its `image` event `built`).
fn built_image(r: &Output) -> Option<String> {
    r.rec()
        .run_log()
        .into_iter()
        .find(|e| e["kind"] == "image" && e["action"] == "built")
        .and_then(|e| e["image"].as_str().map(str::to_string))
}

const KEEP_CI: &str =
    "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo kept > k.txt\") {}))\n";

#[test]
fn tls_docker_host_with_tls_verify_runs_there_and_keep_prints_a_working_command() {
    let state = engines();
    let repo = Repo::with_ci(KEEP_CI);
    let config = tempfile::tempdir().expect("temp");
    let c = cmd(&repo, config.path(), &["run", "--keep", "-v"]).keeps_container();
    let c = c.env("DOCKER_HOST", TLS_HOST).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", certs());
    let r = c.run();
    r.status(0);
    assert!(
        r.terminal().contains(&format!("engine: context default (DOCKER_HOST is set): {TLS_HOST}, TLS")),
        "{}",
        r.terminal()
    );
    let on_second = containers_at(&docker2_sock(), &r.rec().run_id());
    assert_eq!(on_second.len(), 1, "the run's container must be on the TLS engine");
    assert!(containers_of_run(&r.rec().run_id()).is_empty(), "nothing on the shared engine");
    let words = kept_shell_command(&r);
    assert_eq!(words[..4], ["docker", "-H", TLS_HOST, "--tlsverify"], "{words:?}");
    let certs = certs();
    assert_eq!(run_printed_command(&words, &[("DOCKER_CERT_PATH", certs.to_str().unwrap())]), "kept\n");
    sh_ok(Command::new("docker").args(["-H", &docker2_sock(), "rm", "-f", &on_second[0]]));

    // Plain HTTP to the TLS port: an exit-3 error naming the endpoint.
    let c = cmd(&repo, config.path(), &["run"]);
    let c = c.env("DOCKER_HOST", TLS_HOST);
    let r = c.run();
    r.status(3);
    // Said once, by the summary (the run has a record).
    r.once_on_stdout(TLS_HOST);
    let _ = state;
}

/// A docker config with a context `second` made by the docker CLI itself
/// (so the store's layout is docker's), pointing at the TLS engine.
fn config_with_context(use_it: bool) -> tempfile::TempDir {
    let config = tempfile::tempdir().expect("temp");
    let certs = certs();
    let spec = format!(
        "host={TLS_HOST},ca={},cert={},key={}",
        certs.join("ca.pem").display(),
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    sh_ok(
        Command::new("docker")
            .env("DOCKER_CONFIG", config.path())
            .args(["context", "create", "second", "--docker", &spec]),
    );
    if use_it {
        sh_ok(Command::new("docker").env("DOCKER_CONFIG", config.path()).args(["context", "use", "second"]));
    }
    config
}

#[test]
fn current_context_lands_on_its_engine_and_docker_context_default_goes_back() {
    engines();
    let repo = Repo::with_ci(KEEP_CI);
    let config = config_with_context(true);
    let r = cmd(&repo, config.path(), &["run", "--keep", "-v"]).keeps_container().run();
    r.status(0);
    let why = format!(
        "engine: context second (currentContext in {}): {TLS_HOST}, TLS",
        config.path().join("config.json").display()
    );
    assert!(r.terminal().contains(&why), "{}", r.terminal());
    let on_second = containers_at(&docker2_sock(), &r.rec().run_id());
    assert_eq!(on_second.len(), 1, "the run's container must be on the context's engine");
    let words = kept_shell_command(&r);
    assert_eq!(words[..3], ["docker", "--context", "second"], "{words:?}");
    let cfg = config.path().to_str().unwrap().to_string();
    assert_eq!(run_printed_command(&words, &[("DOCKER_CONFIG", &cfg)]), "kept\n");
    sh_ok(Command::new("docker").args(["-H", &docker2_sock(), "rm", "-f", &on_second[0]]));

    // DOCKER_CONTEXT=default: the local engine, as for `docker`.
    let c = cmd(&repo, config.path(), &["run", "--keep", "-v"]).keeps_container();
    let c = c.env("DOCKER_CONTEXT", "default");
    let r = c.run();
    r.status(0);
    assert!(
        r.terminal().contains("engine: context default (DOCKER_CONTEXT=default): unix:///var/run/docker.sock"),
        "{}",
        r.terminal()
    );
    let local = containers_of_run(&r.rec().run_id());
    assert_eq!(local.len(), 1, "DOCKER_CONTEXT=default must run on the local engine");
    wait_gone_at(&docker2_sock(), &r.rec().run_id());
    sh_ok(Command::new("docker").args(["rm", "-f", &local[0]]));

    // DOCKER_CONTEXT wins over currentContext, and doctor says which and why.
    let c = cmd(&repo, config.path(), &["doctor"]);
    let c = c.env("DOCKER_CONTEXT", "second");
    let out = c.run();
    let text = &out.stdout;
    assert!(text.contains(&format!("via context second (DOCKER_CONTEXT=second): {TLS_HOST}, TLS")), "{text}");
}

#[test]
fn a_context_that_points_nowhere_is_an_exit_3_error_naming_it() {
    engines();
    let repo = Repo::with_ci(KEEP_CI);
    let config = tempfile::tempdir().expect("temp");
    // No such context.
    let c = cmd(&repo, config.path(), &["run"]);
    let c = c.env("DOCKER_CONTEXT", "nosuch");
    let r = c.run();
    r.status(3);
    r.once_on_stdout("docker context nosuch (from DOCKER_CONTEXT)");
    // A context whose engine does not answer: no fallback to the local one.
    sh_ok(Command::new("docker").env("DOCKER_CONFIG", config.path()).args([
        "context",
        "create",
        "gone",
        "--docker",
        "host=tcp://127.0.0.1:1",
    ]));
    sh_ok(Command::new("docker").env("DOCKER_CONFIG", config.path()).args(["context", "use", "gone"]));
    let r = cmd(&repo, config.path(), &["run"]).run();
    r.status(3);
    r.once_on_stdout("context gone (currentContext in").once_on_stdout("tcp://127.0.0.1:1");
    let out = cmd(&repo, config.path(), &["doctor"]).run();
    out.status(3).stdout_has("context gone");
}

#[test]
fn ssh_docker_host_runs_on_the_far_engine_and_keep_prints_a_working_command() {
    let state = engines();
    let repo = Repo::with_ci(KEEP_CI);
    let config = tempfile::tempdir().expect("temp");
    // The real ssh, with the throwaway key and known_hosts of the test sshd
    // (a wrapper that adds `-F`), first on PATH.
    let path = format!("{}:{}", state.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let c = cmd(&repo, config.path(), &["run", "--keep", "-v"]).keeps_container();
    let c = c.env("DOCKER_HOST", SSH_HOST).env("PATH", &path);
    let r = c.run();
    r.status(0);
    assert!(
        r.terminal().contains(&format!("engine: context default (DOCKER_HOST is set): {SSH_HOST}, ssh")),
        "{}",
        r.terminal()
    );
    let on_second = containers_at(&docker2_sock(), &r.rec().run_id());
    assert_eq!(on_second.len(), 1, "sshd's sessions reach the second engine; the run must be there");
    let words = kept_shell_command(&r);
    assert_eq!(words[..3], ["docker", "-H", SSH_HOST], "{words:?}");
    assert_eq!(run_printed_command(&words, &[("PATH", &path)]), "kept\n");
    sh_ok(Command::new("docker").args(["-H", &docker2_sock(), "rm", "-f", &on_second[0]]));
}

/// Pushes the test image to the htpasswd registry under a name of this
/// test's own; returns it and a docker config logged in there.
fn private_image(name: &str) -> (String, tempfile::TempDir) {
    engines();
    let logged_in = tempfile::tempdir().expect("temp");
    let image = format!("{REGISTRY}/quire-ci-test/{name}-{}:latest", std::process::id());
    let docker = |args: &[&str]| sh_ok(Command::new("docker").env("DOCKER_CONFIG", logged_in.path()).args(args));
    docker(&["login", "-u", REGISTRY_USER, "-p", REGISTRY_PASS, REGISTRY]);
    docker(&["tag", IMAGE, &image]);
    docker(&["push", &image]);
    // Only in the registry now: the run must pull it.
    docker(&["rmi", &image]);
    (image, logged_in)
}

#[test]
fn private_registry_image_pulls_with_the_docker_config_credentials_and_says_how_to_log_in_without() {
    let (image, logged_in) = private_image("private");
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo from-private\") {}))\n",
    );
    let anonymous = tempfile::tempdir().expect("temp");
    let r = cmd(&repo, anonymous.path(), &["run", "--image", &image]).run();
    r.status(3);
    r.once_on_stdout(&format!("registry {REGISTRY} refused {image}"))
        .once_on_stdout(&format!("docker login {REGISTRY}"));

    let r = cmd(&repo, logged_in.path(), &["run", "--image", &image]).run();
    r.status(0);
    assert!(r.terminal().contains("from-private"), "{}", r.terminal());
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

#[test]
fn credential_helpers_of_the_docker_config_are_asked_for_the_registry() {
    let (image, _logged_in) = private_image("helper");
    // A docker config whose only credentials are a helper's (the
    // docker-credential-* protocol: `get`, the server on stdin, JSON out).
    let config = tempfile::tempdir().expect("temp");
    let bin = tempfile::tempdir().expect("temp");
    let helper = bin.path().join("docker-credential-quiretest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}/asked\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{REGISTRY_USER}\",\"Secret\":\"{REGISTRY_PASS}\"}}' \"$server\"\n",
            bin.path().display()
        ),
    )
    .expect("helper");
    sh_ok(Command::new("chmod").arg("+x").arg(&helper));
    std::fs::write(config.path().join("config.json"), format!(r#"{{"credHelpers":{{"{REGISTRY}":"quiretest"}}}}"#))
        .expect("config");
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"echo via-helper\") {}))\n",
    );
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let c = cmd(&repo, config.path(), &["run", "--image", &image]);
    let c = c.env("PATH", &path);
    let r = c.run();
    let _ = Command::new("docker").args(["rmi", &image]).output();
    r.status(0);
    assert!(r.terminal().contains("via-helper"), "{}", r.terminal());
    let asked = std::fs::read_to_string(bin.path().join("asked")).expect("the helper was never asked");
    assert_eq!(asked.trim(), REGISTRY);
}

#[test]
fn json_carries_pull_progress_downloading_and_extracting() {
    let (base, logged_in) = private_image("progress-base");
    // A layer of its own (random bytes), so the pull downloads and extracts.
    let image = format!("{REGISTRY}/quire-ci-test/progress-{}:latest", std::process::id());
    let ctx = tempfile::tempdir().expect("temp");
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {base}\nRUN head -c 8000000 /dev/urandom > /blob\n"))
        .expect("Dockerfile");
    let docker = |args: &[&str]| sh_ok(Command::new("docker").env("DOCKER_CONFIG", logged_in.path()).args(args));
    docker(&["build", "-q", "-t", &image, ctx.path().to_str().unwrap()]);
    docker(&["push", &image]);
    docker(&["rmi", &image, &base]);
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"test -s /blob\") {}))\n",
    );
    let r = cmd(&repo, logged_in.path(), &["run", "--json", "--image", &image]).run();
    let _ = Command::new("docker").args(["rmi", &image]).output();
    r.status(0);
    for l in r.stdout.lines() {
        schema::validate_line(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let lines: Vec<serde_json::Value> =
        r.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let progress: Vec<&serde_json::Value> = lines.iter().filter(|l| l["kind"] == "image-progress").collect();
    let statuses: Vec<&str> = progress.iter().filter_map(|p| p["status"].as_str()).collect();
    assert!(statuses.contains(&"Downloading"), "{statuses:?}");
    let extracting: Vec<_> = progress.iter().filter(|p| p["status"] == "Extracting").collect();
    assert!(!extracting.is_empty(), "no Extracting progress in --json: {statuses:?}");
    assert!(extracting.iter().any(|p| p["current"].as_u64().is_some_and(|c| c > 0)), "{extracting:?}");
    // The record keeps none of it.
    let log = std::fs::read_to_string(r.rec().dir().join("log.jsonl")).expect("log");
    assert!(!log.contains("image-progress"), "{log}");
}

#[test]
fn dockerfile_from_a_private_registry_builds_with_the_docker_config_credentials() {
    let (image, logged_in) = private_image("base");
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"cat /based\") {}))\n",
    );
    repo.write(".quire/Dockerfile", format!("FROM {image}\nRUN echo on-private-base > /based\n"));
    repo.commit("dockerfile");
    let anonymous = tempfile::tempdir().expect("temp");
    let r = cmd(&repo, anonymous.path(), &["run"]).run();
    r.status(3);
    r.once_on_stdout(&format!("docker login {REGISTRY}"));

    let r = cmd(&repo, logged_in.path(), &["run"]).run();
    r.status(0);
    assert!(r.terminal().contains("on-private-base"), "{}", r.terminal());
    let _ = Command::new("docker").args(["rmi", &image]).output();
    if let Some(b) = built_image(&r) {
        let _ = Command::new("docker").args(["rmi", &b]).output();
    }
}

#[test]
fn network_flag_and_env_choose_the_container_network() {
    engines();
    let repo = Repo::with_ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"ls /sys/class/net | tr '\\\\n' ' '\") {}))\n");
    let config = tempfile::tempdir().expect("temp");
    let r = cmd(&repo, config.path(), &["run", "--network", "none"]).run();
    r.status(0);
    assert!(r.terminal().contains("t | lo \n") || r.terminal().contains("t | lo"), "{}", r.terminal());
    assert!(!r.terminal().contains("eth0"), "--network none has no eth0: {}", r.terminal());
    let r = cmd(&repo, config.path(), &["run"]).run();
    r.status(0);
    assert!(r.terminal().contains("eth0"), "the default bridge has eth0: {}", r.terminal());
    let c = cmd(&repo, config.path(), &["run"]);
    let c = c.env("QUIRE_CI_NETWORK", "none");
    let r = c.run();
    r.status(0);
    assert!(!r.terminal().contains("eth0"), "QUIRE_CI_NETWORK=none: {}", r.terminal());
    let r = cmd(&repo, config.path(), &["run", "--network", "no such"]).run();
    r.status(2);
    assert!(r.stderr.contains("not a network mode"), "{}", r.stderr);
}

// ---- Podman ------------------------------------------------------------------

fn podman_cmd<'r>(repo: &'r Repo, config: &Path, args: &[&str]) -> Cmd<'r> {
    // Podman's API service here has no network of its own (containers.conf
    // netns = "none", so it adds no firewall rules); the runs say so too.
    cmd(repo, config, args).env("DOCKER_HOST", podman_sock()).env("QUIRE_CI_NETWORK", "none")
}

#[test]
fn podman_run_with_secrets_and_doctor_naming_the_product() {
    engines();
    let repo = Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh : secret}] (sh (.. \"test \" (secret :TOKEN) \" = s3cret && echo secret-ok\")) {}))\n",
    );
    let config = tempfile::tempdir().expect("temp");
    let r = podman_cmd(&repo, config.path(), &["run", "--secret", "TOKEN"]).env("TOKEN", "s3cret").run();
    r.status(0);
    assert!(r.terminal().contains("secret-ok"), "{}", r.terminal());
    assert!(!r.terminal().contains("s3cret"), "the secret must be redacted: {}", r.terminal());
    wait_gone_at(&podman_sock(), &r.rec().run_id());
    let out = podman_cmd(&repo, config.path(), &["doctor"]).run();
    out.stdout_has("Podman Engine 4.").stdout_lacks("linux/amd64/debian");
}

/// A repository past 2 x 4,096 entries (so cut among unpackers where the
/// engine has cores for them) whose job lists what arrived in /work.
fn nine_thousand_files() -> Repo {
    let list = "find . -type f | wc -l; cat d17/s9/f08999.txt | wc -c";
    Repo::with_ci(
        "(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] {:out (. (sh \"sh list.sh\") :stdout)}))\n",
    )
    .file("list.sh", list)
    .many_files(9000)
}

/// What [`nine_thousand_files`]' job lists when all arrived: 9,000 files,
/// list.sh and ci.fnl; the last file is "file 8999\n" x 4.
const NINE_THOUSAND_LISTED: &str = "9002\n40\n";

#[test]
fn podman_takes_a_large_snapshot_side_by_side_through_execs_on_stdin() {
    // Past 2 x 4,096 entries the snapshot goes in through the container's
    // own tar and unpacker execs beside it, each fed on its stdin: Podman's
    // Docker API must take that too, without falling back to the archive
    // endpoint.
    engines();
    let repo = nine_thousand_files();
    let config = tempfile::tempdir().expect("temp");
    let r = podman_cmd(&repo, config.path(), &["run", "-v"]).run();
    r.status(0);
    let cores = crate::harness::unpackers(Some(&podman_sock()));
    let said = format!("went in through {cores} unpackers side by side");
    assert_eq!(r.stdout.contains(&said), cores > 1, "{said:?} in\n{}", r.stdout);
    assert!(!r.stdout.contains("archive endpoint"), "{}", r.stdout);
    assert_eq!(r.job_end("t")["outputs"]["out"], NINE_THOUSAND_LISTED);
    wait_gone_at(&podman_sock(), &r.rec().run_id());
}

#[test]
fn a_large_snapshot_is_cut_by_the_engines_cores_not_this_machines() {
    // dockerd2 runs on one core (scripts/test-engines), as a remote engine
    // may have fewer than this machine: one unpacker there, its own tar
    // taking the whole snapshot on its stdin.
    engines();
    assert_eq!(crate::harness::unpackers(Some(&docker2_sock())), 1, "dockerd2 runs on one core");
    let repo = nine_thousand_files();
    let config = tempfile::tempdir().expect("temp");
    let r = cmd(&repo, config.path(), &["run", "-v"]).env("DOCKER_HOST", docker2_sock()).run();
    r.status(0);
    assert!(!r.stdout.contains("side by side"), "{}", r.stdout);
    assert!(!r.stdout.contains("archive endpoint"), "{}", r.stdout);
    assert_eq!(r.job_end("t")["outputs"]["out"], NINE_THOUSAND_LISTED);
    wait_gone_at(&docker2_sock(), &r.rec().run_id());
}

const SLEEPER: &str = "(local ci (require :quire.ci))\n(ci.job :slow [:quire/push] (fn [{: sh}] (sh \"echo started; sleep 30\") {}))\n(ci.job :after [:slow] (fn [{: sh}] (sh \"echo after\") {}))\n";

#[test]
fn podman_ctrl_c_cancels_with_130_and_removes_the_container() {
    engines();
    let repo = Repo::with_ci(SLEEPER);
    let config = tempfile::tempdir().expect("temp");
    let run = podman_cmd(&repo, config.path(), &["run"]).status(130).spawn();
    run.wait_for_output("started", LIMIT);
    run.signal("INT");
    let r = run.wait();
    wait_gone_at(&podman_sock(), &r.rec().run_id());
    assert_eq!(r.rec().run_status(), "canceled");
    assert_eq!(r.rec().job_status("after"), "skipped");
}

#[test]
fn podman_container_killed_from_outside_is_container_died_exit_3() {
    engines();
    let repo = Repo::with_ci(SLEEPER);
    let config = tempfile::tempdir().expect("temp");
    let run = podman_cmd(&repo, config.path(), &["run"]).status(3).stderr_lacks("deserialize").spawn();
    run.wait_for_output("started", LIMIT);
    let id = run.record(LIMIT).run_id();
    let ids = containers_at(&podman_sock(), &id);
    assert_eq!(ids.len(), 1, "{ids:?}");
    sh_ok(docker_at(&podman_sock(), config.path()).args(["kill", &ids[0]]));
    let r = run.wait();
    let died: Vec<_> = r.rec().run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", r.rec().run_log());
    assert_eq!(died[0]["reason"], "killed (exit 137)");
    assert_eq!(r.rec().job_status("after"), "skipped");
    wait_gone_at(&podman_sock(), &id);
}

#[test]
fn podman_out_of_memory_under_memory_flag_is_container_died_oom_exit_3() {
    engines();
    let repo = Repo::with_ci(
        // One process that grows: a pipeline's survivors (head, tr) allocate
        // again after its shell is killed, and on Podman that second OOM can
        // take the keep-alive (see docs/engine.md, Podman).
        "(local ci (require :quire.ci))\n(ci.job :hog [:quire/push] (fn [{: sh}] (sh \"x=aaaaaaaaaaaaaaaa; while :; do x=\\\"$x$x\\\"; done\") {}))\n(ci.job :after [:hog] (fn [{: sh}] (sh \"echo after\") {}))\n",
    );
    let config = tempfile::tempdir().expect("temp");
    let r = podman_cmd(&repo, config.path(), &["run", "--memory", "32m"]).run();
    r.status(3);
    let died: Vec<_> = r.rec().run_log().into_iter().filter(|e| e["kind"] == "container-died").collect();
    assert_eq!(died.len(), 1, "{:?}", r.rec().run_log());
    assert_eq!(died[0]["reason"], "oom-killed");
    assert_eq!(r.rec().job_status("after"), "skipped");
    wait_gone_at(&podman_sock(), &r.rec().run_id());
}

#[test]
fn podman_dockerfile_build_runs_and_shows_its_steps_like_docker() {
    engines();
    let repo = Repo::new()
        .ci("(local ci (require :quire.ci))\n(ci.job :t [:quire/push] (fn [{: sh}] (sh \"cat /built; echo $FOO\") {}))\n")
        // A nonce in the Dockerfile, so an image left in Podman's storage by an
        // earlier run cannot answer this one without a build.
        .file(
            ".quire/Dockerfile",
            format!("FROM {IMAGE}\nRUN echo built-by-podman > /built\nENV FOO=bar NONCE={}\n", nonce()),
        )
        .committed();
    let config = tempfile::tempdir().expect("temp");
    let r = podman_cmd(&repo, config.path(), &["run"]).run();
    r.status(0);
    let t = r.terminal();
    assert!(t.contains("built-by-podman") && t.contains("t | bar"), "{t}");
    // Without -v, Docker's `Step 1/3 :` lines are shown; Podman's `STEP 1/3:` too.
    assert!(t.contains("STEP 1/3: FROM"), "{t}");
    assert!(t.contains("STEP 2/3: RUN"), "{t}");
    if let Some(b) = built_image(&r) {
        let _ = docker_at(&podman_sock(), config.path()).args(["rmi", &b]).output();
    }
}

fn nonce() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos()
}
