//! The integration tests: one binary, one harness (`harness/`: the scenario
//! builder, the environment, the timeout, the Docker requirement and the
//! clean-run invariants), one module per area under `scenarios/`.
//!
//! Tests with `docker` in their name need a running engine and fail loudly
//! without one. Filter by area: `cargo test --test main validate::`.

mod harness;

#[path = "scenarios/cli.rs"]
mod cli;
#[path = "scenarios/compile_cache.rs"]
mod compile_cache;
#[path = "scenarios/completions.rs"]
mod completions;
#[path = "scenarios/engine.rs"]
mod engine;
#[path = "scenarios/engines.rs"]
mod engines;
#[path = "scenarios/events.rs"]
mod events;
#[path = "scenarios/faults.rs"]
mod faults;
#[path = "scenarios/hook.rs"]
mod hook;
#[path = "scenarios/parallel.rs"]
mod parallel;
#[path = "scenarios/progress.rs"]
mod progress;
#[path = "scenarios/projects.rs"]
mod projects;
#[path = "scenarios/record.rs"]
mod record;
#[path = "scenarios/render.rs"]
mod render;
#[path = "scenarios/render_commands.rs"]
mod render_commands;
#[path = "scenarios/render_parallel.rs"]
mod render_parallel;
#[path = "scenarios/render_pull.rs"]
mod render_pull;
#[path = "scenarios/run.rs"]
mod run;
#[path = "scenarios/run_failures.rs"]
mod run_failures;
#[path = "scenarios/server.rs"]
mod server;
#[path = "scenarios/settings.rs"]
mod settings;
#[path = "scenarios/snapshot.rs"]
mod snapshot;
#[path = "scenarios/teardown.rs"]
mod teardown;
#[path = "scenarios/tty.rs"]
mod tty;
#[path = "scenarios/validate.rs"]
mod validate;
#[path = "scenarios/watch.rs"]
mod watch;
