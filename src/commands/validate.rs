//! `quire-ci validate`: compile and check ci.fnl, no container.

use super::{evaluate_worktree, exit, Context};
use crate::cli::ValidateArgs;

pub fn run(ctx: &Context, args: &ValidateArgs) -> i32 {
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
                println!("ok: .quire/ci.fnl is valid, {jobs}{order}; image {image}");
            }
            super::done_with(p);
            exit::OK
        }
        Err(invalid) => {
            ctx.report(&invalid.problems, &invalid.sources);
            let n = invalid.problems.len();
            eprintln!("{} in .quire/ci.fnl", if n == 1 { "1 problem".to_string() } else { format!("{n} problems") });
            exit::BAD_INPUT
        }
    }
}
