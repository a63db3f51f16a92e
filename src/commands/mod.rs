//! One file per subcommand: each turns parsed arguments into work done by
//! the rooms (pipeline, snapshot, engine, ...) and into an exit code.

pub mod config;
pub mod doctor;
pub mod hook;
pub mod init;
pub mod list;
pub mod logs;
pub mod run;
pub mod runs;
pub mod validate;
pub mod watch;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::cli::{ColorChoice, EvalArgs};
use crate::compile_cache::CompileCache;
use crate::diagnostic::{render_all, Code, Problem, Sources};
use crate::pipeline::{self, DirFiles, Invalid, Pipeline, RepoFiles};
use crate::sandbox::Limits;

/// Exit codes, the same for every command (DESIGN.md §1).
pub mod exit {
    pub const OK: i32 = 0;
    pub const JOB_FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const INFRA: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM: 128 + 15, the shell's convention.
    pub const TERMINATED: i32 = 143;

    use crate::events::RunStatus;
    use crate::executor::{RunError, RunOutcome};

    /// The exit code of a run, from its status: the one place it is decided.
    pub fn of(outcome: &RunOutcome) -> i32 {
        match (outcome.status, &outcome.error) {
            (RunStatus::Succeeded, _) => OK,
            (RunStatus::Failed, _) => JOB_FAILED,
            (RunStatus::Canceled | RunStatus::Superseded, _) => interrupted(),
            (_, Some(RunError::Invalid { .. } | RunError::Usage(_))) => BAD_INPUT,
            (RunStatus::Error | RunStatus::Running, _) => INFRA,
        }
    }

    /// 143 when SIGTERM stopped us, else 130 (SIGINT, or a stop without a signal).
    pub fn interrupted() -> i32 {
        if super::stopped_by() == Some("SIGTERM") {
            TERMINATED
        } else {
            INTERRUPTED
        }
    }
}

/// The first stopping signal this process got, if any ("SIGINT", "SIGTERM").
static STOPPED_BY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

pub fn stopped_by() -> Option<&'static str> {
    STOPPED_BY.get().copied()
}

/// Whether to colour, before looking at a stream: the one decision (see
/// docs/terminal.md, "Colour"), highest first:
///
/// 1. `--color always` / `--color never`;
/// 2. `NO_COLOR` set and not empty: never;
/// 3. `CLICOLOR_FORCE` set and not `0`, or `FORCE_COLOR` set and not `0` or
///    `false`: always, even into a pipe; `FORCE_COLOR=0` / `false`: never;
/// 4. `CLICOLOR=0`: never;
/// 5. else a terminal whose `TERM` is set and not `dumb` (console's
///    `colors_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorPolicy {
    Always,
    Never,
    IfTerminal,
}

impl ColorPolicy {
    pub fn decide(flag: ColorChoice, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> ColorPolicy {
        match flag {
            ColorChoice::Always => return ColorPolicy::Always,
            ColorChoice::Never => return ColorPolicy::Never,
            ColorChoice::Auto => {}
        }
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        if set("NO_COLOR").is_some() {
            return ColorPolicy::Never;
        }
        if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
            return ColorPolicy::Always;
        }
        if let Some(v) = set("FORCE_COLOR") {
            return if v == "0" || v.eq_ignore_ascii_case("false") { ColorPolicy::Never } else { ColorPolicy::Always };
        }
        if set("CLICOLOR").is_some_and(|v| v == "0") {
            return ColorPolicy::Never;
        }
        ColorPolicy::IfTerminal
    }

    /// The decision for one stream. A terminal is console's: a TTY whose
    /// `TERM` is set and not `dumb` (console's own `colors_supported` would
    /// also take an empty `NO_COLOR` as set, which no-color.org says not to).
    pub fn for_stream(self, term: &console::Term) -> bool {
        match self {
            ColorPolicy::Always => true,
            ColorPolicy::Never => false,
            ColorPolicy::IfTerminal => term.is_term() && !console::is_dumb(),
        }
    }

    /// The `--color` a command line gives, read before clap parses it, so
    /// clap's own help and errors follow it too (`auto` when absent or not
    /// a choice: clap then says so).
    pub fn flag_in_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ColorChoice {
        use clap::ValueEnum;
        let mut choice = ColorChoice::Auto;
        let mut args = args.into_iter().skip(1);
        while let Some(a) = args.next() {
            let Some(a) = a.to_str() else { continue };
            let value = match a {
                "--" => break,
                "--color" => args.next().and_then(|v| v.into_string().ok()),
                _ => a.strip_prefix("--color=").map(str::to_string),
            };
            if let Some(v) = value {
                choice = ColorChoice::from_str(&v, true).unwrap_or(ColorChoice::Auto);
            }
        }
        choice
    }

    /// What clap's own help and usage errors use (it picks per stream in
    /// `Auto`, by the same terminal test).
    pub fn for_clap(self) -> clap::ColorChoice {
        match self {
            ColorPolicy::Always => clap::ColorChoice::Always,
            ColorPolicy::Never => clap::ColorChoice::Never,
            ColorPolicy::IfTerminal => clap::ColorChoice::Auto,
        }
    }
}

/// Settings every command reads.
#[derive(Debug, Clone)]
pub struct Context {
    pub cwd: PathBuf,
    pub color_stdout: bool,
    pub color_stderr: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// What clap parsed for the subcommand, so the settings layer can tell
    /// a flag from an environment variable from a default.
    pub matches: clap::ArgMatches,
}

impl Context {
    pub fn new(dir: Option<PathBuf>, color: ColorChoice, quiet: bool, verbose: bool) -> std::io::Result<Context> {
        let cwd = match dir {
            Some(d) => std::fs::canonicalize(&d)
                .map_err(|e| std::io::Error::new(e.kind(), format!("-C {}: {e}", d.display())))?,
            None => std::env::current_dir()?,
        };
        let policy = ColorPolicy::decide(color, &|k| std::env::var_os(k));
        let color_stdout = policy.for_stream(&console::Term::stdout());
        let color_stderr = policy.for_stream(&console::Term::stderr());
        // Everything styled through console (the live view, `Style`s that
        // do not force) follows the same decision.
        console::set_colors_enabled(color_stdout);
        console::set_colors_enabled_stderr(color_stderr);
        Ok(Context { cwd, color_stdout, color_stderr, quiet, verbose, matches: clap::ArgMatches::default() })
    }

    pub fn with_matches(self, matches: clap::ArgMatches) -> Context {
        Context { matches, ..self }
    }

    /// Prints problems to stderr, every one of them.
    pub fn report(&self, problems: &[Problem], sources: &Sources) {
        eprint!("{}", render_all(problems, sources, self.color_stderr));
    }
}

impl EvalArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory: (self.lua_memory as usize) * 1024 * 1024,
            eval_timeout: Duration::from_secs_f64(self.eval_timeout.max(0.001)),
            run_fn_budget: Duration::from_secs_f64(self.job_lua_timeout.max(0.001)),
        }
    }
}

/// The root of the work tree containing `start`: the nearest directory with
/// a `.git` (a directory, or a file for worktrees and submodules).
pub fn find_repo_root(start: &Path) -> Result<PathBuf, Problem> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if d.join(".git").exists() {
            if object_format(&d.join(".git")).is_some_and(|f| f.eq_ignore_ascii_case("sha256")) {
                return Err(Problem::new(
                    Code::RepoFormat,
                    format!(
                        "the repository at {} uses SHA-256 object names, which quire-ci cannot read yet",
                        d.display()
                    ),
                )
                .help("quire-ci reads SHA-1 repositories only (what `git init` makes by default)"));
            }
            return Ok(d.to_path_buf());
        }
        dir = d.parent();
    }
    Err(Problem::new(Code::NoRepo, format!("{} is not inside a git repository", start.display()))
        .help("run quire-ci inside a git work tree, or point at one with -C DIR"))
}

/// `extensions.objectFormat` of the repository whose `.git` (a directory,
/// or a `gitdir:` file) is `dot_git`; `None` when unset (SHA-1) or unreadable.
fn object_format(dot_git: &Path) -> Option<String> {
    let mut git_dir = git_dir_of(dot_git)?;
    // A linked worktree's config is its common dir's.
    if let Ok(common) = std::fs::read_to_string(git_dir.join("commondir")) {
        git_dir = git_dir.join(common.trim());
    }
    let config = std::fs::read_to_string(git_dir.join("config")).ok()?;
    let mut in_extensions = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_extensions = line.trim_matches(|c| c == '[' || c == ']').trim().eq_ignore_ascii_case("extensions");
        } else if in_extensions {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim().eq_ignore_ascii_case("objectformat") {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// The git dir that `dot_git` (a work tree's `.git`: a directory, or a
/// `gitdir:` file for linked worktrees and submodules) stands for.
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    if !dot_git.is_file() {
        return Some(dot_git.to_path_buf());
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = text.trim().strip_prefix("gitdir:")?.trim();
    Some(dot_git.parent()?.join(target))
}

/// The repository root for commands that need one, or (after telling the
/// user why) the exit code to leave with.
pub fn repo_root(ctx: &Context) -> Result<PathBuf, i32> {
    find_repo_root(&ctx.cwd).map_err(|p| {
        ctx.report(&[p], &Sources::default());
        exit::BAD_INPUT
    })
}

/// The async runtime that engine calls go through (runs, watch, the hook),
/// or (after saying why) the exit code to leave with.
pub fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| {
        eprintln!("quire-ci: cannot start the async runtime: {e}");
        exit::INFRA
    })
}

/// Listens for SIGINT and SIGTERM: the first calls `first` with the signal's
/// name (each command decides what stopping means for it); any later one
/// is [`force_exit`].
pub fn on_interrupt(
    rt: &tokio::runtime::Runtime,
    live: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    first: impl Fn(&'static str) + Send + 'static,
) {
    rt.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        let mut count = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            count += 1;
            let _ = STOPPED_BY.set(name);
            if count == 1 {
                first(name);
            } else {
                force_exit(&live).await;
            }
        }
    });
}

/// A second Ctrl-C: the live container (if any) handed to a detached
/// remover, which kills and removes it right away; exit 130 (143 after
/// SIGTERM). Without a remover, killed from here (bounded).
pub async fn force_exit(live: &std::sync::Mutex<Option<String>>) -> ! {
    let id = live.lock().ok().and_then(|l| l.clone());
    let handed =
        id.as_ref().is_some_and(|id| crate::executor::remover::hand_off(None, std::slice::from_ref(id)).is_ok());
    if let Some(id) = id.filter(|_| !handed) {
        // Bounded as a whole: a frozen engine may not even answer the connect.
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            if let Ok(engine) = crate::engine::Engine::connect().await {
                let c = crate::engine::RunContainer { id: id.clone(), name: id };
                let _ = engine.kill(&c).await;
            }
        })
        .await;
    }
    eprintln!("quire-ci: forced exit");
    std::process::exit(exit::interrupted());
}

/// The repository's files, with `.quire/ci.fnl` optionally taken from elsewhere.
struct FilesWithCiOverride {
    root: DirFiles,
    ci_fnl: Option<PathBuf>,
}

impl RepoFiles for FilesWithCiOverride {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match (&self.ci_fnl, path == pipeline::CI_FNL) {
            // A file named with --ci-fnl may be anywhere, even a link; it
            // must still be a regular file of bounded size.
            (Some(p), true) => pipeline::read_regular_file(p),
            _ => self.root.read(path),
        }
    }
}

/// Finds the repository and evaluates its ci.fnl from the working tree.
/// For commands that are done with the pipeline once they print (`validate`,
/// `list`): the process exits next, and closing its two Luau VMs — mlua runs
/// a full collection on each before freeing every object — was 5% of a
/// `validate`. The OS takes the memory back.
pub fn done_with(pipeline: Pipeline) {
    std::mem::forget(pipeline);
}

pub fn evaluate_worktree(ctx: &Context, ci_fnl: Option<&Path>, eval: &EvalArgs) -> Result<Pipeline, Invalid> {
    let root = find_repo_root(&ctx.cwd).map_err(|p| Invalid { problems: vec![p], sources: Sources::default() })?;
    // The limits a run would use: `--lua-memory` and friends, their
    // QUIRE_CI_* variables, the settings files (settings/).
    let eval = &eval_settings(ctx, &root, eval)?;
    let ci_fnl = ci_fnl.map(|p| if p.is_absolute() { p.to_path_buf() } else { ctx.cwd.join(p) });
    let cache = git_dir_of(&root.join(".git"))
        .map(|git_dir| Rc::new(CompileCache::at(crate::compile_cache::cache_dir(&git_dir))));
    let files = FilesWithCiOverride { root: DirFiles(root), ci_fnl };
    let evaluated = pipeline::evaluate_with(Rc::new(files), eval.limits(), cache.clone());
    if let (Some(cache), true) = (cache, ctx.verbose) {
        for line in cache.report() {
            eprintln!("quire-ci: {line}");
        }
    }
    evaluated
}

/// The settings of a command that has no flags for them (the pre-push
/// hook, `doctor`, `config`, `logs`, `runs`), or (after saying what is
/// wrong) the exit code: 2.
pub fn settings_without_flags(ctx: &Context, repo: Option<&Path>) -> Result<crate::settings::Settings, i32> {
    crate::settings::resolve_without_flags(repo).map_err(|inv| report_settings(ctx, &inv))
}

/// Prints a settings problem; returns its exit code (2).
pub fn report_settings(ctx: &Context, invalid: &crate::settings::Invalid) -> i32 {
    ctx.report(&invalid.problems, &invalid.sources);
    exit::BAD_INPUT
}

/// Secrets are resolved: every value joins the process's redactor (so no
/// line this process prints shows one), and a value shorter than 4
/// characters is warned about, once per name: it is masked wherever those
/// characters occur, which can hide unrelated text.
pub fn secrets_known(secrets: &std::collections::BTreeMap<String, String>) {
    use std::sync::Mutex;
    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    crate::redact::add_process_secrets(secrets.values());
    let Ok(mut warned) = WARNED.lock() else { return };
    for (name, value) in secrets {
        let n = value.chars().count();
        if (1..crate::secrets::SHORT).contains(&n) && !warned.contains(name) {
            warned.push(name.clone());
            eprintln!(
                "quire-ci: warning: the secret {name} is only {n} character{} long: every occurrence of it in the output is masked as ***, even where it is not the secret (use a value of at least {} characters)",
                if n == 1 { "" } else { "s" },
                crate::secrets::SHORT
            );
        }
    }
}

/// `given` (what clap parsed for this command) with the settings files
/// filling in what its flags and environment did not set.
fn eval_settings(ctx: &Context, root: &Path, given: &EvalArgs) -> Result<EvalArgs, Invalid> {
    let mut args = crate::settings::defaults();
    args.run.eval = given.clone();
    crate::settings::resolve(Some(root), &ctx.matches, &args)
        .map(|s| s.args.run.eval)
        .map_err(|inv| Invalid { problems: inv.problems, sources: inv.sources })
}
