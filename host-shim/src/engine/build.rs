//! Building the Wasmtime engine a process shares, and its epoch ticker.

use wasmtime::Engine;
use wasmtime::Result;

/// Builds the engine every component of a process shares, with the one
/// configuration the build precompiled the runner for.
pub fn new_engine() -> Result<Engine> {
    build_engine(false)
}

/// [`new_engine`] with Wasmtime's pooling instance allocator: memories and
/// instances come from slots reserved once, so instantiating afresh per run
/// skips most of the `mmap`/`munmap` work (and the TLB shootdowns that come
/// with it: the largest cost `serve` showed in `perf`); at most
/// [`POOL_INSTANCES`] component instances (a run holds the runner and the
/// node instance being called) and [`POOL_MEMORIES`] linear memories exist
/// at once. Each memory slot reserves its address space (4 GiB) up front:
/// a serving process holds one such engine per run slot. The generated code
/// is the same, so is the precompiled runner.
pub fn new_pooling_engine() -> Result<Engine> {
    build_engine(true)
}

/// Component instances the pooling allocator holds slots for.
pub const POOL_INSTANCES: u32 = 256;
/// Linear memories it holds slots for.
pub const POOL_MEMORIES: u32 = 256;
/// Core instances (a component holds a few) and tables.
const POOL_CORE: u32 = 1024;

fn build_engine(pooling: bool) -> Result<Engine> {
    let mut config = greentic_runner_engine::config();
    if pooling {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_CORE)
            .total_memories(POOL_MEMORIES)
            .total_tables(POOL_CORE);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    // `perf` can name compiled wasm functions when Wasmtime writes a perf map
    // (/tmp/perf-<pid>.map); for profiling only (bench/README.md).
    if std::env::var_os("GREENTIC_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances the engine's epoch every [`crate::limits::EPOCH_TICK`] for as long
/// as the engine lives.
pub(super) fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(crate::limits::EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker");
}
