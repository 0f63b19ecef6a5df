//! The Wasmtime configurations of host-shim: [`config`] for node components
//! (untrusted: fuel metering), [`runner_config`] for the runner (ours: none).
//!
//! host-shim's build script precompiles the runner component with
//! [`runner_config`], and host-shim runs that artifact with it: both sides
//! must build the very same [`Config`], or Wasmtime refuses the artifact (its
//! compatibility hash covers the version and every setting that changes
//! generated code) and host-shim compiles the runner again.

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

/// The runner's configuration: [`config`] without fuel metering. The runner
/// is this workspace's code; it stops at its run's epoch deadline and is
/// bounded in memory, and the checks fuel adds to every loop and call were
/// about a tenth of its time (bench/README.md). It runs in stores of its own,
/// apart from the metered node instances it calls through the host.
pub fn runner_config() -> Config {
    let mut config = config();
    config.consume_fuel(false);
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
