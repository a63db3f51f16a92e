//! `quire-ci validate`: compile and check ci.fnl, no container.

use serde_json::{json, Value};

use super::{evaluate_worktree, exit, Context};
use crate::cli::ValidateArgs;
use crate::diagnostic::Problem;

pub fn run(ctx: &Context, args: &ValidateArgs) -> i32 {
    if args.json {
        return run_json(ctx, args);
    }
    match evaluate_worktree(ctx, args.file.as_deref(), &args.eval) {
        Ok(p) => {
            // Valid here, refused by the forge's server: said, not failed.
            if !p.warnings.is_empty() && !ctx.quiet {
                ctx.report(&p.warnings, &p.sources);
                let n = p.warnings.len();
                eprintln!(
                    "{} about the forge's server (quire {}); see docs/server-differences.md",
                    if n == 1 { "1 warning".to_string() } else { format!("{n} warnings") },
                    crate::server_compat::SERVER_COMMIT
                );
            }
            if !ctx.quiet {
                let order: Vec<&str> = p.jobs.iter().map(|j| j.id.as_str()).collect();
                let image = match &p.image {
                    Some(i) => i.name.clone(),
                    None if super::find_repo_root(&ctx.cwd).is_ok_and(|r| r.join(".quire/Dockerfile").is_file()) => {
                        "built from .quire/Dockerfile".to_string()
                    }
                    None => "default (none declared)".to_string(),
                };
                let jobs = match order.len() {
                    1 => "1 job".to_string(),
                    n => format!("{n} jobs"),
                };
                // The whole order fits one line up to a dozen jobs; past that,
                // the first and last few (`-v` or `list` shows every one).
                const SHOWN: usize = 12;
                let order = match order.len() {
                    0 => String::new(),
                    n if n <= SHOWN || ctx.verbose => format!(": {}", order.join(" → ")),
                    n => format!(
                        ": {} → … {} more … → {} (-v or quire-ci list shows all)",
                        order[..SHOWN - 3].join(" → "),
                        n - SHOWN + 1,
                        order[n - 2..].join(" → ")
                    ),
                };
                println!("ok: {} is valid, {jobs}{order}; image {image}", shown_file(args));
            }
            super::done_with(p);
            exit::OK
        }
        Err(invalid) => {
            ctx.report(&invalid.problems, &invalid.sources);
            eprintln!("{}", count_line(&invalid.problems, &shown_file(args)));
            exit::BAD_INPUT
        }
    }
}

/// The file validated, as the user named it (`.quire/ci.fnl` by default).
fn shown_file(args: &ValidateArgs) -> String {
    args.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| crate::pipeline::CI_FNL.into())
}

/// `2 problems in .quire/ci.fnl, .quire/quire-ci.toml`: the files the
/// problems are in (a settings file, a module), `file` when none says.
fn count_line(problems: &[Problem], file: &str) -> String {
    let mut files: Vec<String> = Vec::new();
    for f in problems.iter().filter_map(|p| p.location.as_ref().map(|l| l.file.clone())) {
        if !files.contains(&f) {
            files.push(f);
        }
    }
    if files.is_empty() {
        files.push(file.to_string());
    }
    crate::render::problems_count_line(problems.len(), &files)
}

/// `validate --json`: one JSON document on stdout whatever the outcome
/// (docs/daily-use.md, "validate --json"); the exit code is the text mode's.
fn run_json(ctx: &Context, args: &ValidateArgs) -> i32 {
    let file = shown_file(args);
    let (doc, code) = match evaluate_worktree(ctx, args.file.as_deref(), &args.eval) {
        Ok(p) => {
            let jobs: Vec<&str> = p.jobs.iter().map(|j| j.id.as_str()).collect();
            let image = match &p.image {
                Some(i) => json!({"name": i.name, "source": "ci.fnl"}),
                None if super::find_repo_root(&ctx.cwd).is_ok_and(|r| r.join(".quire/Dockerfile").is_file()) => {
                    json!({"name": null, "source": ".quire/Dockerfile"})
                }
                None => json!({"name": null, "source": "default"}),
            };
            let problems: Vec<Value> = p.warnings.iter().map(problem_json).collect();
            let doc = json!({"valid": true, "file": file, "problems": problems, "jobs": jobs, "image": image});
            super::done_with(p);
            (doc, exit::OK)
        }
        Err(invalid) => {
            let problems: Vec<Value> = invalid.problems.iter().map(problem_json).collect();
            (json!({"valid": false, "file": file, "problems": problems, "jobs": [], "image": null}), exit::BAD_INPUT)
        }
    };
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    code
}

/// One problem for scripts and editors: `line` and `column` 1-based,
/// `end_column` the column just past the span; `null` where unknown.
pub fn problem_json(p: &Problem) -> Value {
    let loc = p.location.as_ref();
    let cols = loc.and_then(|l| l.columns);
    json!({
        "code": p.code.as_str(),
        "severity": if p.code.is_warning() { "warning" } else { "error" },
        "message": p.message,
        "file": loc.map(|l| l.file.as_str()),
        "line": loc.map(|l| l.line),
        "column": cols.map(|(a, _)| a + 1),
        "end_column": cols.map(|(a, b)| b.max(a + 1) + 1),
        "label": (!p.label.is_empty()).then_some(p.label.as_str()),
        "help": p.help,
    })
}
