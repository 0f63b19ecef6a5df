//! The canonical state store, `greentic:state/state-store@1.0.0` (and `@1.1.0`
//! with `write-if-absent`), for node components, backed by greentic-state.
//!
//! Wiring follows Wasmtime's pattern: [`StateCtx`] is the per-instance
//! context, [`add_to_linker`] adds the interface through
//! greentic-interfaces-wasmtime's helper. A component only gets it when
//! [`compose::policy`] approves it; for others the import is left out of the
//! linker, so they cannot instantiate.
//!
//! Host errors reach the guest as `host-error` values with these codes:
//! `not-found` (read of a missing key), `permission-denied` (operation not
//! granted, or a tenant context outside the run's), `invalid-input` (empty
//! key), `unavailable` (the backend failed).

pub mod backend;
pub mod bindings;
pub mod bytes;
pub mod file;
pub mod scope;

use std::sync::Arc;

use greentic_interfaces_wasmtime::StateStoreHostV1_1;
use greentic_interfaces_wasmtime::host_helpers::v1::state_store::{
    OpAckV1_1, StateStoreErrorV1_1 as HostError, TenantCtxV1_1,
};
use greentic_state::StateStore;
use wasmtime::component::Linker;

pub use backend::StateBackend;
use compose::policy::Grant;
use scope::{GuestCtx, RunTenant};

/// Namespace id of the flows' own state.
pub const FLOWS_NAMESPACE: &str = "runner+flows";

/// A node instance's view of the state store.
pub struct StateCtx {
    store: Arc<dyn StateStore>,
    tenant: RunTenant,
    namespace: String,
    grant: Grant,
    component: String,
}

impl StateCtx {
    /// State for `component_id` (its manifest id), acting for `tenant`, with `grant`.
    pub fn new(
        store: Arc<dyn StateStore>,
        tenant: RunTenant,
        component_id: &str,
        grant: Grant,
    ) -> Self {
        let namespace = tenant.namespace(component_id);
        StateCtx {
            store,
            tenant,
            namespace,
            grant,
            component: component_id.to_string(),
        }
    }

    /// The flows' own state (`state.get` / `state.set` nodes, through the
    /// runner's import): one namespace for the flows of a run, keys
    /// `<flow id>:<key>`. `+` cannot occur in a component id, so no component
    /// can reach it.
    pub fn for_flows(store: Arc<dyn StateStore>, tenant: RunTenant, grant: Grant) -> Self {
        StateCtx::new(store, tenant, FLOWS_NAMESPACE, grant)
    }

    /// A context that grants nothing, for instances that have no state import.
    pub fn none() -> Self {
        let tenant = RunTenant::new("local", "default", None, None).expect("valid ids");
        StateCtx::new(
            Arc::new(greentic_state::inmemory::InMemoryStateStore::new()),
            tenant,
            "none",
            Grant::default(),
        )
    }

    fn allow(&self, op: &str, granted: bool, ctx: Option<&TenantCtxV1_1>) -> Result<(), HostError> {
        if !granted {
            return Err(denied(format!(
                "component `{}` is not granted state `{op}`",
                self.component
            )));
        }
        if let Some(ctx) = ctx {
            let guest = GuestCtx {
                env: ctx.env.clone(),
                tenants: vec![ctx.tenant.clone(), ctx.tenant_id.clone()],
                teams: ctx.team.iter().chain(ctx.team_id.iter()).cloned().collect(),
                users: ctx.user.iter().chain(ctx.user_id.iter()).cloned().collect(),
            };
            if let Err(why) = self.tenant.check(&guest) {
                tracing::warn!(component = %self.component, op, "refused a state call for another scope: {why}");
                return Err(denied(format!("tenant context refused: {why}")));
            }
        }
        Ok(())
    }

    fn key(&self, key: &str) -> Result<greentic_state::StateKey, HostError> {
        scope::store_key(key).map_err(|m| host_error("invalid-input", m))
    }
}

impl StateStoreHostV1_1 for StateCtx {
    fn read(&mut self, key: String, ctx: Option<TenantCtxV1_1>) -> Result<Vec<u8>, HostError> {
        self.allow("read", self.grant.read, ctx.as_ref())?;
        let key = self.key(&key)?;
        match self
            .store
            .get_json(self.tenant.ctx(), &self.namespace, &key, None)
        {
            Ok(Some(value)) => Ok(bytes::decode(&value)),
            Ok(None) => Err(host_error(
                "not-found",
                format!("no state under key `{}`", key.as_str()),
            )),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn write(
        &mut self,
        key: String,
        data: Vec<u8>,
        ctx: Option<TenantCtxV1_1>,
    ) -> Result<OpAckV1_1, HostError> {
        self.allow("write", self.grant.write, ctx.as_ref())?;
        let key = self.key(&key)?;
        self.store
            .set_json(
                self.tenant.ctx(),
                &self.namespace,
                &key,
                None,
                &bytes::encode(&data),
                None,
            )
            .map(|()| OpAckV1_1::Ok)
            .map_err(unavailable)
    }

    fn delete(&mut self, key: String, ctx: Option<TenantCtxV1_1>) -> Result<OpAckV1_1, HostError> {
        self.allow("delete", self.grant.delete, ctx.as_ref())?;
        let key = self.key(&key)?;
        self.store
            .del(self.tenant.ctx(), &self.namespace, &key)
            .map(|_existed| OpAckV1_1::Ok)
            .map_err(unavailable)
    }

    fn write_if_absent(
        &mut self,
        key: String,
        data: Vec<u8>,
        ctx: Option<TenantCtxV1_1>,
    ) -> Result<bool, HostError> {
        self.allow("write", self.grant.write, ctx.as_ref())?;
        let key = self.key(&key)?;
        self.store
            .set_json_if_absent(
                self.tenant.ctx(),
                &self.namespace,
                &key,
                &bytes::encode(&data),
                None,
            )
            .map_err(unavailable)
    }
}

/// Store data that can lend its [`StateCtx`].
/// Adds `greentic:state/state-store@1.0.0` and `@1.1.0` to `linker`.
pub fn add_to_linker<T: crate::caps::holds::Holds<StateCtx>>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    greentic_interfaces_wasmtime::add_state_store_compat_to_linker(linker, |t: &mut T| {
        t.held() as &mut dyn StateStoreHostV1_1
    })
}

fn host_error(code: &str, message: impl Into<String>) -> HostError {
    HostError {
        code: code.into(),
        message: message.into(),
    }
}

fn denied(message: String) -> HostError {
    host_error("permission-denied", message)
}

fn unavailable(e: impl std::fmt::Display) -> HostError {
    host_error("unavailable", format!("state backend: {e}"))
}

impl Default for StateCtx {
    /// [`StateCtx::none`].
    fn default() -> Self {
        StateCtx::none()
    }
}
