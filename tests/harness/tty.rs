//! A real pseudo-terminal: a tmux server of the test's own (its own
//! socket, killed on drop) running the binary, and waits on what the pane
//! shows.

use std::process::Command;
use std::time::Duration;

use super::{bin, wait_for, Repo, IMAGE};

pub struct Tmux {
    socket: String,
}

/// Braille spinner frames: the status line is drawn.
pub fn has_spinner(text: &str) -> bool {
    text.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

impl Tmux {
    /// Runs `quire-ci ARGS` in `repo` in a 120x40 terminal; `env` is put in
    /// front of it (e.g. `NO_COLOR=1`). The pane prints `__DONE__ <code>`
    /// when the binary exits.
    pub fn quire(name: &str, repo: &Repo, env: &str, args: &str) -> Tmux {
        Tmux::shell(name, repo, env, &format!("{} {args}", bin().display()))
    }

    /// Runs `command` (e.g. `git push`, which runs the installed hook) as
    /// [`Tmux::quire`] runs quire-ci: same terminal, same environment.
    pub fn shell(name: &str, repo: &Repo, env: &str, command: &str) -> Tmux {
        super::require_docker();
        let cmd = format!(
            "cd {} && env -i PATH=\"$PATH\" HOME=\"$HOME\" TERM=xterm-256color ${{DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST}} LC_ALL=C.UTF-8 GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null QUIRE_CI_IMAGE={IMAGE} QUIRE_CI_NO_CACHE=1 {env} {command}; echo __DONE__ $?; sleep 600",
            repo.path().display(),
        );
        let socket = format!("quire-ci-tty-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let ok = Command::new("tmux")
            .args(["-L", &t.socket, "new-session", "-d", "-x", "120", "-y", "40", "-s", "t", &cmd])
            .status()
            .expect("tmux is installed (scripts/bootstrap)");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    /// The pane with the whole scrollback; with escapes (`-e`) when asked.
    pub fn capture(&self, escapes: bool) -> String {
        let mut args = vec!["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-", "-t", "t"];
        if escapes {
            args.push("-e");
        }
        let out = Command::new("tmux").args(&args).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last non-blank row (where the status line is).
    pub fn bottom(&self) -> String {
        self.capture(false).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
    }

    /// Waits until the pane satisfies `check`; returns the pane.
    pub fn wait_until(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        wait_for(
            what,
            limit,
            || {
                let screen = self.capture(false);
                check(&screen).then_some(screen)
            },
            || self.capture(false),
        )
    }

    pub fn wait_for(&self, needle: &str, limit: Duration) -> String {
        self.wait_until(&format!("{needle:?} on the screen"), limit, |s| s.contains(needle))
    }

    pub fn send(&self, keys: &str) {
        let ok =
            Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "t", keys]).status().expect("send-keys");
        assert!(ok.success(), "tmux send-keys {keys:?} failed");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}
