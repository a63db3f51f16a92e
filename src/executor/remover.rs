//! Removing run containers off the user's clock. The engine takes seconds
//! to delete a container's copy of a large tree (24.8 s for 50,000 files),
//! and a run's outcome must not wait for that: the container is handed to
//! a detached remover, this same binary run again as
//! `quire-ci __remove-containers ENDPOINT ID...` — in a session of its own (a Ctrl-C
//! on the terminal does not reach it), with no stdin, stdout or stderr (a
//! caller reading quire-ci's output to its end is not held up by it) —
//! which removes them (forced: whatever still runs is killed, with their
//! anonymous volumes), trying again while the engine does not answer, for
//! at most [`REMOVE_DEADLINE`], and exits.
//!
//! A remover that dies or gives up leaves a container whose owner (the
//! quire-ci that ran it) is gone: the next run's reaper hands it to a
//! remover of its own (src/executor/link.rs).
//!
//! Owns: starting a remover, and the remover itself. Must not know about:
//! runs, events, the terminal.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::Engine;

/// The hidden first argument that makes quire-ci a remover (it is not a
/// subcommand of the CLI: `main` looks for it before parsing). A reaper
/// knows a container still being removed by the remover's command line
/// (`engine::owner::remover_alive`), so the ids are passed whole.
pub const SUBCOMMAND: &str = crate::engine::owner::REMOVER_ARG;

/// Set by [`main_if_asked`]: this process's binary, started again with
/// [`SUBCOMMAND`], is a remover (quire-ci's own `main` asks first thing).
static SERVES: AtomicBool = AtomicBool::new(false);

/// How long a remover works before it gives up (a frozen engine); what it
/// leaves is the next run's reaper's.
pub const REMOVE_DEADLINE: Duration = Duration::from_secs(300);

/// Hands containers to a detached remover and returns at once: `quire-ci
/// __remove-containers ENDPOINT ID...`. Give full ids (`RunContainer::id`):
/// a reaper that reaches the same ENDPOINT knows a container whose removal
/// is under way by its full id on a remover's command line
/// (`engine::owner::remover_alive`). With `engine`, the remover reaches
/// that same engine (a socket endpoint is passed as `DOCKER_HOST`;
/// otherwise it selects the engine from the same environment, as the
/// caller did); without, ENDPOINT is `-`. `Err` when no remover could be
/// started: the caller removes them itself.
pub fn hand_off(engine: Option<&Engine>, ids: &[String]) -> std::io::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // This binary run again must be a remover: not so for a program that
    // uses the executor as a library (a test binary would take the ids for
    // test names, run nothing and leave the containers).
    if !SERVES.load(Ordering::Relaxed) {
        return Err(std::io::Error::other("this program does not serve as a remover"));
    }
    // /proc/self/exe is this very binary even when its file was replaced or
    // deleted meanwhile (an upgrade during a run).
    let exe = match PathBuf::from("/proc/self/exe") {
        p if p.exists() => p,
        _ => std::env::current_exe()?,
    };
    let mut cmd = Command::new(exe);
    cmd.arg0("quire-ci").arg(SUBCOMMAND).arg(engine.map(Engine::endpoint).unwrap_or("-")).args(ids);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(endpoint) = engine.map(Engine::endpoint).filter(|e| e.starts_with("unix://")) {
        cmd.env("DOCKER_HOST", endpoint).env_remove("DOCKER_CONTEXT");
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // A long-lived caller (watch) reaps it when it is done; a caller that
    // exits first leaves it to init.
    let _ = std::thread::Builder::new().name("remover-wait".into()).spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// When this process was started as a remover: removes the containers
/// named on the command line and gives the exit code (0 when every one is
/// gone). None otherwise, and from then on this process hands removals to
/// removers (a program that never calls this removes them itself).
pub fn main_if_asked() -> Option<i32> {
    SERVES.store(true, Ordering::Relaxed);
    let mut args = std::env::args_os().skip(1);
    if args.next()? != SUBCOMMAND {
        return None;
    }
    // The engine's endpoint is for reapers to read; the connection is made
    // from the environment the caller gave.
    let _endpoint = args.next();
    let ids: Vec<String> = args.filter_map(|a| a.into_string().ok()).collect();
    Some(remove_all(&ids))
}

fn remove_all(ids: &[String]) -> i32 {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return 1;
    };
    // An engine that is restarting, or briefly unreachable, is tried again
    // (backing off to 10 s) until the deadline.
    let removing = async {
        let mut left: Vec<&String> = ids.iter().collect();
        let mut backoff = Duration::from_millis(250);
        loop {
            if let Ok(engine) = Engine::connect().await {
                let removals = left.iter().map(|id| engine.remove_id(id));
                let results = futures_util::future::join_all(removals).await;
                left = left.into_iter().zip(results).filter(|(_, r)| r.is_err()).map(|(id, _)| id).collect();
                if left.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    };
    let done = rt.block_on(async { tokio::time::timeout(REMOVE_DEADLINE, removing).await });
    if done.is_ok() {
        0
    } else {
        1
    }
}
