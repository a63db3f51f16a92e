//! Manual pages: quire-ci(1) and one page per subcommand (quire-ci-run(1),
//! quire-ci-hook-install(1), ...), generated from the clap definition by
//! clap_mangen, with the sections clap cannot know added here:
//! ENVIRONMENT (every flag's variable, taken from clap, plus the ones read
//! directly), FILES, EXIT STATUS and SEE ALSO. scripts/gen-docs writes them
//! into man/; a test keeps man/ equal to what the binary writes.
//!
//! Owns: the pages' text. Must not know about: where they are installed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use crate::cli::Cli;
use crate::commands::exit;

/// One manual page: its file name (`quire-ci-run.1`) and its roff text.
pub struct Page {
    pub name: String,
    pub file: String,
    pub roff: Vec<u8>,
}

/// Every page: quire-ci(1) first, then each (nested) subcommand's, in the
/// order `--help` lists them.
pub fn pages() -> io::Result<Vec<Page>> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut out = Vec::new();
    walk(&root, None, &mut out)?;
    Ok(out)
}

/// The page of `quire-ci WORDS...` (`[]`: quire-ci(1); `["hook", "install"]`).
pub fn page_for(words: &[String]) -> io::Result<Option<Page>> {
    let want = std::iter::once("quire-ci".to_string()).chain(words.iter().cloned()).collect::<Vec<_>>().join("-");
    Ok(pages()?.into_iter().find(|p| p.name == want))
}

/// Writes every page into `dir` and returns their paths.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for p in pages()? {
        let path = dir.join(&p.file);
        std::fs::write(&path, &p.roff)?;
        written.push(path);
    }
    Ok(written)
}

fn display_name(cmd: &clap::Command) -> String {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name()).to_string()
}

fn walk(cmd: &clap::Command, parent: Option<&clap::Command>, out: &mut Vec<Page>) -> io::Result<()> {
    let name = display_name(cmd);
    out.push(Page { file: format!("{name}.1"), roff: render(cmd, parent)?, name });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, Some(cmd), out)?;
    }
    Ok(())
}

fn render(cmd: &clap::Command, parent: Option<&clap::Command>) -> io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone()).source(format!("quire-ci {}", env!("CARGO_PKG_VERSION"))).manual("quire-ci");
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut w)?;
    }
    let path = command_path(cmd);
    let mut roff = Roff::default();
    environment(&mut roff, cmd, &path);
    files(&mut roff, &path);
    exit_status(&mut roff, &path);
    see_also(&mut roff, cmd, parent);
    roff.to_writer(&mut w)?;
    man.render_version_section(&mut w)?;
    w.flush()?;
    Ok(w)
}

/// `["run"]` for quire-ci-run, `["hook", "install"]`, `[]` for quire-ci.
fn command_path(cmd: &clap::Command) -> Vec<String> {
    let bin = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    bin.split(' ').skip(1).map(str::to_string).collect()
}

fn entry(roff: &mut Roff, tag: Vec<Inline>, text: &str) {
    roff.control("TP", []);
    roff.text(tag);
    roff.text([roman(text)]);
}

/// Whether the page of `path` covers one of `names` (`"run"`, `"hook
/// pre-push"`): it is that command's page, the page of a group holding it
/// (`hook`), or quire-ci(1), which covers all.
fn about(path: &[String], names: &[&str]) -> bool {
    let key = path.join(" ");
    path.is_empty() || names.iter().any(|n| *n == key || n.starts_with(&format!("{key} ")))
}

fn environment(roff: &mut Roff, cmd: &clap::Command, path: &[String]) {
    roff.control("SH", ["ENVIRONMENT"]);
    // Every flag's own variable, from clap: a new one appears here by itself.
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut collect = |c: &clap::Command| {
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            if let (Some(var), Some(long)) = (a.get_env(), a.get_long()) {
                let var = var.to_string_lossy().into_owned();
                if !flags.iter().any(|(v, _)| *v == var) {
                    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                    let help = help.trim_end_matches('.');
                    flags.push((var, format!("{help}. The default of --{long}; the flag, when given, wins.")));
                }
            }
        }
    };
    if path.is_empty() {
        for sub in cmd.get_subcommands() {
            collect(sub);
            sub.get_subcommands().for_each(&mut collect);
        }
    } else {
        collect(cmd);
    }
    for (var, text) in &flags {
        entry(roff, vec![bold(var.as_str())], text);
    }
    if !path.is_empty() && about(path, &["hook pre-push", "doctor", "config"]) {
        entry(
            roff,
            vec![bold("QUIRE_CI_"), italic("SETTING")],
            "Every run setting's variable, as quire-ci-run(1) lists them (QUIRE_CI_IMAGE, QUIRE_CI_PULL, QUIRE_CI_MEMORY, ...): read here through the same layers as run, over the settings files (FILES).",
        );
    }
    if about(path, &["hook install", "hook pre-push"]) {
        entry(roff, vec![bold("QUIRE_CI_SKIP")], "Set to 1 to let one git push through without running CI (the hook script reads it; git push --no-verify skips every hook).");
        entry(
            roff,
            vec![bold("QUIRE_CI_HOOK_SKIP_JOBS")],
            "Jobs the pre-push hook never runs, comma-separated (recorded as skipped, with the jobs that need them).",
        );
    }
    if about(path, &["run", "watch", "hook pre-push"]) {
        entry(
            roff,
            vec![bold("QUIRE_SECRET_"), italic("NAME")],
            "Provides secret NAME (over --secrets-file, under --secret NAME). Secrets are masked in every line quire-ci prints or records.",
        );
    }
    if about(path, &["watch"]) {
        entry(
            roff,
            vec![bold("QUIRE_CI_WATCH_POLL")],
            "Set to 1 to poll the working tree every 500 ms instead of using inotify.",
        );
        entry(
            roff,
            vec![bold("QUIRE_CI_WATCH_WARM")],
            "Set to 0 to keep no container ready between runs (by default watch holds a started container of the last run's image, so the next run skips creating and starting one).",
        );
    }
    if about(path, &["run", "watch", "hook pre-push"]) {
        entry(
            roff,
            vec![bold("QUIRE_CI_UPLOAD")],
            "Set to archive to send the snapshot through the engine's archive endpoint instead of into the new container's own stdin while it starts (the default, faster; see docs/engine.md, Upload).",
        );
    }
    if about(path, &["run", "watch", "hook pre-push", "doctor"]) {
        entry(roff, vec![bold("DOCKER_HOST")], "The engine's address (unix://, tcp://, ssh://); when set it wins over contexts, as for docker. See docs/engine.md.");
        entry(roff, vec![bold("DOCKER_CONTEXT")], "The docker context to use when DOCKER_HOST is not set.");
        entry(
            roff,
            vec![bold("DOCKER_CONFIG")],
            "Where the docker configuration (config.json: currentContext, registry credentials) is; default ~/.docker.",
        );
        entry(
            roff,
            vec![bold("DOCKER_TLS_VERIFY"), roman(", "), bold("DOCKER_TLS"), roman(", "), bold("DOCKER_CERT_PATH")],
            "TLS to a tcp:// engine, with ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH.",
        );
        entry(
            roff,
            vec![bold("XDG_RUNTIME_DIR")],
            "Where rootless Podman's socket is looked for when no Docker engine answers.",
        );
    }
    if about(path, &["completions"]) {
        entry(roff, vec![bold("COMPLETE")], "Set by the completion script to bash, zsh, fish, elvish or powershell when the shell asks quire-ci for candidates; COMPLETE=SHELL quire-ci alone prints that shell's script.");
    }
    entry(roff, vec![bold("NO_COLOR")], "Set and not empty: no colour (unless --color always).");
    entry(
        roff,
        vec![bold("CLICOLOR_FORCE")],
        "Set and not 0: colour even into a pipe (unless NO_COLOR or --color never).",
    );
    entry(
        roff,
        vec![bold("FORCE_COLOR")],
        "0 or false: no colour; any other value: colour even into a pipe (unless NO_COLOR or --color never).",
    );
    entry(roff, vec![bold("CLICOLOR")], "0: no colour.");
    entry(roff, vec![bold("TERM")], "dumb (or unset): no colour and no live view on a terminal.");
}

fn files(roff: &mut Roff, path: &[String]) {
    roff.control("SH", ["FILES"]);
    let reads_ci = about(path, &["run", "watch", "hook pre-push", "validate", "list", "doctor", "init"]);
    if reads_ci {
        entry(
            roff,
            vec![italic(".quire/ci.fnl")],
            if about(path, &["init"]) && !path.is_empty() {
                "The pipeline init writes (never over an existing one)."
            } else {
                "The pipeline, in Fennel; modules it requires are read from .quire/ too."
            },
        );
    }
    if about(path, &["run", "watch", "hook pre-push", "doctor", "validate", "list"]) {
        entry(roff, vec![italic(".quire/Dockerfile")], "Built into the run's image when ci.fnl declares none.");
    }
    if about(path, &["run", "watch", "hook pre-push", "doctor", "config"]) {
        entry(
            roff,
            vec![italic("GIT_DIR"), roman("/quire-ci.toml")],
            "This clone's settings (never committed): over the repository's and the user's, under QUIRE_CI_* and flags.",
        );
        entry(
            roff,
            vec![italic(crate::settings::REPO_FILE)],
            "The repository's settings, committed: over the user's file. Keys are the long flags' names; an unknown key is an error naming file and line.",
        );
        entry(
            roff,
            vec![italic("$XDG_CONFIG_HOME/quire-ci/config.toml")],
            "The user's settings (default ~/.config/quire-ci/config.toml), over the defaults. quire-ci config shows which layer gave each value.",
        );
    }
    if about(path, &["run", "watch", "hook pre-push", "logs", "runs"]) {
        entry(
            roff,
            vec![italic("GIT_DIR"), roman("/quire-ci/runs/"), italic("RUN"), roman("/")],
            "A run's record: meta.json, state.json, log.jsonl and each job's log (docs/log-format.md); --out DIR puts them elsewhere.",
        );
    }
    if about(path, &["hook install", "hook uninstall", "hook pre-push", "doctor"]) {
        entry(
            roff,
            vec![italic("HOOKS"), roman("/pre-push")],
            "The pre-push hook (HOOKS is core.hooksPath when set, else GIT_DIR/hooks); a foreign hook kept by install --force is pre-push.local.",
        );
    }
    if about(path, &["run", "watch", "doctor"]) {
        entry(
            roff,
            vec![italic("~/.docker/config.json")],
            "currentContext, contexts and registry credentials (see DOCKER_CONFIG).",
        );
    }
    if !reads_ci && !about(path, &["logs", "runs", "hook install", "hook uninstall", "config"]) {
        roff.text([roman("None: this command reads and writes no file of its own.")]);
    }
}

fn exit_status(roff: &mut Roff, path: &[String]) {
    roff.control("SH", ["EXIT STATUS"]);
    let codes: Vec<(i32, &str)> = match path.first().map(String::as_str) {
        Some("validate") | Some("list") => {
            vec![(exit::OK, "ci.fnl is valid"), (exit::BAD_INPUT, "bad usage, no repository, or ci.fnl is invalid")]
        }
        Some("doctor") => vec![
            (exit::OK, "no check failed (warnings allowed)"),
            (exit::BAD_INPUT, "a check of the repository failed (no repository, ci.fnl missing or invalid)"),
            (exit::INFRA, "a check of the machine failed (engine, image)"),
        ],
        Some("logs") | Some("runs") => vec![
            (exit::OK, "success"),
            (exit::BAD_INPUT, "bad usage, no runs directory, or an unknown run or job"),
            (exit::INFRA, "the run records cannot be read"),
        ],
        Some("config") => {
            vec![(exit::OK, "success"), (exit::BAD_INPUT, "bad usage or a bad settings file (named, with its line)")]
        }
        Some("init") | Some("completions") | Some("man") => {
            vec![
                (exit::OK, "success"),
                (exit::BAD_INPUT, "bad usage (init: a ci.fnl exists already)"),
                (exit::INFRA, "the output cannot be written"),
            ]
        }
        Some("hook") if path.get(1).is_some_and(|s| s != "pre-push") => {
            vec![
                (exit::OK, "success"),
                (exit::BAD_INPUT, "bad usage, no repository, or a foreign hook in the way"),
                (exit::INFRA, "the hook cannot be written"),
            ]
        }
        _ => vec![
            (exit::OK, "success: every job passed (or was skipped)"),
            (exit::JOB_FAILED, "a job failed"),
            (exit::BAD_INPUT, "bad usage or a bad ci.fnl"),
            (exit::INFRA, "infrastructure: the engine, the image or the container"),
            (exit::INTERRUPTED, "interrupted (SIGINT)"),
            (exit::TERMINATED, "terminated (SIGTERM): 128 + 15, as shells report it"),
        ],
    };
    for (code, what) in codes {
        entry(roff, vec![bold(code.to_string())], what);
    }
}

fn see_also(roff: &mut Roff, cmd: &clap::Command, parent: Option<&clap::Command>) {
    roff.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = Vec::new();
    let me = display_name(cmd);
    if me != "quire-ci" {
        refs.push("quire-ci".into());
    }
    if let Some(p) = parent {
        let p = display_name(p);
        if !refs.contains(&p) {
            refs.push(p);
        }
        // Siblings of a nested command (hook install, hook uninstall, ...).
        if display_name(parent.unwrap_or(cmd)) != "quire-ci" {
            for s in parent.into_iter().flat_map(|p| p.get_subcommands()).filter(|s| !s.is_hide_set()) {
                let s = display_name(s);
                if s != me {
                    refs.push(s);
                }
            }
        }
    }
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        refs.push(display_name(s));
    }
    let mut line: Vec<Inline> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(r.as_str()));
        line.push(roman("(1)"));
    }
    line.push(roman(if refs.is_empty() { "" } else { ", " }));
    line.push(bold("git"));
    line.push(roman("(1), "));
    line.push(bold("docker"));
    line.push(roman("(1). The guides: README.md and docs/ in the quire-ci repository."));
    roff.text(line);
}
