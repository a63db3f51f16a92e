//! How a run ended, for the command layer: the run's id and status, and
//! the error a user must read when it never got going or had to stop.
//!
//! Owns: `RunOutcome`, `RunError` and its diagnostics (code, message, help).
//! Must not know about: exit codes (the command layer maps them in one
//! place) or how errors are printed.

use std::fmt;
use std::path::PathBuf;

use crate::events::RunStatus;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's id (for a cache hit: the green run's); None when no record
    /// was made.
    pub run_id: Option<String>,
    pub dir: Option<PathBuf>,
    pub status: RunStatus,
    /// Why the run never got going, or stopped: what the user must read.
    pub error: Option<RunError>,
}

/// A run that could not start or had to stop, for the user.
#[derive(Debug, Clone)]
pub enum RunError {
    /// ci.fnl did not compile or validate (exit 2); every problem is also a
    /// `problem` event when the run has a record.
    Invalid { problems: Vec<crate::diagnostic::Problem>, sources: crate::diagnostic::Sources },
    /// Bad usage (exit 2): unknown job names, a tree that cannot be read.
    Usage(UserError),
    /// The engine, the image, the container, the record (exit 3).
    Infra(UserError),
}

/// An error a user reads, as a miette diagnostic: a stable code, a message
/// naming the thing, and what to do.
#[derive(Debug, Clone)]
pub struct UserError {
    pub code: String,
    pub message: String,
    pub help: Option<String>,
}

impl UserError {
    pub fn new(code: &str, message: impl Into<String>) -> UserError {
        UserError { code: code.to_string(), message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> UserError {
        self.help = Some(help.into());
        self
    }

    /// Another diagnostic (an `EngineError`, a `RecordError`) as one,
    /// `context` put before its message ("uploading the snapshot: …").
    pub fn from_diagnostic(d: &dyn miette::Diagnostic, context: Option<&str>) -> UserError {
        let message = match context {
            Some(c) => format!("{c}: {d}"),
            None => d.to_string(),
        };
        UserError {
            code: d.code().map(|c| c.to_string()).unwrap_or_else(|| "quire_ci::executor::error".to_string()),
            message,
            help: d.help().map(|h| h.to_string()),
        }
    }

    /// The message on one line: what `run-end`'s `error` says (a summary
    /// line cannot hold a newline; the whole diagnostic, with its help, is
    /// printed once, on stderr).
    pub fn one_line(&self) -> String {
        self.message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

impl miette::Diagnostic for UserError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_error_keeps_its_code_and_help() {
        let e = crate::engine::EngineError::Unreachable { tried: vec!["unix:///nonexistent.sock".into()] };
        let u = UserError::from_diagnostic(&e, None);
        assert_eq!(u.code, "quire_ci::engine::unreachable");
        assert!(u.help.as_deref().unwrap_or_default().contains("DOCKER_HOST"), "{u:?}");
        assert_eq!(u.one_line(), "no container engine answered; tried: - unix:///nonexistent.sock");
    }
}
