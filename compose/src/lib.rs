//! Flow sources for everything that runs or composes a flow from files.
//!
//! [`load_flow`] reads a flow file and its resolve sidecar into a
//! [`runner_core::FlowSource`]; [`ComponentResolver`] turns the component
//! references of a flow's plan into `.wasm` files. `host-shim run` and the
//! composition share them, so a flow resolves the same way in both.
//!
//! Composition itself (wac-graph) is not implemented yet.
#![deny(missing_docs)]

mod source;

pub use source::{ComponentResolver, SourceError, load_flow, sidecar_path};
