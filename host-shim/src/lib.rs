//! `host-shim`: runs greentic flows natively by embedding the runner component
//! (built from `runner-core`) next to the flow's node components in Wasmtime.
//!
//! The flow logic (parsing, templating, routing) runs inside the runner
//! component; this crate only provides what a host provides: files, compiled
//! components and the node calls behind the runner's slot imports.
//!
//! ```text
//! host-shim run flow.yaml
//!   │ load flow + sidecar (compose::load_flow)
//!   ├─> runner.plan(flow) ──> components used by the flow
//!   │ resolve + compile each component (disk cache), bind component i -> slot i
//!   └─> runner.run(flow, entry, bindings)
//!          runner ──slot-i.invoke──> host ──> node component i (own Store)
//! ```
#![deny(missing_docs)]

pub mod auth;
pub mod caps;

mod commands;
pub mod engine;
pub mod faults;
mod host;
pub mod limits;
pub mod messaging;
pub mod nodes;
pub mod redact;
pub mod runner;
pub mod serve;
pub mod sessions;

pub use commands::Cli;
pub use host::{
    CheckReport, DEFAULT_ENV, DEFAULT_TENANT, Failure, Host, HostOptions, RunSettings,
    SessionSettings, Turn, WarmRun, compose_file,
};

pub use greentic_guests::{
    BUILT_COMPONENTS_DIR, BUILT_COMPOSE_PARTS_DIR, BUILT_RUNNER, BUILT_RUNNER_CWASM,
    BUILT_RUNNER_SHA256,
};

/// Runs the CLI with `args` and returns the process exit code.
pub fn main_with_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> std::process::ExitCode {
    use clap::Parser;
    let cli = match commands::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    commands::exec(cli)
}
