//! The job graph: every structural rule of DESIGN.md §2 (ids, inputs,
//! cycles, reachability from `:quire/push`) and the order jobs run in.
//!
//! Owns: [`JobDecl`], validation over declarations, the topological order.
//! Must not know about: Lua (declarations arrive as plain data), Docker.

use std::collections::{HashMap, HashSet};

use super::{ImageDecl, PUSH_SOURCE};
use crate::diagnostic::{Code, Problem};

/// The longest job id: its log directory's name (most file systems allow
/// 255 bytes per name) with room to spare.
pub const MAX_ID_BYTES: usize = 200;

/// A job as written in ci.fnl, without its run-fn: what the graph rules
/// look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDecl {
    pub id: String,
    pub inputs: Vec<String>,
    /// Where the `ci.job` call was written (the file as named to the user).
    pub file: String,
    pub line: usize,
}

/// Every structural rule of DESIGN.md §2, over the jobs in declaration
/// order. Reports every problem, not only the first.
pub fn validate(jobs: &[JobDecl], images: &[ImageDecl]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for extra in images.iter().skip(1) {
        let first = &images[0];
        problems.push(
            Problem::new(
                Code::ImageTwice,
                format!(
                    "ci.image is declared twice: {:?} here, {:?} at {}:{}",
                    extra.name, first.name, first.file, first.line
                ),
            )
            .at(&extra.file, extra.line)
            .label("second ci.image")
            .help("a pipeline has one image; keep one (ci.image ...) call"),
        );
    }
    let ids: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    // Suggestions cost an edit distance against every id; a generated ci.fnl
    // with thousands of typos must not turn validation into a hang.
    let mut suggestions_left = 100usize;
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for (idx, JobDecl { id, inputs, file, line }) in jobs.iter().enumerate() {
        if id.is_empty() {
            problems.push(
                Problem::new(Code::JobId, "a job id is empty".to_string())
                    .at(file, *line)
                    .label("empty id")
                    .help("give the job a name, e.g. :test"),
            );
        }
        if id.contains('/') {
            problems.push(
                Problem::new(Code::JobId, format!("job id :{id} contains '/'"))
                    .at(file, *line)
                    .label("'/' is reserved for sources like :quire/push")
                    .help(format!("rename it, e.g. :{}", id.replace('/', "-"))),
            );
        }
        // A job's record is the directory jobs/<id>/: an id must be a name
        // one directory can have.
        if id == "." || id == ".." {
            problems.push(
                Problem::new(Code::JobId, format!("job id :{id} cannot name the job's log directory"))
                    .at(file, *line)
                    .label("'.' and '..' are reserved")
                    .help("give the job a name, e.g. :test"),
            );
        }
        if id.len() > MAX_ID_BYTES || id.contains('\0') {
            problems.push(
                Problem::new(
                    Code::JobId,
                    format!(
                        "job id :{}… is {} bytes long; at most {MAX_ID_BYTES}",
                        id.chars().take(20).collect::<String>(),
                        id.len()
                    ),
                )
                .at(file, *line)
                .label("too long for the job's log directory")
                .help("use a short name; put the detail in a comment"),
            );
        }
        if let Some(&first) = first_at.get(id.as_str()) {
            let JobDecl { file: ffile, line: fline, .. } = &jobs[first];
            problems.push(
                Problem::new(Code::DuplicateJob, format!("job :{id} is declared twice (first at {ffile}:{fline})"))
                    .at(file, *line)
                    .label("second declaration")
                    .help("job ids must be unique; rename one of them"),
            );
        } else {
            first_at.insert(id, idx);
        }
        if inputs.is_empty() {
            problems.push(
                Problem::new(Code::EmptyInputs, format!("job :{id} has no inputs"))
                    .at(file, *line)
                    .label("empty inputs")
                    .help("list what triggers it, e.g. [:quire/push], or the jobs it needs"),
            );
        }
        for input in inputs {
            if input == PUSH_SOURCE || ids.contains(input.as_str()) {
                continue;
            }
            let msg = if input.contains('/') {
                format!("job :{id} has unknown source :{input} (the only source is :quire/push)")
            } else {
                format!("job :{id} has unknown input :{input}: no job has that id")
            };
            let mut p = Problem::new(Code::UnknownInput, msg).at(file, *line).label(format!("unknown :{input}"));
            let near = if suggestions_left > 0 && ids.len() <= 10_000 {
                suggestions_left -= 1;
                closest(input, jobs.iter().map(|j| j.id.as_str()).chain([PUSH_SOURCE]))
            } else {
                None
            };
            p = match near {
                Some(near) => p.help(format!("did you mean :{near}?")),
                None => p.help("inputs are job ids declared with ci.job, or :quire/push"),
            };
            problems.push(p);
        }
    }
    problems.extend(structural(jobs));
    problems
}

/// Each job's inputs as indices of jobs (the first job with that id), in
/// the order written, without repeats; sources and unknown names left out.
fn input_edges(jobs: &[JobDecl]) -> Vec<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        index.entry(j.id.as_str()).or_insert(i);
    }
    jobs.iter()
        .map(|JobDecl { inputs, .. }| {
            let mut seen = HashSet::new();
            inputs.iter().filter_map(|inp| index.get(inp.as_str()).copied()).filter(|&j| seen.insert(j)).collect()
        })
        .collect()
}

/// Cycles and jobs unreachable from :quire/push. Linear in jobs + inputs,
/// and iterative: a generated pipeline of any size (or a ten-thousand-job
/// chain) must neither hang validation nor overflow the Rust stack.
fn structural(jobs: &[JobDecl]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let edges = input_edges(jobs);
    // Cycles: depth-first search with colours; each back edge is one cycle.
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut colour = vec![WHITE; jobs.len()];
    let mut in_cycle = vec![false; jobs.len()];
    for root in 0..jobs.len() {
        if colour[root] != WHITE {
            continue;
        }
        // (job, next input to look at); the stack is the current path.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = GREY;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let Some(&j) = edges[i].get(*next) else {
                colour[i] = BLACK;
                stack.pop();
                continue;
            };
            *next += 1;
            if colour[j] == GREY {
                let from = stack.iter().position(|&(k, _)| k == j).unwrap_or(0);
                let cycle: Vec<usize> = stack[from..].iter().map(|&(k, _)| k).collect();
                for &k in &cycle {
                    in_cycle[k] = true;
                }
                // Written in dependency order: a needs b needs ... needs a.
                let mut names: Vec<String> = cycle.iter().map(|&k| format!(":{}", jobs[k].id)).collect();
                names.push(format!(":{}", jobs[j].id));
                let JobDecl { file, line, .. } = &jobs[j];
                problems.push(
                    Problem::new(Code::Cycle, format!("jobs form a cycle: {}", names.join(" → ")))
                        .at(file, *line)
                        .label(format!(":{} depends on itself through this cycle", jobs[j].id))
                        .help(
                            "a job cannot need itself, directly or through other jobs; remove one input of the cycle",
                        ),
                );
            } else if colour[j] == WHITE {
                colour[j] = GREY;
                stack.push((j, 0));
            }
        }
    }
    // Reachability from the source: breadth-first along "is an input of".
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, ins) in edges.iter().enumerate() {
        for &j in ins {
            dependents[j].push(i);
        }
    }
    let mut reachable = vec![false; jobs.len()];
    let mut queue: std::collections::VecDeque<usize> =
        (0..jobs.len()).filter(|&i| jobs[i].inputs.iter().any(|inp| inp == PUSH_SOURCE)).collect();
    for &i in &queue {
        reachable[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for &d in &dependents[i] {
            if !reachable[d] {
                reachable[d] = true;
                queue.push_back(d);
            }
        }
    }
    // A job with an unknown input is already reported for it, and so, in
    // effect, is every job downstream of it: a typo in one input made them
    // all unreachable, and fixing it makes them reachable again. Calling
    // them unreachable too would bury the cause under its knock-ons. (The
    // jobs a cycle strands are still named: no single input explains them.)
    let ids: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let known = |inp: &String| inp == PUSH_SOURCE || ids.contains(inp.as_str());
    let mut explained: Vec<bool> = (0..jobs.len())
        .map(|i| in_cycle[i] || jobs[i].inputs.is_empty() || !jobs[i].inputs.iter().all(known))
        .collect();
    // Only an unknown input's dependents inherit the explanation.
    let mut queue: std::collections::VecDeque<usize> =
        (0..jobs.len()).filter(|&i| !jobs[i].inputs.iter().all(known)).collect();
    while let Some(i) = queue.pop_front() {
        for &d in &dependents[i] {
            if !explained[d] {
                explained[d] = true;
                queue.push_back(d);
            }
        }
    }
    let orphans: Vec<usize> = (0..jobs.len()).filter(|&i| !reachable[i] && !explained[i]).collect();
    for &i in &orphans {
        let JobDecl { id, inputs, file, line } = &jobs[i];
        let listed: Vec<String> = inputs.iter().map(|s| format!(":{s}")).collect();
        problems.push(
            Problem::new(
                Code::Unreachable,
                format!("job :{id} is not reachable from :quire/push (its inputs: [{}])", listed.join(" ")),
            )
            .at(file, *line)
            .label("never triggered")
            .help("every job must depend on :quire/push, directly or through other jobs"),
        );
    }
    problems
}

/// Kahn's algorithm; among ready jobs the earliest declared goes first
/// (a min-heap of declaration indices keeps that O((jobs + inputs) log jobs)).
pub fn topological_order(jobs: &[JobDecl]) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let edges = input_edges(jobs);
    let mut pending: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, ins) in edges.iter().enumerate() {
        for &j in ins {
            dependents[j].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..jobs.len()).filter(|&i| pending[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(jobs.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(next);
        for &d in &dependents[next] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order
}

/// The closest name by edit distance, if close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, inputs: &[&str], line: usize) -> JobDecl {
        JobDecl {
            id: id.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            file: ".quire/ci.fnl".into(),
            line,
        }
    }

    fn codes(problems: &[Problem]) -> Vec<Code> {
        problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_chain_from_the_source_is_valid_and_runs_in_dependency_order() {
        let jobs = [job("deploy", &["test"], 3), job("build", &["quire/push"], 1), job("test", &["build"], 2)];
        assert_eq!(validate(&jobs, &[]), vec![]);
        assert_eq!(topological_order(&jobs), vec![1, 2, 0]);
    }

    #[test]
    fn ids_that_cannot_name_a_log_directory_are_refused() {
        let long = "x".repeat(300);
        for id in [".", "..", long.as_str()] {
            let problems = validate(&[job(id, &["quire/push"], 1)], &[]);
            assert_eq!(codes(&problems), vec![Code::JobId], "{id:?}");
        }
        assert_eq!(validate(&[job(&"y".repeat(MAX_ID_BYTES), &["quire/push"], 1)], &[]), vec![]);
    }

    #[test]
    fn ready_jobs_run_in_declaration_order() {
        let jobs = [job("b", &["quire/push"], 1), job("a", &["quire/push"], 2), job("c", &["a", "b"], 3)];
        assert_eq!(topological_order(&jobs), vec![0, 1, 2]);
    }

    #[test]
    fn a_cycle_is_named_in_dependency_order_and_not_also_unreachable() {
        let jobs = [job("a", &["c"], 1), job("b", &["a"], 2), job("c", &["b"], 3)];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::Cycle]);
        assert_eq!(problems[0].message, "jobs form a cycle: :a → :c → :b → :a");
        assert_eq!(problems[0].line(), Some(1));
    }

    #[test]
    fn a_job_needing_itself_is_a_cycle() {
        let jobs = [job("a", &["quire/push", "a"], 4)];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::Cycle]);
        assert_eq!(problems[0].message, "jobs form a cycle: :a → :a");
    }

    #[test]
    fn a_job_nothing_triggers_is_unreachable() {
        let jobs = [job("a", &["quire/push"], 1), job("b", &["c"], 2), job("c", &["b"], 3), job("d", &["b"], 4)];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::Cycle, Code::Unreachable]);
        assert_eq!(problems[1].message, "job :d is not reachable from :quire/push (its inputs: [:b])");
    }

    #[test]
    fn an_unknown_input_is_reported_alone_not_again_as_unreachable_downstream() {
        let jobs = [
            job("build", &["quire/push"], 1),
            job("test", &["biuld"], 2),
            job("deploy", &["test"], 3),
            job("notify", &["deploy"], 4),
        ];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::UnknownInput], "{problems:#?}");
        // Downstream of a typo and of a cycle: only the cycle's strays are named.
        let jobs = [
            job("a", &["quire/push"], 1),
            job("b", &["c"], 2),
            job("c", &["b"], 3),
            job("lone", &["b"], 4),
            job("t", &["typo"], 5),
            job("u", &["t"], 6),
        ];
        assert_eq!(codes(&validate(&jobs, &[])), vec![Code::UnknownInput, Code::Cycle, Code::Unreachable]);
    }

    #[test]
    fn an_unknown_input_suggests_the_closest_id() {
        let jobs = [job("build", &["quire/push"], 1), job("test", &["biuld"], 2)];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::UnknownInput]);
        assert_eq!(problems[0].message, "job :test has unknown input :biuld: no job has that id");
        assert_eq!(problems[0].help.as_deref(), Some("did you mean :build?"));
        let jobs = [job("test", &["quire/pull"], 1)];
        let problems = validate(&jobs, &[]);
        assert_eq!(problems[0].message, "job :test has unknown source :quire/pull (the only source is :quire/push)");
        assert_eq!(problems[0].help.as_deref(), Some("did you mean :quire/push?"));
    }

    #[test]
    fn ids_must_be_unique_non_empty_and_slash_free() {
        let jobs = [
            job("a", &["quire/push"], 1),
            job("a", &["quire/push"], 2),
            job("", &["quire/push"], 3),
            job("x/y", &["quire/push"], 4),
        ];
        let problems = validate(&jobs, &[]);
        assert_eq!(codes(&problems), vec![Code::DuplicateJob, Code::JobId, Code::JobId]);
        assert_eq!(problems[0].message, "job :a is declared twice (first at .quire/ci.fnl:1)");
        assert_eq!(problems[0].line(), Some(2));
        assert_eq!(problems[2].help.as_deref(), Some("rename it, e.g. :x-y"));
    }

    #[test]
    fn empty_inputs_are_reported_once() {
        let problems = validate(&[job("a", &[], 1)], &[]);
        assert_eq!(codes(&problems), vec![Code::EmptyInputs]);
    }

    #[test]
    fn a_second_image_is_reported_where_it_is_written() {
        let image = |name: &str, line| ImageDecl { name: name.into(), file: ".quire/ci.fnl".into(), line };
        let problems = validate(&[job("a", &["quire/push"], 1)], &[image("alpine", 1), image("debian", 5)]);
        assert_eq!(codes(&problems), vec![Code::ImageTwice]);
        assert_eq!(problems[0].line(), Some(5));
    }

    #[test]
    fn a_ten_thousand_job_chain_neither_overflows_nor_misorders() {
        let mut jobs = vec![job("j0", &["quire/push"], 1)];
        for i in 1..10_000 {
            jobs.push(job(&format!("j{i}"), &[&format!("j{}", i - 1)], i + 1));
        }
        jobs.reverse();
        assert_eq!(validate(&jobs, &[]), vec![]);
        let order = topological_order(&jobs);
        assert_eq!(order.first(), Some(&9_999));
        assert_eq!(order.last(), Some(&0));
    }

    #[test]
    fn repeated_inputs_count_once() {
        let jobs = [job("a", &["quire/push"], 1), job("b", &["a", "a"], 2)];
        assert_eq!(validate(&jobs, &[]), vec![]);
        assert_eq!(topological_order(&jobs), vec![0, 1]);
    }
}
