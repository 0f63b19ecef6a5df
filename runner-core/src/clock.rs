//! Wall-clock time. In the runner component it is the host's WASI wall
//! clock, so the host decides what "now" is for templates (`now`) and wait
//! deadlines alike.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// `time` in Unix milliseconds (0 before the epoch).
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}
