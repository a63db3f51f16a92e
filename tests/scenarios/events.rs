//! The renderer fed recorded event streams (fixtures/events/*.jsonl, made
//! by `scripts/record-events` from real runs), no engine needed: every
//! rendered state has a snapshot, on any machine. The Docker tests in
//! render.rs still prove the live path end to end.

use quire_ci::render::RenderOptions;

use crate::harness::events::{fixture, plain, render};

fn snapshot(name: &str, opts: RenderOptions) -> String {
    let text = render(&fixture(name), opts, None);
    // Durations in recorded events are fixed, so nothing is normalized.
    insta::assert_snapshot!(name.to_string(), text);
    text
}

#[test]
fn success() {
    let text = snapshot("success", plain());
    assert!(text.contains("run succeeded"), "{text}");
}

#[test]
fn a_failed_job_skips_its_dependents() {
    let text = snapshot("failed", plain());
    assert!(text.contains("FAILED test"), "{text}");
    assert!(!text.contains("never runs"), "{text}");
}

#[test]
fn a_skipped_job_says_why() {
    let text = snapshot("skipped", plain());
    assert!(text.contains("skipped docs"), "{text}");
}

#[test]
fn secrets_arrive_redacted() {
    let text = snapshot("secrets", plain());
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("***"), "{text}");
}

#[test]
fn binary_output_and_carriage_returns() {
    let text = snapshot("binary", plain());
    assert!(text.contains("bin | tick 3\n"), "only the last \\r segment stays:\n{text}");
    assert!(!text.contains("| tick 1"), "{text}");
}

#[test]
fn a_compile_error_is_summarised() {
    let text = snapshot("compile_error", plain());
    assert!(text.contains("run error"), "{text}");
}

#[test]
fn quiet_shows_only_the_failing_job() {
    let text = render(&fixture("failed"), RenderOptions { quiet: true, ..plain() }, None);
    assert!(!text.contains("lint ok"), "a passing job's output shows under -q:\n{text}");
    assert!(text.contains("FAILED test"), "{text}");
    insta::assert_snapshot!("quiet", text);
}

#[test]
fn one_job_only_keeps_the_whole_summary() {
    let text = render(&fixture("failed"), plain(), Some("test"));
    assert!(!text.contains("lint ok"), "{text}");
    assert!(text.contains("lint    succeeded"), "the summary stays whole:\n{text}");
}

#[test]
fn colour_only_when_asked_for() {
    let text = render(&fixture("failed"), plain(), None);
    assert!(!text.contains('\x1b'), "{text:?}");
    let coloured = render(&fixture("failed"), RenderOptions { color: true, ..plain() }, None);
    assert!(coloured.contains('\x1b'), "--color always keeps colours in plain mode");
    let stripped = console::strip_ansi_codes(&coloured);
    assert_eq!(stripped, text, "colour changes nothing but colour");
}

#[test]
fn verbose_shows_image_and_container_lines() {
    let text = render(&fixture("success"), RenderOptions { verbose: true, ..plain() }, None);
    assert!(text.contains("image quire-ci-test/busybox:latest is present"), "{text}");
    assert!(text.contains("container "), "{text}");
}

#[test]
fn dockerfile_build_steps_are_shown() {
    let text = snapshot("dockerfile", plain());
    assert!(text.contains("| Step 1/2 : FROM quire-ci-test/busybox:latest"), "{text}");
    assert!(text.contains(": built"), "{text}");
}

/// An error that stopped the run: said once, on the summary's last line,
/// then its help and its code (the command adds nothing on stderr).
#[test]
fn an_infrastructure_error_is_said_once_with_help_and_code() {
    let text = snapshot("no_engine", plain());
    assert_eq!(text.matches("no container engine answered").count(), 1, "{text}");
    assert!(text.contains("\n  help: start Docker"), "{text}");
    assert!(text.contains("\n  code: quire_ci::engine::unreachable\n"), "{text}");
    let text = snapshot("missing_image", plain());
    assert_eq!(text.matches("quire-ci-test/no-such-image:1").count(), 1, "{text}");
    assert!(text.contains("\n  help: check the image name"), "{text}");
}

/// The run's steps (`phase`, hand-written in the shape the executor emits:
/// start, the upload's progress, end): plain output says nothing of them;
/// `-v` one line per ended step with its time, the upload's with its bytes
/// and files.
#[test]
fn phases_are_silent_in_plain_output_and_timed_under_verbose() {
    let events = fixture("phases");
    let quiet = render(&events, plain(), None);
    assert!(!quiet.contains("phase") && !quiet.contains("upload"), "{quiet}");
    let text = render(&events, RenderOptions { verbose: true, ..plain() }, None);
    insta::assert_snapshot!("phases_verbose", text);
    for step in ["snapshot", "compile", "image", "create", "start", "upload", "jobs", "teardown"] {
        assert_eq!(text.matches(&format!("phase {step} ")).count(), 1, "{step}:\n{text}");
    }
    assert!(text.contains("phase upload 2.0s · 400.0 MiB · 100001 files\n"), "{text}");
    assert!(text.contains("phase teardown 19ms\n"), "{text}");
    // Besides those lines, -v renders the stream as if it had no phases.
    let without: String = text.lines().filter(|l| !l.starts_with("phase ")).map(|l| format!("{l}\n")).collect();
    let plain_v = render(
        &events.into_iter().filter(|e| !e.kind.is_transient()).collect::<Vec<_>>(),
        RenderOptions { verbose: true, ..plain() },
        None,
    );
    assert_eq!(without, plain_v);
}
