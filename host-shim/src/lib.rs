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

// The public surface is the `pub use` list below: the modules are rooms of
// this crate, not its API.
mod auth;
mod caps;
mod clock;
mod commands;
mod deadlines;
mod engine;
mod faults;
mod host;
mod limits;
mod messaging;
mod nodes;
mod preinit;
mod redact;
mod runner;
mod schedules;
mod serve;
mod sessions;

pub use caps::http::{ConnectRule, ConnectTo, TrustedRoots};
pub use caps::secrets::SecretSource;
pub use caps::state::StateBackend;
pub use caps::state::bindings::StateBindings;
pub use commands::Cli;
pub use engine::OnMiss;
pub use host::{
    CheckReport, DEFAULT_ENV, DEFAULT_TENANT, Failure, Host, HostOptions, RunSettings,
    SessionSettings, Turn, WarmRun, compose_file,
};
pub use limits::NodeLimits;
pub use nodes::{NodeCallRecord, NodeObserver, StderrTrace};
pub use runner::SLOT_COUNT;

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
