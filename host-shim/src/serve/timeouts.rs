//! Wait deadlines in `serve`: the server reads the deadline index of its
//! state backend ([`Deadlines`]) and fires each due wait as a turn of its
//! session, on the wait's timeout route. The session's lease makes that one
//! turn on one server; a wait answered or fired elsewhere meanwhile is found
//! no longer due and dropped from the index. Waits of flows outside what
//! this server serves are left to the servers that serve them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::runs::outcome_label;
use super::server::Server;
use crate::deadlines::{Deadlines, DueWait};
use crate::host::SessionSettings;

/// How often the index is read when no deadline is near.
const POLL: Duration = Duration::from_millis(250);

impl Server {
    /// Fires due wait deadlines until the server stops.
    pub(super) async fn fire_deadlines(self: Arc<Self>) {
        let index = Deadlines::new(self.store.clone());
        // Waits being fired by this server now.
        let firing: Arc<Mutex<HashSet<(String, u64)>>> = Arc::default();
        while !self.stopping.load(Ordering::SeqCst) {
            let now = crate::clock::now_ms();
            let read = {
                let index = index.clone();
                tokio::task::spawn_blocking(move || index.due(now)).await
            };
            let (due, next) = match read {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::warn!(target: "deadlines", "{e:#}");
                    (Vec::new(), None)
                }
                Err(e) => {
                    tracing::warn!(target: "deadlines", "{e}");
                    (Vec::new(), None)
                }
            };
            // Per round: a reloaded pack serves from a new root.
            let root = std::fs::canonicalize(self.catalog.root()).ok();
            for wait in due {
                let served = std::fs::canonicalize(&wait.flow)
                    .ok()
                    .zip(root.as_ref())
                    .is_some_and(|(flow, root)| flow.starts_with(root));
                let key = (format!("{:?}/{}", wait.tenant, wait.session), wait.at_ms);
                if !served || !firing.lock().expect("firing set").insert(key.clone()) {
                    continue;
                }
                let (server, index, firing) = (self.clone(), index.clone(), firing.clone());
                tokio::spawn(async move {
                    server.fire(&index, wait).await;
                    firing.lock().expect("firing set").remove(&key);
                });
            }
            let until_next = next
                .map(|at| Duration::from_millis(at.saturating_sub(crate::clock::now_ms())))
                .unwrap_or(POLL);
            tokio::time::sleep(until_next.clamp(Duration::from_millis(10), POLL)).await;
        }
    }

    /// One due wait: a turn of its session on the timeout route.
    async fn fire(self: &Arc<Self>, index: &Deadlines, wait: DueWait) {
        let Ok(permit) = self.slots.acquire().await else {
            // No run slot now: the index still has it; next round.
            return;
        };
        let mut settings = self.options.settings.clone();
        settings.scope = wait.tenant.clone();
        settings.session = Some(SessionSettings {
            id: wait.session.clone(),
            ttl: self.options.session_ttl,
            wait: Duration::ZERO,
            restart: false,
            fire_deadline: Some(wait.at_ms),
        });
        settings.observer = Some(self.metrics.clone() as Arc<dyn crate::nodes::NodeObserver>);
        let late = Duration::from_millis(crate::clock::now_ms().saturating_sub(wait.at_ms));
        let outcome = self
            .run_blocking(wait.flow.clone(), "{}".into(), settings, permit)
            .await;
        let label = match &outcome {
            Ok(Ok(Err(failure))) if failure.is_not_due() => "not_due",
            // Another turn of the session is running: it sees the deadline too.
            Ok(Ok(Err(failure))) if failure.is_session_busy() => return,
            _ => outcome_label(&outcome),
        };
        if let Ok(Ok(Err(failure))) = &outcome
            && !failure.is_not_due()
        {
            tracing::warn!(target: "deadlines", session = %wait.session, "the timeout turn failed: {failure:#}; the wait times out at its next message");
        }
        self.metrics.timed_out(label, late);
        tracing::info!(target: "deadlines", session = %wait.session, "deadline fired: {label}, {} ms late", late.as_millis());
        // A turn that ran updated the index itself; anything else is dropped
        // here so it is not fired again and again.
        if label != "completed" && label != "waiting" {
            let index = index.clone();
            let _ = tokio::task::spawn_blocking(move || index.forget(&wait)).await;
        }
    }
}
