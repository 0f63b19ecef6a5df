//! Node components (`greentic:component/node@0.6.0`) hosted next to the runner.
//!
//! Each node component gets its own Store, so one component can never reach
//! another's memory, and a trap poisons only its own instance: the next call
//! starts a fresh one.

pub mod legacy;
mod observe;
pub mod provider;
pub mod runtime;
mod store;

use greentic_interfaces_wasmtime::component_v0_6::exports::greentic::component::node::{
    self, GuestIndices, InvocationEnvelope, InvocationResult,
};
use greentic_interfaces_wasmtime::component_v0_6::greentic::component::control;
use greentic_interfaces_wasmtime::component_v0_6::greentic::types_core::core::NodeError;
use wasmtime::Result;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

use crate::caps::Capabilities;
use crate::caps::http::{HttpClientConfig, HttpCtx};
use crate::caps::secrets::{SecretSource, SecretsCtx};
use crate::caps::state::StateCtx;
use crate::caps::state::scope::RunTenant;
use crate::caps::telemetry::TelemetryCtx;
use crate::limits::{Deadline, NodeLimits, RunDeadline, StoreLimiter, classify};
use compose::NodeAbi;
use compose::policy::{Approval, Capability, Grant};
use legacy::{LegacyInstance, LegacyPre};
pub use observe::{NodeCallRecord, NodeObserver, StderrTrace};
use provider::{ProviderInstance, ProviderPre};
use runtime::{RuntimeInstance, RuntimePre};
pub use store::NodeState;
use store::node_error;

/// What every node instance of one run shares: the backends, the run's tenant
/// and the run's host resources.
#[derive(Clone)]
pub struct RunScope {
    /// The state backend.
    pub store: std::sync::Arc<dyn greentic_state::StateStore>,
    /// The run's tenant context.
    pub tenant: RunTenant,
    /// Report progress of streaming (legacy) components on stderr.
    pub progress: bool,
    /// Sees each node call (`--trace`, serve's metrics).
    pub observer: Option<std::sync::Arc<dyn NodeObserver>>,
    /// Secret values, for components approved for secrets.
    pub secrets: std::sync::Arc<SecretSource>,
    /// Outbound HTTP limits (the profile's) and trusted CAs.
    pub http: HttpClientConfig,
    /// The flow's (or pack's) `assets/` directory, preopened read-only for
    /// components whose manifest mounts `assets`.
    pub assets: Option<std::path::PathBuf>,
    /// The whole run's deadline.
    pub deadline: RunDeadline,
}

/// The capabilities a node component was approved for (telemetry: always).
#[derive(Debug, Clone, Default)]
pub struct Granted {
    /// State store namespace and operations.
    pub state: Option<Approval>,
    /// Secret keys it may read.
    pub secrets: Option<Vec<String>>,
    /// Hosts it may reach.
    pub http: Option<Vec<String>>,
    /// Guest paths where the assets directory is mounted.
    pub asset_mounts: Vec<String>,
}

impl Granted {
    /// Whether the component gets `capability` (telemetry: always).
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Telemetry => true,
            Capability::State => self.state.is_some(),
            Capability::Secrets => self.secrets.is_some(),
            Capability::Http => self.http.is_some(),
        }
    }
}

/// The linker a node component is instantiated with: WASI (every `wasi:*@0.2.x`
/// a component imports links by semver to wasmtime-wasi's), `control`,
/// telemetry, and each gated capability only when `granted` has it — a
/// component importing one it was not granted cannot instantiate.
pub fn node_linker(engine: &Engine, granted: &Granted) -> Result<Linker<NodeState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    control::add_to_linker::<NodeState, HasSelf<NodeState>>(&mut linker, |s| s)?;
    legacy::add_control_to_linker(&mut linker)?;
    crate::caps::add_to_linker(&mut linker, |capability| granted.has(capability))?;
    Ok(linker)
}

/// The node ABI a component was bound with.
#[derive(Clone)]
enum Abi {
    V06(GuestIndices),
    Legacy(LegacyPre),
    Runtime(RuntimePre),
    Provider(ProviderPre),
}

/// A node component, linked and checked once, instantiated per run.
#[derive(Clone)]
pub struct NodeComponent {
    name: String,
    pre: InstancePre<NodeState>,
    abi: Abi,
    granted: Granted,
    limits: NodeLimits,
}

impl NodeComponent {
    /// Links `component` and binds the highest node ABI it exports, of
    /// `node@0.6.0`, `@0.5.0`, `@0.4.0`; fails if it exports none or imports
    /// something `linker` does not provide. `granted` are its approved
    /// capabilities (as `linker` was built); `limits` apply to each invocation.
    pub fn new(
        name: &str,
        component: &Component,
        linker: &Linker<NodeState>,
        granted: Granted,
        limits: NodeLimits,
    ) -> Result<Self> {
        let pre = linker
            .instantiate_pre(component)
            .with_context(|| format!("component `{name}` cannot be linked"))?;
        let engine = linker.engine();
        let ty = component.component_type();
        let negotiated = NodeAbi::negotiate(
            |export| ty.get_export(engine, export).is_some(),
            |export| legacy::exec_ctx_has_i18n(engine, &ty, export),
        );
        let node_abi = match negotiated {
            Ok(abi) => abi,
            Err(mismatch) => {
                let exports: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
                wasmtime::bail!(
                    "component `{name}` cannot be a flow node: {mismatch} (it exports: {})",
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                );
            }
        };
        let abi = match node_abi {
            NodeAbi::Node06 => Abi::V06(GuestIndices::new(&pre)?),
            NodeAbi::Runtime => Abi::Runtime(RuntimePre::new(&pre)?),
            NodeAbi::Provider => Abi::Provider(ProviderPre::new(&pre)?),
            NodeAbi::Legacy { version, i18n } => Abi::Legacy(LegacyPre::new(version, i18n, &pre)?),
        };
        let export = node_abi.export();
        tracing::debug!(component = name, abi = %export, "negotiated node ABI");
        Ok(NodeComponent {
            name: name.to_string(),
            pre,
            abi,
            granted,
            limits,
        })
    }
}

/// A live instance, per ABI.
enum Live {
    V06(node::Guest),
    Legacy(LegacyInstance),
    Runtime(RuntimeInstance),
    Provider(ProviderInstance),
}

/// A node component's instance for one run, created on first use.
pub struct NodeSlot {
    component: NodeComponent,
    scope: RunScope,
    live: Option<(Store<NodeState>, Live)>,
    /// The last envelope (without payload): the context of `on-stop`.
    last_call: Option<InvocationEnvelope>,
}

impl NodeSlot {
    /// A slot that will instantiate `component` for the run `scope` when first called.
    pub fn new(component: NodeComponent, scope: RunScope) -> Self {
        NodeSlot {
            component,
            scope,
            live: None,
            last_call: None,
        }
    }

    /// A new run on the same instance: run-scoped node state (the
    /// component-runtime ABI's `new-state`) starts empty again.
    pub fn new_run(&mut self) {
        if let Some((_, Live::Runtime(runtime))) = &mut self.live {
            runtime.new_run();
        }
    }

    /// Calls `invoke` on the node. A trap becomes a `node-error` with code
    /// `trap`, and the trapped instance is dropped.
    pub fn invoke(
        &mut self,
        op: &str,
        envelope: &InvocationEnvelope,
    ) -> Result<InvocationResult, NodeError> {
        let Some(observer) = self.scope.observer.clone() else {
            return self.invoke_untraced(op, envelope);
        };
        let started = std::time::Instant::now();
        let lines_before = self.log_lines();
        let result = self.invoke_untraced(op, envelope);
        // A trapped instance is gone with its count: it logged at least what
        // was counted before the call.
        let log_lines = self.log_lines().saturating_sub(lines_before);
        let outcome = match &result {
            Ok(r) if r.ok => "ok".to_string(),
            Ok(_) => "not-ok".to_string(),
            Err(e) => format!("error:{}", e.code),
        };
        observer.node_call(&NodeCallRecord {
            flow: &envelope.flow_id,
            node: &envelope.step_id,
            component: &self.component.name,
            attempt: envelope.attempt,
            outcome: &outcome,
            elapsed: started.elapsed(),
            log_lines,
        });
        result
    }

    /// Log lines the live instance has emitted.
    fn log_lines(&self) -> u64 {
        self.live
            .as_ref()
            .map_or(0, |(store, _)| store.data().caps.telemetry.lines)
    }

    fn invoke_untraced(
        &mut self,
        op: &str,
        envelope: &InvocationEnvelope,
    ) -> Result<InvocationResult, NodeError> {
        let limits = self.component.limits;
        if crate::limits::interrupted_for().is_some() {
            return Err(node_error(
                "interrupted",
                "the run was interrupted before this node started".into(),
            ));
        }
        if envelope.payload_cbor.len() > limits.max_payload {
            return Err(node_error(
                "payload-too-large",
                format!(
                    "input of {} bytes exceeds the payload limit of {} bytes",
                    envelope.payload_cbor.len(),
                    limits.max_payload
                ),
            ));
        }
        // Everything but the payload (not cloned: it can be large).
        let InvocationEnvelope {
            ctx,
            flow_id,
            step_id,
            component_id,
            attempt,
            payload_cbor: _,
            metadata_cbor,
        } = envelope;
        self.last_call = Some(InvocationEnvelope {
            ctx: ctx.clone(),
            flow_id: flow_id.clone(),
            step_id: step_id.clone(),
            component_id: component_id.clone(),
            attempt: *attempt,
            payload_cbor: Vec::new(),
            metadata_cbor: metadata_cbor.clone(),
        });
        if self.live.is_none() {
            let live = self.instantiate(envelope)?;
            self.live = Some(live);
        }
        let (store, live) = self.live.as_mut().expect("just instantiated");
        let mut budget = limits.budget(envelope.ctx.deadline_ms);
        if let Some(left) = self.scope.deadline.left() {
            budget = budget.min(left);
        }
        store.data_mut().deadline = crate::limits::Deadline::start(budget);
        store
            .data_mut()
            .caps
            .telemetry
            .at(&envelope.flow_id, &envelope.step_id);
        store
            .set_fuel(limits.fuel.unwrap_or(crate::limits::UNMETERED))
            .map_err(|e| node_error("internal", format!("{e:#}")))?;
        store.set_epoch_deadline(1);
        let name = &self.component.name;
        let node_id = envelope.step_id.clone();
        let mut report =
            |percent: u8| eprintln!("host-shim: node `{node_id}` ({name}): {percent}%");
        let result = match live {
            Live::V06(guest) => guest.call_invoke(&mut *store, op, envelope),
            Live::Runtime(runtime) => runtime
                .run(store, &envelope.step_id, envelope.payload_cbor.clone())
                .map(|output| {
                    Ok(InvocationResult {
                        ok: true,
                        output_cbor: output,
                        output_metadata_cbor: None,
                    })
                }),
            Live::Provider(provider) => provider.invoke(store, op, envelope),
            Live::Legacy(legacy) => {
                let progress = self
                    .scope
                    .progress
                    .then_some(&mut report as &mut dyn FnMut(u8));
                legacy.invoke(store, op, envelope, progress)
            }
        };
        store.data_mut().deadline = Deadline::far();
        match result {
            Ok(Ok(result)) if result.output_cbor.len() > limits.max_payload => Err(node_error(
                "payload-too-large",
                format!(
                    "output of {} bytes exceeds the payload limit of {} bytes",
                    result.output_cbor.len(),
                    limits.max_payload
                ),
            )),
            Ok(result) => result,
            Err(error) => {
                // A stopped or trapped instance is not reused: the next call starts a fresh one.
                self.live = None;
                let (code, message) = classify(&error, &limits);
                Err(node_error(
                    code,
                    format!("component `{}` {message}", self.component.name),
                ))
            }
        }
    }

    /// A fresh instance; legacy components get `on-start`, whose failure
    /// stops the node.
    fn instantiate(
        &self,
        envelope: &InvocationEnvelope,
    ) -> std::result::Result<(Store<NodeState>, Live), NodeError> {
        let (mut store, instance) = self
            .instantiate_store()
            .map_err(|e| node_error("instantiate-failed", format!("{e:#}")))?;
        let live = match &self.component.abi {
            Abi::V06(indices) => Live::V06(
                indices
                    .load(&mut store, &instance)
                    .map_err(|e| node_error("instantiate-failed", format!("{e:#}")))?,
            ),
            Abi::Runtime(pre) => Live::Runtime(
                pre.instantiate(&mut store, &instance)
                    .map_err(|e| node_error("instantiate-failed", format!("{e:#}")))?,
            ),
            Abi::Provider(pre) => Live::Provider(
                pre.instantiate(&mut store, &instance)
                    .map_err(|e| node_error("instantiate-failed", format!("{e:#}")))?,
            ),
            Abi::Legacy(pre) => {
                let legacy = pre
                    .instantiate(&mut store)
                    .map_err(|e| node_error("instantiate-failed", format!("{e:#}")))?;
                match legacy.on_start(&mut store, envelope) {
                    Ok(Ok(())) => {}
                    Ok(Err(message)) => {
                        return Err(node_error(
                            "on-start-failed",
                            format!(
                                "component `{}` refused to start: {message}",
                                self.component.name
                            ),
                        ));
                    }
                    Err(trap) => {
                        return Err(node_error(
                            "on-start-failed",
                            format!(
                                "component `{}` trapped in on-start: {trap:#}",
                                self.component.name
                            ),
                        ));
                    }
                }
                Live::Legacy(legacy)
            }
        };
        Ok((store, live))
    }

    fn instantiate_store(&self) -> Result<(Store<NodeState>, wasmtime::component::Instance)> {
        let engine = self.component.pre.engine();
        let granted = &self.component.granted;
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr().wall_clock(crate::clock::HostClock);
        if let Some(assets) = &self.scope.assets {
            for guest_path in &granted.asset_mounts {
                wasi.preopened_dir(
                    assets,
                    guest_path,
                    wasmtime_wasi::DirPerms::READ,
                    wasmtime_wasi::FilePerms::READ,
                )?;
            }
        }
        let wasi = wasi.build();
        let name = self.component.name.as_str();
        // Capabilities not granted get contexts that grant nothing (the
        // import is not even linked for them).
        let (id, grant) = match &granted.state {
            Some(approval) => (approval.id.as_str(), approval.grant),
            None => (name, Grant::default()),
        };
        let state = StateCtx::new(
            self.scope.store.clone(),
            self.scope.tenant.clone(),
            id,
            grant,
        );
        let tenant = self.scope.tenant.ctx().tenant_id.as_str().to_string();
        let secrets = SecretsCtx::new(
            self.scope.secrets.clone(),
            &tenant,
            name,
            granted.secrets.clone().unwrap_or_default(),
        );
        let http = HttpCtx::new(
            name,
            granted.http.clone().unwrap_or_default(),
            &self.scope.http,
        );
        let mut store = Store::new(
            engine,
            NodeState {
                wasi,
                table: ResourceTable::new(),
                caps: Capabilities {
                    state,
                    telemetry: TelemetryCtx::new(name, &tenant),
                    secrets,
                    http,
                },
                limiter: StoreLimiter::new(&self.component.limits),
                deadline: Deadline::far(),
                run_deadline: self.scope.deadline,
            },
        );
        store.limiter(|s| &mut s.limiter);
        // Checked every epoch tick: stop the component once past its
        // deadline's grace, or once the whole run is out of time.
        store.epoch_deadline_callback(|ctx| {
            let data = ctx.data();
            match data
                .run_deadline
                .passed()
                .or_else(|| data.deadline.overrun())
            {
                Some(stop) => Err(stop.into()),
                None => Ok(wasmtime::UpdateDeadline::Continue(1)),
            }
        });
        store.set_fuel(crate::limits::UNMETERED)?;
        store.set_epoch_deadline(1);
        let instance = self
            .component
            .pre
            .instantiate(&mut store)
            .with_context(|| format!("instantiating component `{}`", self.component.name))?;
        Ok((store, instance))
    }
}

impl Drop for NodeSlot {
    /// The run is over: legacy components get `on-stop`; a failure there is
    /// reported on stderr (the run's result is already decided).
    fn drop(&mut self) {
        let (Some((store, Live::Legacy(legacy))), Some(envelope)) =
            (&mut self.live, &self.last_call)
        else {
            return;
        };
        store.data_mut().deadline = Deadline::start(self.component.limits.wall_time);
        let outcome = legacy.on_stop(store, envelope, "run finished");
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(message)) => message,
            Err(trap) => format!("trapped: {trap:#}"),
        };
        eprintln!(
            "host-shim: warning: component `{}` failed in on-stop: {failure}",
            self.component.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component importing `imports` (WAT instance types), exporting nothing.
    fn importer(engine: &Engine, imports: &str) -> Component {
        let wat = format!("(component {imports})");
        Component::from_binary(engine, &wat::parse_str(&wat).unwrap()).unwrap()
    }

    #[test]
    fn newer_wasi_patch_versions_and_insecure_seed_link() {
        let engine = crate::engine::new_engine(crate::engine::EngineFor::Nodes).unwrap();
        let component = importer(
            &engine,
            r#"
            (import "wasi:random/insecure-seed@0.2.9" (instance
              (export "insecure-seed" (func (result (tuple u64 u64))))))
            (import "wasi:random/insecure@0.2.9" (instance
              (export "get-insecure-random-u64" (func (result u64)))))
            (import "wasi:cli/environment@0.2.9" (instance
              (export "get-arguments" (func (result (list string))))))
            (import "wasi:clocks/monotonic-clock@0.2.3" (instance
              (export "now" (func (result u64)))))
            "#,
        );
        let linker = node_linker(&engine, &Granted::default()).unwrap();
        linker
            .instantiate_pre(&component)
            .expect("WASI 0.2.x imports link by semver");
    }

    #[test]
    fn ungranted_capabilities_are_not_linked_but_telemetry_is() {
        // Imports with a deliberately wrong signature: linking fails either way,
        // with "implementation is missing" only when the host lacks the name.
        let engine = crate::engine::new_engine(crate::engine::EngineFor::Nodes).unwrap();
        let wrong = |name: &str| {
            importer(
                &engine,
                &format!(
                    r#"(import "{name}" (instance (export "{}" (func))))"#,
                    if name.contains("http") { "send" } else { "log" }
                ),
            )
        };
        let defined = |linker: &Linker<NodeState>, c: &Component| {
            let err = linker
                .instantiate_pre(c)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            !err.is_empty() && !err.contains("implementation is missing")
        };
        let http = wrong("greentic:http/http-client@1.1.0");
        let log = wrong("greentic:telemetry/logger-api@1.0.0");
        let plain = node_linker(&engine, &Granted::default()).unwrap();
        assert!(
            !defined(&plain, &http),
            "HTTP is linked without a grant: {:?}",
            plain.instantiate_pre(&http).err().map(|e| format!("{e:#}"))
        );
        assert!(defined(&plain, &log), "telemetry is not linked");
        let granted = Granted {
            http: Some(vec!["example.com".into()]),
            ..Granted::default()
        };
        assert!(defined(&node_linker(&engine, &granted).unwrap(), &http));
    }
}
