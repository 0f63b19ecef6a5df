//! Building the Wasmtime engines a process shares, and their epoch tickers.

use wasmtime::Engine;
use wasmtime::Result;

/// What an engine runs: its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineFor {
    /// Node components and composed apps: untrusted code, fuel metering
    /// ([`greentic_runner_engine::config`]).
    Nodes,
    /// The runner: our code, no fuel ([`greentic_runner_engine::runner_config`],
    /// what the build precompiled it for).
    Runner,
}

/// Builds an engine with on-demand instance allocation.
pub fn new_engine(kind: EngineFor) -> Result<Engine> {
    build_engine(kind, None)
}

/// [`new_engine`] with Wasmtime's pooling instance allocator, sized for
/// `runs` runs at once: memories and instances come from slots reserved
/// once, so instantiating afresh per run skips most of the `mmap`/`munmap`
/// work (and the TLB shootdowns that come with it: the largest cost `serve`
/// showed in `perf`). Each run may hold [`POOL_PER_RUN`] component instances
/// and linear memories (the runner, a live instance per node slot, a
/// provider); each memory slot reserves its address space (4 GiB and guard)
/// up front, which costs address space, not memory. The generated code is
/// the same, so is the precompiled runner.
pub fn new_pooling_engine(kind: EngineFor, runs: usize) -> Result<Engine> {
    build_engine(kind, Some(runs))
}

/// Component instances and memories the pool holds per run at once.
pub const POOL_PER_RUN: u32 = 40;
/// Bytes of a pooled memory or table kept mapped and reset in place when it
/// is given back (only the pages written, with PAGEMAP_SCAN).
const KEEP_RESIDENT: usize = 8 << 20;
/// The pool's least size, in component instances and memories.
const POOL_LEAST: u32 = 256;

fn build_engine(kind: EngineFor, pool_runs: Option<usize>) -> Result<Engine> {
    let mut config = match kind {
        EngineFor::Nodes => greentic_runner_engine::config(),
        EngineFor::Runner => greentic_runner_engine::runner_config(),
    };
    if let Some(runs) = pool_runs {
        let runs = u32::try_from(runs.max(1)).unwrap_or(u32::MAX);
        let instances = runs.saturating_mul(POOL_PER_RUN).max(POOL_LEAST);
        // A component holds a few core instances and tables.
        let core = instances.saturating_mul(4);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(core)
            .total_memories(instances)
            .total_tables(core)
            // A slot given back keeps its pages: the ones the instance
            // wrote are copied back from the module's image (found with
            // PAGEMAP_SCAN where the kernel has it), instead of dropped and
            // faulted in again, copy-on-write, by the next instance. Those
            // faults, each with a TLB shootdown across the server's threads,
            // were most of `serve`'s time in `perf` (bench/README.md).
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
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
