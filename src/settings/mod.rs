//! Where `run`'s settings come from, highest first: flags, the environment
//! (`QUIRE_CI_*`), this clone's file `<git-dir>/quire-ci.toml` (never
//! committed), the repository's `.quire/quire-ci.toml` (committed), the
//! user's `$XDG_CONFIG_HOME/quire-ci/config.toml` (default `~/.config`),
//! and defaults. `run`, `watch`, the pre-push hook, `doctor` and `config`
//! read them through [`resolve`], so they cannot disagree.
//!
//! clap already layers flags over the environment over defaults; this room
//! puts the files between the environment and the defaults, using clap's
//! [`ValueSource`](clap::parser::ValueSource) to see which layer gave each
//! value, and clap's own parser of each flag to read a file's value.
//!
//! Owns: the files, their keys, which layer each value came from. Must not
//! know about: how a run works, the engine, the terminal.

mod file;
mod keys;

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};

pub use file::{Level, SettingsFile};
pub use keys::{Key, Kind, KEYS};

use crate::cli::{RunArgs, WatchArgs};
use crate::diagnostic::{Code, Problem, Sources};

/// The settings files and their order, for `config --help` and the man
/// page's FILES section.
pub const FILES_HELP: &str = "\
Settings, highest first: a flag; its QUIRE_CI_* environment variable; \
<git-dir>/quire-ci.toml (this clone's, never committed); .quire/quire-ci.toml \
(the repository's, committed); $XDG_CONFIG_HOME/quire-ci/config.toml (the \
user's; default ~/.config/quire-ci/config.toml); the default.

The files are TOML; keys are the long flags' names (image, pull, jobs, \
memory, network, cache-volume, secrets-file, secrets, out, keep-runs, skip, artifacts, \
artifacts-dir, with-git, no-cache, keep, excerpt-lines, lua-memory, \
eval-timeout, job-lua-timeout, image-map), with [watch] debounce and clear, \
and [hook] skip. Paths are relative to the directory of the file they are in. \
An unknown key is an error (exit 2) naming the file and line. \
See docs/daily-use.md, \"Settings files\".";

/// The file name of the repository's and the local settings.
pub const REPO_FILE: &str = ".quire/quire-ci.toml";
pub const LOCAL_FILE: &str = "quire-ci.toml";

/// Which layer gave a setting its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line (the flag's name).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A settings file, as shown to the user, and the value's line.
    File { file: String, line: usize, level: Level },
    /// Nothing set it.
    Default,
}

impl Origin {
    /// As `git config --show-origin` writes it: `env:QUIRE_CI_IMAGE`,
    /// `file:.quire/quire-ci.toml:3`, `flag:--image`, `default`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Flag(f) => format!("flag:{f}"),
            Origin::Env(v) => format!("env:{v}"),
            Origin::File { file, line, .. } => format!("file:{file}:{line}"),
            Origin::Default => "default".to_string(),
        }
    }

    /// The short name a message uses for where a value was asked for
    /// (`skipped by QUIRE_CI_SKIP_JOBS`, `skipped by .quire/quire-ci.toml`).
    pub fn by(&self) -> String {
        match self {
            Origin::Flag(f) => f.to_string(),
            Origin::Env(v) => v.to_string(),
            Origin::File { file, .. } => file.clone(),
            Origin::Default => "default".to_string(),
        }
    }
}

/// A settings file quire-ci looks for, found or not.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub level: Level,
    pub path: PathBuf,
    pub shown: String,
    pub found: bool,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `watch`'s settings; `.run` are `run`'s (and the hook's).
    pub args: WatchArgs,
    /// The hook's own skip list (`hook.skip`, `QUIRE_CI_HOOK_SKIP_JOBS`).
    pub hook_skip: Vec<String>,
    /// Each key's origin, in [`KEYS`] order.
    pub origins: Vec<(&'static Key, Origin)>,
    /// The files looked for, highest first.
    pub files: Vec<Candidate>,
}

impl Settings {
    pub fn origin(&self, name: &str) -> &Origin {
        self.origins.iter().find(|(k, _)| k.name == name).map(|(_, o)| o).unwrap_or(&Origin::Default)
    }

    /// Each job to skip, with what asked for it: `--skip`, the variable, or
    /// the file (for the summary's `skipped by …`).
    pub fn skips(&self) -> std::collections::BTreeMap<String, String> {
        let by = self.origin("skip").by();
        self.args.run.skip.iter().filter(|n| !n.is_empty()).map(|n| (n.clone(), by.clone())).collect()
    }

    /// The value of each key as JSON, with its origin.
    pub fn effective(&self) -> Vec<(&'static Key, serde_json::Value, &Origin)> {
        self.origins.iter().map(|(k, o)| (*k, keys::value_of(k, &self.args, &self.hook_skip), o)).collect()
    }
}

/// Problems in the settings (a file, or a `QUIRE_CI_*` value), with the
/// files' text for the diagnostics. Exit 2.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub problems: Vec<Problem>,
    pub sources: Sources,
}

/// The files, highest first: local, repository, user. `repo` is the work
/// tree's root (none outside a repository: only the user's file counts).
pub fn candidates(repo: Option<&Path>) -> Vec<Candidate> {
    let mut out = Vec::new();
    let shown = |p: &Path| match repo.and_then(|r| p.strip_prefix(r).ok()) {
        Some(rel) => rel.display().to_string(),
        None => p.display().to_string(),
    };
    if let Some(repo) = repo {
        if let Some(common) = common_git_dir(repo) {
            let p = common.join(LOCAL_FILE);
            out.push(Candidate { level: Level::Local, shown: shown(&p), path: p, found: false });
        }
        let p = repo.join(REPO_FILE);
        out.push(Candidate { level: Level::Repo, shown: shown(&p), path: p, found: false });
    }
    if let Some(p) = user_file() {
        out.push(Candidate { level: Level::User, shown: shown(&p), path: p, found: false });
    }
    out
}

/// `$XDG_CONFIG_HOME/quire-ci/config.toml`, else `~/.config/…` (an
/// `XDG_CONFIG_HOME` that is not absolute is ignored, as the XDG spec says).
pub fn user_file() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let base =
        xdg.or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("quire-ci").join("config.toml"))
}

/// The repository's common git directory (shared by its linked
/// worktrees, as `.git/config` is).
fn common_git_dir(repo: &Path) -> Option<PathBuf> {
    let dot_git = repo.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
        if target.is_absolute() {
            target
        } else {
            repo.join(target)
        }
    } else {
        dot_git
    };
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(common) => {
            let c = PathBuf::from(common.trim());
            Some(if c.is_absolute() { c } else { git_dir.join(c) })
        }
        Err(_) => Some(git_dir),
    }
}

/// Reads every file there is, highest first; all their problems at once.
pub fn read_files(candidates: &mut [Candidate]) -> Result<Vec<SettingsFile>, Invalid> {
    let mut files = Vec::new();
    let mut invalid = Invalid { problems: Vec::new(), sources: Sources::default() };
    for c in candidates.iter_mut() {
        match file::read(c.level, &c.path, c.shown.clone()) {
            Ok(Some(f)) => {
                c.found = true;
                files.push(f);
            }
            Ok(None) => {}
            Err((problems, text)) => {
                c.found = true;
                invalid.sources.insert(&c.shown, &text);
                invalid.problems.extend(problems);
            }
        }
    }
    if invalid.problems.is_empty() {
        Ok(files)
    } else {
        Err(invalid)
    }
}

/// The settings of a command whose flags clap parsed into `given` (from
/// `matches`): its flags and environment stand; the files fill in what
/// they did not set.
pub fn resolve(repo: Option<&Path>, matches: &ArgMatches, given: &WatchArgs) -> Result<Settings, Invalid> {
    let mut files = candidates(repo);
    let read = read_files(&mut files)?;
    layer(matches, given, &read, files)
}

/// The settings of a command that has no flags for them (the pre-push
/// hook, `doctor`, `config`, `logs`, `runs`): environment, files, defaults.
pub fn resolve_without_flags(repo: Option<&Path>) -> Result<Settings, Invalid> {
    let cmd = WatchArgs::augment_args(clap::Command::new("quire-ci").no_binary_name(true));
    let matches = match cmd.try_get_matches_from(std::iter::empty::<String>()) {
        Ok(m) => m,
        Err(e) => return Err(env_problem(&e)),
    };
    let given = WatchArgs::from_arg_matches(&matches).map_err(|e| env_problem(&e))?;
    resolve(repo, &matches, &given)
}

/// A `QUIRE_CI_*` value clap refused, naming the variable.
fn env_problem(e: &clap::Error) -> Invalid {
    let text = clap_message(e);
    let culprit = KEYS.iter().find(|k| {
        std::env::var_os(k.env).is_some() && !k.id.is_empty() && {
            let cmd = WatchArgs::augment_args(clap::Command::new("quire-ci").no_binary_name(true)).mut_args(|a| {
                if a.get_id() == k.id {
                    a
                } else {
                    a.env(None::<&str>)
                }
            });
            cmd.try_get_matches_from(std::iter::empty::<String>()).is_err()
        }
    });
    let (message, help) = match culprit {
        Some(k) => (
            format!("the environment variable {} has a bad value: {text}", k.env),
            format!("fix or unset {} (it sets {})", k.env, k.flag),
        ),
        None => (format!("a QUIRE_CI_* environment variable has a bad value: {text}"), "fix or unset it".to_string()),
    };
    Invalid { problems: vec![Problem::new(Code::SettingsValue, message).help(help)], sources: Sources::default() }
}

/// clap's message without its `error:` prefix, usage and tips, on one line.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.starts_with("tip:"))
        .collect();
    lines.join(" ").trim_start_matches("error: ").to_string()
}

/// Where clap got `id` from, if this command has that argument at all.
fn source(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    matches.try_contains_id(id).ok()?;
    matches.value_source(id)
}

fn layer(
    matches: &ArgMatches,
    given: &WatchArgs,
    files: &[SettingsFile],
    candidates: Vec<Candidate>,
) -> Result<Settings, Invalid> {
    let mut args = given.clone();
    let mut hook_skip = Vec::new();
    let mut origins = Vec::new();
    let mut invalid = Invalid { problems: Vec::new(), sources: Sources::default() };
    // Each file value is read by the flag's own parser, alone: a command
    // with every argument of `watch` (a superset of `run`'s) and no
    // environment, so only the value given is read.
    let parser =
        WatchArgs::augment_args(clap::Command::new("quire-ci").no_binary_name(true)).mut_args(|a| a.env(None::<&str>));
    for key in KEYS {
        let from_env = || std::env::var_os(key.env).is_some_and(|v| !v.is_empty());
        let asked = if key.id.is_empty() { None } else { source(matches, key.id) };
        match asked {
            Some(ValueSource::CommandLine) => {
                origins.push((key, Origin::Flag(key.flag)));
                continue;
            }
            Some(ValueSource::EnvVariable) => {
                origins.push((key, Origin::Env(key.env)));
                continue;
            }
            _ if key.id.is_empty() && from_env() => {
                hook_skip = split_list(&std::env::var(key.env).unwrap_or_default());
                origins.push((key, Origin::Env(key.env)));
                continue;
            }
            _ => {}
        }
        let Some((f, entry)) = files.iter().find_map(|f| f.get(key.name).map(|e| (f, e))) else {
            origins.push((key, Origin::Default));
            continue;
        };
        let origin = Origin::File { file: f.shown.clone(), line: entry.line, level: f.level };
        match (&entry.raw, key.id) {
            (file::Raw::Args(values), "") => hook_skip = values.clone(),
            (file::Raw::Bool(b), id) => set_bool(&mut args, id, *b),
            (file::Raw::Args(values), id) => {
                let argv: Vec<String> = values.iter().flat_map(|v| [key.flag.to_string(), v.clone()]).collect();
                let parsed = parser.clone().try_get_matches_from(argv).and_then(|m| WatchArgs::from_arg_matches(&m));
                match parsed {
                    Ok(one) => keys::take(&mut args, one, id),
                    Err(e) => {
                        invalid.sources.insert(&f.shown, &f.text);
                        invalid.problems.push(
                            Problem::new(
                                Code::SettingsValue,
                                format!("`{}` in {}: {}", key.name, f.shown, clap_message(&e)),
                            )
                            .at(&f.shown, entry.line)
                            .columns(Some(entry.columns))
                            .label(format!("not a value {} takes", key.flag))
                            .help(format!(
                                "give {} (see `quire-ci run --help` for {})",
                                key.kind.expected(),
                                key.flag
                            )),
                        );
                    }
                }
            }
        }
        origins.push((key, origin));
    }
    if !invalid.problems.is_empty() {
        return Err(invalid);
    }
    Ok(Settings { args, hook_skip, origins, files: candidates })
}

fn set_bool(args: &mut WatchArgs, id: &str, b: bool) {
    let r = &mut args.run;
    match id {
        "cache_volume" => r.cache_volume = b,
        "with_git" => r.with_git = b,
        "no_cache" => r.no_cache = b,
        "keep" => r.keep = b,
        "fail_fast" => r.fail_fast = b,
        "clear" => args.clear = b,
        other => unreachable!("{other} is not a bool setting"),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// `run`'s part of [`resolve`], for a command whose clap arguments are a
/// `RunArgs` (the watch keys keep their defaults).
pub fn resolve_run(repo: Option<&Path>, matches: &ArgMatches, given: &RunArgs) -> Result<Settings, Invalid> {
    let watch = WatchArgs { debounce: 150, clear: false, run: given.clone() };
    resolve(repo, matches, &watch)
}

/// Every setting at its default (no flag, environment or file).
pub fn defaults() -> WatchArgs {
    let cmd =
        WatchArgs::augment_args(clap::Command::new("quire-ci").no_binary_name(true)).mut_args(|a| a.env(None::<&str>));
    let matches = cmd.get_matches_from(std::iter::empty::<String>());
    WatchArgs::from_arg_matches(&matches).expect("the defaults are valid")
}
