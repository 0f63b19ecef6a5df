//! The host's wall clock: the system clock, moved ahead in debug builds by
//! the fault `clock-offset-ms=N` (see [`crate::faults`]), so tests can stand
//! at a later time without sleeping. The runner and node components read the
//! same clock through their WASI wall clock ([`HostClock`]), so templates'
//! `now`, wait deadlines and schedules all move with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// Now.
pub fn now() -> SystemTime {
    SystemTime::now() + Duration::from_millis(crate::faults::clock_offset_ms())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, as a UTC date-time.
pub fn now_utc() -> DateTime<Utc> {
    DateTime::<Utc>::from(now())
}

/// [`now`] as a guest's `wasi:clocks/wall-clock`.
pub struct HostClock;

impl wasmtime_wasi::HostWallClock for HostClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}
