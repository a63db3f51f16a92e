//! `quire-ci run` end to end: the real binary, real git repos, the real
//! Docker engine (image quire-ci-test/busybox:latest, built locally by
//! scripts/test-images). Every test checks the run record against
//! docs/log.schema.json and that no container of its run is left.
//! Failure modes (signals, dead containers, missing engine/image) are in
//! run_failures.rs.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::record::{contains_bytes, kinds};
use crate::harness::{sh_ok, Repo, IMAGE};
use serde_json::json;

const HEADER: &str = "(local ci (require :quire.ci))\n";

fn ci(body: &str) -> String {
    format!("{HEADER}{body}\n")
}

// ---- the worked example ---------------------------------------------------

#[test]
fn docker_worked_example_rehearses_branches_and_tags() {
    let repo = Repo::from_fixture("worked-example");
    // (ref, jobs that must succeed, jobs that must be skipped)
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("refs/heads/main", &["test", "build", "deploy"], &["publish"]),
        ("refs/heads/feature", &["test", "build"], &["deploy", "publish"]),
        ("refs/tags/v1.0.0", &["test", "build", "publish"], &["deploy"]),
    ];
    for (git_ref, ran, skipped) in cases {
        let r = repo.run(&["run", "--ref", git_ref]);
        r.status(0).assert_clean();
        assert_eq!(r.run_status(), "succeeded", "{git_ref}");
        assert_eq!(r.run_log()[0]["ref"], *git_ref);
        for j in *ran {
            assert_eq!(r.job_status(j), "succeeded", "{git_ref}: {j}\n{}", r.terminal());
            assert_eq!(r.job_end(j)["outcome"], "succeeded", "{git_ref}: {j}");
        }
        for j in *skipped {
            assert_eq!(r.job_status(j), "skipped", "{git_ref}: {j}\n{}", r.terminal());
            assert_eq!(r.job_end(j)["outcome"], "skipped", "{git_ref}: {j}");
            // A job skipped by returning nil still ran its run-fn, but no sh.
            assert!(r.job_log(j).iter().all(|e| e["kind"] != "sh-start"), "{git_ref}: {j} ran a command");
        }
        // test's outputs reach build: two source files checked.
        assert_eq!(r.job_end("test")["outputs"]["checked"], 2, "{git_ref}");
        assert_eq!(r.job_end("build")["outputs"]["checked"], 2, "{git_ref}");
        assert!(r.stdout.contains("build saw 2 checked files"), "{}", r.stdout);
    }
    let tag = repo.run(&["run", "--ref", "refs/tags/v1.0.0"]);
    assert_eq!(tag.job_end("publish")["outputs"], json!({"published": "v1.0.0"}));
    assert_eq!(tag.output("publish", 1, "stdout"), b"publishing v1.0.0\n");
    // A tag that does not start with v publishes nothing.
    let other = repo.run(&["run", "--ref", "refs/tags/nightly"]);
    other.status(0).assert_clean();
    assert_eq!(other.job_status("publish"), "skipped");
}

// ---- outputs, skips and failures between jobs ------------------------------

#[test]
fn docker_outputs_skips_and_failures_flow_between_jobs() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :a [:quire/push] (fn [] {:n 41 :list [1 2 3]}))
(ci.job :b [:a] (fn [{: jobs}] {:n (+ 1 (. (jobs :a) :n)) :len (length (. (jobs :a) :list))}))
(ci.job :skipper [:quire/push] (fn [] nil))
(ci.job :after-skip [:skipper] (fn [{: jobs}] {:saw-nil (= nil (jobs :skipper))}))
(ci.job :failer [:quire/push] (fn [{: sh}] (let [r (sh "exit 2")] {:exit r.exit :note "kept"})))
(ci.job :after-fail [:failer] (fn [{: sh}] (sh "echo must-not-run") {}))
(ci.job :grandchild [:after-fail] (fn [] {}))"#));
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    assert_eq!(r.run_status(), "failed");
    assert_eq!(r.job_end("b")["outputs"], json!({"n": 42, "len": 3}));
    assert_eq!(r.job_status("skipper"), "skipped");
    assert_eq!(r.job_end("after-skip")["outputs"], json!({"saw-nil": true}));
    // A non-zero :exit fails the job and its outputs are still recorded.
    assert_eq!(r.job_status("failer"), "failed");
    assert_eq!(r.job_end("failer")["outputs"], json!({"exit": 2, "note": "kept"}));
    assert!(r.job_end("failer")["reason"].as_str().unwrap_or("").contains(":exit 2"), "{}", r.job_end("failer"));
    // Dependents of a failed job are skipped without running, with a reason.
    for j in ["after-fail", "grandchild"] {
        assert_eq!(r.job_status(j), "skipped", "{j}");
        let reason = r.job_end(j)["reason"].as_str().unwrap_or("").to_string();
        assert!(!reason.is_empty(), "{j} skipped without a reason");
    }
    assert!(r.job_end("after-fail")["reason"].as_str().unwrap_or("").contains("failer"));
    assert!(!r.stdout.contains("must-not-run"));
}

#[test]
fn docker_failure_in_a_helper_module_names_its_file_and_line() {
    let repo = Repo::with_ci(&ci(r#"
(local {: checked} (require :helpers))
(checked :lint [:quire/push] "exit 3")
(checked :unit [:quire/push] "exit 1")"#));
    // Line 5 raises inside the run-fn; each job is declared where `checked`
    // is called in ci.fnl.
    repo.write(
        ".quire/helpers.fnl",
        r#"(local ci (require :quire.ci))
(fn checked [id inputs cmd]
  (ci.job id inputs (fn [{: sh}]
    (let [r (sh cmd)]
      (when (= r.exit 3) (error "exit 3 means a lint error"))
      {:exit r.exit}))))
{: checked}
"#,
    );
    repo.commit("helpers");
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    let lint = r.job_end("lint");
    assert_eq!((lint["file"].as_str(), lint["line"].as_u64()), (Some(".quire/helpers.fnl"), Some(5)), "{lint}");
    let unit = r.job_end("unit");
    assert_eq!((unit["file"].as_str(), unit["line"].as_u64()), (Some(".quire/ci.fnl"), Some(5)), "{unit}");
    assert_eq!(r.job_state("lint")["file"], ".quire/helpers.fnl");
    let out = r.terminal();
    assert!(out.contains("FAILED lint: exit 3 means a lint error (helpers.fnl:5)"), "{out}");
    assert!(out.contains("at helpers.fnl:5"), "{out}");
    assert!(out.contains("its outputs have :exit 1 · at ci.fnl:5"), "{out}");
}

#[test]
fn docker_cache_volume_keeps_slash_cache_between_runs_of_a_repo() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :c [:quire/push] (fn [{: sh}]
  (let [seen (sh "cat /cache/count 2>/dev/null || echo 0")
        n (+ 1 (tonumber (seen.stdout:match "%d+")))]
    (sh (.. "echo " n " > /cache/count"))
    {:n n})))"#));
    let volume = quire_ci::executor::cache_volume_name(repo.path());
    let _ = Command::new("docker").args(["volume", "rm", "-f", &volume]).output();
    let first = repo.run(&["run", "--cache-volume"]);
    first.status(0).assert_clean();
    assert_eq!(first.job_end("c")["outputs"]["n"], 1, "{}", first.terminal());
    let second = repo.run(&["run", "--cache-volume"]);
    second.status(0).assert_clean();
    assert_eq!(second.job_end("c")["outputs"]["n"], 2, "/cache did not persist: {}", second.terminal());
    // Without the flag the volume is not there: nothing counted so far.
    let without = repo.run(&["run"]);
    without.status(0).assert_clean();
    assert_eq!(without.job_end("c")["outputs"]["n"], 1, "{}", without.terminal());
    let _ = Command::new("docker").args(["volume", "rm", "-f", &volume]).output();
}

#[test]
fn docker_jobs_of_a_non_ancestor_unknown_or_self_raises() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :a [:quire/push] (fn [] {:x 1}))
(ci.job :other [:quire/push] (fn [{: jobs}] (jobs :a) {}))
(ci.job :unknown [:quire/push] (fn [{: jobs}] (jobs :nope) {}))
(ci.job :me [:quire/push] (fn [{: jobs}] (jobs :me) {}))"#));
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    let expect = [
        ("other", ":a is not an input of :other", 4),
        ("unknown", "there is no job :nope", 5),
        ("me", "cannot read its own outputs", 6),
    ];
    for (job, msg, line) in expect {
        let end = r.job_end(job);
        assert_eq!(end["outcome"], "failed", "{job}");
        assert!(end["reason"].as_str().unwrap_or("").contains(msg), "{job}: {end}");
        assert_eq!(end["line"], line, "{job}: {end}");
        assert!(r.terminal().contains(msg), "{job}: message not on the terminal\n{}", r.terminal());
    }
}

// ---- sh semantics ----------------------------------------------------------

#[test]
fn docker_sh_string_argv_env_cwd_and_returned_table() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :t [:quire/push]
  (fn [{: sh}]
    (let [argv (sh ["printf" "[%s]" "a b" "$HOME;|&*" "'q'"])
          str (sh "echo $((1+2)) | tr 3 x; echo oops >&2; exit 7")
          env (sh "echo $GREETING-$OTHER" {:env {:GREETING "hi there" :OTHER "x"}})
          cwd (sh "mkdir -p sub/dir && cd sub/dir && pwd" )
          incwd (sh ["pwd"] {:cwd "/work/sub/dir"})
          rel (sh "pwd" {:cwd "sub"})
          bad (pcall sh "pwd" {:cwd "/etc"})]
      {:argv argv.stdout :argv-cmd argv.cmd
       :str-exit str.exit :str-out str.stdout :str-err str.stderr :str-cmd str.cmd
       :env env.stdout :incwd incwd.stdout :rel rel.stdout :bad-cwd-ok bad})))
(ci.job :refused [:quire/push] (fn [{: sh}] (sh "pwd" {:cwd "/etc"}) {}))"#));
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    let out = &r.job_end("t")["outputs"];
    assert_eq!(out["argv"], "[a b][$HOME;|&*]['q']", "argv is passed verbatim, no shell");
    assert_eq!(out["argv-cmd"], json!(["printf", "[%s]", "a b", "$HOME;|&*", "'q'"]));
    assert_eq!(out["str-exit"], 7, "a non-zero exit is returned, not raised");
    assert_eq!(out["str-out"], "x\n");
    assert_eq!(out["str-err"], "oops\n");
    assert_eq!(out["str-cmd"], "echo $((1+2)) | tr 3 x; echo oops >&2; exit 7");
    assert_eq!(out["env"], "hi there-x\n");
    assert_eq!(out["incwd"], "/work/sub/dir\n");
    assert_eq!(out["rel"], "/work/sub\n");
    assert_eq!(out["bad-cwd-ok"], false, "a cwd outside /work must raise");
    assert_eq!(r.job_status("t"), "succeeded");
    // The log keeps cmd as given: a string or an array.
    let starts: Vec<_> = r.job_log("t").into_iter().filter(|e| e["kind"] == "sh-start").collect();
    assert_eq!(starts[0]["cmd"], json!(["printf", "[%s]", "a b", "$HOME;|&*", "'q'"]));
    assert!(starts[1]["cmd"].is_string());
    let exits: Vec<_> = r.job_log("t").into_iter().filter(|e| e["kind"] == "sh-exit").collect();
    assert_eq!(exits[1]["exit"], 7);
    // Uncaught, the refused cwd fails the job naming the cwd.
    let refused = r.job_end("refused");
    assert_eq!(refused["outcome"], "failed");
    assert!(refused["reason"].as_str().unwrap_or("").contains("/etc"), "{refused}");
}

// ---- snapshot semantics ------------------------------------------------------

#[test]
fn docker_snapshot_is_the_worktree_as_git_sees_it() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :t [:quire/push]
  (fn [{: sh}]
    (let [r (sh "cat tracked.txt; cat untracked.txt; test -e ignored.txt && echo IGNORED-PRESENT; ./tool.sh; readlink link; cat link; test -e .git && echo GIT-PRESENT; true")]
      {:out r.stdout})))"#));
    repo.write(".gitignore", "ignored.txt\n");
    repo.write("tracked.txt", "committed\n");
    repo.write("tool.sh", "#!/bin/sh\necho tool-ran\n");
    sh_ok(Command::new("chmod").arg("+x").arg(repo.path().join("tool.sh")));
    std::os::unix::fs::symlink("tracked.txt", repo.path().join("link")).expect("symlink");
    repo.commit("files");
    // After the commit: an uncommitted edit, an untracked file, an ignored file.
    repo.write("tracked.txt", "edited\n");
    repo.write("untracked.txt", "untracked\n");
    repo.write("ignored.txt", "secret-ish\n");
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    assert_eq!(r.job_end("t")["outputs"]["out"], "edited\nuntracked\ntool-ran\ntracked.txt\nedited\n");
    assert_eq!(r.meta()["dirty"], true);
    assert_eq!(r.run_log()[0]["dirty"], true);
}

/// A repository whose tree is awkward to unpack: a path past 100 bytes (a
/// GNU long-name entry in the tar), names with non-ASCII letters and
/// spaces, an empty file, an executable, a link; and a job that lists
/// /work (name, mode, size, owner, and a file's mtime and contents).
fn awkward_repo() -> Repo {
    let long = format!("{}/{}.txt", "d".repeat(60), "f".repeat(60));
    let list = r#"find . | sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
  elif [ -d "$f" ]; then stat -c '%n %a %U' "$f"
  else stat -c '%n %a %s %U %Y' "$f"; cat "$f"; fi
done
"#;
    let repo = Repo::with_ci(&ci("(ci.job :t [:quire/push] (fn [{: sh}] {:list (. (sh \"sh list.sh\") :stdout)}))"))
        .file("list.sh", list)
        .file(&long, "long\n")
        .file("café/naïve file.txt", "accents\n")
        .file("empty", "")
        .file("bin/run.sh", "#!/bin/sh\necho ran\n");
    sh_ok(Command::new("chmod").arg("+x").arg(repo.path().join("bin/run.sh")));
    std::os::unix::fs::symlink("../empty", repo.path().join("bin/link")).expect("symlink");
    repo.committed()
}

fn listing_of(r: &crate::harness::Output<'_>) -> String {
    r.job_end("t")["outputs"]["list"].as_str().unwrap_or_default().to_string()
}

#[test]
fn docker_the_snapshot_unpacks_alike_through_busybox_tar_gnu_tar_and_the_engines_archive_endpoint() {
    // By default the container's own tar takes the snapshot on its stdin
    // (src/engine/inbox.rs); with QUIRE_CI_UPLOAD=archive the engine's
    // archive endpoint does. /work must come out the same.
    let gnu = crate::harness::image_with_host_shell(true);
    let (repo, mut seen) = (awkward_repo(), Vec::new());
    for (image, upload) in [(IMAGE, "stdin"), (gnu.as_str(), "stdin"), (IMAGE, "archive")] {
        let run = repo.quire(&["run", "-v"]).docker().env("QUIRE_CI_IMAGE", image);
        let r = if upload == "archive" { run.env("QUIRE_CI_UPLOAD", upload) } else { run }.run();
        r.status(0);
        // Neither tar refused it: no second upload.
        assert!(!r.stderr.contains("upload-archive") && !r.stdout.contains("archive endpoint"), "{}", r.stdout);
        seen.push((image.to_string(), upload, listing_of(&r)));
    }
    let first = &seen[0].2;
    for needle in ["ff.txt 644 5 root", "long\n", "./café/naïve file.txt 644 8 root", "accents\n", "./empty 644 0 root"]
    {
        assert!(first.contains(needle), "{needle:?} in\n{first}");
    }
    assert!(first.contains("./bin/run.sh 755 19 root") && first.contains("./bin/link -> ../empty"), "{first}");
    for (image, upload, listing) in &seen[1..] {
        assert_eq!(listing, first, "{image} through {upload} differs from {} through stdin", seen[0].0);
    }
}

#[test]
fn docker_an_image_without_tar_gets_the_snapshot_through_the_archive_endpoint() {
    let image = crate::harness::image_with_host_shell(false);
    let repo = awkward_repo();
    let r = repo.quire(&["run", "-v"]).docker().env("QUIRE_CI_IMAGE", &image).run();
    r.status(0);
    let out = &r.stdout;
    let said = "could not unpack the snapshot itself (tar exited 127: quire-ci: 1: tar: not found); \
                sent it through the engine's archive endpoint";
    assert!(out.contains(said), "{out}");
    let notices: Vec<_> =
        r.run_log().into_iter().filter(|e| e["kind"] == "notice" && e["code"] == "upload-archive").collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(listing_of(&r).contains("./café/naïve file.txt 644 8 root"), "{}", listing_of(&r));
}

#[test]
fn docker_a_large_snapshot_unpacks_side_by_side_into_the_same_work_as_one_stream() {
    // Past 2 x 4,096 entries the snapshot is cut into parts, one unpacker
    // each (one per core, at most four): the container's own tar and
    // execs beside it (src/executor/container.rs). /work must come out as
    // the engine's archive endpoint makes it from one stream: the same
    // paths, modes, times and bytes.
    // Files: name, mode, mtime; directories: name, mode (their times are
    // the unpacker's own); links: their targets; every file's bytes; and
    // how many entries there are.
    let list = "find . -path ./list.sh -prune -o -type f -exec stat -c '%n %a %Y' {} + | sort | md5sum; \
                find . -type d -exec stat -c '%n %a' {} + | sort | md5sum; \
                for l in $(find . -type l); do echo \"$l -> $(readlink $l)\"; done; \
                find . -type f | sort | xargs md5sum | md5sum; find . | wc -l";
    let repo = Repo::with_ci(&ci("(ci.job :t [:quire/push] (fn [{: sh}] {:list (. (sh \"sh list.sh\") :stdout)}))"))
        .file("list.sh", list)
        .many_files(9000);
    sh_ok(Command::new("chmod").arg("+x").arg(repo.path().join("d17/s9/f08999.txt")));
    std::os::unix::fs::symlink("../s0/f00000.txt", repo.path().join("d00/s1/link")).expect("symlink");
    let repo = repo.committed();
    let cores = crate::harness::unpackers(None);
    let side_by_side = repo.quire(&["run", "-v"]).docker().run();
    side_by_side.status(0);
    let said = format!("went in through {cores} unpackers side by side");
    assert_eq!(side_by_side.stdout.contains(&said), cores > 1, "{said:?} in\n{}", side_by_side.stdout);
    assert!(!side_by_side.stdout.contains("archive endpoint"), "{}", side_by_side.stdout);
    let one = repo.quire(&["run", "-v"]).docker().env("QUIRE_CI_UPLOAD", "archive").run();
    one.status(0);
    assert!(!one.stdout.contains("side by side"), "{}", one.stdout);
    let listing = listing_of(&side_by_side);
    let entries =
        sh_ok(Command::new("sh").args(["-c", "find . -path ./.git -prune -o -print | wc -l"]).current_dir(repo.path()));
    assert!(entries.trim().parse::<u32>().expect("a count") > 9200, "{entries}");
    assert!(listing.ends_with(&format!("\n{}\n", entries.trim())), "{entries} entries in\n{listing}");
    assert!(listing.contains("./d00/s1/link -> ../s0/f00000.txt"), "{listing}");
    assert_eq!(listing, listing_of(&one));
}

#[test]
fn docker_an_image_with_a_user_gets_root_owned_files_as_the_engine_writes_them() {
    // The engine's archive endpoint writes as root whatever USER says; a
    // tar run as the image's user could not, so such an image is not sent
    // the snapshot on stdin at all.
    let ctx = tempfile::tempdir().expect("tempdir");
    let tag = format!("quire-ci-test/user-1000:{}", std::process::id());
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {IMAGE}\nUSER 1000\n")).expect("Dockerfile");
    sh_ok(Command::new("docker").args(["build", "-q", "-t", &tag]).arg(ctx.path()));
    let repo = awkward_repo();
    let r = repo.quire(&["run", "-v"]).docker().env("QUIRE_CI_IMAGE", &tag).run();
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    r.status(0);
    assert!(!r.stdout.contains("archive endpoint"), "no refusal: it was never asked\n{}", r.stdout);
    assert!(listing_of(&r).contains("./empty 644 0 root"), "{}", listing_of(&r));
}

// ---- output: binary, large, handed between jobs -----------------------------

#[test]
fn docker_binary_output_is_base64_and_round_trips_and_work_is_shared() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :write [:quire/push]
  (fn [{: sh}]
    (sh "printf 'ok\\377\\376\\000z' ; printf '\\200bad' >&2")
    (sh "echo from-first > shared.txt")
    {}))
(ci.job :read [:write] (fn [{: sh}] {:got (. (sh "cat shared.txt") :stdout)}))"#));
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    assert_eq!(r.output("write", 1, "stdout"), b"ok\xff\xfe\x00z");
    assert_eq!(r.output("write", 1, "stderr"), b"\x80bad");
    let log = r.job_log("write");
    assert!(log.iter().any(|e| e["kind"] == "stdout" && e["encoding"] == "base64"), "no base64 chunk: {log:?}");
    assert!(log.iter().any(|e| e["kind"] == "stderr" && e["encoding"] == "base64"));
    // The record replays it: read back through the library's reader.
    let run = quire_ci::record::read_run(r.dir()).expect("read_run");
    let chunks: Vec<u8> = run
        .events
        .iter()
        .filter(|e| e.job.as_deref() == Some("write"))
        .filter(|e| matches!(e.kind, quire_ci::events::EventKind::Stdout { n: 1, .. }))
        .flat_map(|e| quire_ci::record::decode_data(&e.kind))
        .collect();
    assert_eq!(chunks, b"ok\xff\xfe\x00z");
    assert_eq!(r.job_end("read")["outputs"]["got"], "from-first\n", "the second job sees the first's files in /work");
}

#[test]
fn docker_64_mib_output_is_all_in_the_log_and_capped_for_lua() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :big [:quire/push]
  (fn [{: sh}]
    (let [r (sh "head -c 67108864 /dev/zero | tr '\\0' a")]
      {:len (length r.stdout) :truncated r.truncated :exit r.exit})))"#));
    let r = repo.run(&["run", "--quiet"]);
    r.status(0).assert_clean();
    let out = r.output("big", 1, "stdout");
    assert_eq!(out.len(), 64 << 20, "the log must hold every byte");
    assert!(out.iter().all(|&b| b == b'a'));
    let outputs = &r.job_end("big")["outputs"];
    assert_eq!(outputs["len"], 4 << 20, "the Lua value is capped at 4 MiB");
    assert_eq!(outputs["truncated"], true);
    assert_eq!(outputs["exit"], 0);
}

// ---- live output and line integrity ------------------------------------------

#[test]
fn docker_output_is_live_not_buffered_to_the_end() {
    // `b` is written only once the test has seen `a` on the terminal: if
    // output were held back to the end, `a` would never show and the
    // command would never finish (the harness's timeout says so).
    let repo = Repo::with_ci(&ci(
        r#"(ci.job :t [:quire/push] (fn [{: sh}] (sh "echo a; while [ ! -e /work/go ]; do sleep 0.05; done; echo b") {}))"#,
    ));
    let running = repo.quire(&["run"]).docker().status(0).spawn();
    running.wait_for_output("t | a", Duration::from_secs(120));
    assert!(!running.stdout().contains("t | b"), "{}", running.stdout());
    // The container's /work is a copy: the go-ahead goes in through docker.
    let rec = running.wait_for_event("sh-start", Some("t"), Duration::from_secs(30));
    let id = crate::harness::containers_of_run(&rec.run_id()).into_iter().next().expect("the run's container");
    sh_ok(Command::new("docker").args(["exec", &id, "touch", "/work/go"]));
    let out = running.wait();
    out.stdout_has("t | b");
}

#[test]
fn docker_partial_lines_from_two_streams_never_interleave() {
    let repo = Repo::with_ci(&ci(r#"
(ci.job :t [:quire/push]
  (fn [{: sh}]
    (sh "for i in 1 2 3; do printf 'ab'; sleep 0.2; printf 'c\\n'; done & for i in 1 2 3; do printf 'xy' >&2; sleep 0.15; printf 'z\\n' >&2; done; wait")
    {}))"#));
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    let out_lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("t |")).collect();
    let err_lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("t !")).collect();
    assert_eq!(out_lines.len(), 3, "{}", r.stdout);
    assert_eq!(err_lines.len(), 3, "{}", r.stdout);
    assert!(out_lines.iter().all(|l| l.trim_end() == "t | abc"), "{out_lines:?}");
    assert!(err_lines.iter().all(|l| l.trim_end() == "t ! xyz"), "{err_lines:?}");
    // And the log has the bytes in order, per stream.
    assert_eq!(r.output("t", 1, "stdout"), b"abc\nabc\nabc\n");
    assert_eq!(r.output("t", 1, "stderr"), b"xyz\nxyz\nxyz\n");
}

// ---- secrets -------------------------------------------------------------------

const SECRET_CI: &str = r#"
(ci.job :leak [:quire/push]
  (fn [{: sh : secret}]
    (let [v (secret :TOKEN)]
      (sh (.. "echo token=" v))
      (sh "printf 'sup'; sleep 0.3; printf 'ersecret\\n'")
      (sh ["sh" "-c" "echo $0 >&2" v])
      (print (.. "print " v))
      {:value v :nested {:deep v}})))"#;

#[test]
fn docker_secrets_from_each_source_never_reach_a_file_or_the_terminal() {
    let value = "supersecret";
    let repo = Repo::with_ci(&ci(SECRET_CI));
    let secrets_file = repo.scratch().join("secrets.env");
    std::fs::write(&secrets_file, format!("TOKEN={value}\n")).expect("secrets file");
    let by_flag = repo.quire(&["run", "--secret", "TOKEN"]).env("TOKEN", value);
    let by_env = repo.quire(&["run"]).env("QUIRE_SECRET_TOKEN", value);
    let by_file = repo.quire(&["run", "--secrets-file", secrets_file.to_str().expect("utf-8 path")]);
    for (how, cmd) in [("--secret", by_flag), ("QUIRE_SECRET_", by_env), ("--secrets-file", by_file)] {
        let r = cmd.docker().run();
        r.status(0).assert_clean();
        assert!(!r.terminal().contains(value), "{how}: secret on the terminal\n{}", r.terminal());
        let all = r.all_record_bytes();
        assert!(!contains_bytes(&all, value.as_bytes()), "{how}: secret in the run record");
        assert!(r.terminal().contains("token=***"), "{how}: {}", r.terminal());
        assert_eq!(r.job_end("leak")["outputs"]["value"], "***", "{how}");
        assert_eq!(r.job_end("leak")["outputs"]["nested"]["deep"], "***", "{how}");
        let log = r.job_log("leak");
        assert!(log.iter().any(|e| e["kind"] == "print" && e["data"] == "print ***"), "{how}: {log:?}");
        // The value split across two chunks ("sup" then "ersecret") is
        // masked whole, in the log and on the terminal.
        assert_eq!(r.output("leak", 2, "stdout"), b"***\n", "{how}: split value");
        let shown: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("leak |")).collect();
        assert_eq!(shown, ["leak | token=***", "leak | ***"], "{how}");
        assert!(log.iter().any(|e| e["kind"] == "sh-start" && e["cmd"] == "echo token=***"), "{how}");
    }
}

#[test]
fn docker_missing_secret_fails_the_job_naming_it() {
    let repo = Repo::with_ci(&ci(SECRET_CI));
    let r = repo.run(&["run"]);
    r.status(1).assert_clean();
    let end = r.job_end("leak");
    assert_eq!(end["outcome"], "failed");
    assert!(end["reason"].as_str().unwrap_or("").contains("secret TOKEN is not provided"), "{end}");
    assert!(r.terminal().contains("TOKEN"), "{}", r.terminal());
}

// ---- job selection -------------------------------------------------------------

#[test]
fn docker_run_named_job_runs_it_and_its_ancestors_only() {
    let repo = Repo::from_fixture("worked-example");
    let r = repo.run(&["run", "build"]);
    r.status(0).assert_clean();
    assert_eq!(r.run_log()[0]["jobs"], json!(["test", "build"]));
    let ids: Vec<_> = r.state()["jobs"].as_array().expect("jobs").iter().map(|j| j["id"].clone()).collect();
    assert!(!ids.contains(&json!("deploy")) && !ids.contains(&json!("publish")), "{ids:?}");
    assert!(!r.dir().join("jobs/deploy").exists());
    // A mistyped name is bad usage: said once, exit 2, and no run record.
    let runs = repo.runs().len();
    let bad = repo.run(&["run", "biuld"]);
    bad.status(2);
    assert!(bad.stderr.contains("no job named \"biuld\"") && bad.stderr.contains("build"), "{}", bad.stderr);
    assert_eq!(
        bad.stderr.matches("no job named").count() + bad.stdout.matches("no job named").count(),
        1,
        "{}",
        bad.terminal()
    );
    assert!(bad.record.is_none(), "a mistyped job name made a run record");
    assert_eq!(repo.runs().len(), runs);
}

// ---- images: Dockerfile, registry ------------------------------------------------

#[test]
fn docker_quire_dockerfile_is_built_then_reused() {
    let repo =
        Repo::with_ci(&ci(r#"(ci.job :t [:quire/push] (fn [{: sh}] {:marker (. (sh "cat /marker") :stdout)}))"#));
    // A unique line so this test builds a fresh image each time it runs.
    let nonce = format!("{}-{:?}", std::process::id(), Instant::now());
    repo.write(".quire/Dockerfile", format!("FROM {IMAGE}\nRUN echo built > /marker\nLABEL nonce=\"{nonce}\"\n"));
    repo.commit("dockerfile");
    let first = repo.run(&["run"]);
    first.status(0).assert_clean();
    let actions: Vec<String> = first
        .run_log()
        .iter()
        .filter(|e| e["kind"] == "image")
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(actions.contains(&"building".into()) && actions.contains(&"built".into()), "{actions:?}");
    let tag = first.state()["image"].as_str().unwrap_or("").to_string();
    assert!(tag.starts_with("quire-ci-local/"), "{tag}");
    assert_eq!(first.job_end("t")["outputs"]["marker"], "built\n");
    let second = repo.run(&["run"]);
    second.status(0).assert_clean();
    let image_events: Vec<_> = second.run_log().into_iter().filter(|e| e["kind"] == "image").collect();
    assert_eq!(image_events.len(), 1, "{image_events:?}");
    assert_eq!(image_events[0]["action"], "present");
    assert_eq!(image_events[0]["image"], tag.as_str());
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[test]
fn docker_image_is_pulled_from_a_local_registry() {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let addr = sh_ok(Command::new("bash").arg(format!("{manifest}/scripts/registry")));
    let remote = format!("{}/quire-ci-test/pull-run:{}", addr.trim(), std::process::id());
    sh_ok(Command::new("docker").args(["tag", IMAGE, &remote]));
    sh_ok(Command::new("docker").args(["push", &remote]));
    sh_ok(Command::new("docker").args(["rmi", &remote]));
    let repo = Repo::with_ci(&ci(r#"(ci.job :t [:quire/push] (fn [{: sh}] (sh "echo pulled-and-ran") {}))"#));
    let r = repo.run(&["run", "--image", &remote]);
    r.status(0).assert_clean();
    let actions: Vec<String> = r
        .run_log()
        .iter()
        .filter(|e| e["kind"] == "image")
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(actions, ["pulling", "pulled"]);
    assert_eq!(r.state()["image"], remote.as_str());
    let _ = Command::new("docker").args(["rmi", "-f", &remote]).output();
}

// ---- pruning ---------------------------------------------------------------------

#[test]
fn docker_old_runs_are_pruned_past_fifty() {
    let repo = Repo::with_ci(&ci(r#"(ci.job :t [:quire/push] (fn [] {}))"#));
    let seed = repo.run(&["run"]);
    seed.status(0).assert_clean();
    // 55 copies of a real record with older ids: 56 runs, then one more.
    let seed_id = seed.run_id();
    for i in 0..55 {
        let id = format!("20200101T0000{:02}.{:03}Z-{:04x}", i % 60, i, i);
        assert!(quire_ci::record::is_run_id(&id), "{id} is not a run id");
        let dest = repo.runs_dir().join(&id);
        sh_ok(Command::new("cp").arg("-r").arg(seed.dir()).arg(&dest));
        let state = dest.join("state.json");
        let text = std::fs::read_to_string(&state).expect("state").replace(&seed_id, &id);
        std::fs::write(&state, text).expect("state");
    }
    assert_eq!(repo.runs().len(), 56);
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    let ids: Vec<String> =
        repo.runs().iter().filter_map(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    assert_eq!(ids.len(), 50, "{} runs kept", ids.len());
    assert!(ids.contains(&r.run_id()) && ids.contains(&seed_id), "the newest runs survive");
    assert!(!ids.contains(&"20200101T000000.000Z-0000".to_string()), "the oldest run was kept");
    assert_eq!(kinds(&r.run_log()).last().map(String::as_str), Some("run-end"));
}

// ---- the push table, --event, --out, --json -----------------------------------------

const PUSH_CI: &str = r#"
(ci.job :t [:quire/push]
  (fn [{: jobs}]
    (let [p (jobs :quire/push)]
      {:sha p.sha :ref p.ref :branch p.branch :tag p.tag :prev (= nil (. p :previous-sha))
       :pusher p.pusher :msg (. p :commit-message) :dirty p.dirty :tree p.tree
       :changed (. p :files-changed) :extra p.extra})))"#;

#[test]
fn docker_push_table_has_the_servers_keys_and_the_locals() {
    let repo = Repo::with_ci(&ci(PUSH_CI));
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let r = repo.run(&["run"]);
    r.status(0).assert_clean();
    let out = &r.job_end("t")["outputs"];
    assert_eq!(out["sha"], head.as_str());
    assert_eq!(out["ref"], "refs/heads/main");
    assert_eq!(out["branch"], "main");
    assert!(out["tag"].is_null(), "{out}");
    assert_eq!(out["prev"], true, "no upstream: previous-sha is nil");
    assert_eq!(out["pusher"], "Quire Test");
    assert_eq!(out["msg"].as_str().map(str::trim), Some("fixture"));
    assert_eq!(out["dirty"], false);
    assert_eq!(out["tree"], r.meta()["tree"]);
    assert_eq!(r.meta()["sha"], head.as_str());
    assert_eq!(r.meta()["image"].as_str().or(r.state()["image"].as_str()), Some(IMAGE));
}

#[test]
fn docker_event_file_overrides_and_out_dir_holds_the_record() {
    let repo = Repo::with_ci(&ci(PUSH_CI));
    let event = repo.scratch().join("event.json");
    std::fs::write(&event, r#"{"branch": "release", "pusher": "someone else", "extra": 7}"#).expect("event");
    let out_dir = repo.scratch().join("records");
    let r = repo
        .quire(&["run", "--event", event.to_str().expect("utf-8"), "--out", out_dir.to_str().expect("utf-8")])
        .docker()
        .record_in(&out_dir)
        .status(0)
        .run();
    assert!(repo.runs().is_empty(), "--out must keep the record out of .git");
    let dirs: Vec<_> = std::fs::read_dir(&out_dir).expect("--out dir").flatten().map(|e| e.path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(r.dir(), dirs[0]);
    let out = &r.job_end("t")["outputs"];
    assert_eq!(out["branch"], "release");
    assert_eq!(out["pusher"], "someone else");
    assert_eq!(out["extra"], 7);
    assert!(r.stdout.contains(&dirs[0].display().to_string()), "the summary names the record:\n{}", r.stdout);
}

#[test]
fn docker_json_prints_the_same_events_as_the_record() {
    let repo =
        Repo::with_ci(&ci(r#"(ci.job :t [:quire/push] (fn [{: sh}] (sh "echo hi") (print "note") {:ok true}))"#));
    let r = repo.run(&["run", "--json"]);
    r.status(0).assert_clean();
    let printed: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| {
            crate::harness::schema::validate_line(l).unwrap_or_else(|e| panic!("--json line invalid: {e}\n{l}"));
            serde_json::from_str(l).expect("json")
        })
        .collect();
    // Every event of the record, run and job level, and besides them only
    // the transient ones (`phase`), which no record keeps.
    let recorded = r.run_log().len() + r.job_log("t").len();
    let lasting = printed.iter().filter(|e| e["kind"] != "phase").count();
    assert_eq!(lasting, recorded, "{}", r.stdout);
    let kinds = kinds(&printed);
    for k in
        ["run-start", "container-start", "job-start", "sh-start", "stdout", "sh-exit", "print", "job-end", "run-end"]
    {
        assert!(kinds.contains(&k.to_string()), "{k} missing from --json: {kinds:?}");
    }
    assert!(printed.iter().filter(|e| e["kind"] == "stdout").all(|e| e["job"] == "t"), "--json names the job");
}
