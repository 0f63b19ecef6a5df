//! The Wasmtime engine and the on-disk cache of compiled components.

mod artifacts;
pub(crate) mod build;
mod cache;

pub use build::{EngineFor, new_engine, new_pooling_engine};
pub use cache::{ComponentCache, Filled, OnMiss, Precompiled, compile_in_background};
