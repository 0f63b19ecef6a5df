//! The `runner` component: maps the WIT `run` export onto [`Flow`] and node
//! calls onto the node-slot imports. Compiled only for wasm32.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use crate::error::{FlowError, RunError};
use crate::{Flow, FlowSource, NodeCall, NodeFailure, NodeInvoker, RunOptions, Tenant};

#[allow(missing_docs, clippy::all)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::runner::run as wit;
use bindings::greentic::component::node::{InvocationEnvelope, InvocationResult, NodeError};
use bindings::greentic::types_core::core::TenantCtx;

struct Runner;

bindings::export!(Runner with_types_in bindings);

thread_local! {
    /// The last flow loaded: hosts call `plan` then `run` (and run a flow many
    /// times), so re-parsing and re-compiling its templates each time is waste.
    static LAST_FLOW: RefCell<Option<(FlowSource, Rc<Flow>)>> = const { RefCell::new(None) };
}

fn load(source: FlowSource) -> Result<Rc<Flow>, FlowError> {
    LAST_FLOW.with(|cell| {
        if let Some((cached, flow)) = &*cell.borrow() {
            if *cached == source {
                return Ok(flow.clone());
            }
        }
        let flow = Rc::new(Flow::load(&source)?);
        *cell.borrow_mut() = Some((source, flow.clone()));
        Ok(flow)
    })
}

fn source(flow: wit::FlowSource) -> FlowSource {
    FlowSource {
        name: flow.name,
        yaml: flow.yaml,
        resolve_json: flow.resolve_json,
    }
}

impl wit::Guest for Runner {
    fn plan(flow: wit::FlowSource) -> Result<wit::FlowPlan, wit::RunError> {
        let plan = load(source(flow))
            .map_err(|e| to_wit(RunError::Flow(e)))?
            .plan();
        Ok(wit::FlowPlan {
            id: plan.id,
            start: plan.start,
            nodes: plan
                .nodes
                .into_iter()
                .map(|n| wit::NodePlan {
                    id: n.id,
                    component: n.component,
                    operation: n.operation,
                })
                .collect(),
            components: plan.components,
        })
    }

    fn run(request: wit::RunRequest) -> Result<String, wit::RunError> {
        let flow = load(source(request.flow)).map_err(|e| to_wit(RunError::Flow(e)))?;
        let entry = crate::parse_entry(&request.entry_json).map_err(to_wit)?;
        let options = RunOptions {
            tenant: Tenant {
                env: request.tenant.env,
                tenant: request.tenant.tenant,
                team: request.tenant.team,
                user: request.tenant.user,
            },
            max_steps: request.max_steps,
        };
        // No bindings: component i of the plan is in slot i, the layout `compose` builds.
        let bindings = if request.bindings.is_empty() {
            flow.plan().components.into_iter().zip(0..).collect()
        } else {
            request
                .bindings
                .into_iter()
                .map(|b| (b.component, b.slot))
                .collect()
        };
        let mut slots = Slots {
            bindings,
            trace_id: request.trace_id,
        };
        let output = flow.run(entry, &mut slots, &options).map_err(to_wit)?;
        Ok(output.to_string())
    }
}

/// Calls node components through the slot imports, per the run's bindings.
struct Slots {
    bindings: HashMap<String, u32>,
    trace_id: String,
}

macro_rules! call_slot {
    ($slot:expr, $op:expr, $envelope:expr; $($n:literal => $module:ident),* $(,)?) => {
        match $slot {
            $($n => Some(bindings::greentic::runner::$module::invoke($op, $envelope)),)*
            _ => None,
        }
    };
}

fn invoke_slot(
    slot: u32,
    op: &str,
    envelope: &InvocationEnvelope,
) -> Option<Result<InvocationResult, NodeError>> {
    call_slot!(slot, op, envelope;
        0 => slot_a, 1 => slot_b, 2 => slot_c, 3 => slot_d,
        4 => slot_e, 5 => slot_f, 6 => slot_g, 7 => slot_h,
    )
}

/// Unix ms `timeout_ms` from now: the envelope's absolute `deadline-ms`.
fn deadline_after(timeout_ms: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_add(timeout_ms).max(1)
}

impl NodeInvoker for Slots {
    fn before_retry(&mut self, call: &NodeCall<'_>, failure: &NodeFailure, delay_ms: u64) {
        if let NodeFailure::Error { code, message, .. } = failure {
            eprintln!(
                "runner: node `{}` attempt {} failed ([{code}] {message}); retrying in {delay_ms} ms",
                call.node, call.attempt
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    }

    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        let slot = *self.bindings.get(call.component).ok_or_else(|| {
            NodeFailure::Unbound(format!(
                "component `{}` is not bound to a node slot",
                call.component
            ))
        })?;
        let envelope = InvocationEnvelope {
            ctx: TenantCtx {
                tenant_id: call.tenant.tenant.clone(),
                team_id: call.tenant.team.clone(),
                user_id: call.tenant.user.clone(),
                env_id: call.tenant.env.clone(),
                trace_id: self.trace_id.clone(),
                correlation_id: format!("{}/{}", self.trace_id, call.node),
                deadline_ms: call.timeout_ms.map(deadline_after).unwrap_or(0),
                attempt: call.attempt,
                idempotency_key: None,
                i18n_id: String::new(),
            },
            flow_id: call.flow_id.to_string(),
            step_id: call.node.to_string(),
            component_id: call.component.to_string(),
            attempt: call.attempt,
            payload_cbor: crate::json_to_cbor(call.input),
            metadata_cbor: None,
        };
        let result = invoke_slot(slot, call.operation, &envelope).ok_or_else(|| {
            NodeFailure::Unbound(format!(
                "component `{}` is bound to slot {slot}, but the runner has 8 slots (0-7) only",
                call.component
            ))
        })?;
        match result {
            Ok(result) => {
                let output =
                    crate::cbor_to_json(&result.output_cbor).map_err(NodeFailure::BadOutput)?;
                if result.ok {
                    Ok(output)
                } else {
                    Err(NodeFailure::BadOutput(format!(
                        "component answered `ok = false` with output {output}"
                    )))
                }
            }
            Err(e) => Err(NodeFailure::Error {
                code: e.code,
                message: e.message,
                retryable: e.retryable,
                backoff_ms: e.backoff_ms,
            }),
        }
    }
}

fn to_wit(err: RunError) -> wit::RunError {
    let kind = match &err {
        RunError::Flow(FlowError::Template(_)) | RunError::Template(_) => wit::ErrorKind::Template,
        RunError::Flow(_) => wit::ErrorKind::InvalidFlow,
        RunError::InvalidInput(_) => wit::ErrorKind::InvalidInput,
        RunError::Condition { .. } | RunError::StepLimit { .. } => wit::ErrorKind::Routing,
        RunError::Node { .. } | RunError::NodeOutput { .. } => wit::ErrorKind::Node,
        RunError::Binding { .. } => wit::ErrorKind::Binding,
    };
    let code = match &err {
        RunError::Node { code, .. } => Some(code.clone()),
        _ => None,
    };
    let pos = err.position();
    wit::RunError {
        kind,
        message: err.to_string(),
        node: err.node().map(str::to_string),
        code,
        line: pos.line,
        column: pos.column,
    }
}
