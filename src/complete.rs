//! Shell completion: clap_complete's dynamic completion. The shell's script
//! (`quire-ci completions SHELL`, or `COMPLETE=SHELL quire-ci`) is a small
//! registration that, on every TAB, runs `COMPLETE=SHELL quire-ci --
//! WORDS...`; the binary answers from its own clap definition (subcommands,
//! flags, flag values) and, through the completers here, from the
//! repository: job names from `.quire/ci.fnl` and run ids from the run
//! records. See docs/daily-use.md, "Shell completions".
//!
//! Owns: answering completion requests. Must not know about: how a shell
//! draws what it is offered.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells, Zsh};

use crate::cli::Cli;

/// The environment variable a completion request comes in.
pub const VAR: &str = "COMPLETE";

/// Answers a completion request (`COMPLETE=SHELL quire-ci -- WORDS`) or
/// prints the registration (`COMPLETE=SHELL quire-ci`), then exits; returns
/// for a normal run. Call first thing in `main`.
pub fn complete_if_asked() {
    // Only a shell's name (as the scripts set it, or `$SHELL`'s path) is a
    // request: a COMPLETE=1 left in someone's environment for another tool
    // must not turn every command into a completion error.
    let asked = std::env::var_os(VAR).is_some_and(|v| {
        let name = Path::new(&v).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        ["bash", "zsh", "fish", "elvish", "powershell", "pwsh"].contains(&name.as_str())
    });
    if !asked {
        return;
    }
    if std::env::args_os().any(|a| a == "--") {
        // A TAB press: nothing but candidates may reach the terminal
        // (bash's registration does not silence stderr; ci.fnl may print).
        silence_stderr();
    }
    let (bash, zsh, fish, elvish, powershell) =
        (ValuesFirst(Bash), ValuesFirst(Zsh), ValuesFirst(Fish), ValuesFirst(Elvish), ValuesFirst(Powershell));
    let shells: [&dyn EnvCompleter; 5] = [&bash, &zsh, &fish, &elvish, &powershell];
    clap_complete::CompleteEnv::with_factory(Cli::command).var(VAR).shells(Shells(&shells)).complete();
}

/// A shell's adapter with one change: on an empty word, when there are
/// values to offer (subcommands, job names, run ids), the flags are left
/// out, as git's and cargo's completions do; `-<TAB>` offers them.
struct ValuesFirst<S>(S);

impl<S: EnvCompleter> EnvCompleter for ValuesFirst<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn is(&self, name: &str) -> bool {
        self.0.is(name)
    }
    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        self.0.write_registration(var, name, bin, completer, buf)
    }
    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        // The word being completed: bash, zsh and elvish say which; fish and
        // PowerShell complete the last.
        let index = std::env::var("_CLAP_COMPLETE_INDEX").ok().and_then(|i| i.parse::<usize>().ok());
        let current = match index {
            Some(i) => args.get(i).cloned().unwrap_or_default(),
            None => args.last().cloned().unwrap_or_default(),
        };
        let mut out = Vec::new();
        self.0.write_complete(cmd, args, current_dir, &mut out)?;
        if !current.is_empty() {
            return buf.write_all(&out);
        }
        // Bash, zsh and elvish join candidates with _CLAP_IFS (else a
        // newline); fish and PowerShell end each with a newline.
        let sep = match self.0.name() {
            "bash" | "zsh" | "elvish" => std::env::var("_CLAP_IFS").unwrap_or_else(|_| "\n".into()),
            _ => "\n".into(),
        };
        let text = String::from_utf8_lossy(&out).into_owned();
        let all: Vec<&str> = text.split(sep.as_str()).filter(|c| !c.is_empty()).collect();
        let values: Vec<&str> = all.iter().copied().filter(|c| !c.starts_with('-')).collect();
        let keep = if values.is_empty() { all } else { values };
        let terminated = !matches!(self.0.name(), "bash" | "zsh" | "elvish");
        let mut joined = keep.join(sep.as_str());
        if terminated && !joined.is_empty() {
            joined.push_str(&sep);
        }
        buf.write_all(joined.as_bytes())
    }
}

/// `quire-ci completions SHELL`: the registration script for SHELL, calling
/// `quire-ci` from PATH (what `completions/` holds).
pub fn registration(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Zsh => &Zsh,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::PowerShell => &Powershell,
        _ => return Err(std::io::Error::other("no completion for this shell")),
    };
    completer.write_registration(VAR, "quire-ci", "quire-ci", "quire-ci", out)?;
    if shell == clap_complete::Shell::Zsh {
        // Installed on $fpath the file is the body of `_quire-ci`, which
        // compinit autoloads on the first TAB: without this line that TAB
        // would only define the function and offer nothing. Sourced, it
        // does nothing.
        writeln!(out, "if [[ ${{funcstack[1]-}} == _quire-ci ]]; then _clap_dynamic_completer_quire_ci \"$@\"; fi")?;
    }
    Ok(())
}

fn silence_stderr() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto fd 2 of this short-lived process; `null` stays
        // open until the call returns.
        unsafe {
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// Completes a job name of the repository's ci.fnl (run, watch, `--skip`,
/// `logs --job`).
pub fn jobs() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| job_candidates(&words(), current))
}

/// Completes a run id of the repository's run records (newest first).
pub fn runs() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| run_candidates(&words(), current))
}

/// Completes `man COMMAND...`: the subcommands of what the words so far name.
pub fn commands() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| command_candidates(&words(), current))
}

fn command_candidates(words: &[OsString], current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    let Some(at) = words.iter().position(|w| w == "man") else { return Vec::new() };
    // The words between `man` and the one being completed (the last).
    let named = &words[at + 1..words.len().saturating_sub(1).max(at + 1)];
    let root = Cli::command();
    let mut cmd = &root;
    for w in named.iter().filter(|w| !w.starts_with('-')) {
        match cmd.find_subcommand(w) {
            Some(sub) => cmd = sub,
            None => return Vec::new(),
        }
    }
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name().starts_with(&*prefix))
        .map(|s| CompletionCandidate::new(s.get_name()).help(s.get_about().cloned()))
        .collect()
}

/// The words of the command line being completed: what follows `--` in
/// this process's arguments.
fn words() -> Vec<OsString> {
    std::env::args_os().skip_while(|a| a != "--").skip(1).collect()
}

/// The value of the last `-C DIR` / `-CDIR` / `-C=DIR` among `words`, or
/// of `--NAME VALUE` / `--NAME=VALUE` when `long` is given.
fn option_value(words: &[OsString], short: Option<char>, long: Option<&str>) -> Option<PathBuf> {
    let mut found = None;
    let mut it = words.iter().map(|w| w.to_string_lossy().into_owned());
    while let Some(w) = it.next() {
        if w == "--" {
            break;
        }
        if let Some(c) = short {
            let flag = format!("-{c}");
            if w == flag {
                found = it.next().map(PathBuf::from);
                continue;
            }
            if let Some(rest) = w.strip_prefix(&flag).filter(|r| !r.is_empty() && !w.starts_with("--")) {
                found = Some(PathBuf::from(rest.strip_prefix('=').unwrap_or(rest)));
                continue;
            }
        }
        if let Some(name) = long {
            let flag = format!("--{name}");
            if w == flag {
                found = it.next().map(PathBuf::from);
            } else if let Some(v) = w.strip_prefix(&format!("{flag}=")) {
                found = Some(PathBuf::from(v));
            }
        }
    }
    found
}

/// The directory the command line runs in: `-C DIR` (relative to the
/// shell's), else the shell's.
fn start_dir(words: &[OsString]) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    Some(match option_value(words, Some('C'), None) {
        Some(d) if d.is_absolute() => d,
        Some(d) => cwd.join(d),
        None => cwd,
    })
}

fn job_candidates(words: &[OsString], current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let Some(dir) = start_dir(words) else { return Vec::new() };
    let Ok(root) = crate::commands::find_repo_root(&dir) else { return Vec::new() };
    // Short limits: a TAB press must never hang on a runaway ci.fnl.
    let limits = crate::sandbox::Limits {
        memory: 256 << 20,
        eval_timeout: Duration::from_secs(3),
        run_fn_budget: Duration::from_secs(3),
    };
    let Ok(p) = crate::pipeline::evaluate(Rc::new(crate::pipeline::DirFiles(root)), limits) else {
        return Vec::new();
    };
    let out = p
        .jobs
        .iter()
        .filter(|j| j.id.starts_with(&*prefix))
        .map(|j| {
            let inputs: Vec<String> = j.inputs.iter().map(|i| format!(":{i}")).collect();
            CompletionCandidate::new(&j.id).help(Some(format!("job, after {}", inputs.join(" ")).into()))
        })
        .collect();
    crate::commands::done_with(p);
    out
}

fn run_candidates(words: &[OsString], current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let Some(dir) = start_dir(words) else { return Vec::new() };
    let Some(runs_dir) = runs_dir(&dir, option_value(words, None, Some("out")).as_deref()) else {
        return Vec::new();
    };
    let Ok(runs) = crate::record::list_runs(&runs_dir) else { return Vec::new() };
    runs.iter()
        .filter(|r| r.id.starts_with(&*prefix))
        .map(|r| {
            let status = match r.status {
                _ if r.abandoned => "abandoned",
                Some(s) => crate::commands::runs::status_word(s),
                None => "unknown",
            };
            let help = format!("{status}, {} on {}", r.started, r.git_ref);
            CompletionCandidate::new(&r.id).help(Some(help.into()))
        })
        .collect()
}

/// `--out DIR` (relative to the start directory), else the repository's
/// runs directory, as `logs` finds it.
fn runs_dir(dir: &Path, out: Option<&Path>) -> Option<PathBuf> {
    if let Some(o) = out {
        return Some(if o.is_absolute() { o.to_path_buf() } else { dir.join(o) });
    }
    let repo = gix::discover(dir).ok()?;
    Some(crate::record::runs_dir(repo.git_dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_directory_and_out_options_are_found_in_every_spelling() {
        assert_eq!(option_value(&w("quire-ci -C /r run"), Some('C'), None), Some("/r".into()));
        assert_eq!(option_value(&w("quire-ci -C/r run"), Some('C'), None), Some("/r".into()));
        assert_eq!(option_value(&w("quire-ci -C=/r run"), Some('C'), None), Some("/r".into()));
        assert_eq!(option_value(&w("quire-ci run --color x"), Some('C'), None), None);
        assert_eq!(option_value(&w("quire-ci logs --out d x"), None, Some("out")), Some("d".into()));
        assert_eq!(option_value(&w("quire-ci logs --out=d x"), None, Some("out")), Some("d".into()));
        assert_eq!(option_value(&w("quire-ci run -- -C x"), Some('C'), None), None);
    }
}
