//! The command line: clap types only. Dispatch lives in main.rs, the work in
//! `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run your repository's quire CI pipeline (.quire/ci.fnl) locally, before you push.
#[derive(Debug, Parser)]
#[command(name = "quire-ci", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success · 1 a job failed · 2 bad usage or a bad ci.fnl · 3 infrastructure (engine, image, container) · 130 interrupted (SIGINT) · 143 terminated (SIGTERM)"
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub directory: Option<PathBuf>,

    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print less: only problems (and, for runs, failing jobs and the summary).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline on the working tree, now, in one container.
    Run(RunArgs),
    /// Compile and check .quire/ci.fnl without starting a container.
    Validate(ValidateArgs),
    /// Show the jobs, their inputs, their order and the image.
    List(ListArgs),
    /// Run, then run again after every change to the working tree; a change supersedes a running run.
    Watch(WatchArgs),
    /// Install or remove the pre-push hook that runs CI on what `git push` sends.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Replay a recorded run (default: the latest) through the live view's renderer.
    Logs(LogsArgs),
    /// List recent runs: id, start, ref, dirty, status, duration.
    Runs(RunsArgs),
    /// Write a starter .quire/ci.fnl for what this repository holds.
    Init,
    /// Check the engine, Fennel, ci.fnl, the image and the pre-push hook.
    Doctor(DoctorArgs),
    /// Print the completion script for SHELL (it asks quire-ci on each TAB: job names, run ids, flag values).
    Completions {
        /// The shell to complete for (install: docs/daily-use.md, "Shell completions").
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page of quire-ci or of COMMAND (roff), or write every page into a directory.
    Man(ManArgs),
    /// Print the effective settings and where each comes from (flag, environment, file, default).
    #[command(after_long_help = crate::settings::FILES_HELP)]
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The (sub)command whose page to print, e.g. `run` or `hook install` (default: quire-ci(1)).
    #[arg(value_name = "COMMAND", add = crate::complete::commands())]
    pub command: Vec<String>,

    /// Write quire-ci.1 and every quire-ci-COMMAND.1 into DIR instead (what man/ holds).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Limits on evaluating ci.fnl (see docs/sandbox.md).
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Memory cap for each Luau VM, in MiB.
    #[arg(long, value_name = "MIB", env = "QUIRE_CI_LUA_MEMORY", default_value_t = 256, value_parser = clap::value_parser!(u64).range(8..=65536))]
    pub lua_memory: u64,

    /// Wall-clock deadline for compiling and evaluating ci.fnl's top level, in seconds.
    #[arg(long, value_name = "SECS", env = "QUIRE_CI_EVAL_TIMEOUT", default_value_t = 10.0, value_parser = seconds)]
    pub eval_timeout: f64,

    /// Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`.
    #[arg(long, value_name = "SECS", env = "QUIRE_CI_JOB_LUA_TIMEOUT", default_value_t = 10.0, value_parser = seconds)]
    pub job_lua_timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pull {
    /// Pull only images that are not present.
    Missing,
    /// Always pull (refresh moving tags).
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run only these jobs (and the jobs they need).
    #[arg(value_name = "JOB", add = crate::complete::jobs())]
    pub jobs: Vec<String>,

    /// Never run job JOB here (repeatable, or comma-separated in
    /// QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it.
    #[arg(long = "skip", value_name = "JOB", env = "QUIRE_CI_SKIP_JOBS", value_delimiter = ',', add = crate::complete::jobs())]
    pub skip: Vec<String>,

    /// Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,

    /// JSON object whose keys override the :quire/push table.
    #[arg(long, value_name = "FILE.json")]
    pub event: Option<PathBuf>,

    /// Image to run in when ci.fnl declares none and there is no .quire/Dockerfile.
    #[arg(long, value_name = "IMAGE", env = "QUIRE_CI_IMAGE")]
    pub image: Option<String>,

    /// Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d).
    #[arg(long = "image-map", value_name = "FROM=TO", env = "QUIRE_CI_IMAGE_MAP", value_delimiter = ',', value_parser = image_mapping)]
    pub image_map: Vec<(String, String)>,

    /// When to pull the image.
    #[arg(long, value_enum, env = "QUIRE_CI_PULL", default_value_t = Pull::Missing, value_name = "WHEN")]
    pub pull: Pull,

    /// Keep the container after the run and print how to enter it.
    #[arg(long, env = "QUIRE_CI_KEEP", value_parser = clap::builder::BoolishValueParser::new())]
    pub keep: bool,

    /// Where run records go (default: <git-dir>/quire-ci/runs).
    #[arg(long, value_name = "DIR", env = "QUIRE_CI_OUT")]
    pub out: Option<PathBuf>,

    /// How many run records to keep; older ones are pruned after each run.
    #[arg(long, value_name = "N", env = "QUIRE_CI_KEEP_RUNS", default_value_t = crate::executor::KEEP_RUNS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub keep_runs: usize,

    /// Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B).
    #[arg(long = "secret", value_name = "NAME", env = "QUIRE_CI_SECRETS", value_delimiter = ',')]
    pub secrets: Vec<String>,

    /// Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`).
    #[arg(long, value_name = "PATH", env = "QUIRE_CI_SECRETS_FILE")]
    pub secrets_file: Option<PathBuf>,

    /// Print the run's events as JSON lines on stdout instead of the live view.
    #[arg(long)]
    pub json: bool,

    /// Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed.
    #[arg(long, env = "QUIRE_CI_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,
    /// When a job fails, open a shell in the run's container at /work (needs a terminal).
    #[arg(long, conflicts_with = "json")]
    pub shell_on_failure: bool,
    /// Mount this repository's cache volume at /cache; what jobs put there is kept for the next run.
    #[arg(long, env = "QUIRE_CI_CACHE_VOLUME", value_parser = clap::builder::BoolishValueParser::new())]
    pub cache_volume: bool,
    /// How many last lines of a failing job or image build to show (0: none; the record has all).
    #[arg(long, value_name = "N", env = "QUIRE_CI_EXCERPT_LINES", default_value_t = crate::executor::DEFAULT_EXCERPT_LINES)]
    pub excerpt_lines: usize,
    /// Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b).
    #[arg(long = "artifact", value_name = "PATH", env = "QUIRE_CI_ARTIFACTS", value_delimiter = ',')]
    pub artifacts: Vec<String>,
    /// Put artifacts (--artifact and the jobs' :artifacts) in DIR instead of <run record>/artifacts.
    #[arg(long, value_name = "DIR", env = "QUIRE_CI_ARTIFACTS_DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// Give /work a minimal .git holding the snapshot's commit (for setuptools-scm, git describe, …).
    #[arg(long, env = "QUIRE_CI_WITH_GIT", value_parser = clap::builder::BoolishValueParser::new())]
    pub with_git: bool,
    /// Memory limit of the run's container, e.g. 512m or 2g (no swap beyond it).
    #[arg(long, value_name = "SIZE", env = "QUIRE_CI_MEMORY", value_parser = memory_size)]
    pub memory: Option<i64>,
    /// The run container's network: bridge (the default), none, host, or a network's name.
    #[arg(long, value_name = "MODE", env = "QUIRE_CI_NETWORK", value_parser = network_mode)]
    pub network: Option<String>,

    /// Run up to N jobs at once, each as its own execs in the run's one
    /// container (0: one per CPU; 1: one after another, in run order).
    #[arg(short = 'j', long = "jobs", value_name = "N", env = "QUIRE_CI_JOBS", default_value_t = 1)]
    pub parallel: usize,
    /// When a job fails, cancel the jobs still running and start no more
    /// (default: only the failed job's dependents are skipped).
    #[arg(long, env = "QUIRE_CI_FAIL_FAST", value_parser = clap::builder::BoolishValueParser::new())]
    pub fail_fast: bool,

    #[command(flatten)]
    pub eval: EvalArgs,
}

/// A network mode as `docker run --network` takes it: `bridge`, `none`,
/// `host`, `container:NAME`, or a network's name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn network_mode(s: &str) -> Result<String, String> {
    let name = s.strip_prefix("container:").unwrap_or(s);
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a network mode (bridge, none, host, or a network's name)"))
    }
}

/// `FROM=TO`, both non-empty.
fn image_mapping(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_string(), to.trim().to_string()))
        }
        _ => Err(format!(
            "{s:?} is not an image mapping: give FROM=TO, e.g. python:3.12-slim=mirror.local/python:3.12-slim"
        )),
    }
}

/// A memory size: bytes, or a number with k, m, g (powers of 1024), as
/// `docker run --memory` takes it; at least 6 MiB, the engine's minimum.
fn memory_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = digits.parse().map_err(|_| format!("{s:?} is not a memory size (e.g. 512m, 2g)"))?;
    match n.checked_mul(unit) {
        Some(bytes) if bytes >= 6 << 20 => Ok(bytes),
        Some(_) => Err(format!("{s} is below the engine's minimum of 6m")),
        None => Err(format!("{s} is too large")),
    }
}

/// A positive, finite number of seconds, at most a day: `inf`, `nan`, 0 or a
/// huge value would otherwise reach `Duration::from_secs_f64`, which panics.
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("{s} is out of range: give a number of seconds above 0 and at most 86400"))
    }
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A run id or a unique prefix of one (default: the latest run).
    #[arg(value_name = "RUN", add = crate::complete::runs())]
    pub run: Option<String>,

    /// Show only this job's output (the summary still covers the run).
    #[arg(long, value_name = "ID", add = crate::complete::jobs())]
    pub job: Option<String>,

    /// How many last lines of a failing command the summary repeats.
    #[arg(long, value_name = "N", env = "QUIRE_CI_EXCERPT_LINES", default_value_t = crate::executor::DEFAULT_EXCERPT_LINES)]
    pub excerpt_lines: usize,

    /// Print the recorded events as JSON lines instead.
    #[arg(long)]
    pub json: bool,

    /// Where run records are (default: <git-dir>/quire-ci/runs).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Where run records are (default: <git-dir>/quire-ci/runs).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print JSON lines for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The image to check when ci.fnl names none and there is no .quire/Dockerfile.
    #[arg(long, value_name = "IMAGE", env = "QUIRE_CI_IMAGE")]
    pub image: Option<String>,

    /// Print one JSON document (every check with its status, detail and fix) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Check this file instead of .quire/ci.fnl (modules still resolve in .quire/).
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,

    /// Print one JSON document (validity, every problem with its code and place, the jobs) instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub eval: EvalArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON for scripts.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,

    /// Print a Graphviz digraph of the jobs.
    #[arg(long)]
    pub dot: bool,

    #[command(flatten)]
    pub eval: EvalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Quiet period after the last change before a run starts, in milliseconds
    /// (a steady stream of changes still starts a run after 2 s, or 10× this if longer).
    #[arg(long, value_name = "MS", env = "QUIRE_CI_WATCH_DEBOUNCE", default_value_t = 150)]
    pub debounce: u64,

    /// Clear the screen before each run.
    #[arg(long, env = "QUIRE_CI_WATCH_CLEAR", value_parser = clap::builder::BoolishValueParser::new())]
    pub clear: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write a pre-push hook into the hooks directory git uses (honours core.hooksPath).
    Install {
        /// Keep an existing foreign pre-push hook (renamed to pre-push.local) and run it first.
        #[arg(long)]
        force: bool,
    },
    /// Remove the pre-push hook quire-ci installed (restoring a chained one).
    Uninstall,
    /// What the hook runs: reads git's pre-push lines on stdin, one run per updated ref.
    #[command(name = "pre-push")]
    PrePush {
        /// The remote's name (or URL when pushing to a URL).
        remote: String,
        /// The remote's URL.
        url: Option<String>,
    },
}
