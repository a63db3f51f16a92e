//! `quire-ci run`: the pipeline on the working tree, now.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use super::{exit, Context};
use crate::cli::{Pull, RunArgs};
use crate::emitter::EventSink;
use crate::engine::PullPolicy;
use crate::events::RunStatus;
use crate::executor::{self as run, Cancel, FailedJob, OnJobFailed, RunError, RunOutcome, RunRequest};
use crate::render::{RenderOptions, Renderer};

pub fn run(ctx: &Context, args: &RunArgs) -> i32 {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let repo = match super::repo_root(ctx) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Flags, QUIRE_CI_*, the settings files, defaults (settings/).
    let settings = match crate::settings::resolve_run(Some(&repo), &ctx.matches, args) {
        Ok(s) => s,
        Err(invalid) => return super::report_settings(ctx, &invalid),
    };
    let args = &settings.args.run;
    let mut request = match build_request(ctx, args, &repo) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("quire-ci: {msg}");
            return exit::BAD_INPUT;
        }
    };
    request.skip = settings.skips();
    let cancel = request.cancel.clone();
    let live = request.live_container.clone();
    install_signal_handlers(&rt, cancel, live);
    let outcome = run::execute(rt.handle(), request);
    report_outcome(ctx, &outcome, !args.json);
    exit::of(&outcome)
}

/// The server's `pushed-at` is always an RFC 3339 time; an `--event` that
/// sets it to anything else would rehearse a push the server cannot make.
fn check_pushed_at(event: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    use time::format_description::well_known::Rfc3339;
    match event.get("pushed-at") {
        None => Ok(()),
        Some(serde_json::Value::String(s)) if time::OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(()),
        Some(other) => {
            Err(format!("\"pushed-at\" must be an RFC 3339 time such as \"2026-12-01T11:00:00.000Z\", got {other}"))
        }
    }
}

/// Everything but the sinks that need the run directory.
pub fn build_request(ctx: &Context, args: &RunArgs, repo: &std::path::Path) -> Result<RunRequest, String> {
    let event = match &args.event {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("--event {}: {e}", path.display()))?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(m)) => {
                    check_pushed_at(&m).map_err(|e| format!("--event {}: {e}", path.display()))?;
                    Some(m)
                }
                Ok(_) => return Err(format!("--event {}: expected a JSON object", path.display())),
                Err(e) => return Err(format!("--event {}: {e}", path.display())),
            }
        }
    };
    let secrets = crate::secrets::resolve(&args.secrets, args.secrets_file.as_deref(), std::env::vars_os())?;
    super::secrets_known(&secrets);
    let sinks: Vec<Box<dyn EventSink>> = vec![terminal_sink(ctx, args.json, args.excerpt_lines)];
    let on_job_failed: Option<OnJobFailed> =
        if args.shell_on_failure { Some(Box::new(shell_in_container)) } else { None };
    Ok(RunRequest {
        repo_dir: repo.to_path_buf(),
        pushed: None,
        selected: args.jobs.clone(),
        git_ref: args.git_ref.clone(),
        event,
        image_override: args.image.clone(),
        pull: pull_policy(args.pull),
        keep: args.keep,
        runs_dir: args.out.as_ref().map(|o| if o.is_absolute() { o.clone() } else { ctx.cwd.join(o) }),
        secrets,
        limits: args.eval.limits(),
        cancel: Cancel::default(),
        sinks,
        live_container: Arc::new(Mutex::new(None)),
        no_cache: args.no_cache,
        on_job_failed,
        cache_volume: args.cache_volume,
        memory_limit: args.memory,
        skip: skips(&args.skip, "--skip"),
        in_hook: false,
        with_git: args.with_git,
        excerpt_lines: args.excerpt_lines,
        network: args.network.clone(),
        verbose: ctx.verbose,
        image_map: args.image_map.clone(),
        artifacts: args.artifacts.iter().filter(|a| !a.is_empty()).cloned().collect(),
        artifacts_dir: args.artifacts_dir.as_ref().map(|d| if d.is_absolute() { d.clone() } else { ctx.cwd.join(d) }),
        parallel: args.parallel,
        keep_runs: args.keep_runs,
        fail_fast: args.fail_fast,
        warm: None,
    })
}

pub fn pull_policy(pull: Pull) -> PullPolicy {
    match pull {
        Pull::Missing => PullPolicy::Missing,
        Pull::Always => PullPolicy::Always,
        Pull::Never => PullPolicy::Never,
    }
}

/// Jobs to skip, each with where it was asked: `flag` when the names came
/// from the command line, `QUIRE_CI_SKIP_JOBS` when they are exactly that
/// variable's list.
pub fn skips(names: &[String], flag: &str) -> std::collections::BTreeMap<String, String> {
    let from_env = std::env::var("QUIRE_CI_SKIP_JOBS").ok().is_some_and(|v| {
        let listed: Vec<&str> = v.split(',').collect();
        listed.len() == names.len() && listed.iter().zip(names).all(|(a, b)| *a == b)
    });
    let from = if from_env { "QUIRE_CI_SKIP_JOBS" } else { flag };
    names.iter().filter(|n| !n.is_empty()).map(|n| (n.clone(), from.to_string())).collect()
}

/// First SIGINT/SIGTERM: cancel and clean up (the run ends with 130 for
/// SIGINT, 143 for SIGTERM). Second: remove the container right away and exit.
pub fn install_signal_handlers(rt: &tokio::runtime::Runtime, cancel: Cancel, live: Arc<Mutex<Option<String>>>) {
    super::on_interrupt(rt, live, move |name| {
        // On a terminal, take over the line the status line (and the echoed
        // ^C) are on, so neither is left behind on screen.
        let lead = if std::io::stderr().is_terminal() { "\r\x1b[K" } else { "\n" };
        eprintln!("{lead}quire-ci: {name}: canceling the run and removing its container (again to force)");
        cancel.cancel(RunStatus::Canceled, format!("canceled by {name}"));
    });
}

/// The error that kept the run from going, or stopped it, printed once:
/// everything the run said went through its events, and a renderer (not
/// `--json`; `drawn`) that saw `run-end` showed the error with its code and
/// help in the summary, and the `problem`s of an invalid ci.fnl as they
/// came. Otherwise (`--json`, or no record, so no `run-end`) it goes on
/// stderr as a diagnostic.
pub fn report_outcome(ctx: &Context, outcome: &RunOutcome, drawn: bool) {
    let shown = drawn && outcome.dir.is_some();
    match &outcome.error {
        Some(_) if shown => {}
        Some(RunError::Invalid { problems, sources }) => ctx.report(problems, sources),
        Some(RunError::Usage(e) | RunError::Infra(e)) => {
            eprint!("{}", crate::diagnostic::render_diagnostic(e, ctx.color_stderr));
        }
        None => {}
    }
    // The summary names the record; -v says where it is when nothing drew one.
    if ctx.verbose && !shown {
        if let Some(dir) = &outcome.dir {
            eprintln!("quire-ci: run record: {}", dir.display());
        }
    }
}

pub use crate::render::JsonLines;

/// The sink that shows the run: `--json` lines, the live view when stdout
/// is a terminal and colour is on, else plain lines.
pub fn terminal_sink(ctx: &Context, json: bool, excerpt_lines: usize) -> Box<dyn EventSink> {
    if json {
        return Box::new(JsonLines(Box::new(std::io::stdout())));
    }
    let opts = RenderOptions { color: ctx.color_stdout, quiet: ctx.quiet, verbose: ctx.verbose, run_dir: None };
    if ctx.color_stdout && std::io::stdout().is_terminal() {
        Box::new(Renderer::live(opts).with_excerpt_lines(excerpt_lines))
    } else {
        Box::new(Renderer::new(Box::new(std::io::stdout()), opts).with_excerpt_lines(excerpt_lines))
    }
}

/// `--shell-on-failure`: an interactive shell in the failed job's
/// container, through the docker CLI (it owns raw mode, resizing and
/// signal forwarding). The run's teardown follows when the shell exits.
fn shell_in_container(f: &FailedJob) {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!("quire-ci: warning: --shell-on-failure needs a terminal on stdin and stdout; going on without a shell for :{}", f.job);
        return;
    }
    eprintln!(
        "quire-ci: :{} failed; opening a shell in its container {} at /work (exit the shell to go on)",
        f.job, f.container
    );
    let mut cmd = std::process::Command::new("docker");
    cmd.args(&f.docker_args);
    cmd.args(["exec", "-it", "-w", "/work", &f.container, "sh"]);
    match cmd.status() {
        Ok(_) => {}
        Err(e) => eprintln!(
            "quire-ci: warning: cannot start `docker exec` for the shell ({e}); install the docker CLI, or use --keep and enter the container yourself"
        ),
    }
}
