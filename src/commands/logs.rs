//! `quire-ci logs [RUN]`: replays a recorded run from its log.jsonl files
//! through the same renderer the live run used (STYLE.md's spine), or as
//! JSON lines with `--json`.

use std::io::Write;
use std::path::PathBuf;

use super::{exit, Context};
use crate::cli::LogsArgs;
use crate::emitter::EventSink;
use crate::events::EventKind;
use crate::record::{self, RunSummary};
use crate::render::{RenderOptions, Renderer};

pub fn run(ctx: &Context, args: &LogsArgs) -> i32 {
    let (runs_dir, runs) = match super::runs::recorded_runs(ctx, args.out.as_deref()) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let dir = match pick(&runs, args.run.as_deref()) {
        Ok(d) => d,
        Err(msg) => {
            eprintln!("quire-ci: {msg} (runs are in {})", runs_dir.display());
            return exit::BAD_INPUT;
        }
    };
    let recorded = match record::read_run(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quire-ci: cannot replay {}: {e}", dir.display());
            return exit::BAD_INPUT;
        }
    };
    if let Some(job) = &args.job {
        let known = recorded.events.iter().any(|e| e.job.as_deref() == Some(job.as_str()));
        if !known {
            let mut jobs: Vec<&str> = Vec::new();
            for e in &recorded.events {
                if let EventKind::RunStart { jobs: js, .. } = &e.kind {
                    jobs.extend(js.iter().map(String::as_str));
                }
            }
            eprintln!("quire-ci: run {} has no job {job:?} (jobs: {})", recorded.meta.run_id, jobs.join(", "));
            return exit::BAD_INPUT;
        }
    }
    if args.json {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for ev in &recorded.events {
            if args.job.as_ref().is_some_and(|j| ev.job.as_ref().is_some_and(|e| e != j)) {
                continue;
            }
            if let Ok(line) = serde_json::to_string(ev) {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
        return exit::OK;
    }
    let opts = RenderOptions { color: ctx.color_stdout, quiet: ctx.quiet, verbose: ctx.verbose, run_dir: None };
    // Replay is never live: the run is over, there is nothing to wait for.
    let mut renderer = Renderer::new(Box::new(std::io::stdout()), opts).with_excerpt_lines(args.excerpt_lines);
    if let Some(job) = &args.job {
        renderer = renderer.only_job(job);
    }
    for ev in &recorded.events {
        renderer.event(ev);
    }
    renderer.finish();
    exit::OK
}

/// The run `wanted` names: an exact id, or a prefix matching exactly one
/// run; the latest when None.
pub fn pick(runs: &[RunSummary], wanted: Option<&str>) -> Result<PathBuf, String> {
    let Some(w) = wanted else {
        return runs
            .first()
            .map(|r| r.dir.clone())
            .ok_or_else(|| "no runs recorded yet; `quire-ci run` makes one".to_string());
    };
    if let Some(r) = runs.iter().find(|r| r.id == w) {
        return Ok(r.dir.clone());
    }
    let matches: Vec<&RunSummary> = runs.iter().filter(|r| r.id.starts_with(w)).collect();
    match matches.as_slice() {
        [one] => Ok(one.dir.clone()),
        [] => Err(format!("no run with an id starting {w:?}; `quire-ci runs` lists them")),
        many => Err(format!(
            "{w:?} names {} runs ({}); give more of the id",
            many.len(),
            many.iter().take(5).map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> RunSummary {
        RunSummary {
            id: id.into(),
            dir: PathBuf::from(id),
            started: String::new(),
            git_ref: String::new(),
            dirty: false,
            status: None,
            duration_ms: None,
            abandoned: false,
        }
    }

    #[test]
    fn a_run_is_picked_by_id_or_unique_prefix() {
        let runs = vec![summary("20261124-2143-ab"), summary("20261124-2140-cd")];
        assert_eq!(pick(&runs, None), Ok(PathBuf::from("20261124-2143-ab")));
        assert_eq!(pick(&runs, Some("20261124-2140")), Ok(PathBuf::from("20261124-2140-cd")));
        assert!(pick(&runs, Some("20261124")).unwrap_err().contains("names 2 runs"));
        assert!(pick(&runs, Some("1999")).unwrap_err().contains("no run"));
        assert!(pick(&[], None).is_err());
    }
}
