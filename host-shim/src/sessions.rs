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
//! Session ids are per tenant: every key above lives in the run's tenant
//! scope (env, tenant, team, user), so tenant B's `chat-42` is another
//! conversation than tenant A's — nothing of one is read, written or even
//! known to the other (no record outside a tenant, so no id to squat and no
//! answer that tells whether another tenant uses an id). A turn that fails
//! before its run waits leaves nothing behind but its released lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use greentic_state::{StateKey, StateStore};
use serde_json::{Value, json};

use crate::caps::state::scope::RunTenant;

/// Another turn of the session kept it past the wait.
#[derive(Debug, thiserror::Error)]
#[error("session `{id}` is busy: another turn of it has been running for more than {} ms (a turn that died leaves it busy for up to {LEASE_SECS} s)", waited.as_millis())]
pub struct SessionBusy {
    /// The session id.
    pub id: String,
    /// How long this turn waited.
    pub waited: Duration,
}

/// A session id outside the allowed form.
#[derive(Debug, thiserror::Error)]
#[error("invalid session id `{0}`: use 1 to 128 letters, digits, `.`, `_`, `-` or `@`")]
pub struct InvalidSessionId(pub String);

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
                    Some(crate::faults::session_lease_secs(LEASE_SECS)),
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
                return Err(SessionBusy {
                    id: id.to_string(),
                    waited: wait,
                }
                .into());
            }
            std::thread::sleep(POLL);
        }
    }
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

    /// Forgets the snapshot (the run completed): the id starts anew.
    pub fn clear(&self) -> anyhow::Result<()> {
        let s = self.sessions;
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
        return Err(InvalidSessionId(id.to_string()).into());
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
        // Another tenant's `s1` is its own: free, empty, and leaves this one be.
        let other = sessions(store.clone(), "globex");
        let theirs = other.claim("s1", Duration::ZERO).unwrap();
        assert_eq!(theirs.snapshot().unwrap(), None);
        theirs.save("theirs").unwrap();
        drop(theirs);
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
