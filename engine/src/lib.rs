//! The one Wasmtime configuration of host-shim.
//!
//! host-shim's build script precompiles the runner component with it, and
//! host-shim runs that artifact with it: both sides must build the very same
//! [`Config`], or Wasmtime refuses the artifact (its compatibility hash covers
//! the version and every setting that changes generated code) and host-shim
//! compiles the runner again.

use wasmtime::Config;

/// The configuration every component of a host-shim process is compiled and
/// run with.
pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // No component-model async here: with it on, synchronous cross-component
    // calls (runner -> slot -> node) get much slower.
    config.concurrency_support(false);
    // Node components are untrusted: deadlines by epoch, optional fuel.
    config.epoch_interruption(true);
    config.consume_fuel(true);
    config
}

/// [`config`] with Winch, Wasmtime's baseline compiler: it compiles a
/// component several times faster than Cranelift into slower code. host-shim
/// uses it for a component it has never seen, so a first run on an empty cache
/// does not wait for Cranelift; the optimised artifact is made for later runs.
pub fn baseline_config() -> Config {
    let mut config = config();
    config.strategy(wasmtime::Strategy::Winch);
    config
}
