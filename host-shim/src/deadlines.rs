//! Wait deadlines: which waiting sessions time out when, kept in the state
//! backend so that any server sharing it (or one restarted later) fires
//! them.
//!
//! The state store has no key listing, so the index is one document,
//! `runner+wait-deadlines/index`, in the runner's own scope (env `local`,
//! tenant `greentic-runner`; a `+` namespace no component can name), written
//! under a short lock (`runner+wait-deadlines/lock`, create-if-absent with
//! an expiry, as session leases are). An entry names the session's tenant
//! scope, id, the flow file its turns run and the deadline; it is written
//! when a turn leaves a wait with a deadline and dropped when a later turn
//! leaves none. Firing one is an ordinary turn of the session (its lease
//! makes it one turn at a time, on one server), so a deadline fires once;
//! the runner itself checks the deadline has passed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use greentic_state::{StateKey, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::caps::state::scope::RunTenant;

/// How long the index lock is held at most (a writer that died).
const LOCK_SECS: u32 = 10;
/// How long a writer waits for the lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Entries the index holds at most: beyond, new deadlines are refused.
pub const MAX_ENTRIES: usize = 100_000;

/// One waiting session with a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueWait {
    /// The session's tenant scope.
    pub tenant: runner_core::Tenant,
    /// The session id.
    pub session: String,
    /// The flow file its turns run.
    pub flow: PathBuf,
    /// Unix milliseconds.
    pub at_ms: u64,
}

impl DueWait {
    /// The index key: one entry per session of a tenant scope.
    fn key(&self) -> String {
        let t = &self.tenant;
        format!(
            "{}/{}/{}/{}/{}",
            t.env,
            t.tenant,
            t.team.as_deref().unwrap_or(""),
            t.user.as_deref().unwrap_or(""),
            self.session
        )
    }
}

/// The deadline index of one state backend.
#[derive(Clone)]
pub struct Deadlines {
    store: Arc<dyn StateStore>,
    scope: RunTenant,
}

impl Deadlines {
    /// The index in `store`.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Deadlines {
            store,
            scope: RunTenant::new("local", "greentic-runner", None, None)
                .expect("the runner's own scope is a valid id"),
        }
    }

    /// Records (`Some`) or drops (`None`) the deadline of `session`.
    pub fn set(&self, session: &DueWait, deadline: Option<u64>) -> anyhow::Result<()> {
        self.update(|index| {
            let key = session.key();
            match deadline {
                Some(at_ms) => {
                    if index.len() >= MAX_ENTRIES && !index.contains_key(&key) {
                        bail!("{MAX_ENTRIES} waits with deadlines are pending; refusing more");
                    }
                    index.insert(
                        key,
                        DueWait {
                            at_ms,
                            ..session.clone()
                        },
                    );
                }
                None => {
                    index.remove(&key);
                }
            }
            Ok(())
        })
    }

    /// Drops `wait`'s entry if it is still the one recorded.
    pub fn forget(&self, wait: &DueWait) -> anyhow::Result<()> {
        self.update(|index| {
            if index.get(&wait.key()) == Some(wait) {
                index.remove(&wait.key());
            }
            Ok(())
        })
    }

    /// The waits whose deadline is at or before `now_ms`, soonest first, and
    /// the next deadline after it.
    pub fn due(&self, now_ms: u64) -> anyhow::Result<(Vec<DueWait>, Option<u64>)> {
        let index = self.read()?;
        let mut due: Vec<DueWait> = index
            .values()
            .filter(|w| w.at_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|w| w.at_ms);
        let next = index
            .values()
            .map(|w| w.at_ms)
            .filter(|at| *at > now_ms)
            .min();
        Ok((due, next))
    }

    fn read(&self) -> anyhow::Result<BTreeMap<String, DueWait>> {
        let value = self
            .store
            .get_json(
                self.scope.ctx(),
                "runner+wait-deadlines",
                &StateKey::from("index"),
                None,
            )
            .map_err(|e| anyhow!("{e}"))
            .context("reading the wait-deadline index")?;
        match value {
            None => Ok(BTreeMap::new()),
            Some(value) => {
                serde_json::from_value(value).context("the wait-deadline index is unreadable")
            }
        }
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, DueWait>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let lock_key = StateKey::from("lock");
        let started = Instant::now();
        loop {
            let locked = self
                .store
                .set_json_if_absent(
                    self.scope.ctx(),
                    "runner+wait-deadlines",
                    &lock_key,
                    &json!({"pid": std::process::id()}),
                    Some(LOCK_SECS),
                )
                .map_err(|e| anyhow!("{e}"))
                .context("locking the wait-deadline index")?;
            if locked {
                break;
            }
            if started.elapsed() > LOCK_WAIT {
                bail!(
                    "the wait-deadline index stayed locked for {} s",
                    LOCK_WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let result = self.read().and_then(|mut index| {
            change(&mut index)?;
            self.store
                .set_json(
                    self.scope.ctx(),
                    "runner+wait-deadlines",
                    &StateKey::from("index"),
                    None,
                    &serde_json::to_value(&index)?,
                    None,
                )
                .map_err(|e| anyhow!("{e}"))
                .context("writing the wait-deadline index")
        });
        let _ = self
            .store
            .del(self.scope.ctx(), "runner+wait-deadlines", &lock_key);
        result
    }
}

/// The deadline (Unix ms) a snapshot document records, if any. Read on
/// every session turn: only that field is built, the rest is skipped.
pub fn of_snapshot(snapshot: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Doc {
        deadline: Option<At>,
    }
    #[derive(Deserialize)]
    struct At {
        at_ms: u64,
    }
    let doc: Doc = serde_json::from_str(snapshot).ok()?;
    doc.deadline.map(|d| d.at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use greentic_state::inmemory::InMemoryStateStore;

    fn wait(tenant: &str, session: &str) -> DueWait {
        DueWait {
            tenant: runner_core::Tenant {
                env: "local".into(),
                tenant: tenant.into(),
                team: None,
                user: None,
            },
            session: session.into(),
            flow: "f.ygtc".into(),
            at_ms: 0,
        }
    }

    #[test]
    fn deadlines_are_recorded_replaced_and_dropped_per_session() {
        let d = Deadlines::new(Arc::new(InMemoryStateStore::new()));
        d.set(&wait("acme", "s1"), Some(2_000)).unwrap();
        d.set(&wait("globex", "s1"), Some(1_000)).unwrap();
        d.set(&wait("acme", "s2"), Some(9_000)).unwrap();
        let (due, next) = d.due(2_000).unwrap();
        let ids: Vec<_> = due
            .iter()
            .map(|w| (w.tenant.tenant.as_str(), w.at_ms))
            .collect();
        assert_eq!(ids, [("globex", 1_000), ("acme", 2_000)]);
        assert_eq!(next, Some(9_000));
        // A later turn moves or drops a session's deadline.
        d.set(&wait("acme", "s1"), Some(5_000)).unwrap();
        d.set(&wait("globex", "s1"), None).unwrap();
        assert!(d.due(2_000).unwrap().0.is_empty());
        // Forgetting a fired entry leaves a newer one alone.
        let mut fired = wait("acme", "s1");
        fired.at_ms = 2_000;
        d.forget(&fired).unwrap();
        assert_eq!(d.due(5_000).unwrap().0.len(), 1);
        assert_eq!(
            of_snapshot(r#"{"deadline": {"at_ms": 7, "node": null}}"#),
            Some(7)
        );
        assert_eq!(of_snapshot(r#"{"node": "x"}"#), None);
    }
}
