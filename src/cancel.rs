//! Asking a run, or one job of it, to stop — from any thread (a signal
//! handler, the watcher, the scheduler's `--fail-fast`).
//!
//! Owns: the cancel flag, its reason and status, waiting for it. Must not
//! know about: what stopping means for the engine or for Lua.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::events::RunStatus;

/// Asks a run (or a job) to stop.
#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    reason: Arc<Mutex<(RunStatus, String)>>,
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(false);
        Cancel {
            flag: Arc::new(AtomicBool::new(false)),
            reason: Arc::new(Mutex::new((RunStatus::Canceled, String::new()))),
            tx: Arc::new(tx),
        }
    }
}

impl Cancel {
    /// Stops the run; `status` is `Canceled` or `Superseded`. The first
    /// reason given stays.
    pub fn cancel(&self, status: RunStatus, reason: impl Into<String>) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            if let Ok(mut r) = self.reason.lock() {
                *r = (status, reason.into());
            }
        }
        self.tx.send_replace(true);
    }

    pub fn is_canceled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for the Lua clock to watch between host calls.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    pub fn status_and_reason(&self) -> (RunStatus, String) {
        self.reason.lock().map(|r| r.clone()).unwrap_or((RunStatus::Canceled, "canceled".into()))
    }

    /// Resolves once the run is asked to stop.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// What stops one job's commands: the whole run's cancel, or the job's own
/// (`--fail-fast`, another job's container dying).
#[derive(Clone, Default)]
pub struct Stop {
    pub run: Cancel,
    pub job: Cancel,
}

impl Stop {
    /// Why the job must stop, once it must.
    pub fn reason(&self) -> Option<String> {
        [&self.run, &self.job].into_iter().find(|c| c.is_canceled()).map(|c| c.status_and_reason().1)
    }

    /// Resolves with the reason once either cancel fires.
    pub async fn wait(&self) -> String {
        // The run's reason wins: a job stopped by Ctrl-C says Ctrl-C.
        tokio::select! {
            biased;
            _ = self.run.wait() => self.run.status_and_reason().1,
            _ = self.job.wait() => self.job.status_and_reason().1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_stays_and_a_job_stop_names_its_own() {
        let stop = Stop::default();
        assert_eq!(stop.reason(), None);
        stop.job.cancel(RunStatus::Canceled, "first");
        stop.job.cancel(RunStatus::Superseded, "second");
        assert_eq!(stop.reason().as_deref(), Some("first"));
        assert_eq!(stop.job.status_and_reason().0, RunStatus::Canceled);
        assert!(!stop.run.is_canceled());
    }
}
