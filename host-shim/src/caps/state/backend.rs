//! Choosing the greentic-state backend (`--state`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use greentic_state::inmemory::InMemoryStateStore;
use greentic_state::redis_store::RedisStateStore;
use greentic_state::{StateKey, StatePath, StateStore, TenantCtx};

use super::file::FileStateStore;
use super::scope::RunTenant;

/// Where component state lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateBackend {
    /// In this process only (greentic-state's `InMemoryStateStore`); the default.
    #[default]
    Memory,
    /// An embedded database file (redb), kept across runs: `file:PATH`.
    File(PathBuf),
    /// A Redis server (greentic-state's `RedisStateStore`): `redis://…` or `rediss://…`.
    Redis(String),
}

impl std::str::FromStr for StateBackend {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        if spec == "memory" {
            Ok(StateBackend::Memory)
        } else if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                bail!("`--state file:PATH` needs a path");
            }
            Ok(StateBackend::File(PathBuf::from(path)))
        } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
            Ok(StateBackend::Redis(spec.to_string()))
        } else {
            bail!(
                "unknown state backend `{spec}`: use `memory`, `file:PATH` or `redis://HOST[:PORT][/DB]`"
            )
        }
    }
}

impl StateBackend {
    /// Opens the backend; a Redis server is contacted once so a wrong URL fails here.
    pub fn open(&self) -> anyhow::Result<Arc<dyn StateStore>> {
        let store = self.open_backend()?;
        Ok(if crate::faults::injects_state_faults() {
            Arc::new(Unavailable(store))
        } else {
            store
        })
    }

    fn open_backend(&self) -> anyhow::Result<Arc<dyn StateStore>> {
        Ok(match self {
            StateBackend::Memory => Arc::new(InMemoryStateStore::new()),
            StateBackend::File(path) => Arc::new(FileStateStore::open(path)?),
            StateBackend::Redis(url) => {
                let store = RedisStateStore::from_url(url).map_err(|e| anyhow::anyhow!("{e}"))?;
                let probe = RunTenant::new("probe", "probe", None, None)?;
                store
                    .get_json(
                        probe.ctx(),
                        "host-shim~probe",
                        &StateKey::from("ping"),
                        None,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("cannot reach the Redis state store at `{url}`"))?;
                Arc::new(store)
            }
        })
    }
}

/// A backend that goes down when `GREENTIC_FAULTS=state-unavailable-after=N`
/// says so (debug builds; see `crate::faults`).
struct Unavailable(Arc<dyn StateStore>);

impl Unavailable {
    fn check(&self) -> greentic_types::GResult<()> {
        if crate::faults::state_unavailable() {
            return Err(greentic_state::error::unavailable(
                "the state backend is unavailable (injected fault)",
            ));
        }
        Ok(())
    }
}

impl StateStore for Unavailable {
    fn get_json(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        path: Option<&StatePath>,
    ) -> greentic_types::GResult<Option<serde_json::Value>> {
        self.check()?;
        self.0.get_json(tenant, prefix, key, path)
    }

    fn set_json(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        path: Option<&StatePath>,
        value: &serde_json::Value,
        ttl_secs: Option<u32>,
    ) -> greentic_types::GResult<()> {
        self.check()?;
        self.0.set_json(tenant, prefix, key, path, value, ttl_secs)
    }

    fn del(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
    ) -> greentic_types::GResult<bool> {
        self.check()?;
        self.0.del(tenant, prefix, key)
    }

    fn del_prefix(&self, tenant: &TenantCtx, prefix: &str) -> greentic_types::GResult<u64> {
        self.check()?;
        self.0.del_prefix(tenant, prefix)
    }

    fn set_json_if_absent(
        &self,
        tenant: &TenantCtx,
        prefix: &str,
        key: &StateKey,
        value: &serde_json::Value,
        ttl_secs: Option<u32>,
    ) -> greentic_types::GResult<bool> {
        self.check()?;
        self.0
            .set_json_if_absent(tenant, prefix, key, value, ttl_secs)
    }
}
