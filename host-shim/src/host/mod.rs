//! The host: one engine, one linked runner and the node components a flow
//! uses, compiled once per process and instantiated per run.

//!
//! Rooms: `options` (how a host is set up, how a run is made), `outcome`
//! (turns and failures), `setup` (the [`Host`] and its engine), `prepare`
//! (planning, resolving, linking, gating), `ready` (what was made ready,
//! kept per version of the files), `turns` (runs and conversation
//! turns), `composed` (composed apps).

mod composed;
mod options;
mod outcome;
mod prepare;
mod ready;
mod setup;
mod turns;

pub use composed::compose_file;
pub use options::{DEFAULT_ENV, DEFAULT_TENANT, HostOptions, RunSettings, SessionSettings};
pub use outcome::{CheckReport, Failure, Turn};
pub use setup::Host;
pub use turns::WarmRun;
