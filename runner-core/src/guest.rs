//! The `runner` component: maps the WIT `run` export onto [`Flow`] and node
//! calls onto the node-slot imports. Compiled only for wasm32.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{FlowError, RunError};
use crate::{
    Flow, FlowSource, NodeCall, NodeFailure, NodeInvoker, RunOptions, RunOutcome, Snapshot, Tenant,
};

#[allow(missing_docs, clippy::all)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::runner::run as wit;
use bindings::greentic::component::node::{InvocationEnvelope, InvocationResult, NodeError};
use bindings::greentic::runner::run_scope;
use bindings::greentic::state::state_store;
use bindings::greentic::types_core::core::TenantCtx;

/// Rust's allocations in the component go to talc instead of wasi-libc's
/// dlmalloc behind `malloc`: a run allocates and frees small values all the
/// time, and that path was a fifth of the component's time (bench/README.md).
/// wasi-libc keeps its own allocator for itself; talc claims the pages it
/// grows the memory by and copes with the other's growth in between.
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

struct Runner;

bindings::export!(Runner with_types_in bindings);

/// How many loaded flows an instance keeps (a flow and the flows it calls).
const FLOW_CACHE: usize = 32;

thread_local! {
    /// Flows loaded lately: hosts call `plan` then `run` (and run a flow many
    /// times, with the same library), so re-parsing and re-compiling templates
    /// each time is waste. Most recent last.
    static FLOWS: RefCell<Vec<(FlowSource, Arc<Flow>)>> = const { RefCell::new(Vec::new()) };
}

fn load(source: FlowSource) -> Result<Arc<Flow>, FlowError> {
    FLOWS.with(|cell| {
        let mut flows = cell.borrow_mut();
        if let Some(at) = flows
            .iter()
            .position(|(cached, _)| same_source(cached, &source))
        {
            let hit = flows.remove(at);
            let flow = hit.1.clone();
            flows.push(hit);
            return Ok(flow);
        }
        let flow = Arc::new(Flow::load(&source)?);
        if flows.len() == FLOW_CACHE {
            flows.remove(0);
        }
        flows.push((source, flow.clone()));
        Ok(flow)
    })
}

/// `a == b`, comparing the YAML eight bytes at a time: every run compares
/// its flow with the cached one, and wasi-libc's `memcmp` goes byte by byte
/// (2% of a 100-node run's time in the component).
fn same_source(a: &FlowSource, b: &FlowSource) -> bool {
    let FlowSource {
        name,
        yaml,
        resolve_json,
        resolve_summary_json,
        strict_templating,
    } = a;
    let (x, y) = (yaml.as_bytes(), b.yaml.as_bytes());
    if x.len() != y.len() {
        return false;
    }
    let (wx, wy) = (x.chunks_exact(8), y.chunks_exact(8));
    let tails_equal = wx.remainder() == wy.remainder();
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("8 bytes"));
    tails_equal
        && wx.zip(wy).all(|(p, q)| word(p) == word(q))
        && *name == b.name
        && *resolve_json == b.resolve_json
        && *resolve_summary_json == b.resolve_summary_json
        && *strict_templating == b.strict_templating
}

fn source(flow: wit::FlowSource) -> FlowSource {
    FlowSource {
        name: flow.name,
        yaml: flow.yaml,
        resolve_json: flow.resolve_json,
        resolve_summary_json: flow.resolve_summary_json,
        strict_templating: flow.strict_templating,
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
                    component_id: n.component_id,
                    digest: n.digest,
                })
                .collect(),
            components: plan.components,
            calls: plan.calls,
            notes: plan.notes,
        })
    }

    fn run(request: wit::RunRequest) -> Result<wit::RunOutcome, wit::RunError> {
        // Before any node: a composition's state provider keys entries by it.
        let t = &request.tenant;
        run_scope::enter(&serde_json::json!([t.env, t.tenant, t.team, t.user]).to_string());
        let flow = load(source(request.flow)).map_err(|e| to_wit(RunError::Flow(e)))?;
        let entry = crate::parse_entry(&request.entry_json).map_err(to_wit)?;
        let vars = match crate::parse_entry(&request.vars_json).map_err(to_wit)? {
            Value::Object(vars) => vars,
            other => {
                return Err(to_wit(RunError::InvalidInput(format!(
                    "flow variables must be a JSON object, got {other}"
                ))));
            }
        };
        let mut callees = Vec::with_capacity(request.library.len());
        for source_flow in request.library {
            callees.push(load(source(source_flow)).map_err(|e| to_wit(RunError::Flow(e)))?);
        }
        callees.sort_by(|a, b| a.id().cmp(b.id()));
        // No bindings: component i of the slot layout `compose` builds is in
        // slot i — the flow's distinct components, then the library's by flow id.
        let bindings: HashMap<String, u32> = if request.bindings.is_empty() {
            let mut order: Vec<String> = flow.plan().components;
            for callee in &callees {
                for component in callee.plan().components {
                    if !order.contains(&component) {
                        order.push(component);
                    }
                }
            }
            order.into_iter().zip(0..).collect()
        } else {
            request
                .bindings
                .into_iter()
                .map(|b| (b.component, b.slot))
                .collect()
        };
        let library = callees
            .into_iter()
            .map(|callee| (callee.id().to_string(), callee))
            .collect();
        let options = RunOptions {
            tenant: Tenant {
                env: request.tenant.env,
                tenant: request.tenant.tenant,
                team: request.tenant.team,
                user: request.tenant.user,
            },
            max_steps: request.max_steps,
            vars,
            library,
        };
        let trace_id = if request.trace_id.is_empty() {
            fresh_trace_id()
        } else {
            request.trace_id
        };
        let mut slots = Slots { bindings, trace_id };
        let outcome = if request.resume_snapshot.is_empty() {
            flow.start(entry, &mut slots, &options)
        } else {
            let snapshot = Snapshot::from_json(&request.resume_snapshot).map_err(|e| {
                to_wit(RunError::Snapshot {
                    file: flow.name.clone(),
                    message: e.to_string(),
                })
            })?;
            flow.resume(&snapshot, entry, &mut slots, &options)
        }
        .map_err(to_wit)?;
        Ok(match outcome {
            RunOutcome::Completed(output) => wit::RunOutcome::Completed(output.to_string()),
            RunOutcome::Waiting { output, snapshot } => wit::RunOutcome::Waiting(wit::Waiting {
                node: snapshot.node.clone(),
                reason: snapshot.reason.clone(),
                output_json: output.to_string(),
                snapshot_json: snapshot.to_json(),
            }),
        })
    }
}

/// Calls node components through the slot imports, per the run's bindings.
struct Slots {
    bindings: HashMap<String, u32>,
    trace_id: String,
}

include!(concat!(env!("OUT_DIR"), "/slot_dispatch.rs"));

/// A trace id for a run whose caller gave none, so the invocations of one run
/// share an id and the next run's differ (nodes and adapters tell runs apart
/// by it): wall-clock nanoseconds and a per-instance counter.
fn fresh_trace_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("run-{nanos:x}-{}", RUNS.fetch_add(1, Ordering::Relaxed))
}

/// Unix ms `timeout_ms` from now: the envelope's absolute `deadline-ms`.
fn deadline_after(timeout_ms: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_add(timeout_ms).max(1)
}

/// Number of node slot imports (`wit/runner.wit`).
const SLOT_COUNT: u32 = 64;

/// Flow-level state goes to the runner's state-store import under
/// `<flow id>:<key>`; the host scopes it to the run's tenant and refuses it to
/// flows the profile gives no state. Values are stored as JSON text.
fn flow_state_key(flow: &str, key: &str) -> String {
    format!("{flow}:{key}")
}

impl NodeInvoker for Slots {
    fn state_get(&mut self, flow: &str, key: &str) -> Result<Option<Value>, String> {
        match state_store::read(&flow_state_key(flow, key), None) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("stored value of `{key}` is not JSON: {e}")),
            Err(e) if e.code == "not-found" => Ok(None),
            Err(e) => Err(format!("state store: [{}] {}", e.code, e.message)),
        }
    }

    fn state_set(&mut self, flow: &str, key: &str, value: &Value) -> Result<(), String> {
        state_store::write(
            &flow_state_key(flow, key),
            value.to_string().as_bytes(),
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("state store: [{}] {}", e.code, e.message))
    }

    fn log(&mut self, flow: &str, node: &str, payload: &Value) {
        let text = match payload.get("message").or(payload.get("text")) {
            Some(Value::String(s)) => s.clone(),
            _ => payload.to_string(),
        };
        eprintln!("flow `{flow}` node `{node}`: {text}");
    }

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
                "component `{}` is bound to slot {slot}, but the runner has {} slots",
                call.component, SLOT_COUNT
            ))
        })?;
        match result {
            // Components in the wild answer `ok = true` with 0 bytes: an error
            // naming the component, not a CBOR decoding failure.
            Ok(result) if result.output_cbor.is_empty() => {
                if result.ok {
                    Err(NodeFailure::BadOutput(format!(
                        "component `{}` answered `ok = true` with an empty output",
                        call.component
                    )))
                } else {
                    Err(NodeFailure::NotOk(Value::Object(Default::default())))
                }
            }
            Ok(result) => {
                let output =
                    crate::cbor_to_json(&result.output_cbor).map_err(NodeFailure::BadOutput)?;
                if result.ok {
                    Ok(output)
                } else {
                    Err(NodeFailure::NotOk(output))
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
        RunError::Flow(FlowError::Template(..)) | RunError::Template(_) => wit::ErrorKind::Template,
        RunError::Flow(_) => wit::ErrorKind::InvalidFlow,
        RunError::InvalidInput(_) | RunError::MissingVar { .. } => wit::ErrorKind::InvalidInput,
        RunError::Condition { .. } | RunError::StepLimit { .. } => wit::ErrorKind::Routing,
        RunError::Node { .. } | RunError::NodeOutput { .. } | RunError::Native { .. } => {
            wit::ErrorKind::Node
        }
        RunError::Binding { .. } => wit::ErrorKind::Binding,
        // A waiting run is an outcome here, never this error.
        RunError::Snapshot { .. } | RunError::Waits { .. } => wit::ErrorKind::Session,
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
