//! The spec as executable checks: flows run through the `host-shim` binary as a
//! user would run them, with the runner and node components built from this
//! workspace.

mod abi;
mod bot_app;
mod capabilities;
mod cli;
mod compose;
mod concurrency;
mod deadlines;
mod faults;
mod flows;
mod http_app;
mod limits;
mod messaging;
mod pack_signatures;
mod packs;
mod playground;
mod registry;
mod scale_out;
mod schedules;
mod serve;
mod serve_auth;
mod serve_hardening;
mod sessions;
mod state;
mod support;
mod tls;
