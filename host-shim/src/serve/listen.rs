//! Accepting connections: the cap, backing off failed accepts, stopping on a signal.

use std::time::Duration;

/// File descriptors kept free of connections: the state store, compiled
/// components, the listener itself.
pub(super) const SPARE_FDS: usize = 64;

/// The connection cap: `wanted`, lowered to fit the open-file limit so that
/// `accept` never fails for lack of descriptors.
pub(super) fn connection_cap(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    wanted.min(fds.saturating_sub(SPARE_FDS)).max(1)
}

/// Pauses after failed accepts: 5 ms doubling to 1 s, back to none after a success.
#[derive(Default)]
pub(super) struct AcceptBackoff {
    pub(super) failures: u32,
}

impl AcceptBackoff {
    pub(super) fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(5u64 << self.failures.min(8)).min(Duration::from_secs(1))
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
