//! Where the build put the WebAssembly host-shim ships with (see `build.rs`):
//! the runner, its precompiled form, the example node components and the
//! parts compositions are made of.
#![deny(missing_docs)]

/// Where the build put the runner component.
pub const BUILT_RUNNER: &str = env!("GREENTIC_RUNNER_WASM");

/// The runner precompiled by the build for host-shim's engine.
pub const BUILT_RUNNER_CWASM: &str = env!("GREENTIC_RUNNER_CWASM");

/// SHA-256 (hex) of the runner [`BUILT_RUNNER_CWASM`] was compiled from.
pub const BUILT_RUNNER_SHA256: &str = env!("GREENTIC_RUNNER_WASM_SHA256");

/// Where the build put the parts compositions are built from (`empty-slot`,
/// `state-memory`, `state-deny`, the adapters, the fronts).
pub const BUILT_COMPOSE_PARTS_DIR: &str = env!("GREENTIC_COMPOSE_PARTS_DIR");

/// Where the build put the example node components: the last directory bare
/// component names are looked up in.
pub const BUILT_COMPONENTS_DIR: &str = env!("GREENTIC_COMPONENTS_DIR");
