//! Flow sources, capability policy and composition: everything that runs or
//! composes a flow from files shares this crate.
//!
//! [`load_flow`] reads a flow file and its resolve sidecar into a
//! [`runner_core::FlowSource`]; [`ComponentResolver`] turns the component
//! references of a flow's plan into `.wasm` files. `host-shim run` and the
//! composition share them, so a flow resolves the same way in both.
//!
//! [`compose`] builds one component from a flow: the runner plus the flow's
//! node components, wired with wac-graph, state gated by [`policy`], with the
//! flow baked in behind a front part (`greentic:runner/app`, and with `--http`
//! `wasi:http/incoming-handler`).
#![deny(missing_docs)]

mod baked;
mod compose;
pub mod pack;
pub mod policy;
pub mod private_dir;
mod source;

pub use baked::HttpSettings;
pub use compose::{
    APP_EXPORT, AbiMismatch, Adapters, BotOptions, ComposeError, ComposeOptions, ComposedNode,
    ComposedProvider, Composition, NODE_EXPORT, NodeAbi, PROVIDER_EXPORT, Parts, PreInit,
    RUN_EXPORT, RUN_SCOPE_IMPORT, RUNTIME_EXPORT, StateDecision, StateWiring, TelemetryWiring,
    component_references, compose, is_state_import, slot_import,
};
pub use greentic_runner_wit::{SLOT_COUNT, slot_name};
pub use source::{
    ComponentRef, ComponentResolver, FlowSet, Resolved, SourceError, distinct_components,
    load_flow, load_flow_set, sidecar_path, summary_sidecar_path,
};
