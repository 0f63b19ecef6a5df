//! Conversations: a waiting run's snapshot kept in the state backend between
//! messages, under the run's tenant and the session id.
//!
//! Keys live in namespaces no component can name (`+` is not allowed in a
//! component id): `runner+sessions~<shape>/<session>` holds the snapshot
//! (with the session TTL), `runner+session-locks~<shape>/<session>` the lease
//! of the turn in progress. A turn claims the lease with the backend's atomic
//! create-if-absent (Redis `SET NX`, a redb write transaction, a mutex in
//! memory), so two resumes of one session — in one process or in two sharing
//! a Redis — run one after the other, never both on the same snapshot. A
//! process that dies mid-turn leaves a lease that expires after
//! [`LEASE_SECS`]; the snapshot itself is only replaced when a turn ends, so
//! a failed or killed turn leaves the run waiting where it was.
//!
//! A session id belongs to the tenant that started it: an owner record
//! (`runner+session-owners`, outside every tenant) names it while the session
//! lives, and another tenant using the id gets [`ForeignSession`] — never a
//! conversation of its own under a name someone else's holds, never theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use greentic_state::{StateKey, StateStore};
use serde_json::{Value, json};

use crate::state_store::scope::RunTenant;

/// A session id that another tenant's conversation holds.
#[derive(Debug, thiserror::Error)]
#[error("no session `{0}` for this tenant")]
pub struct ForeignSession(pub String);

/// How long a turn's lease lasts: longer than any turn should take.
pub const LEASE_SECS: u32 = 300;
/// How often a waiting resume looks at a busy session again.
const POLL: Duration = Duration::from_millis(25);

/// Sessions of one tenant in one state backend.
pub struct Sessions {
    store: Arc<dyn StateStore>,
    tenant: RunTenant,
    snapshots: String,
    locks: String,
    owners: String,
    owner_ctx: RunTenant,
    ttl_secs: u32,
}

/// A claimed session: the turn in progress. Dropping it releases the lease.
pub struct Lease<'s> {
    sessions: &'s Sessions,
    key: StateKey,
    token: String,
}

impl Sessions {
    /// Sessions of `tenant` in `store`; snapshots expire `ttl` after their last turn.
    pub fn new(store: Arc<dyn StateStore>, tenant: RunTenant, ttl: Duration) -> Self {
        Sessions {
            snapshots: tenant.namespace("runner+sessions"),
            locks: tenant.namespace("runner+session-locks"),
            owners: "runner+session-owners".into(),
            owner_ctx: RunTenant::new("runner", "sessions", None, None).expect("valid ids"),
            store,
            tenant,
            ttl_secs: ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
        }
    }

    /// Claims session `id` for one turn, waiting up to `wait` while another
    /// turn of it is in progress.
    pub fn claim(&self, id: &str, wait: Duration) -> anyhow::Result<Lease<'_>> {
        check_id(id)?;
        let key = StateKey::from(id);
        self.check_owner(id, &key)?;
        let token = lease_token();
        let started = Instant::now();
        loop {
            let claimed = self
                .store
                .set_json_if_absent(
                    self.tenant.ctx(),
                    &self.locks,
                    &key,
                    &json!({ "owner": token }),
                    Some(LEASE_SECS),
                )
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("claiming session `{id}` in the state backend"))?;
            if claimed {
                return Ok(Lease {
                    sessions: self,
                    key,
                    token,
                });
            }
            if started.elapsed() >= wait {
                bail!(
                    "session `{id}` is busy: another turn of it has been running for more than {} ms (a turn that died leaves it busy for up to {LEASE_SECS} s)",
                    wait.as_millis()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Sessions {
    /// This tenant's, or the session id is free and becomes this tenant's.
    fn check_owner(&self, id: &str, key: &StateKey) -> anyhow::Result<()> {
        let me = Value::String(self.snapshots.clone() + "@" + &tenant_label(&self.tenant));
        let store_err = |e: greentic_types::GreenticError| anyhow!("{e}");
        let taken = !self
            .store
            .set_json_if_absent(
                self.owner_ctx.ctx(),
                &self.owners,
                key,
                &me,
                Some(self.ttl_secs),
            )
            .map_err(store_err)
            .context("claiming the session id")?;
        if taken {
            let owner = self
                .store
                .get_json(self.owner_ctx.ctx(), &self.owners, key, None)
                .map_err(store_err)?;
            if owner.is_some_and(|o| o != me) {
                return Err(ForeignSession(id.to_string()).into());
            }
        }
        Ok(())
    }
}

/// The run's tenant context as one string (env, tenant, team, user).
fn tenant_label(tenant: &RunTenant) -> String {
    let ctx = tenant.ctx();
    format!(
        "{}/{}/{}/{}",
        ctx.env.as_str(),
        ctx.tenant.as_str(),
        ctx.team.as_ref().map(|t| t.as_str()).unwrap_or(""),
        ctx.user.as_ref().map(|u| u.as_str()).unwrap_or("")
    )
}

impl Lease<'_> {
    /// The waiting run's snapshot, if the session has one.
    pub fn snapshot(&self) -> anyhow::Result<Option<String>> {
        let s = self.sessions;
        let value = s
            .store
            .get_json(s.tenant.ctx(), &s.snapshots, &self.key, None)
            .map_err(|e| anyhow!("{e}"))
            .context("reading the session's snapshot")?;
        match value {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => bail!("the session's stored snapshot is not a snapshot document"),
        }
    }

    /// Keeps `snapshot` (the run waits again), for the session TTL.
    pub fn save(&self, snapshot: &str) -> anyhow::Result<()> {
        let s = self.sessions;
        // The id stays this tenant's as long as the run waits.
        let me = Value::String(s.snapshots.clone() + "@" + &tenant_label(&s.tenant));
        s.store
            .set_json(
                s.owner_ctx.ctx(),
                &s.owners,
                &self.key,
                None,
                &me,
                Some(s.ttl_secs),
            )
            .map_err(|e| anyhow!("{e}"))
            .context("keeping the session id")?;
        s.store
            .set_json(
                s.tenant.ctx(),
                &s.snapshots,
                &self.key,
                None,
                &Value::String(snapshot.to_string()),
                Some(s.ttl_secs),
            )
            .map_err(|e| anyhow!("{e}"))
            .context("storing the session's snapshot")
    }

    /// Forgets the snapshot (the run completed); the id is free again.
    pub fn clear(&self) -> anyhow::Result<()> {
        let s = self.sessions;
        s.store
            .del(s.owner_ctx.ctx(), &s.owners, &self.key)
            .map_err(|e| anyhow!("{e}"))
            .context("freeing the session id")?;
        s.store
            .del(s.tenant.ctx(), &s.snapshots, &self.key)
            .map(|_| ())
            .map_err(|e| anyhow!("{e}"))
            .context("removing the session's snapshot")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let s = self.sessions;
        // Only our own lease: one that expired and was claimed by another
        // turn is theirs (not atomic, but only reachable after LEASE_SECS).
        let ours = s
            .store
            .get_json(s.tenant.ctx(), &s.locks, &self.key, None)
            .ok()
            .flatten()
            .is_some_and(|v| v["owner"] == self.token.as_str());
        if ours {
            let _ = s.store.del(s.tenant.ctx(), &s.locks, &self.key);
        }
    }
}

/// Session ids: 1–128 of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        bail!("invalid session id `{id}`: use 1 to 128 letters, digits, `.`, `_`, `-` or `@`");
    }
    Ok(())
}

/// Unique enough for a lease owner: time, process, a per-process counter.
fn lease_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use greentic_state::inmemory::InMemoryStateStore;

    fn sessions(store: Arc<dyn StateStore>, tenant: &str) -> Sessions {
        Sessions::new(
            store,
            RunTenant::new("local", tenant, None, None).unwrap(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_session_is_claimed_by_one_turn_at_a_time_and_per_tenant() {
        let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new());
        let acme = sessions(store.clone(), "acme");
        let lease = acme.claim("s1", Duration::ZERO).unwrap();
        let busy = acme.claim("s1", Duration::from_millis(60)).err().unwrap();
        assert!(busy.to_string().contains("session `s1` is busy"), "{busy}");
        lease.save("{\"snapshot\": 1}").unwrap();
        // Another tenant cannot use a session id this tenant holds.
        let other = sessions(store.clone(), "globex");
        let refused = other.claim("s1", Duration::ZERO).err().unwrap();
        assert!(
            refused.downcast_ref::<ForeignSession>().is_some(),
            "{refused}"
        );
        drop(lease);
        let next = acme.claim("s1", Duration::ZERO).unwrap();
        assert_eq!(
            next.snapshot().unwrap().as_deref(),
            Some("{\"snapshot\": 1}")
        );
        next.clear().unwrap();
        assert_eq!(next.snapshot().unwrap(), None);
    }

    #[test]
    fn a_waiting_resume_runs_after_the_turn_in_progress() {
        let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new());
        let acme = Arc::new(sessions(store, "acme"));
        let lease = acme.claim("s", Duration::ZERO).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let waiter = {
            let (acme, order) = (acme.clone(), order.clone());
            std::thread::spawn(move || {
                let lease = acme.claim("s", Duration::from_secs(30)).unwrap();
                order.lock().unwrap().push(lease.snapshot().unwrap());
            })
        };
        lease.save("first").unwrap();
        order.lock().unwrap().push(Some("saved".into()));
        drop(lease);
        waiter.join().unwrap();
        // The second turn saw the first one's snapshot: serialised, not raced.
        assert_eq!(
            *order.lock().unwrap(),
            [Some("saved".to_string()), Some("first".to_string())]
        );
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(check_id("chat-42@team_a.x").is_ok());
        for bad in ["", "a:b", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
