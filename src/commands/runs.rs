//! `quire-ci runs`: the recent runs of this repository, newest first.

use super::{exit, Context};
use crate::cli::RunsArgs;
use crate::events::RunStatus;
use crate::record::{self, RunSummary};
use crate::render::human_ms;

pub fn run(ctx: &Context, args: &RunsArgs) -> i32 {
    let (dir, runs) = match recorded_runs(ctx, args.out.as_deref()) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if args.json {
        for r in &runs {
            if let Ok(line) = serde_json::to_string(r) {
                println!("{line}");
            }
        }
        return exit::OK;
    }
    if runs.is_empty() {
        eprintln!("quire-ci: no runs recorded in {} yet; `quire-ci run` makes one", dir.display());
        return exit::OK;
    }
    print!("{}", table(&runs));
    exit::OK
}

/// The listing as text: one run per line under a header.
pub fn table(runs: &[RunSummary]) -> String {
    let idw = runs.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let refw = runs.iter().map(|r| r.git_ref.len()).max().unwrap_or(3).max(3);
    let mut out = format!(
        "{:<idw$}  {:<24}  {:<refw$}  {:<5}  {:<10}  {:>8}\n",
        "id", "started", "ref", "dirty", "status", "time"
    );
    for r in runs {
        let status = match r.status {
            _ if r.abandoned => "abandoned",
            Some(s) => status_word(s),
            None => "unknown",
        };
        let time = r.duration_ms.map(human_ms).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<idw$}  {:<24}  {:<refw$}  {:<5}  {:<10}  {:>8}\n",
            r.id,
            r.started,
            r.git_ref,
            if r.dirty { "yes" } else { "no" },
            status,
            time
        ));
    }
    out
}

pub fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Error => "error",
        RunStatus::Canceled => "canceled",
        RunStatus::Superseded => "superseded",
    }
}

/// `--out DIR` (relative to -C), else `<git-dir>/quire-ci/runs` of the
/// repository around the working directory, as `run` writes them.
/// The runs directory (`--out`, else the repository's) and its runs, newest
/// first; or, after saying why, the exit code: 2 when there is no runs
/// directory to speak of, 3 when it cannot be read.
pub fn recorded_runs(
    ctx: &Context,
    out: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, Vec<RunSummary>), i32> {
    let dir = runs_dir(ctx, out).map_err(|msg| {
        eprintln!("quire-ci: {msg}");
        exit::BAD_INPUT
    })?;
    let runs = record::list_runs(&dir).map_err(|e| {
        eprintln!("quire-ci: {e}");
        exit::INFRA
    })?;
    Ok((dir, runs))
}

pub fn runs_dir(ctx: &Context, out: Option<&std::path::Path>) -> Result<std::path::PathBuf, String> {
    if let Some(o) = out {
        return Ok(if o.is_absolute() { o.to_path_buf() } else { ctx.cwd.join(o) });
    }
    // `out` from QUIRE_CI_OUT or a settings file: where `run` put them.
    let root = super::find_repo_root(&ctx.cwd).ok();
    let settings = crate::settings::resolve_without_flags(root.as_deref()).map_err(|inv| {
        inv.problems.first().map(|p| p.message.clone()).unwrap_or_default() + " (run `quire-ci config` for the details)"
    })?;
    if let Some(o) = settings.args.run.out {
        return Ok(if o.is_absolute() { o } else { ctx.cwd.join(o) });
    }
    let repo = gix::discover(&ctx.cwd).map_err(|e| {
        format!(
            "{} is not inside a git repository ({e}); run inside one, or name the runs directory with --out DIR",
            ctx.cwd.display()
        )
    })?;
    Ok(record::runs_dir(repo.git_dir()))
}
