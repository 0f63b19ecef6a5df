//! Node components on the legacy JSON ABIs `greentic:component@0.5.0` and
//! `@0.4.0` (seed 002), adapted to the runner's `node@0.6.0` slots: the CBOR
//! payload goes in as JSON text with an `exec-ctx` made from the envelope, and
//! `invoke-result` comes back as the 0.6 result. The two interfaces are the
//! same (0.5.0 only adds a config record), so one adapter, written once as a
//! macro over the two generated binding modules, serves both.
//!
//! Two record shapes exist under each version: with `i18n-id` in `tenant-ctx`
//! and `exec-ctx` (greentic-interfaces 0.4.113's WIT, guest crates from
//! 0.4.109) and without it (older guest crates). The host binds both and picks
//! one by inspecting the component's own `invoke` signature.
//!
//! `invoke-stream` is used when progress is wanted: `progress` events are
//! reported, `data` events make the output (one event: its value; several: an
//! array), and the list must end with `done` or `error`. `on-start` runs when
//! an instance starts and `on-stop` when the run ends.

use greentic_interfaces_wasmtime::component_v0_6::exports::greentic::component::node::{
    InvocationEnvelope, InvocationResult,
};
use greentic_interfaces_wasmtime::component_v0_6::greentic::types_core::core::NodeError;
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::store::{NodeState, node_error};

#[allow(missing_docs, clippy::all)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/legacy_bindings.rs"));
}

pub use bindings::{v04, v04_pre_i18n, v05, v05_pre_i18n};

/// A legacy component, linked.
#[derive(Clone)]
pub enum LegacyPre {
    /// `greentic:component@0.5.0`
    V05(v05::ComponentPre<NodeState>),
    /// `greentic:component@0.4.0`
    V04(v04::ComponentPre<NodeState>),
    /// `greentic:component@0.5.0` without `i18n-id`
    V05PreI18n(v05_pre_i18n::ComponentPre<NodeState>),
    /// `greentic:component@0.4.0` without `i18n-id`
    V04PreI18n(v04_pre_i18n::ComponentPre<NodeState>),
}

/// A legacy component's instance.
pub enum LegacyInstance {
    /// `greentic:component@0.5.0`
    V05(v05::Component),
    /// `greentic:component@0.4.0`
    V04(v04::Component),
    /// `greentic:component@0.5.0` without `i18n-id`
    V05PreI18n(v05_pre_i18n::Component),
    /// `greentic:component@0.4.0` without `i18n-id`
    V04PreI18n(v04_pre_i18n::Component),
}

/// Adds the legacy `control` interfaces (answered like 0.6's) to `linker`.
pub fn add_control_to_linker(linker: &mut Linker<NodeState>) -> wasmtime::Result<()> {
    v05::greentic::component::control::add_to_linker::<NodeState, HasSelf<NodeState>>(
        linker,
        |s| s,
    )?;
    v04::greentic::component::control::add_to_linker::<NodeState, HasSelf<NodeState>>(
        linker,
        |s| s,
    )?;
    // The pre-i18n shapes import the very same `control` interfaces (no record
    // in them changed), so the definitions above serve them too.
    Ok(())
}

macro_rules! control_host {
    ($m:ident) => {
        impl $m::greentic::component::control::Host for NodeState {
            fn should_cancel(&mut self) -> bool {
                NodeState::should_cancel(self)
            }
            fn yield_now(&mut self) {}
        }
    };
}
control_host!(v05);
control_host!(v04);

impl LegacyPre {
    /// Binds `pre` as legacy ABI `version` (`0.5.0` or `0.4.0`) in the record
    /// shape negotiated (`i18n`: `exec-ctx` has `i18n-id`).
    pub fn new(version: &str, i18n: bool, pre: &InstancePre<NodeState>) -> wasmtime::Result<Self> {
        Ok(match (version == "0.5.0", i18n) {
            (true, true) => LegacyPre::V05(v05::ComponentPre::new(pre.clone())?),
            (false, true) => LegacyPre::V04(v04::ComponentPre::new(pre.clone())?),
            (true, false) => LegacyPre::V05PreI18n(v05_pre_i18n::ComponentPre::new(pre.clone())?),
            (false, false) => LegacyPre::V04PreI18n(v04_pre_i18n::ComponentPre::new(pre.clone())?),
        })
    }

    /// Instantiates it in `store`.
    pub fn instantiate(&self, store: &mut Store<NodeState>) -> wasmtime::Result<LegacyInstance> {
        Ok(match self {
            LegacyPre::V05(pre) => LegacyInstance::V05(pre.instantiate(store)?),
            LegacyPre::V04(pre) => LegacyInstance::V04(pre.instantiate(store)?),
            LegacyPre::V05PreI18n(pre) => LegacyInstance::V05PreI18n(pre.instantiate(store)?),
            LegacyPre::V04PreI18n(pre) => LegacyInstance::V04PreI18n(pre.instantiate(store)?),
        })
    }
}

/// Whether the `exec-ctx` that `export`'s `invoke` takes has an `i18n-id`
/// field, read from the component's own types (`None`: no such `invoke`).
pub(super) fn exec_ctx_has_i18n(
    engine: &wasmtime::Engine,
    ty: &wasmtime::component::types::Component,
    export: &str,
) -> Option<bool> {
    use wasmtime::component::types::{ComponentItem, Type};
    let Some(ComponentItem::ComponentInstance(interface)) = ty.get_export(engine, export) else {
        return None;
    };
    let Some(ComponentItem::ComponentFunc(invoke)) = interface.get_export(engine, "invoke") else {
        return None;
    };
    let Some((_, Type::Record(exec_ctx))) = invoke.params().next() else {
        return None;
    };
    Some(exec_ctx.fields().any(|f| f.name == "i18n-id"))
}

/// An `exec-ctx` of module `$m` from a 0.6 envelope (`pre_i18n`: the shape
/// without `i18n-id`, whose records lack that field).
macro_rules! exec_ctx {
    ($m:ident, $env:expr) => {
        exec_ctx!(@build $m, $env, [i18n_id: None,])
    };
    ($m:ident, $env:expr, pre_i18n) => {
        exec_ctx!(@build $m, $env, [])
    };
    (@build $m:ident, $env:expr, [$($i18n:tt)*]) => {{
        use $m::exports::greentic::component::node as n;
        let env: &InvocationEnvelope = $env;
        n::ExecCtx {
            tenant: n::TenantCtx {
                tenant: env.ctx.tenant_id.clone(),
                team: env.ctx.team_id.clone(),
                user: env.ctx.user_id.clone(),
                trace_id: Some(env.ctx.trace_id.clone()),
                $($i18n)*
                correlation_id: Some(env.ctx.correlation_id.clone()),
                deadline_unix_ms: (env.ctx.deadline_ms != 0).then_some(env.ctx.deadline_ms),
                attempt: env.attempt,
                idempotency_key: env.ctx.idempotency_key.clone(),
            },
            $($i18n)*
            flow_id: env.flow_id.clone(),
            node_id: Some(env.step_id.clone()),
        }
    }};
}

macro_rules! invoke_legacy {
    ($m:ident, $component:expr, $store:expr, $op:expr, $env:expr, $progress:expr $(, $shape:ident)?) => {{
        use $m::exports::greentic::component::node as n;
        let ctx = exec_ctx!($m, $env $(, $shape)?);
        let input = match runner_core::cbor_to_json(&$env.payload_cbor) {
            Ok(v) => v.to_string(),
            Err(e) => return Ok(Err(node_error("invalid-input", e))),
        };
        let node = $component.greentic_component_node();
        match $progress {
            Some(report) => {
                let events = node.call_invoke_stream(&mut *$store, &ctx, $op, &input)?;
                let mut data = Vec::new();
                let mut end = None;
                for event in events {
                    if end.is_some() {
                        return Ok(Err(node_error(
                            "bad-stream",
                            "events after the end of the stream".into(),
                        )));
                    }
                    match event {
                        n::StreamEvent::Progress(p) => report(p),
                        n::StreamEvent::Data(json) => data.push(json),
                        n::StreamEvent::Done => end = Some(Ok(())),
                        n::StreamEvent::Error(message) => end = Some(Err(message)),
                    }
                }
                Ok(match end {
                    None => Err(node_error(
                        "bad-stream",
                        "the stream ended without `done` or `error`".into(),
                    )),
                    Some(Err(message)) => Err(node_error("stream-error", message)),
                    Some(Ok(())) => output(data),
                })
            }
            None => Ok(match node.call_invoke(&mut *$store, &ctx, $op, &input)? {
                n::InvokeResult::Ok(json) => output(vec![json]).map(|r| r),
                n::InvokeResult::Err(e) => Err(NodeError {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                    backoff_ms: e.backoff_ms,
                    details: e.details.map(String::into_bytes),
                }),
            }),
        }
    }};
}

impl LegacyInstance {
    /// `on-start`; `Err(message)` when the component refuses to start.
    pub fn on_start(
        &self,
        store: &mut Store<NodeState>,
        env: &InvocationEnvelope,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(match self {
            LegacyInstance::V05(c) => c
                .greentic_component_node()
                .call_on_start(store, &exec_ctx!(v05, env))?
                .map(|_| ()),
            LegacyInstance::V04(c) => c
                .greentic_component_node()
                .call_on_start(store, &exec_ctx!(v04, env))?
                .map(|_| ()),
            LegacyInstance::V05PreI18n(c) => c
                .greentic_component_node()
                .call_on_start(store, &exec_ctx!(v05_pre_i18n, env, pre_i18n))?
                .map(|_| ()),
            LegacyInstance::V04PreI18n(c) => c
                .greentic_component_node()
                .call_on_start(store, &exec_ctx!(v04_pre_i18n, env, pre_i18n))?
                .map(|_| ()),
        })
    }

    /// `on-stop`; `Err(message)` when the component reports a failure.
    pub fn on_stop(
        &self,
        store: &mut Store<NodeState>,
        env: &InvocationEnvelope,
        reason: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(match self {
            LegacyInstance::V05(c) => c
                .greentic_component_node()
                .call_on_stop(store, &exec_ctx!(v05, env), reason)?
                .map(|_| ()),
            LegacyInstance::V04(c) => c
                .greentic_component_node()
                .call_on_stop(store, &exec_ctx!(v04, env), reason)?
                .map(|_| ()),
            LegacyInstance::V05PreI18n(c) => c
                .greentic_component_node()
                .call_on_stop(store, &exec_ctx!(v05_pre_i18n, env, pre_i18n), reason)?
                .map(|_| ()),
            LegacyInstance::V04PreI18n(c) => c
                .greentic_component_node()
                .call_on_stop(store, &exec_ctx!(v04_pre_i18n, env, pre_i18n), reason)?
                .map(|_| ()),
        })
    }

    /// `invoke`, or `invoke-stream` when `progress` is given.
    pub fn invoke(
        &self,
        store: &mut Store<NodeState>,
        op: &str,
        env: &InvocationEnvelope,
        progress: Option<&mut dyn FnMut(u8)>,
    ) -> wasmtime::Result<Result<InvocationResult, NodeError>> {
        match self {
            LegacyInstance::V05(c) => invoke_legacy!(v05, c, store, op, env, progress),
            LegacyInstance::V04(c) => invoke_legacy!(v04, c, store, op, env, progress),
            LegacyInstance::V05PreI18n(c) => {
                invoke_legacy!(v05_pre_i18n, c, store, op, env, progress, pre_i18n)
            }
            LegacyInstance::V04PreI18n(c) => {
                invoke_legacy!(v04_pre_i18n, c, store, op, env, progress, pre_i18n)
            }
        }
    }
}

/// The 0.6 result for JSON outputs: one value as is, several as an array.
fn output(mut data: Vec<String>) -> Result<InvocationResult, NodeError> {
    let parse = |json: &str| {
        serde_json::from_str::<Value>(json)
            .map_err(|e| node_error("invalid-output", format!("output is not JSON: {e}")))
    };
    let value = match data.len() {
        1 => parse(&data.pop().unwrap())?,
        _ => Value::Array(data.iter().map(|d| parse(d)).collect::<Result<_, _>>()?),
    };
    Ok(InvocationResult {
        ok: true,
        output_cbor: runner_core::json_to_cbor(&value),
        output_metadata_cbor: None,
    })
}
