//! Reading what a run left on disk (state.json, meta.json, log.jsonl per
//! level), and the clean-run invariants every recorded run is checked for.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{schema, wait_no_container_of_run};

/// Run directory names in a runs dir, sorted (oldest first).
pub fn run_ids(runs: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs)
        .map(|rd| {
            rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

pub fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    run_ids(runs).into_iter().map(|id| runs.join(id)).collect()
}

/// The run directory that is in `runs` now and was not in `before`.
pub fn new_run_dir(runs: &Path, before: &[String]) -> Option<PathBuf> {
    run_ids(runs).into_iter().rev().find(|id| !before.contains(id)).map(|id| runs.join(id))
}

/// One run's record directory.
#[derive(Debug, Clone)]
pub struct Record {
    dir: PathBuf,
}

impl Record {
    pub fn new(dir: PathBuf) -> Record {
        Record { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn run_id(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).expect("a run id")
    }

    pub fn state(&self) -> Value {
        read_json(&self.dir.join("state.json"))
    }

    pub fn meta(&self) -> Value {
        read_json(&self.dir.join("meta.json"))
    }

    /// The run's status in state.json.
    pub fn run_status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// A job's status in state.json ("" if the job is not there).
    pub fn job_status(&self, job: &str) -> String {
        self.job_state(job)["status"].as_str().unwrap_or("").to_string()
    }

    pub fn job_state(&self, job: &str) -> Value {
        self.state()["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == job).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn run_log(&self) -> Vec<Value> {
        read_jsonl_lenient(&self.dir.join("log.jsonl"))
    }

    /// A job's own log; empty when the job wrote none (skipped early).
    pub fn job_log(&self, job: &str) -> Vec<Value> {
        read_jsonl_lenient(&self.dir.join("jobs").join(job).join("log.jsonl"))
    }

    /// True once an event of `kind` (of `job`, when given) is recorded.
    pub fn has_event(&self, kind: &str, job: Option<&str>) -> bool {
        let log = match job {
            Some(j) => {
                let mut l = self.job_log(j);
                l.extend(self.run_log().into_iter().filter(|e| e["job"] == j));
                l
            }
            None => self.run_log(),
        };
        log.iter().any(|e| e["kind"] == kind)
    }

    /// True once the record is complete (run-end is its last line).
    pub fn finished(&self) -> bool {
        self.run_log().last().is_some_and(|e| e["kind"] == "run-end")
    }

    /// The run-level `job-end` event of `job`.
    pub fn job_end(&self, job: &str) -> Value {
        self.run_log()
            .into_iter()
            .find(|e| e["kind"] == "job-end" && e["job"] == job)
            .unwrap_or_else(|| panic!("no job-end for {job} in {}", self.dir.display()))
    }

    /// Bytes a job's `sh` number `n` wrote to `stream`, decoded from the log.
    pub fn output(&self, job: &str, n: u64, stream: &str) -> Vec<u8> {
        use base64::Engine as _;
        let mut bytes = Vec::new();
        for e in self.job_log(job) {
            if e["kind"] == stream && e["n"] == n {
                let data = e["data"].as_str().unwrap_or("");
                if e["encoding"] == "base64" {
                    bytes.extend(base64::engine::general_purpose::STANDARD.decode(data).expect("valid base64"));
                } else {
                    bytes.extend_from_slice(data.as_bytes());
                }
            }
        }
        bytes
    }

    /// Everything a job printed to stdout, as text.
    pub fn stdout_of(&self, job: &str) -> String {
        self.job_log(job).iter().filter(|e| e["kind"] == "stdout").filter_map(|e| e["data"].as_str()).collect()
    }

    /// Every file under the run directory, concatenated (for leak checks).
    pub fn all_record_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, into: &mut Vec<u8>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, into);
                } else if let Ok(b) = std::fs::read(&p) {
                    into.extend(b);
                }
            }
        }
        let mut all = Vec::new();
        walk(&self.dir, &mut all);
        all
    }

    /// Invariant: every line of every log of the run is valid against the
    /// schema, and the run log is not empty.
    pub fn assert_valid(&self) {
        let lines = schema::assert_run_dir_valid(&self.dir);
        assert!(lines > 0, "empty run record in {}", self.dir.display());
    }

    /// Invariant: no container of this run is left on the engine — gone
    /// shortly after the run, as its removal goes on after quire-ci exits.
    pub fn assert_no_container_left(&self) {
        wait_no_container_of_run(&self.run_id());
    }

    /// Both invariants (for runs the harness did not start itself, such as
    /// those of `watch` or a hook).
    pub fn assert_clean(&self) -> &Self {
        self.assert_valid();
        self.assert_no_container_left();
        self
    }
}

pub fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// Every line of a log.jsonl, each required to be complete JSON.
pub fn read_jsonl(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: torn or bad line ({e}): {l}", p.display(), i + 1))
        })
        .collect()
}

/// The complete lines of a log that may still be being written (a missing
/// file is empty; a torn last line is left out).
pub fn read_jsonl_lenient(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Kinds of the events in a log, in order.
pub fn kinds(log: &[Value]) -> Vec<String> {
    log.iter().map(|e| e["kind"].as_str().unwrap_or("").to_string()).collect()
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
