//! How the run's phases read (`phase` events: snapshot, upload, teardown,
//! ...): the live view's row for a step that lasts (`uploading the snapshot
//! · 120.4 MiB · 5021 files · 80.1 MiB/s`) and `-v`'s line for each step
//! that ended (`phase upload 1.5s · 120.4 MiB · 5021 files`).
//!
//! Owns: the phases' words and what is remembered of each (when it started,
//! how far it got) to say them. Must not know about: when they are drawn
//! (mod.rs, live.rs decide).

use std::collections::HashMap;

use super::format::{human_bytes, human_ms};

/// The words of a running phase, on its live row.
pub fn label(phase: &str) -> String {
    match phase {
        "snapshot" => "taking the snapshot",
        "compile" => "compiling ci.fnl",
        "evaluate" => "evaluating ci.fnl",
        "engine" => "waiting for the engine",
        "image" => "checking the image",
        "create" => "creating the container",
        "start" => "starting the container",
        "upload" => "uploading the snapshot into /work",
        "artifacts" => "copying artifacts out",
        // The container is stopped and its removal handed to a remover in
        // the background (docs/running.md); removed here only without one.
        "teardown" | "stop" => "stopping the container",
        "remove" => "removing the container",
        "record" => "recording the run",
        other => return other.to_string(),
    }
    .to_string()
}

/// Phases that get no row of their own: the jobs have theirs.
pub fn has_row(phase: &str) -> bool {
    phase != "jobs"
}

/// What is known of one phase so far.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// When it started (event time, ms since the epoch), if `start` came.
    started: Option<i64>,
    /// The first progress (time, bytes) when `start` did not come: the
    /// rate is measured from there.
    first: Option<(i64, u64)>,
    done: Option<u64>,
    total: Option<u64>,
    files: Option<u64>,
}

/// The phases under way, by name.
#[derive(Default)]
pub struct Phases {
    seen: HashMap<String, Seen>,
}

impl Phases {
    pub fn start(&mut self, phase: &str, ts: &str) {
        self.seen.insert(phase.to_string(), Seen { started: ts_ms(ts), ..Seen::default() });
    }

    /// Takes a progress event; returns the live row's text.
    pub fn progress(
        &mut self,
        phase: &str,
        ts: &str,
        done: Option<u64>,
        total: Option<u64>,
        files: Option<u64>,
    ) -> String {
        let s = self.seen.entry(phase.to_string()).or_default();
        let now = ts_ms(ts);
        if s.started.is_none() && s.first.is_none() {
            s.first = now.map(|t| (t, done.unwrap_or(0)));
        }
        s.done = done.or(s.done);
        s.total = total.or(s.total);
        s.files = files.or(s.files);
        let mut text = label(phase);
        let counts = counts(s.done, s.total, s.files);
        if !counts.is_empty() {
            text.push_str(&format!(" · {counts}"));
        }
        let base = s.started.map(|t| (t, 0)).or(s.first);
        if let (Some((t0, d0)), Some(t), Some(d)) = (base, now, s.done) {
            // Under a fifth of a second the rate is noise.
            if t - t0 >= 200 && d >= d0 {
                let per_s = (d - d0) as f64 * 1000.0 / (t - t0) as f64;
                text.push_str(&format!(" · {}/s", human_bytes(per_s as u64)));
            }
        }
        text
    }

    /// Takes the end; returns `-v`'s line for it (without style).
    pub fn end(
        &mut self,
        phase: &str,
        duration_ms: Option<u64>,
        done: Option<u64>,
        total: Option<u64>,
        files: Option<u64>,
    ) -> String {
        let s = self.seen.remove(phase).unwrap_or_default();
        let mut line = format!("phase {phase}");
        if let Some(ms) = duration_ms {
            line.push_str(&format!(" {}", human_ms(ms)));
        }
        let counts = counts(done.or(s.done), total.or(s.total), files.or(s.files));
        if !counts.is_empty() {
            line.push_str(&format!(" · {counts}"));
        }
        line
    }
}

/// `120.4 MiB / 400.0 MiB · 5021 files`, as much of it as is known.
fn counts(done: Option<u64>, total: Option<u64>, files: Option<u64>) -> String {
    let mut parts = Vec::new();
    match (done, total) {
        (Some(d), Some(t)) => parts.push(format!("{} / {}", human_bytes(d), human_bytes(t))),
        (Some(d), None) => parts.push(human_bytes(d)),
        _ => {}
    }
    if let Some(f) = files {
        parts.push(format!("{f} {}", if f == 1 { "file" } else { "files" }));
    }
    parts.join(" · ")
}

/// An event's `ts` as milliseconds since the epoch.
fn ts_ms(ts: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn upload_progress_has_bytes_files_and_a_rate_from_the_event_times() {
        let mut p = Phases::default();
        p.start("upload", "2026-12-01T10:00:00.000Z");
        let row = p.progress("upload", "2026-12-01T10:00:00.100Z", Some(MIB), None, Some(3));
        assert_eq!(row, "uploading the snapshot into /work · 1.0 MiB · 3 files", "no rate under 200 ms");
        let row = p.progress("upload", "2026-12-01T10:00:02.000Z", Some(100 * MIB), None, Some(5021));
        assert_eq!(row, "uploading the snapshot into /work · 100.0 MiB · 5021 files · 50.0 MiB/s");
        let line = p.end("upload", Some(2100), None, None, None);
        assert_eq!(line, "phase upload 2.1s · 100.0 MiB · 5021 files", "the last progress, at the end");
    }

    #[test]
    fn without_a_start_the_rate_counts_from_the_first_progress() {
        let mut p = Phases::default();
        p.progress("upload", "2026-12-01T10:00:00.100Z", Some(10 * MIB), Some(40 * MIB), Some(1));
        let row = p.progress("upload", "2026-12-01T10:00:01.100Z", Some(30 * MIB), None, Some(1));
        assert_eq!(row, "uploading the snapshot into /work · 30.0 MiB / 40.0 MiB · 1 file · 20.0 MiB/s");
    }

    #[test]
    fn a_phase_without_counts_is_its_name_and_time() {
        let mut p = Phases::default();
        p.start("teardown", "2026-12-01T10:00:00.000Z");
        assert_eq!(p.end("teardown", Some(40), None, None, None), "phase teardown 40ms");
        assert_eq!(label("teardown"), "stopping the container");
        assert_eq!(label("a-new-one"), "a-new-one");
    }
}
