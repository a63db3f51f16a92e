//! `quire-ci list`: jobs, inputs, topological position, declared line, image.

use serde_json::json;

use super::{evaluate_worktree, exit, Context};
use crate::cli::ListArgs;
use crate::pipeline::Pipeline;

pub fn run(ctx: &Context, args: &ListArgs) -> i32 {
    let p = match evaluate_worktree(ctx, None, &args.eval) {
        Ok(p) => p,
        Err(invalid) => {
            ctx.report(&invalid.problems, &invalid.sources);
            return exit::BAD_INPUT;
        }
    };
    let out = if args.json {
        json_listing(&p)
    } else if args.dot {
        dot(&p)
    } else {
        let has_dockerfile = super::find_repo_root(&ctx.cwd).is_ok_and(|r| r.join(".quire/Dockerfile").is_file());
        table(&p, has_dockerfile)
    };
    print!("{out}");
    super::done_with(p);
    exit::OK
}

pub fn json_listing(p: &Pipeline) -> String {
    let jobs: Vec<_> = p
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| json!({"id": j.id, "inputs": j.inputs, "position": i + 1, "file": j.file, "line": j.line}))
        .collect();
    let image = p.image.as_ref().map(|i| json!({"name": i.name, "file": i.file, "line": i.line}));
    let v = json!({"image": image, "jobs": jobs});
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

fn dot(p: &Pipeline) -> String {
    let mut s = String::from("digraph pipeline {\n  rankdir=LR;\n");
    let quote = |x: &str| format!("\"{}\"", x.replace('\\', "\\\\").replace('"', "\\\""));
    let mut sources: Vec<&str> =
        p.jobs.iter().flat_map(|j| j.inputs.iter()).filter(|i| i.contains('/')).map(String::as_str).collect();
    sources.sort();
    sources.dedup();
    for src in sources {
        s.push_str(&format!("  {} [shape=box, label={}];\n", quote(src), quote(&format!(":{src}"))));
    }
    for j in &p.jobs {
        s.push_str(&format!("  {};\n", quote(&j.id)));
    }
    for j in &p.jobs {
        for i in &j.inputs {
            s.push_str(&format!("  {} -> {};\n", quote(i), quote(&j.id)));
        }
    }
    s.push_str("}\n");
    s
}

fn table(p: &Pipeline, has_dockerfile: bool) -> String {
    let mut s = String::new();
    match &p.image {
        Some(i) => s.push_str(&format!("image: {} ({}:{})\n", i.name, i.file, i.line)),
        None if has_dockerfile => s.push_str("image: built from .quire/Dockerfile\n"),
        None => s.push_str("image: not declared (docs/ci-fnl.md says how one is chosen)\n"),
    }
    if p.jobs.is_empty() {
        s.push_str("no jobs\n");
        return s;
    }
    let rows: Vec<[String; 4]> = p
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let inputs: Vec<String> = j.inputs.iter().map(|x| format!(":{x}")).collect();
            [format!("{}", i + 1), j.id.clone(), inputs.join(" "), format!("{}:{}", j.file, j.line)]
        })
        .collect();
    let head = ["#", "job", "inputs", "declared"];
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).chain([head[c].len()]).max().unwrap_or(0);
    let w = [width(0), width(1), width(2)];
    let line = |r: [&str; 4]| {
        format!("{:>w0$}  {:<w1$}  {:<w2$}  {}\n", r[0], r[1], r[2], r[3], w0 = w[0], w1 = w[1], w2 = w[2])
    };
    s.push_str(&line(head));
    for r in &rows {
        s.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    s
}
