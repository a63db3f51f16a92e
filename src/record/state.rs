//! `state.json`: the run's current status, folded from the event stream.
//! The executor never sets state by hand; it feeds events to
//! `RunState::apply`, so the state file can never disagree with the log.

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind, Outcome, RunStatus};

/// The whole of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunState {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: String,
    /// `ts` of the last event that changed this state.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The run-level error (run-end's `error`, or why the container died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// In execution order (a list, not a map, so the order survives).
    #[serde(default)]
    pub jobs: Vec<JobState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobState {
    pub id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it was skipped, failed or canceled, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The file `line` is in (`.quire/ci.fnl` or a module in `.quire/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Line of the failure, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A job's place in the run. `canceled` is for a job the run ended around
/// (canceled, superseded, container died) before it could finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Canceled,
}

impl From<Outcome> for JobStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => JobStatus::Succeeded,
            Outcome::Failed => JobStatus::Failed,
            Outcome::Skipped => JobStatus::Skipped,
            Outcome::Canceled => JobStatus::Canceled,
        }
    }
}

impl RunState {
    /// The state of a run that has just begun: `running`, no jobs known yet.
    pub fn new(run_id: impl Into<String>, started_at: impl Into<String>) -> Self {
        let started_at = started_at.into();
        RunState {
            run_id: run_id.into(),
            status: RunStatus::Running,
            updated_at: started_at.clone(),
            started_at,
            ended_at: None,
            duration_ms: None,
            error: None,
            image: None,
            container_id: None,
            jobs: Vec::new(),
        }
    }

    /// Fold one event into the state. Returns true when the state changed
    /// in a way worth writing to disk: output chunks and sh events do not,
    /// so a chatty job does not cost a file replace per chunk.
    pub fn apply(&mut self, ev: &Event) -> bool {
        match &ev.kind {
            EventKind::ShStart { .. }
            | EventKind::ShExit { .. }
            | EventKind::Stdout { .. }
            | EventKind::Stderr { .. }
            | EventKind::Print { .. }
            | EventKind::Image { .. }
            | EventKind::Artifact { .. }
            | EventKind::Notice { .. }
            | EventKind::Problem { .. }
            | EventKind::CacheHit { .. }
            | EventKind::ImageProgress { .. }
            | EventKind::Phase { .. } => return false,
            EventKind::RunStart { jobs, .. } => {
                for id in jobs {
                    self.job_mut(id);
                }
            }
            EventKind::ContainerStart { image, container_id } => {
                self.image = Some(image.clone());
                self.container_id = Some(container_id.clone());
            }
            EventKind::ContainerDied { reason } => {
                if self.error.is_none() {
                    self.error = Some(format!("container died: {reason}"));
                }
            }
            EventKind::ContainerEnd { status } => {
                // The server's terminal event; run-end (ours) may follow with
                // the duration, but a reader of a server-shaped log has only this.
                self.finish(*status, &ev.ts);
            }
            EventKind::JobStart {} => {
                let Some(id) = &ev.job else { return false };
                let job = self.job_mut(id);
                job.status = JobStatus::Running;
                job.started_at = Some(ev.ts.clone());
            }
            EventKind::JobEnd { outcome, duration_ms, reason, file, line, .. } => {
                let Some(id) = &ev.job else { return false };
                let job = self.job_mut(id);
                job.status = (*outcome).into();
                job.ended_at = Some(ev.ts.clone());
                job.duration_ms = Some(*duration_ms);
                job.reason = reason.clone();
                job.file = file.clone();
                job.line = *line;
            }
            EventKind::RunEnd { status, duration_ms, error, .. } => {
                self.finish(*status, &ev.ts);
                self.duration_ms = Some(*duration_ms);
                if error.is_some() {
                    self.error = error.clone();
                }
            }
        }
        self.updated_at = ev.ts.clone();
        true
    }

    fn finish(&mut self, status: RunStatus, ts: &str) {
        self.status = status;
        self.ended_at = Some(ts.to_owned());
        if status == RunStatus::Running {
            return;
        }
        // A finished run has no running or pending jobs: whatever had not
        // finished was cut off by the run ending.
        let word = status_word(status);
        for job in &mut self.jobs {
            match job.status {
                JobStatus::Running => {
                    job.status = JobStatus::Canceled;
                    job.ended_at = Some(ts.to_owned());
                    job.reason.get_or_insert_with(|| format!("run {word} while it ran"));
                }
                JobStatus::Pending => {
                    job.status = JobStatus::Canceled;
                    job.reason.get_or_insert_with(|| format!("run {word} before it started"));
                }
                _ => {}
            }
        }
    }

    fn job_mut(&mut self, id: &str) -> &mut JobState {
        let i = match self.jobs.iter().position(|j| j.id == id) {
            Some(i) => i,
            None => {
                self.jobs.push(JobState {
                    id: id.to_owned(),
                    status: JobStatus::Pending,
                    started_at: None,
                    ended_at: None,
                    duration_ms: None,
                    reason: None,
                    file: None,
                    line: None,
                });
                self.jobs.len() - 1
            }
        };
        &mut self.jobs[i]
    }

    pub fn job(&self, id: &str) -> Option<&JobState> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Error => "errored",
        RunStatus::Canceled => "was canceled",
        RunStatus::Superseded => "was superseded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: &str, job: Option<&str>, kind: EventKind) -> Event {
        Event { ts: ts.into(), seq: None, job: job.map(Into::into), kind }
    }

    #[test]
    fn state_follows_the_event_stream() {
        let mut s = RunState::new("r", "t0");
        assert!(s.apply(&ev(
            "t1",
            None,
            EventKind::RunStart {
                run_id: "r".into(),
                git_ref: "refs/heads/main".into(),
                sha: None,
                tree: "abc".into(),
                dirty: true,
                jobs: vec!["a".into(), "b".into(), "c".into()],
                dir: None,
            }
        )));
        assert_eq!(s.jobs.len(), 3);
        assert!(s.jobs.iter().all(|j| j.status == JobStatus::Pending));
        s.apply(&ev("t2", Some("a"), EventKind::JobStart {}));
        assert_eq!(s.job("a").map(|j| j.status), Some(JobStatus::Running));
        assert!(!s.apply(&ev("t3", Some("a"), EventKind::Stdout { n: 1, data: "x".into(), encoding: None })));
        s.apply(&ev(
            "t4",
            Some("a"),
            EventKind::JobEnd {
                outcome: Outcome::Failed,
                duration_ms: 5,
                reason: Some("exit 1".into()),
                file: Some(".quire/ci.fnl".into()),
                line: Some(7),
                outputs: None,
            },
        ));
        s.apply(&ev(
            "t5",
            Some("b"),
            EventKind::JobEnd {
                outcome: Outcome::Skipped,
                duration_ms: 0,
                reason: Some("input a failed".into()),
                file: None,
                line: None,
                outputs: None,
            },
        ));
        s.apply(&ev("t6", Some("c"), EventKind::JobStart {}));
        s.apply(&ev(
            "t7",
            None,
            EventKind::RunEnd { status: RunStatus::Canceled, duration_ms: 70, error: None, code: None, help: None },
        ));
        assert_eq!(s.status, RunStatus::Canceled);
        assert_eq!(s.ended_at.as_deref(), Some("t7"));
        assert_eq!(s.duration_ms, Some(70));
        let a = s.job("a").cloned();
        assert_eq!(a.as_ref().map(|j| j.status), Some(JobStatus::Failed));
        assert_eq!(a.as_ref().and_then(|j| j.line), Some(7));
        assert_eq!(s.job("b").map(|j| j.status), Some(JobStatus::Skipped));
        assert_eq!(s.job("c").map(|j| j.status), Some(JobStatus::Canceled));
        assert_eq!(s.updated_at, "t7");
    }
}
