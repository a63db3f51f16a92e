//! quire-ci: run a repository's `.quire/ci.fnl` pipeline locally, in the
//! quire forge's per-run container model, with its log.jsonl format.
//!
//! One room per concern (see STYLE.md); `main.rs` only parses and dispatches.

pub mod events;
pub mod snapshot;
