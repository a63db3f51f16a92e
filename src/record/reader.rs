//! Reading a run directory back into the one ordered event stream the live
//! run produced, for `quire-ci logs` and tests.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::runs::read_json;
use super::{RecordError, Result, RunMeta, RunState, JOBS_DIR, LOG_FILE, META_FILE, STATE_FILE};
use crate::events::{Event, EventKind};

/// A whole recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    pub meta: RunMeta,
    pub state: RunState,
    /// Every event in live order; job-level events carry `job`.
    pub events: Vec<Event>,
}

/// Read the run in `dir`. Events come back in the order the live run
/// produced them: merged by `seq` when every line has one (jobs that ran at
/// once interleave as they were shown). A record written before `seq`
/// existed is spliced instead: the run-level log, with each job's own log
/// right after that job's `job-start` (jobs ran one at a time then). Job
/// logs with no `job-start` (a run that crashed oddly) follow at the end, in
/// job id order, so nothing recorded is hidden.
pub fn read_run(dir: &Path) -> Result<RecordedRun> {
    let meta: RunMeta = read_json(&dir.join(META_FILE))?;
    let state: RunState = read_json(&dir.join(STATE_FILE))?;
    let run_events = read_log(&dir.join(LOG_FILE))?;

    let mut job_events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let jobs_dir = dir.join(JOBS_DIR);
    match std::fs::read_dir(&jobs_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| RecordError::io("list", &jobs_dir, e))?;
                let log = entry.path().join(LOG_FILE);
                let Ok(job) = entry.file_name().into_string() else {
                    continue;
                };
                if !log.is_file() {
                    continue;
                }
                let mut events = read_log(&log)?;
                for ev in &mut events {
                    ev.job = Some(job.clone());
                }
                job_events.insert(job, events);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RecordError::io("list", jobs_dir, e)),
    }

    let events = if run_events.iter().chain(job_events.values().flatten()).all(|e| e.seq.is_some()) {
        merge_by_seq(run_events, job_events)
    } else {
        splice(run_events, job_events)
    };
    Ok(RecordedRun { meta, state, events })
}

/// Every file's events in one stream, in `seq` order. Each file is already
/// in order (append-only), so a stable sort of the concatenation keeps a
/// file's own order should two lines ever share a number.
fn merge_by_seq(run_events: Vec<Event>, job_events: BTreeMap<String, Vec<Event>>) -> Vec<Event> {
    let mut events: Vec<Event> = run_events.into_iter().chain(job_events.into_values().flatten()).collect();
    events.sort_by_key(|e| e.seq);
    events
}

/// The order of a record without `seq`: each job's file after its `job-start`.
fn splice(run_events: Vec<Event>, mut job_events: BTreeMap<String, Vec<Event>>) -> Vec<Event> {
    let mut events = Vec::new();
    for ev in run_events {
        let splice = match (&ev.kind, &ev.job) {
            (EventKind::JobStart {}, Some(job)) => job_events.remove(job),
            _ => None,
        };
        events.push(ev);
        events.extend(splice.into_iter().flatten());
    }
    events.extend(job_events.into_values().flatten());
    events
}

/// Parse one log.jsonl file. A last line that is cut off (no newline) and
/// does not parse is a write the crash interrupted: dropped. Any other bad
/// line is an error naming file and line. Lines of a kind this build does
/// not know are skipped (written by a newer quire-ci or the server).
pub fn read_log(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| RecordError::io("read", path, e))?;
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // split() yields one empty piece after a final newline.
    let count = if ends_with_newline { lines.len() - 1 } else { lines.len() };

    let mut events = Vec::new();
    for (i, line) in lines.iter().take(count).enumerate() {
        let torn_allowed = i + 1 == count && !ends_with_newline;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |message: String| RecordError::BadLine { path: path.to_owned(), line: i + 1, message };
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) if torn_allowed => break,
            Err(e) => return Err(bad(format!("not a JSON object: {e}"))),
        };
        if let Some(ev) = parse_event(value).map_err(bad)? {
            events.push(ev);
        }
    }
    Ok(events)
}

fn parse_event(value: Value) -> std::result::Result<Option<Event>, String> {
    let kind = match value.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err("`kind` is not a string".into()),
        None => return Err("no `kind` key".into()),
    };
    if !EventKind::KINDS.contains(&kind.as_str()) {
        return Ok(None);
    }
    serde_json::from_value::<Event>(value).map(Some).map_err(|e| format!("bad {kind} event: {e}"))
}
