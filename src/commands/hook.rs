//! `quire-ci hook install|uninstall|pre-push`: the pre-push hook as a
//! trigger. The hook room (`crate::hook`) knows where hooks live and what
//! git says; this file turns each pushed ref into a run request.

use std::io::{IsTerminal, Read};
use std::sync::{Arc, Mutex};

use super::{exit, Context};
use crate::cli::HookCommand;
use crate::executor::{self as run, Cancel, PushedCommit, RunRequest};
use crate::hook::{self, HookError, Installed, Uninstalled};
use crate::render::{RenderOptions, Renderer};
use crate::snapshot::{push_facts_for_push_in, PushFacts};

pub fn run(ctx: &Context, cmd: &HookCommand) -> i32 {
    match cmd {
        HookCommand::Install { force } => install(ctx, *force),
        HookCommand::Uninstall => uninstall(ctx),
        HookCommand::PrePush { remote, url } => pre_push(ctx, remote, url.as_deref()),
    }
}

fn hooks_dir(ctx: &Context) -> Result<std::path::PathBuf, i32> {
    hook::hooks_dir(&ctx.cwd).map_err(|e| {
        eprintln!("quire-ci: {e}");
        exit::BAD_INPUT
    })
}

fn report(e: HookError) -> i32 {
    eprintln!("quire-ci: {e}");
    match e {
        HookError::Io { .. } => exit::INFRA,
        _ => exit::BAD_INPUT,
    }
}

fn install(ctx: &Context, force: bool) -> i32 {
    let dir = match hooks_dir(ctx) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // The absolute path of this binary, so the hook works without quire-ci
    // on PATH (git runs hooks with the user's PATH, which GUIs often trim).
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "quire-ci".to_string());
    match hook::install(&dir, &binary, force) {
        Ok(Installed::Fresh(p)) => eprintln!("quire-ci: installed the pre-push hook {}", p.display()),
        Ok(Installed::Updated(p)) => eprintln!("quire-ci: updated the pre-push hook {}", p.display()),
        Ok(Installed::Chained { hook, local }) => eprintln!(
            "quire-ci: installed the pre-push hook {}; your previous hook is now {} and runs first (a failure refuses the push)",
            hook.display(),
            local.display()
        ),
        Err(e) => return report(e),
    }
    if !ctx.quiet {
        eprintln!("quire-ci: `git push` now runs .quire/ci.fnl on what is pushed; skip once with QUIRE_CI_SKIP=1 or --no-verify");
    }
    exit::OK
}

fn uninstall(ctx: &Context) -> i32 {
    let dir = match hooks_dir(ctx) {
        Ok(d) => d,
        Err(code) => return code,
    };
    match hook::uninstall(&dir) {
        Ok(Uninstalled::Removed(p)) => eprintln!("quire-ci: removed the pre-push hook {}", p.display()),
        Ok(Uninstalled::Restored(p)) => {
            eprintln!("quire-ci: removed quire-ci's pre-push hook and put your previous hook back at {}", p.display())
        }
        Ok(Uninstalled::NotInstalled) => eprintln!("quire-ci: no pre-push hook in {}; nothing to do", dir.display()),
        Err(e) => return report(e),
    }
    exit::OK
}

/// What git runs on push: one run per updated ref, of the pushed commit's
/// tree; the first failing run refuses the push (later refs are not run:
/// git refuses the whole push anyway).
fn pre_push(ctx: &Context, remote: &str, _url: Option<&str>) -> i32 {
    // Read all of stdin first, always: a hook that exits with git's lines
    // unread can make `git push` die of SIGPIPE.
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("quire-ci: reading the pushed refs from stdin: {e}");
        return exit::INFRA;
    }
    if std::env::var("QUIRE_CI_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("quire-ci: QUIRE_CI_SKIP=1: not running CI for this push");
        return exit::OK;
    }
    let refs = match hook::parse_pre_push(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quire-ci: {e}");
            return exit::BAD_INPUT;
        }
    };
    if refs.is_empty() {
        return exit::OK;
    }
    let repo = match super::repo_root(ctx) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // The same settings as `run` (settings/): environment, the files, defaults.
    let layered = match super::settings_without_flags(ctx, Some(&repo)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let settings = &layered.args.run;
    let secrets =
        match crate::secrets::resolve(&settings.secrets, settings.secrets_file.as_deref(), std::env::vars_os()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("quire-ci: {e} (from {})", layered.origin("secrets-file").by());
                return exit::BAD_INPUT;
            }
        };
    super::secrets_known(&secrets);
    // `skip` applies to every run; `hook.skip` (QUIRE_CI_HOOK_SKIP_JOBS) is
    // the hook's own list (publish and release jobs that must never run
    // from a laptop before the push lands).
    let mut skip = layered.skips();
    let hook_by = layered.origin("hook.skip").by();
    for name in &layered.hook_skip {
        skip.insert(name.clone(), hook_by.clone());
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // One cancel for the whole push: Ctrl-C stops this run and the rest.
    let cancel = Cancel::default();
    let live = Arc::new(Mutex::new(None));
    super::run::install_signal_handlers(&rt, cancel.clone(), live.clone());
    // The repository is opened once, for every ref: the remote's default
    // branch, what each push changes, and each run's snapshot.
    let git = match gix::discover(&repo) {
        Ok(g) => g.into_sync(),
        Err(e) => {
            eprintln!("quire-ci: cannot open the repository {}: {e}", repo.display());
            return exit::INFRA;
        }
    };
    let local = git.to_thread_local();
    let default_sha = hook::remote_default_sha(&local, remote);
    // The server stamps a push once, for all its refs.
    let pushed_at = crate::record::now_ts();

    for pushed in &refs {
        let short = &pushed.local_sha[..pushed.local_sha.len().min(10)];
        eprintln!("quire-ci: pre-push: {} ({short}) → {remote} {}", pushed.local_ref, pushed.remote_ref);
        let facts = match push_facts_for_push_in(
            &local,
            &pushed.local_sha,
            &pushed.remote_ref,
            pushed.remote_sha.as_deref(),
            default_sha.as_deref(),
        ) {
            Ok(f) => PushFacts { pushed_at: pushed_at.clone(), ..f },
            Err(e) => {
                eprintln!("quire-ci: cannot read what is pushed to {}: {e}", pushed.remote_ref);
                return exit::INFRA;
            }
        };
        // git shows a hook's output on the terminal; stderr keeps it out of
        // anything that parses git's stdout. On a terminal (with colour),
        // the live view: the upload and the other long steps have a row.
        let opts = RenderOptions { color: ctx.color_stderr, quiet: ctx.quiet, verbose: ctx.verbose, run_dir: None };
        let renderer = if ctx.color_stderr && std::io::stderr().is_terminal() {
            Renderer::live_on_stderr(opts)
        } else {
            Renderer::new(Box::new(std::io::stderr()), opts)
        }
        .with_excerpt_lines(settings.excerpt_lines);
        let request = RunRequest {
            pushed: Some(PushedCommit { sha: pushed.local_sha.clone(), facts, repo: Some(git.clone()) }),
            secrets: secrets.clone(),
            cancel: cancel.clone(),
            sinks: vec![Box::new(renderer)],
            live_container: live.clone(),
            image_override: settings.image.clone(),
            no_cache: settings.no_cache,
            cache_volume: settings.cache_volume,
            memory_limit: settings.memory,
            skip: skip.clone(),
            in_hook: true,
            with_git: settings.with_git,
            excerpt_lines: settings.excerpt_lines,
            network: settings.network.clone(),
            verbose: ctx.verbose,
            image_map: settings.image_map.clone(),
            artifacts: settings.artifacts.iter().filter(|a| !a.is_empty()).cloned().collect(),
            artifacts_dir: settings
                .artifacts_dir
                .as_ref()
                .map(|d| if d.is_absolute() { d.clone() } else { repo.join(d) }),
            parallel: settings.parallel,
            keep_runs: settings.keep_runs,
            fail_fast: settings.fail_fast,
            pull: super::run::pull_policy(settings.pull),
            keep: settings.keep,
            runs_dir: settings.out.as_ref().map(|o| if o.is_absolute() { o.clone() } else { repo.join(o) }),
            limits: settings.eval.limits(),
            ..RunRequest::new(&repo)
        };
        let outcome = run::execute(rt.handle(), request);
        // The renderer writes the summary to stderr itself.
        super::run::report_outcome(ctx, &outcome, true);
        let code = exit::of(&outcome);
        if code != exit::OK {
            eprintln!(
                "quire-ci: push refused: CI {} for {}{}. Fix it, or skip with QUIRE_CI_SKIP=1 git push (or --no-verify).",
                if code == exit::JOB_FAILED { "failed" } else { "did not pass" },
                pushed.remote_ref,
                outcome.run_id.as_deref().map(|id| format!(" (run {id})")).unwrap_or_default(),
            );
            return code;
        }
    }
    exit::OK
}
