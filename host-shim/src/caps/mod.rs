//! Host capabilities for node components besides the state store: one module
//! per interface, each with its context, its view trait and its
//! `add_to_linker`, in Wasmtime's style. Which component gets which is decided
//! by [`compose::policy::CAPABILITIES`], the gating table shared with the
//! composition.

pub mod http;
pub mod secrets;
pub mod telemetry;
