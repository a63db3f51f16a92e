//! Shell completion in real shells (bash, zsh, fish from Debian, installed
//! by scripts/bootstrap --test-tools), through the registration script the
//! binary prints (`quire-ci completions SHELL`, what completions/ holds)
//! and the binary on PATH answering each TAB:
//!
//! * bash: the function `complete -p quire-ci` names, called with
//!   COMP_WORDS / COMP_CWORD / COMP_LINE as readline sets them; COMPREPLY
//!   is what bash would offer.
//! * zsh: an interactive zsh on a pseudo-terminal (zsh/zpty) with compinit,
//!   TAB bound to a widget that runs `complete-word` while `compadd` records
//!   every match it is given.
//! * fish: `complete -C LINE`, fish's own completion of a command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{self, Repo, PRELUDE};

#[derive(Debug, Clone, Copy)]
enum Shell {
    Bash,
    Zsh,
    /// zsh with the committed `completions/_quire-ci` on `$fpath`
    /// (autoloaded by compinit on the first TAB) instead of sourced.
    ZshFpath,
    Fish,
}

const BASH_DRIVER: &str = r#"
source <(quire-ci completions bash) || exit 3
spec=$(complete -p quire-ci) || exit 4
fn=${spec#*-F }; fn=${fn%% *}
line=$1
COMP_LINE=$line; COMP_POINT=${#line}; COMP_TYPE=9; COMP_KEY=9
read -ra COMP_WORDS <<<"$line"
[[ $line == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
"$fn" quire-ci "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// $1: the capture file, $2: the command line typed before TAB, $3: a
/// directory holding `_quire-ci` to put on $fpath, or empty to source the
/// script instead.
const ZSH_DRIVER: &str = r#"
capture=$1 line=$2 fp=$3
zmodload zsh/zpty || exit 3
zpty -b z zsh -f -i
if [[ -n $fp ]]; then
  zpty -w z "PS1='%% '; fpath=(${(q)fp} \$fpath); autoload -Uz compinit; compinit -u -D"
else
  zpty -w z "PS1='%% '; autoload -Uz compinit; compinit -u -D"
  zpty -w z "source <(quire-ci completions zsh)"
fi
zpty -w z "compadd() { local -a __got; builtin compadd -O __got \"\$@\"; print -rl -- \"\${__got[@]}\" >>${(q)capture}; builtin compadd \"\$@\"; }"
zpty -w z "__cap() { zle complete-word; print -r -- __END__ >>${(q)capture}; }; zle -N __cap; bindkey '^I' __cap"
zpty -n -w z "$line"$'\t'
for i in {1..600}; do
  [[ -f $capture ]] && grep -q __END__ $capture && break
  sleep 0.05
done
zpty -d z
grep -q __END__ $capture || exit 5
"#;

/// What SHELL offers for LINE (the cursor at its end), typed in `cwd`:
/// the candidates, de-duplicated, in the order offered.
fn offered(shell: Shell, scratch: &Path, cwd: &Path, line: &str) -> Vec<String> {
    let bin_dir = harness::bin().parent().expect("the binary's directory").to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let capture = scratch.join(format!("zsh-capture-{}", std::process::id()));
    let _ = std::fs::remove_file(&capture);
    let mut cmd = match shell {
        Shell::Bash => {
            let mut c = Command::new("bash");
            c.args(["--norc", "--noprofile", "-c", BASH_DRIVER, "bash", line]);
            c
        }
        Shell::Zsh | Shell::ZshFpath => {
            let fpath = match shell {
                Shell::ZshFpath => harness::repo_root().join("completions").display().to_string(),
                _ => String::new(),
            };
            let mut c = Command::new("zsh");
            c.args(["-f", "-c", ZSH_DRIVER, "zsh"]).arg(&capture).arg(line).arg(fpath);
            c
        }
        Shell::Fish => {
            let mut c = Command::new("fish");
            c.args(["--no-config", "-c", "quire-ci completions fish | source; and complete -C $argv[1]", line]);
            c
        }
    };
    harness::scrub(&mut cmd);
    cmd.env("PATH", path)
        .env("HOME", scratch)
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_DATA_HOME", scratch.join("data"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        cmd.spawn().unwrap_or_else(|e| panic!("{shell:?} is installed (scripts/bootstrap --test-tools): {e}"));
    let status = harness::wait_for(
        &format!("{shell:?} completing {line:?}"),
        Duration::from_secs(60),
        || child.try_wait().ok().flatten(),
        String::new,
    );
    let out = child.wait_with_output().expect("the shell's output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.success(),
        "{shell:?} driver failed for {line:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = match shell {
        Shell::Zsh | Shell::ZshFpath => std::fs::read_to_string(&capture).unwrap_or_default(),
        _ => stdout,
    };
    let mut seen = Vec::new();
    for l in text.lines() {
        // fish: `value<TAB>description`.
        let value = l.split('\t').next().unwrap_or("").to_string();
        if !value.is_empty() && value != "__END__" && !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// A repository with three jobs, a file at its root, and a scratch dir.
fn repo() -> Repo {
    let ci = format!(
        "{PRELUDE}(ci.job :test [:quire/push] (fn [] {{}}))\n(ci.job :lint [:quire/push] (fn [] {{}}))\n(ci.job :deploy [:test :lint] (fn [] {{}}))\n"
    );
    Repo::new().ci(&ci).file("notes.txt", "not a job\n").committed()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The candidates that are not flags (an empty word offers the flags too).
fn words(v: Vec<String>) -> Vec<String> {
    v.into_iter().filter(|c| !c.starts_with('-')).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What every shell must offer, the same cases for each.
fn the_cases(shell: Shell) {
    let repo = repo();
    let at = |line: &str| offered(shell, repo.scratch(), repo.path(), line);

    let top = at("quire-ci ");
    for sub in ["run", "validate", "list", "watch", "hook", "logs", "runs", "init", "doctor", "completions", "man"] {
        assert!(top.contains(&sub.to_string()), "{shell:?}: `quire-ci <TAB>` offers {sub}: {top:?}");
    }
    assert!(!top.iter().any(|c| c.contains("__")), "{shell:?}: no generated function names: {top:?}");
    assert!(
        !top.iter().any(|c| c.starts_with('-')),
        "{shell:?}: an empty word offers no flags when there are values: {top:?}"
    );
    assert!(at("quire-ci run -").contains(&"--pull".to_string()), "{shell:?}: `-` offers the flags");
    let init = at("quire-ci init ");
    assert!(init.contains(&"--color".to_string()), "{shell:?}: with no values to offer, the flags: {init:?}");
    assert_eq!(at("quire-ci v"), strings(&["validate"]), "{shell:?}: a subcommand's prefix");

    // Past the first word (bash stopped there with the generated script).
    assert_eq!(at("quire-ci run --p"), strings(&["--pull"]), "{shell:?}: a flag's prefix");
    assert_eq!(
        sorted(at("quire-ci run --pull ")),
        strings(&["always", "missing", "never"]),
        "{shell:?}: --pull's values"
    );
    assert_eq!(sorted(at("quire-ci --color ")), strings(&["always", "auto", "never"]), "{shell:?}: --color's values");
    assert_eq!(sorted(at("quire-ci -q run --pull n")), strings(&["never"]), "{shell:?}: after a global flag");
    assert_eq!(
        sorted(words(at("quire-ci completions "))),
        strings(&["bash", "elvish", "fish", "powershell", "zsh"]),
        "{shell:?}: the shells"
    );
    assert_eq!(
        sorted(words(at("quire-ci hook "))),
        strings(&["help", "install", "pre-push", "uninstall"]),
        "{shell:?}: hook's subcommands"
    );

    assert!(words(at("quire-ci man ")).contains(&"run".to_string()), "{shell:?}: man's commands");
    assert_eq!(sorted(at("quire-ci man hook u")), strings(&["uninstall"]), "{shell:?}: man's nested commands");

    // Job names from ci.fnl, not file names.
    let jobs = at("quire-ci run ");
    assert_eq!(jobs, strings(&["test", "lint", "deploy"]), "{shell:?}: run's jobs, in run order, no flags: {jobs:?}");
    assert!(!jobs.iter().any(|c| c.contains("notes.txt") || c.contains(".quire")), "{shell:?}: no files: {jobs:?}");
    assert_eq!(at("quire-ci watch de"), strings(&["deploy"]), "{shell:?}: watch's jobs");
    assert_eq!(at("quire-ci run test l"), strings(&["lint"]), "{shell:?}: a second job");
    assert_eq!(sorted(at("quire-ci run --skip ")), strings(&["deploy", "lint", "test"]), "{shell:?}: --skip's jobs");

    // From elsewhere, -C names the repository.
    let elsewhere = repo.scratch().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("a directory outside the repository");
    let line = format!("quire-ci -C {} run de", repo.path().display());
    assert_eq!(offered(shell, repo.scratch(), &elsewhere, &line), strings(&["deploy"]), "{shell:?}: -C DIR's jobs");
    assert_eq!(
        offered(shell, repo.scratch(), &elsewhere, "quire-ci run de"),
        Vec::<String>::new(),
        "{shell:?}: outside a repository there are no jobs"
    );
}

#[test]
fn bash_completes_subcommands_flags_values_and_jobs() {
    the_cases(Shell::Bash);
}

#[test]
fn zsh_completes_subcommands_flags_values_and_jobs() {
    the_cases(Shell::Zsh);
}

/// Installed as a file on $fpath (what packagers do with completions/),
/// the very first TAB completes too: every case runs in a fresh zsh.
#[test]
fn zsh_from_fpath_completes_on_the_first_tab() {
    the_cases(Shell::ZshFpath);
}

#[test]
fn fish_completes_subcommands_flags_values_and_jobs() {
    the_cases(Shell::Fish);
}

/// A broken ci.fnl offers no jobs, and nothing it prints reaches the
/// terminal (bash's registration does not silence stderr).
#[test]
fn a_broken_or_noisy_ci_fnl_never_garbles_the_line() {
    let repo =
        Repo::new().ci(&format!("{PRELUDE}(print \"noise\")\n(ci.job :test [:nope] (fn [] {{}}))\n")).committed();
    for shell in [Shell::Bash, Shell::Fish] {
        assert_eq!(offered(shell, repo.scratch(), repo.path(), "quire-ci run t"), Vec::<String>::new(), "{shell:?}");
    }
    let mut cmd = Command::new(harness::bin());
    harness::scrub(&mut cmd);
    let out = cmd
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .args(["--", "quire-ci", "run", "t"])
        .current_dir(repo.path())
        .output()
        .expect("running quire-ci");
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// Run ids after `logs`, newest first, from the repository's records or
/// `--out DIR`.
#[test]
fn logs_completes_run_ids_docker() {
    harness::require_docker();
    let repo = repo();
    repo.run(&["run", "test"]).status(0);
    repo.run(&["run", "lint"]).status(0);
    let ids = repo.run_ids();
    assert_eq!(ids.len(), 2);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let copy: PathBuf = repo.scratch().join("copied-runs");
    harness::copy_tree(&repo.runs_dir(), &copy);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let at = |line: &str| offered(shell, repo.scratch(), repo.path(), line);
        let runs = words(at("quire-ci logs "));
        assert_eq!(runs, newest_first, "{shell:?}: `logs <TAB>` offers the run ids, newest first");
        let one = &ids[0];
        assert_eq!(at(&format!("quire-ci logs {}", &one[..22])), vec![one.clone()], "{shell:?}: a run id's prefix");
        let elsewhere = repo.scratch().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("a directory outside the repository");
        let line = format!("quire-ci logs --out {} ", copy.display());
        let runs: Vec<String> =
            offered(shell, repo.scratch(), &elsewhere, &line).into_iter().filter(|c| !c.starts_with('-')).collect();
        assert_eq!(runs, newest_first, "{shell:?}: `logs --out DIR <TAB>`");
        assert_eq!(sorted(at("quire-ci logs --job ")), strings(&["deploy", "lint", "test"]), "{shell:?}: --job's jobs");
    }
}

/// COMPLETE set to something that is not a shell (another tool's setting)
/// leaves quire-ci a normal command.
#[test]
fn a_stray_complete_variable_is_not_a_completion_request() {
    let repo = repo();
    for value in ["1", "true", "yes"] {
        repo.quire(&["validate"]).env("COMPLETE", value).status(0).stdout_has("is valid").run();
    }
    let out = repo.quire(&["validate"]).env("COMPLETE", "bash").run();
    out.status(0);
    assert!(
        out.stdout.contains("complete -o") && !out.stdout.contains("is valid"),
        "COMPLETE=bash prints the script: {}",
        out.stdout
    );
}
