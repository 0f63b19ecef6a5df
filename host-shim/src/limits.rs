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
    /// Linear memory cap, bytes (per memory).
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
        if deadline_unix_ms == 0 {
            return self.wall_time;
        }
        // Rounded up to 10 ms: the runner set the deadline a moment ago from the
        // node's `timeout`, which is what messages should show.
        let left = deadline_unix_ms.saturating_sub(now_ms()).div_ceil(10) * 10;
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
}

impl LimitError {
    /// The `node-error` code for this stop.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::WallTime { .. } => "timeout",
            LimitError::Memory { .. } => "memory-limit",
            LimitError::Interrupted => "interrupted",
        }
    }
}

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

/// Caps linear memories and tables of one component instance.
#[derive(Debug)]
pub struct NodeLimiter {
    memory_bytes: usize,
    table_elements: usize,
}

impl NodeLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: &NodeLimits) -> Self {
        NodeLimiter {
            memory_bytes: limits.memory_bytes,
            table_elements: 1 << 20,
        }
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes >> 20)
}

impl ResourceLimiter for NodeLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // An error (not `false`) stops the component: a guest that cannot
            // grow usually aborts anyway, and this way the cause is named.
            return Err(LimitError::Memory {
                what: "memory",
                wanted: mib(desired),
                limit: mib(self.memory_bytes),
            }
            .into());
        }
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
        assert_eq!(l.budget(0), Duration::from_secs(2));
        assert_eq!(l.budget(now_ms() + 300), Duration::from_millis(300));
        assert_eq!(l.budget(now_ms() + 60_000), Duration::from_secs(2));
        assert_eq!(
            l.budget(1),
            Duration::ZERO,
            "a deadline in the past leaves nothing"
        );
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
        let mut limiter = NodeLimiter::new(&NodeLimits {
            memory_bytes: 64 << 20,
            ..NodeLimits::default()
        });
        assert!(limiter.memory_growing(0, 32 << 20, None).unwrap());
        let err = limiter.memory_growing(0, 65 << 20, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tried to grow memory to 65 MiB past its limit of 64 MiB"
        );
    }
}
