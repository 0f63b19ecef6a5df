//! Fault injection for the reliability tests: `GREENTIC_FAULTS`, read once,
//! in debug builds only (a release build ignores it: every function here is
//! then a constant "no fault"). Comma-separated:
//!
//! - `state-unavailable-after=N` — after N state operations of this process
//!   succeeded, every further one fails as if the backend were down;
//! - `file-write-fails-after=N` — a file-backend write stores only the first
//!   N bytes of its record, then fails (its transaction is not committed);
//! - `kill-in-file-write=TEXT` — the process kills itself (SIGKILL, as
//!   `kill -9`) inside the file-backend write whose key contains TEXT, after
//!   the record is written and before the transaction commits;
//! - `session-lease-secs=N` — a session turn's lease lasts N seconds instead
//!   of [`crate::sessions::LEASE_SECS`] (what a dead turn leaves behind);
//! - `die-holding-tick=N` — `serve` kills itself (SIGKILL) right after
//!   claiming its Nth scheduled tick, before running it;
//! - `clock-offset-ms=N` — the host's wall clock (and its guests') runs N ms
//!   ahead of the system's ([`crate::clock`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// The faults asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    state_unavailable_after: Option<u64>,
    file_write_fails_after: Option<usize>,
    kill_in_file_write: Option<String>,
    session_lease_secs: Option<u64>,
    die_holding_tick: Option<u64>,
    clock_offset_ms: Option<u64>,
}

/// What a file-backend write should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileWrite {
    /// Write the record.
    Normal,
    /// Write its first N bytes, then fail.
    FailAfter(usize),
    /// Write it, then die before committing.
    Kill,
}

impl Faults {
    /// Parses a `GREENTIC_FAULTS` value.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("fault `{item}` needs `=VALUE`"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("fault `{name}` needs a number, not `{value}`"))
            };
            match name {
                "state-unavailable-after" => faults.state_unavailable_after = Some(number()?),
                "file-write-fails-after" => {
                    faults.file_write_fails_after = Some(number()? as usize)
                }
                "kill-in-file-write" => faults.kill_in_file_write = Some(value.to_string()),
                "session-lease-secs" => faults.session_lease_secs = Some(number()?),
                "die-holding-tick" => faults.die_holding_tick = Some(number()?),
                "clock-offset-ms" => faults.clock_offset_ms = Some(number()?),
                other => return Err(format!("unknown fault `{other}`")),
            }
        }
        Ok(faults)
    }
}

/// The faults of this process (none in release builds).
fn active() -> &'static Faults {
    static FAULTS: std::sync::OnceLock<Faults> = std::sync::OnceLock::new();
    FAULTS.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return Faults::default();
        }
        match std::env::var("GREENTIC_FAULTS") {
            Ok(spec) => Faults::parse(&spec).unwrap_or_else(|e| {
                eprintln!("host-shim: GREENTIC_FAULTS: {e}");
                std::process::exit(2)
            }),
            Err(_) => Faults::default(),
        }
    })
}

/// Whether state backends are wrapped to fail on demand.
pub fn injects_state_faults() -> bool {
    active().state_unavailable_after.is_some()
}

/// Whether the next state operation fails as if the backend were down.
pub fn state_unavailable() -> bool {
    static DONE: AtomicU64 = AtomicU64::new(0);
    match active().state_unavailable_after {
        None => false,
        Some(limit) => DONE.fetch_add(1, Ordering::SeqCst) >= limit,
    }
}

/// What the file-backend write of `key` should do.
pub fn file_write(key: &str) -> FileWrite {
    let faults = active();
    if faults
        .kill_in_file_write
        .as_deref()
        .is_some_and(|text| key.contains(text))
    {
        return FileWrite::Kill;
    }
    match faults.file_write_fails_after {
        Some(n) => FileWrite::FailAfter(n),
        None => FileWrite::Normal,
    }
}

/// How long a session turn's lease lasts, in seconds.
pub fn session_lease_secs(default: u32) -> u32 {
    active()
        .session_lease_secs
        .map_or(default, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// How far ahead of the system clock the host's clock runs, in ms.
pub fn clock_offset_ms() -> u64 {
    active().clock_offset_ms.unwrap_or(0)
}

/// Dies (SIGKILL) if this is the tick `die-holding-tick` names.
pub fn maybe_die_holding_a_tick() {
    static CLAIMED: AtomicU64 = AtomicU64::new(0);
    if let Some(n) = active().die_holding_tick
        && CLAIMED.fetch_add(1, Ordering::SeqCst) + 1 == n
    {
        kill_self();
    }
}

/// Dies as `kill -9` would make it: no destructors, no flushing, no exit code.
pub fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught; this is never reached.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_bad_specs_are_named() {
        let faults =
            Faults::parse("state-unavailable-after=3, kill-in-file-write=session").unwrap();
        assert_eq!(faults.state_unavailable_after, Some(3));
        assert_eq!(faults.kill_in_file_write.as_deref(), Some("session"));
        assert_eq!(faults.file_write_fails_after, None);
        assert!(
            Faults::parse("nope=1")
                .unwrap_err()
                .contains("unknown fault `nope`")
        );
        assert!(
            Faults::parse("file-write-fails-after=x")
                .unwrap_err()
                .contains("needs a number")
        );
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }
}
