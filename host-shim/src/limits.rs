//! Limits on node components, which are untrusted: a wall-clock budget per
//! invocation (epoch interruption), fuel, linear memory and tables, and the
//! size of payloads crossing the boundary.
//!
//! The wall-clock budget comes from the flow's `timeout` on the node (carried
//! in the envelope's `deadline-ms`), else the manifest's `limits.wall_time_ms`,
//! else the host default. At the deadline `control.should-cancel` turns true;
//! a component that has not returned by deadline + 10% (at least 10 ms, at
//! most 1 s) is stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compose::policy::Limits;
use wasmtime::{ResourceLimiter, Trap};

/// The runner store's default memory limit (`--runner-memory-mb`): all of
/// a run's context lives there, payloads of up to 16 MiB among it.
pub const RUNNER_MEMORY_BYTES: usize = 512 << 20;

/// Fuel for stores that are not metered: Wasmtime keeps fuel in an `i64`.
pub const UNMETERED: u64 = i64::MAX as u64;

/// How often the engine's epoch advances: the resolution of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits for one node invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Wall-clock budget.
    pub wall_time: Duration,
    /// Fuel; `None` is unmetered.
    pub fuel: Option<u64>,
    /// Linear memory cap, bytes: all the component's memories together.
    pub memory_bytes: usize,
    /// Largest input or output payload, bytes.
    pub max_payload: usize,
}

impl Default for NodeLimits {
    /// 30 s, unmetered fuel, 256 MiB, 16 MiB payloads.
    fn default() -> Self {
        NodeLimits {
            wall_time: Duration::from_secs(30),
            fuel: None,
            memory_bytes: 256 << 20,
            max_payload: 16 << 20,
        }
    }
}

impl NodeLimits {
    /// These defaults, overridden by what a manifest declares.
    pub fn with_manifest(self, limits: &Limits) -> NodeLimits {
        NodeLimits {
            wall_time: limits
                .wall_time_ms
                .map(Duration::from_millis)
                .unwrap_or(self.wall_time),
            fuel: limits.fuel.or(self.fuel),
            memory_bytes: limits
                .memory_mb
                .map(|mb| (mb as usize) << 20)
                .unwrap_or(self.memory_bytes),
            max_payload: self.max_payload,
        }
    }

    /// The budget of one call: this wall time, shortened to the envelope's
    /// deadline (unix ms, 0 = none) when that comes first.
    pub fn budget(&self, deadline_unix_ms: u64) -> Duration {
        self.budget_at(deadline_unix_ms, now_ms())
    }

    /// [`NodeLimits::budget`] at `now_unix_ms`.
    fn budget_at(&self, deadline_unix_ms: u64, now_unix_ms: u64) -> Duration {
        if deadline_unix_ms == 0 {
            return self.wall_time;
        }
        // Rounded up to 10 ms: the runner set the deadline a moment ago from the
        // node's `timeout`, which is what messages should show.
        let left = deadline_unix_ms.saturating_sub(now_unix_ms).div_ceil(10) * 10;
        self.wall_time.min(Duration::from_millis(left))
    }
}

/// Time given after the deadline to a component that cooperates: a tenth of
/// the budget, but at least 250 ms — more than a scheduler slice on a loaded
/// machine, so a component that checks `should-cancel` and returns is not
/// stopped because it was not scheduled in time — and at most 1 s.
pub fn grace(budget: Duration) -> Duration {
    (budget / 10).clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// The clock of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    budget: Duration,
}

impl Deadline {
    /// Starts the clock for `budget`.
    pub fn start(budget: Duration) -> Self {
        Deadline {
            started: Instant::now(),
            budget,
        }
    }

    /// No deadline yet (before the first call).
    pub fn far() -> Self {
        Deadline::start(Duration::from_secs(u32::MAX as u64))
    }

    /// True once the budget is spent, or the user interrupted: when a
    /// component should stop.
    pub fn should_cancel(&self) -> bool {
        self.started.elapsed() >= self.budget || interrupted_for().is_some()
    }

    /// The error to stop the component with, once past the grace period.
    pub fn overrun(&self) -> Option<LimitError> {
        if let Some(since) = interrupted_for()
            && since >= Duration::from_millis(200)
        {
            return Some(LimitError::Interrupted);
        }
        let elapsed = self.started.elapsed();
        (elapsed >= self.budget + grace(self.budget)).then_some(LimitError::WallTime {
            budget: self.budget,
            stopped_after: elapsed,
        })
    }
}

/// The whole run's deadline (`serve --run-timeout`): the runner's store and
/// every node's store of the run are stopped once it has passed, so a run
/// that overstays frees its permit instead of running on unseen.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunDeadline {
    at: Option<(Instant, Duration)>,
}

impl RunDeadline {
    /// No deadline.
    pub fn none() -> Self {
        RunDeadline { at: None }
    }

    /// `limit` from now (`None`: no deadline).
    pub fn after(limit: Option<Duration>) -> Self {
        RunDeadline {
            at: limit.map(|limit| (Instant::now() + limit, limit)),
        }
    }

    /// What is left of it, if it is set.
    pub fn left(&self) -> Option<Duration> {
        self.at
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }

    /// The error to stop with once it has passed.
    pub fn passed(&self) -> Option<LimitError> {
        match self.at {
            Some((at, limit)) if Instant::now() >= at => Some(LimitError::RunTime { limit }),
            _ => None,
        }
    }
}

/// Why a node invocation was stopped by the host.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// The wall-clock budget (plus grace) ran out.
    #[error("exceeded its wall-time limit of {} ms (stopped after {} ms)", budget.as_millis(), stopped_after.as_millis())]
    WallTime {
        /// The budget.
        budget: Duration,
        /// When it was stopped.
        stopped_after: Duration,
    },
    /// A memory or table grew past its limit.
    #[error("tried to grow {what} to {wanted} past its limit of {limit}")]
    Memory {
        /// `memory` or `table`.
        what: &'static str,
        /// Requested size.
        wanted: String,
        /// The limit.
        limit: String,
    },
    /// The user interrupted the run.
    #[error("interrupted")]
    Interrupted,
    /// The whole run overstayed its deadline.
    #[error("the run exceeded its time limit of {} ms", limit.as_millis())]
    RunTime {
        /// The run's limit.
        limit: Duration,
    },
}

impl LimitError {
    /// The `node-error` code for this stop.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::WallTime { .. } => "timeout",
            LimitError::Memory { .. } => "memory-limit",
            LimitError::Interrupted => "interrupted",
            LimitError::RunTime { .. } => RUN_TIMEOUT_CODE,
        }
    }
}

/// The `node-error` code of a node stopped by its run's deadline.
pub const RUN_TIMEOUT_CODE: &str = "run-timeout";

/// Most core instances, memories and tables one node component may create:
/// far above what a compiled component has (a few of each), far below
/// Wasmtime's default of 10,000.
pub const MAX_INSTANCES: usize = 64;
/// See [`MAX_INSTANCES`].
pub const MAX_MEMORIES: usize = 16;
/// See [`MAX_INSTANCES`].
pub const MAX_TABLES: usize = 64;

/// Turns the error of a failed call into a `node-error` code and message.
pub fn classify(error: &wasmtime::Error, limits: &NodeLimits) -> (&'static str, String) {
    if let Some(limit) = error.downcast_ref::<LimitError>() {
        return (limit.code(), limit.to_string());
    }
    if let Some(Trap::OutOfFuel) = error.downcast_ref::<Trap>() {
        let fuel = limits.fuel.unwrap_or(UNMETERED);
        return (
            "fuel-exhausted",
            format!("exhausted its fuel limit of {fuel}"),
        );
    }
    ("trap", format!("trapped: {error:#}").replace('\n', " "))
}

/// Caps a Store's linear memory (all its memories together), its tables
/// and how many instances, memories and tables it may create: a component
/// with many memories gets no more than one with one.
#[derive(Debug)]
pub struct StoreLimiter {
    memory_bytes: usize,
    table_elements: usize,
    /// Bytes of all memories of the store so far.
    memory_total: usize,
    /// Most instances (also memories, tables) the store may create.
    instances: usize,
    memories: usize,
    tables: usize,
}

impl StoreLimiter {
    /// A limiter for a node's `limits`.
    pub fn new(limits: &NodeLimits) -> Self {
        StoreLimiter::with_memory(limits.memory_bytes)
    }

    /// A node component's limiter allowing `memory_bytes` in all.
    pub fn with_memory(memory_bytes: usize) -> Self {
        StoreLimiter {
            memory_bytes,
            table_elements: 1 << 20,
            memory_total: 0,
            instances: MAX_INSTANCES,
            memories: MAX_MEMORIES,
            tables: MAX_TABLES,
        }
    }

    /// The runner's limiter: `memory_bytes` in all; as many instances as a
    /// composition of eight nodes with their adapters needs.
    pub fn for_runner(memory_bytes: usize) -> Self {
        StoreLimiter {
            instances: MAX_INSTANCES * 16,
            memories: MAX_MEMORIES * 16,
            tables: MAX_TABLES * 16,
            ..StoreLimiter::with_memory(memory_bytes)
        }
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes >> 20)
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_total - current.min(self.memory_total)).saturating_add(desired);
        if total > self.memory_bytes {
            // An error (not `false`) stops the component: a guest that cannot
            // grow usually aborts anyway, and this way the cause is named.
            return Err(LimitError::Memory {
                what: "memory",
                wanted: mib(total),
                limit: mib(self.memory_bytes),
            }
            .into());
        }
        // A growth that then fails stays counted: the safe side.
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(LimitError::Memory {
                what: "table",
                wanted: format!("{desired} elements"),
                limit: format!("{} elements", self.table_elements),
            }
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.tables
    }
}

/// Unix ms of the first Ctrl-C, 0 if none.
static INTERRUPTED_AT: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Records a user interrupt: components are asked to cancel, then stopped.
pub fn interrupt() {
    let _ = INTERRUPTED_AT.compare_exchange(0, now_ms().max(1), Ordering::SeqCst, Ordering::SeqCst);
}

/// How long ago the user interrupted, if they did.
pub fn interrupted_for() -> Option<Duration> {
    match INTERRUPTED_AT.load(Ordering::SeqCst) {
        0 => None,
        at => Some(Duration::from_millis(now_ms().saturating_sub(at))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_limits_override_defaults() {
        let l = NodeLimits::default().with_manifest(&Limits {
            memory_mb: Some(64),
            wall_time_ms: Some(500),
            fuel: Some(9),
        });
        assert_eq!(
            (l.memory_bytes, l.wall_time, l.fuel),
            (64 << 20, Duration::from_millis(500), Some(9))
        );
        assert_eq!(
            NodeLimits::default().with_manifest(&Limits::default()),
            NodeLimits::default()
        );
    }

    #[test]
    fn the_envelope_deadline_can_only_shorten_the_budget() {
        let l = NodeLimits {
            wall_time: Duration::from_secs(2),
            ..NodeLimits::default()
        };
        let now = 1_700_000_000_000;
        assert_eq!(l.budget_at(0, now), Duration::from_secs(2));
        assert_eq!(l.budget_at(now + 300, now), Duration::from_millis(300));
        assert_eq!(l.budget_at(now + 295, now), Duration::from_millis(300));
        assert_eq!(l.budget_at(now + 60_000, now), Duration::from_secs(2));
        assert_eq!(
            l.budget_at(now - 1, now),
            Duration::ZERO,
            "a deadline in the past leaves nothing"
        );
        // The clock's own reading: no deadline leaves the wall time.
        assert_eq!(l.budget(0), Duration::from_secs(2));
    }

    #[test]
    fn grace_is_a_tenth_within_bounds_a_loaded_machine_can_keep() {
        assert_eq!(grace(Duration::from_secs(5)), Duration::from_millis(500));
        assert_eq!(
            grace(Duration::from_millis(300)),
            Duration::from_millis(250)
        );
        assert_eq!(grace(Duration::from_millis(20)), Duration::from_millis(250));
        assert_eq!(grace(Duration::from_secs(60)), Duration::from_secs(1));
    }

    #[test]
    fn memory_growth_past_the_limit_is_an_error_naming_it() {
        let mut limiter = StoreLimiter::new(&NodeLimits {
            memory_bytes: 64 << 20,
            ..NodeLimits::default()
        });
        assert!(limiter.memory_growing(0, 32 << 20, None).unwrap());
        let err = limiter
            .memory_growing(32 << 20, 65 << 20, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tried to grow memory to 65 MiB past its limit of 64 MiB"
        );
    }

    #[test]
    fn the_memory_limit_counts_every_memory_of_the_store() {
        let mut limiter = StoreLimiter::with_memory(64 << 20);
        // Two memories of 30 MiB fit; a third does not, nor growing one past the rest.
        assert!(limiter.memory_growing(0, 30 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 30 << 20, None).unwrap());
        let err = limiter.memory_growing(0, 30 << 20, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tried to grow memory to 90 MiB past its limit of 64 MiB"
        );
        assert!(limiter.memory_growing(30 << 20, 34 << 20, None).unwrap());
        assert!(limiter.memory_growing(34 << 20, 35 << 20, None).is_err());
    }

    #[test]
    fn a_run_deadline_passes_once() {
        assert!(RunDeadline::none().passed().is_none());
        assert!(
            RunDeadline::after(Some(Duration::from_secs(3600)))
                .passed()
                .is_none()
        );
        let gone = RunDeadline::after(Some(Duration::ZERO));
        assert_eq!(gone.left(), Some(Duration::ZERO));
        assert_eq!(gone.passed().map(|e| e.code()), Some(RUN_TIMEOUT_CODE));
    }
}
