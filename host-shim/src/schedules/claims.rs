//! Which process runs a tick: settled in the state backend every server of
//! a deployment shares, so a tick runs once however many servers there are.
//!
//! A tick is claimed with the backend's atomic create-if-absent (Redis
//! `SET NX`, a redb write transaction, a mutex in memory) on
//! `runner+schedule-ticks~<shape>/<schedule>@<unix seconds>`, in the runs'
//! tenant scope. The claim holds a lease; a process that dies holding it
//! leaves a key that expires after the lease, and a server still watching
//! the tick claims it then and runs it, late. A finished tick's key says
//! `done` for [`DONE_SECS`] beyond the lease (long enough for every server
//! to see it), and `runner+schedule-last~<shape>/<schedule>` keeps the
//! latest tick done, which `missed: catch-up` starts from.
//!
//! Exactly once holds unless a server dies between its run's last state
//! write and marking the tick done: then the tick runs again after the
//! lease (at least once, never lost). Servers' clocks are assumed in step
//! (NTP); a tick is claimed by its time, not by who saw it first.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use greentic_state::{StateKey, StateStore};
use serde_json::{Value, json};

use super::Timer;
use crate::caps::state::scope::RunTenant;

/// How long a done tick stays marked, beyond the lease.
pub const DONE_SECS: u32 = 120;

/// Tick claims of one tenant in one state backend.
pub struct TickClaims {
    store: Arc<dyn StateStore>,
    tenant: RunTenant,
    ticks: String,
    last: String,
    lease_secs: u32,
    owner: String,
}

/// Where a tick stands after trying to claim it.
pub enum Claim {
    /// This process holds it: run it, then [`TickLease::done`].
    Ours(TickLease),
    /// Another process runs it now (watch it: its lease may expire).
    Running,
    /// It ran.
    Done,
}

/// A claimed tick. Dropped without [`TickLease::done`], it is given back.
pub struct TickLease {
    claims: Arc<TickClaims>,
    key: StateKey,
    schedule_id: String,
    tick: DateTime<Utc>,
    finished: bool,
}

impl TickClaims {
    /// Claims in `store` for runs of `tenant`, each held for `lease`.
    pub fn new(store: Arc<dyn StateStore>, tenant: RunTenant, lease: Duration) -> Self {
        TickClaims {
            ticks: tenant.namespace("runner+schedule-ticks"),
            last: tenant.namespace("runner+schedule-last"),
            store,
            tenant,
            lease_secs: lease.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
            owner: format!("{}-{}", std::process::id(), Utc::now().timestamp_millis()),
        }
    }

    /// Tries to take `tick` of `timer`.
    pub fn claim(self: &Arc<Self>, timer: &Timer, tick: DateTime<Utc>) -> anyhow::Result<Claim> {
        let key = tick_key(timer, tick);
        let claimed = self
            .store
            .set_json_if_absent(
                self.tenant.ctx(),
                &self.ticks,
                &key,
                &json!({"state": "running", "owner": self.owner}),
                Some(self.lease_secs),
            )
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("claiming tick {tick} of schedule `{}`", timer.schedule_id))?;
        if claimed {
            return Ok(Claim::Ours(TickLease {
                claims: self.clone(),
                key,
                schedule_id: timer.schedule_id.clone(),
                tick,
                finished: false,
            }));
        }
        Ok(match self.tick_state(&key)?.as_deref() {
            Some("done") => Claim::Done,
            // Running, or gone between the two calls (expired): claim it next time.
            _ => Claim::Running,
        })
    }

    /// Whether another server holds `tick` now (claimed, not done).
    pub fn held(&self, timer: &Timer, tick: DateTime<Utc>) -> anyhow::Result<bool> {
        Ok(self.tick_state(&tick_key(timer, tick))?.as_deref() == Some("running"))
    }

    /// A tick's claim: `running`, `done`, or none.
    fn tick_state(&self, key: &StateKey) -> anyhow::Result<Option<String>> {
        let value = self
            .store
            .get_json(self.tenant.ctx(), &self.ticks, key, None)
            .map_err(|e| anyhow!("{e}"))
            .context("reading a tick's claim")?;
        Ok(value.and_then(|v| v["state"].as_str().map(str::to_string)))
    }

    /// The latest tick of `timer` that ran, if one is recorded.
    pub fn last_done(&self, timer: &Timer) -> anyhow::Result<Option<DateTime<Utc>>> {
        let last = self.last_done_of(&StateKey::from(timer.schedule_id.as_str()))?;
        Ok(last.and_then(|secs| DateTime::from_timestamp(secs, 0)))
    }

    fn last_done_of(&self, key: &StateKey) -> anyhow::Result<Option<i64>> {
        let value = self
            .store
            .get_json(self.tenant.ctx(), &self.last, key, None)
            .map_err(|e| anyhow!("{e}"))
            .context("reading a schedule's last tick")?;
        Ok(value.as_ref().and_then(Value::as_i64))
    }
}

impl TickLease {
    /// The tick ran (whatever its outcome): every server sees it done.
    pub fn done(mut self) -> anyhow::Result<()> {
        let c = self.claims.clone();
        self.finished = true;
        c.store
            .set_json(
                c.tenant.ctx(),
                &c.ticks,
                &self.key,
                None,
                &json!({"state": "done", "owner": c.owner}),
                Some(c.lease_secs.saturating_add(DONE_SECS)),
            )
            .map_err(|e| anyhow!("{e}"))
            .context("marking a tick done")?;
        let last = StateKey::from(self.schedule_id.as_str());
        let newer = c
            .last_done_of(&last)?
            .is_none_or(|recorded| recorded < self.tick.timestamp());
        if newer {
            c.store
                .set_json(
                    c.tenant.ctx(),
                    &c.last,
                    &last,
                    None,
                    &json!(self.tick.timestamp()),
                    None,
                )
                .map_err(|e| anyhow!("{e}"))
                .context("recording a schedule's last tick")?;
        }
        Ok(())
    }
}

impl Drop for TickLease {
    fn drop(&mut self) {
        if !self.finished {
            // Not run (no run slot, shutting down): another try may take it.
            let c = &self.claims;
            let _ = c.store.del(c.tenant.ctx(), &c.ticks, &self.key);
        }
    }
}

/// The key of one tick of a schedule.
fn tick_key(timer: &Timer, tick: DateTime<Utc>) -> StateKey {
    StateKey::from(format!("{}@{}", timer.schedule_id, tick.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules::Schedules;
    use greentic_state::inmemory::InMemoryStateStore;

    #[test]
    fn a_tick_is_claimed_once_and_given_back_when_not_run() {
        let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new());
        let tenant = RunTenant::new("local", "acme", None, None).unwrap();
        let a = Arc::new(TickClaims::new(
            store.clone(),
            tenant.clone(),
            Duration::from_secs(30),
        ));
        let b = Arc::new(TickClaims::new(
            store.clone(),
            tenant,
            Duration::from_secs(30),
        ));
        let s = Schedules::parse(
            "b.yaml",
            "timers:\n  - flow_id: f\n    cron: \"* * * * * *\"\n",
        )
        .unwrap();
        let timer = &s.timers[0];
        let tick = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let Claim::Ours(lease) = a.claim(timer, tick).unwrap() else {
            panic!("the first claim wins")
        };
        assert!(matches!(b.claim(timer, tick).unwrap(), Claim::Running));
        drop(lease);
        let Claim::Ours(lease) = b.claim(timer, tick).unwrap() else {
            panic!("a tick given back is free")
        };
        assert_eq!(a.last_done(timer).unwrap(), None);
        lease.done().unwrap();
        assert!(matches!(a.claim(timer, tick).unwrap(), Claim::Done));
        assert_eq!(a.last_done(timer).unwrap(), Some(tick));
        // Another tenant's schedule of the same id is its own.
        let other = RunTenant::new("local", "globex", None, None).unwrap();
        let c = Arc::new(TickClaims::new(store, other, Duration::from_secs(30)));
        assert!(matches!(c.claim(timer, tick).unwrap(), Claim::Ours(_)));
    }
}
