//! `quire-ci watch`: a run now, then a new run after each change; a change
//! during a run supersedes it.
//!
//! Threads: runs execute on the main thread (the executor blocks and holds
//! Lua, which is not Send). A coordinator thread owns the watcher: it
//! debounces events, takes a snapshot's tree id to see whether the content
//! really changed, cancels the in-flight run as `superseded`, and wakes the
//! main thread through a channel. Signals are handled on the tokio runtime.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{exit, Context};
use crate::cli::WatchArgs;
use crate::events::RunStatus;
use crate::executor::{self as run, Cancel, Warm};
use crate::snapshot::Snapshot;
use crate::watch::{self, PathFilter};

/// What the coordinator, the signal handler and the main thread share.
#[derive(Default)]
struct Shared {
    /// The run executing now, if any.
    inflight: Option<Cancel>,
    /// The tree of the latest run started (or about to start).
    last_tree: Option<String>,
    /// Ctrl-C was pressed: no new run starts.
    stopping: bool,
}

pub fn run(ctx: &Context, args: &WatchArgs) -> i32 {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let repo = match super::repo_root(ctx) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Flags, QUIRE_CI_*, the settings files, defaults (settings/); read
    // once, when watch starts.
    let settings = match crate::settings::resolve(Some(&repo), &ctx.matches, args) {
        Ok(s) => s,
        Err(invalid) => return super::report_settings(ctx, &invalid),
    };
    let args = &settings.args;
    // Check the arguments once, up front: a bad --event is not worth watching for.
    if let Err(msg) = super::run::build_request(ctx, &args.run, &repo) {
        eprintln!("quire-ci: {msg}");
        return exit::BAD_INPUT;
    }
    let Watching { watcher, filter, index_lock, out_dir } = match Watching::start(ctx, &repo, args) {
        Ok(w) => w,
        Err(code) => return code,
    };

    let shared = Arc::new(Mutex::new(Shared::default()));
    let live = Arc::new(Mutex::new(None));
    let (wake_tx, wake_rx) = mpsc::channel::<Wake>();
    install_signal_handlers(&rt, shared.clone(), live.clone(), wake_tx.clone());

    let quiet = Duration::from_millis(args.debounce);
    {
        let shared = shared.clone();
        let repo = repo.clone();
        let out_dir = out_dir.clone();
        let pace = Pace { quiet, trace: ctx.verbose };
        std::thread::spawn(move || {
            coordinate(watcher, filter, &repo, out_dir.as_deref(), &index_lock, pace, shared, wake_tx)
        });
    }

    // The first run: its tree is what later changes are compared with.
    if let Ok(mut s) = shared.lock() {
        s.last_tree = tree_of(&repo, out_dir.as_deref());
    }
    // The container kept ready between runs (not with --keep, whose label
    // is written at create time; QUIRE_CI_WATCH_WARM=0 turns it off).
    let warm = (!args.run.keep && std::env::var(watch::NO_WARM_ENV).as_deref() != Ok("0")).then(Warm::default);
    let looped = Loop { ctx, settings: &settings, repo: &repo, rt: &rt, shared: &shared, live: &live, warm: &warm };
    let code = looped.run(&wake_rx);
    if let Some(w) = &warm {
        w.discard(rt.handle());
    }
    code
}

/// The file watcher and what it leaves out.
struct Watching {
    watcher: watch::TreeWatcher,
    filter: PathFilter,
    /// `.git/index.lock`: no run while it exists.
    index_lock: PathBuf,
    /// `--out`, made absolute: never part of a change.
    out_dir: Option<PathBuf>,
}

impl Watching {
    /// Starts watching the repository; Err is watch's exit code (said).
    fn start(ctx: &Context, repo: &std::path::Path, args: &WatchArgs) -> Result<Watching, i32> {
        let (git_dir, index_lock) = match gix::discover(repo) {
            Ok(r) => (r.git_dir().to_path_buf(), PathBuf::from(format!("{}.lock", r.index_path().display()))),
            Err(e) => {
                eprintln!("quire-ci: cannot open the repository at {}: {e}", repo.display());
                return Err(exit::BAD_INPUT);
            }
        };
        let mut ignored = vec![git_dir];
        let out_dir = args.run.out.as_ref().map(|out| if out.is_absolute() { out.clone() } else { ctx.cwd.join(out) });
        if let Some(out) = &out_dir {
            // Both spellings: the watcher may report either.
            ignored.push(out.clone());
            if let Some(c) = crate::snapshot::canonical_even_if_missing(out) {
                ignored.push(c);
            }
        }
        let force_poll = std::env::var(watch::FORCE_POLL_ENV).is_ok_and(|v| v == "1");
        let watcher = match watch::watch(repo, force_poll) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("quire-ci: cannot watch {}: {e}", repo.display());
                return Err(exit::INFRA);
            }
        };
        if let Some(w) = &watcher.warning {
            eprintln!("quire-ci: warning: {w}");
        }
        Ok(Watching { watcher, filter: PathFilter::new(repo, ignored), index_lock, out_dir })
    }
}

/// What wakes the main thread while it waits.
enum Wake {
    /// The tree changed (the coordinator).
    Change,
    /// SIGINT/SIGTERM while idle: stop watching.
    Stop,
}

/// The main thread's loop: a run, then wait for a change, until stopped.
struct Loop<'a> {
    ctx: &'a Context,
    settings: &'a crate::settings::Settings,
    repo: &'a std::path::Path,
    rt: &'a tokio::runtime::Runtime,
    shared: &'a Arc<Mutex<Shared>>,
    live: &'a Arc<Mutex<Option<String>>>,
    warm: &'a Option<Warm>,
}

impl Loop<'_> {
    /// Runs until Ctrl-C or a broken watcher; the exit code.
    fn run(&self, wake_rx: &mpsc::Receiver<Wake>) -> i32 {
        let args = &self.settings.args;
        loop {
            if args.clear {
                print!("\x1b[2J\x1b[3J\x1b[H");
                let _ = std::io::stdout().flush();
            }
            let outcome = match self.one_run() {
                Ok(o) => o,
                Err(code) => return code,
            };
            let stopping = match self.shared.lock() {
                Ok(mut s) => {
                    s.inflight = None;
                    s.stopping
                }
                Err(_) => true,
            };
            if stopping {
                return exit::interrupted();
            }
            // The next run's container, made while watch waits.
            if let Some(w) = self.warm {
                w.prepare(self.rt.handle());
            }
            if outcome.status == RunStatus::Superseded {
                eprintln!("quire-ci: run superseded by a newer change; starting again");
            } else {
                super::run::report_outcome(self.ctx, &outcome, !args.run.json);
                eprintln!("quire-ci: watching for changes… (Ctrl-C to stop)");
            }
            // Wait for a change; several wake-ups while running are one change.
            match wake_rx.recv() {
                Ok(Wake::Change) => {}
                Ok(Wake::Stop) => return exit::interrupted(),
                Err(_) => {
                    eprintln!("quire-ci: the file watcher stopped; exiting");
                    return exit::INFRA;
                }
            }
            while let Ok(w) = wake_rx.try_recv() {
                if matches!(w, Wake::Stop) {
                    return exit::interrupted();
                }
            }
        }
    }

    /// One run of the tree as it is now; Err is watch's exit code.
    fn one_run(&self) -> Result<run::RunOutcome, i32> {
        let mut request = match super::run::build_request(self.ctx, &self.settings.args.run, self.repo) {
            Ok(r) => r,
            Err(msg) => {
                eprintln!("quire-ci: {msg}");
                return Err(exit::BAD_INPUT);
            }
        };
        request.live_container = self.live.clone();
        request.skip = self.settings.skips();
        request.warm = self.warm.clone();
        {
            let Ok(mut s) = self.shared.lock() else { return Err(exit::INFRA) };
            if s.stopping {
                return Err(exit::interrupted());
            }
            s.inflight = Some(request.cancel.clone());
        }
        Ok(run::execute(self.rt.handle(), request))
    }
}

/// How the coordinator debounces, and whether it names what it sees (-v).
struct Pace {
    quiet: Duration,
    trace: bool,
}

/// The coordinator thread: debounce, compare trees, supersede, wake.
#[allow(clippy::too_many_arguments)]
fn coordinate(
    watcher: watch::TreeWatcher,
    filter: PathFilter,
    repo: &std::path::Path,
    out_dir: Option<&std::path::Path>,
    index_lock: &std::path::Path,
    Pace { quiet, trace }: Pace,
    shared: Arc<Mutex<Shared>>,
    wake: mpsc::Sender<Wake>,
) {
    let mut warned = false;
    let mut on_error = |e: &notify::Error| {
        if !warned {
            eprintln!("quire-ci: warning: file watcher: {e}");
            if watch::needs_poll(e) {
                eprintln!(
                    "quire-ci: some directories are not watched; raise fs.inotify.max_user_watches or set {}=1",
                    watch::FORCE_POLL_ENV
                );
            }
            warned = true;
        }
    };
    // notify's poller compares mtimes in whole seconds, so a second save
    // within the same second goes unseen; in poll mode the tree id is also
    // checked on every poll interval, which sees every change of content.
    let poll = matches!(watcher.backend, watch::Backend::Poll);
    loop {
        let next = if poll {
            match watcher.events.recv_timeout(watch::POLL_INTERVAL) {
                Ok(ev) => Some(ev),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match watcher.events.recv() {
                Ok(ev) => Some(ev),
                Err(_) => return,
            }
        };
        // Under -v every change seen is named, counted or not: what a user
        // asks when a save did (or did not) start a run.
        let first = match next {
            None => Instant::now(),
            Some(Ok(ev)) if filter.event_counts(&ev) => {
                if trace {
                    for p in &ev.paths {
                        eprintln!("quire-ci: change: {}", p.display());
                    }
                }
                Instant::now()
            }
            Some(Ok(ev)) => {
                // Reads are not changes; naming them would drown the rest.
                if trace && !matches!(ev.kind, notify::EventKind::Access(_)) {
                    for p in &ev.paths {
                        eprintln!("quire-ci: ignored: {}", p.display());
                    }
                }
                continue;
            }
            Some(Err(e)) => {
                on_error(&e);
                continue;
            }
        };
        let on_lock = || {
            if trace {
                eprintln!("quire-ci: waiting for git to finish ({} exists)", index_lock.display());
            }
        };
        if !watch::settle(&watcher.events, &filter, first, quiet, index_lock, &mut on_error, on_lock) {
            return;
        }
        // Only a change of content is a change: a touched file, a write of
        // the same bytes, or an ignored path the filter let through does
        // not start a run. A broken snapshot does (the run reports it).
        let tree = tree_of(repo, out_dir);
        {
            let Ok(mut s) = shared.lock() else { return };
            if tree.is_some() && tree == s.last_tree {
                if trace {
                    eprintln!("quire-ci: the tree is unchanged; no run");
                }
                continue;
            }
            s.last_tree = tree;
            if let Some(c) = &s.inflight {
                c.cancel(RunStatus::Superseded, "superseded by a newer change");
            }
        }
        if wake.send(Wake::Change).is_err() {
            return;
        }
    }
}

/// The tree a run would see: the working tree without the run directory
/// (`--out`), which every run writes into.
fn tree_of(repo: &std::path::Path, out_dir: Option<&std::path::Path>) -> Option<String> {
    let snap = Snapshot::of_worktree(repo).ok()?;
    let snap = match out_dir {
        Some(out) => snap.excluding(out).ok()?,
        None => snap,
    };
    Some(snap.tree_id())
}

/// First SIGINT/SIGTERM: idle → wake the main thread, which removes the
/// container kept ready and exits 130; during a run → cancel it (the main
/// loop exits 130 once its container is removed). Second: remove the run's
/// container right away and exit 130. (143 instead of 130 for SIGTERM.)
fn install_signal_handlers(
    rt: &tokio::runtime::Runtime,
    shared: Arc<Mutex<Shared>>,
    live: Arc<Mutex<Option<String>>>,
    wake: mpsc::Sender<Wake>,
) {
    super::on_interrupt(rt, live, move |name| {
        // Holding the lock, so the main thread cannot start a run between
        // this check and the exit.
        let Ok(mut s) = shared.lock() else { std::process::exit(exit::interrupted()) };
        s.stopping = true;
        match &s.inflight {
            None => {
                eprintln!("\nquire-ci: {name}: stopped watching");
                if wake.send(Wake::Stop).is_err() {
                    std::process::exit(exit::interrupted());
                }
            }
            Some(c) => {
                eprintln!("\nquire-ci: {name}: canceling the run and removing its container (again to force)");
                c.cancel(RunStatus::Canceled, format!("canceled by {name}"));
            }
        }
    });
}
