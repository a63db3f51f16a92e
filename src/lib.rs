//! quire-ci: run a repository's `.quire/ci.fnl` pipeline locally, in the
//! quire forge's per-run container model, with its log.jsonl format.
//!
//! One room per concern (see STYLE.md); `main.rs` only parses and dispatches.

// `Problem` (a diagnostic with its source location, label and help) is the
// error of the paths that read ci.fnl; those run once per command, so
// boxing it would buy nothing.
#![allow(clippy::result_large_err)]

// First: its printing macros (every line printed is masked) are in scope in
// every module declared after it.
#[macro_use]
pub mod redact;

pub mod cache;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod compile_cache;
pub mod complete;
pub mod diagnostic;
pub mod emitter;
pub mod engine;
pub mod events;
pub mod executor;
pub mod fennel;
pub mod hook;
pub mod man;
pub mod pipeline;
pub mod record;
pub mod render;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod server_compat;
pub mod settings;
pub mod snapshot;
pub mod stdlib;
pub mod text;
pub mod watch;
