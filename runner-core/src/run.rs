//! Sequencing: runs a [`Flow`] from its start node, rendering each node's
//! input, calling its component through a [`NodeInvoker`] (or executing a
//! native node), and following the routing until a node ends the flow.
//!
//! The run context seen by templates and conditions is built by
//! [`crate::context`]; this module owns what happens between nodes: retries,
//! error routing, `vars_out`, emits, `flow.call` / `flow.goto` and the
//! `greentic_control` jump.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::context::RunContext;
use crate::error::RunError;
use crate::flow::{Action, Flow, Native, Node, NodeIndex, RouteWhen};

/// Who a run acts for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tenant {
    /// Environment id.
    pub env: String,
    /// Tenant id.
    pub tenant: String,
    /// Team id, if any.
    pub team: Option<String>,
    /// User id, if any.
    pub user: Option<String>,
}

/// Per-run settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Forwarded to components and exposed as `state.tenant`.
    pub tenant: Tenant,
    /// Overrides the flow's `max_steps`.
    pub max_steps: Option<u32>,
    /// Values of flow variables given by the caller (`--var`); they win over
    /// `parameters.vars_init` defaults.
    pub vars: Map<String, Value>,
    /// Flows that `flow.call`, `flow.goto` and `greentic_control` jumps may
    /// reach, by flow id (the flow being run need not be in it).
    pub library: HashMap<String, Arc<Flow>>,
}

/// One call of a node component.
#[derive(Debug)]
pub struct NodeCall<'a> {
    /// The flow id.
    pub flow_id: &'a str,
    /// The node id (the envelope's `step-id`).
    pub node: &'a str,
    /// Component reference from the flow.
    pub component: &'a str,
    /// Operation name.
    pub operation: &'a str,
    /// The rendered input.
    pub input: &'a Value,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The node's `timeout`, if the flow sets one.
    pub timeout_ms: Option<u64>,
    /// The run's tenant.
    pub tenant: &'a Tenant,
}

/// Why a node call produced no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFailure {
    /// The component returned `node-error`.
    Error {
        /// Component-defined code.
        code: String,
        /// Message for operators.
        message: String,
        /// Whether retrying may help.
        retryable: bool,
        /// Suggested delay before a retry.
        backoff_ms: Option<u64>,
    },
    /// The component answered `ok = false` with this output: a failure whose
    /// output is kept for error routing.
    NotOk(Value),
    /// The component answered with an unusable output (bad CBOR, ...).
    BadOutput(String),
    /// There is no way to call the component (no slot bound).
    Unbound(String),
}

/// Calls node components and provides what native nodes need from a host.
/// The wasm guest calls slot imports; native callers (tests, benchmarks) plug
/// in plain functions.
pub trait NodeInvoker {
    /// Invokes one node with its rendered input and returns its output.
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure>;

    /// Waits `delay_ms` before retrying `call`, which failed with `failure`.
    /// The default sleeps; the guest also reports the retry on stderr.
    fn before_retry(&mut self, call: &NodeCall<'_>, failure: &NodeFailure, delay_ms: u64) {
        let _ = (call, failure);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    }

    /// `state.get`: the value stored under `key` in flow `flow`'s namespace
    /// (the host scopes it to the run's tenant and decides whether the flow
    /// may use state at all).
    fn state_get(&mut self, flow: &str, key: &str) -> Result<Option<Value>, String> {
        let _ = (flow, key);
        Err("this host gives flows no state store".into())
    }

    /// `state.set`: stores `value` under `key` in flow `flow`'s namespace.
    fn state_set(&mut self, flow: &str, key: &str, value: &Value) -> Result<(), String> {
        let _ = (flow, key, value);
        Err("this host gives flows no state store".into())
    }

    /// `emit.log`: a log line from the flow (the default drops it).
    fn log(&mut self, flow: &str, node: &str, payload: &Value) {
        let _ = (flow, node, payload);
    }
}

impl<F> NodeInvoker for F
where
    F: FnMut(&NodeCall<'_>) -> Result<Value, NodeFailure>,
{
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        self(call)
    }
}

/// How deep `flow.call`s may nest (a flow calling itself forever is an error,
/// not a stack overflow).
pub const MAX_CALL_DEPTH: u32 = 16;

/// `flow.goto`'s default `max_redirects`, as in the peer runner.
pub const DEFAULT_MAX_REDIRECTS: u32 = 3;

impl Flow {
    /// Runs the flow with `entry` as input and returns its output: the last
    /// node's output, or, when nodes emitted (`emit.*`), the egress list.
    pub fn run(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<Value, RunError> {
        let mut run = Run {
            invoker,
            options,
            limit: options.max_steps.unwrap_or(self.max_steps),
            steps: 0,
            redirects: 0,
        };
        let vars = seed_vars(self, options.vars.clone())?;
        let mut egress = Vec::new();
        let last = run.flow(FlowRef::Borrowed(self), entry, vars, None, 0, &mut egress)?;
        Ok(finalize(egress, last))
    }
}

/// The final output: the last node's output alone, or the egress with the last
/// output appended (not twice when it was the last thing emitted; an array is
/// flattened in), as the peer runner's finalize does.
fn finalize(mut egress: Vec<Value>, last: Value) -> Value {
    if egress.is_empty() {
        return last;
    }
    match last {
        Value::Array(items) => egress.extend(items),
        last if egress.last() == Some(&last) => {}
        last => egress.push(last),
    }
    Value::Array(egress)
}

/// `parameters.vars_init` defaults under the caller's values; a `required`
/// variable without either is an error before any node runs.
fn seed_vars(flow: &Flow, mut vars: Map<String, Value>) -> Result<Map<String, Value>, RunError> {
    for decl in &flow.vars_init {
        if vars.contains_key(&decl.name) {
            continue;
        }
        match &decl.default {
            Some(default) => {
                vars.insert(decl.name.clone(), default.clone());
            }
            None if decl.required => {
                return Err(RunError::MissingVar {
                    file: flow.name.clone(),
                    var: decl.name.clone(),
                });
            }
            None => {}
        }
    }
    Ok(vars)
}

/// The flow being executed: the caller's, or one from the library.
enum FlowRef<'a> {
    Borrowed(&'a Flow),
    Shared(Arc<Flow>),
}

impl Deref for FlowRef<'_> {
    type Target = Flow;
    fn deref(&self) -> &Flow {
        match self {
            FlowRef::Borrowed(f) => f,
            FlowRef::Shared(f) => f,
        }
    }
}

/// One run: the counters shared by every flow it enters.
struct Run<'r> {
    invoker: &'r mut dyn NodeInvoker,
    options: &'r RunOptions,
    limit: u32,
    steps: u32,
    redirects: u32,
}

/// What a node's execution asks of the sequencer besides its output.
enum Jump {
    /// Continue in `flow` (at `node`, else its start) with `entry`.
    Goto {
        flow: String,
        node: Option<String>,
        entry: Option<Value>,
        max_redirects: u32,
    },
}

/// How a node ended.
struct Outcome {
    output: Value,
    ok: bool,
    /// The component's failure, kept to fail the run when no route takes it.
    failure: Option<RunError>,
    jump: Option<Jump>,
}

impl Run<'_> {
    /// Runs `flow` from `at` (else its start) until it ends, following
    /// `flow.goto`s; returns the last node's output.
    fn flow(
        &mut self,
        mut flow: FlowRef<'_>,
        entry: Value,
        vars: Map<String, Value>,
        at: Option<NodeIndex>,
        depth: u32,
        egress: &mut Vec<Value>,
    ) -> Result<Value, RunError> {
        let mut ctx = RunContext::new(&flow, entry, vars, &self.options.tenant);
        let mut visits = vec![0u32; flow.nodes.len()];
        let mut current = at.unwrap_or(flow.start);
        loop {
            let node = &flow.nodes[current.0];
            if self.steps == self.limit {
                return Err(RunError::StepLimit {
                    file: flow.name.clone(),
                    node: node.id.clone(),
                    limit: self.limit,
                });
            }
            self.steps += 1;
            visits[current.0] += 1;
            ctx.enter(&flow, &node.id, self.steps, visits[current.0]);
            let outcome = self.node(&flow, node, &mut ctx, depth, egress)?;
            ctx.record(&flow, &node.id, &outcome.output, outcome.ok);
            for (name, template) in &node.vars_out {
                let value = flow
                    .templates
                    .render(&node.id, template, ctx.handlebars())
                    .map_err(RunError::Template)?;
                ctx.set_var(name, value);
            }
            if let Some(Jump::Goto {
                flow: target,
                node: target_node,
                entry,
                max_redirects,
            }) = outcome.jump
            {
                self.redirects += 1;
                let kind = &node.op_key;
                if self.redirects > max_redirects {
                    return Err(native_error(
                        &flow,
                        node,
                        kind,
                        format!("more than {max_redirects} redirects (max_redirects) in one run"),
                    ));
                }
                let next = self.find_flow(&flow, node, &target)?;
                let start = match target_node {
                    None => None,
                    Some(id) => Some(next.node_index(&id).ok_or_else(|| {
                        native_error(
                            &flow,
                            node,
                            kind,
                            format!("flow `{target}` has no node `{id}`"),
                        )
                    })?),
                };
                let entry = entry.unwrap_or_else(|| ctx.entry().clone());
                let vars = seed_vars(&next, ctx.take_vars())?;
                ctx = RunContext::new(&next, entry, vars, &self.options.tenant);
                visits = vec![0u32; next.nodes.len()];
                current = start.unwrap_or(next.start);
                flow = FlowRef::Shared(next);
                continue;
            }
            match self.next(&flow, node, &mut ctx, &outcome)? {
                Some(next) => current = next,
                None => return Ok(ctx.take_prev()),
            }
        }
    }

    fn find_flow(&self, flow: &Flow, node: &Node, id: &str) -> Result<Arc<Flow>, RunError> {
        self.options.library.get(id).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.options.library.keys().map(String::as_str).collect();
            known.sort();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            native_error(
                flow,
                node,
                &node.op_key,
                format!("flow `{id}` not found (flows available to this run: {known})"),
            )
        })
    }

    /// Renders a node's input and executes it.
    fn node(
        &mut self,
        flow: &Flow,
        node: &Node,
        ctx: &mut RunContext,
        depth: u32,
        egress: &mut Vec<Value>,
    ) -> Result<Outcome, RunError> {
        let mut input = flow
            .templates
            .render(&node.id, &node.input, ctx.handlebars())
            .map_err(RunError::Template)?;
        let native = match &node.action {
            Action::Component(call) => {
                if let Some(config) = &call.config {
                    let config = flow
                        .templates
                        .render(&node.id, config, ctx.handlebars())
                        .map_err(RunError::Template)?;
                    merge_config(flow, node, &mut input, config)?;
                }
                return self.component(flow, node, &input);
            }
            Action::Native(native) => native,
        };
        let output = match native {
            Native::Emit(kind) => {
                let payload = emit_payload(input);
                if kind == "log" {
                    self.invoker.log(&flow.id, &node.id, &payload);
                } else {
                    egress.push(payload.clone());
                }
                payload
            }
            Native::VarSet => {
                let name = string_field(flow, node, &input, &["name"])?;
                let value = input.get("value").cloned().unwrap_or(Value::Null);
                if !name.is_empty() {
                    ctx.set_var(&name, value);
                }
                json!({"ok": true})
            }
            Native::StateGet => {
                let key = string_field(flow, node, &input, &["key"])?;
                let stored = self
                    .invoker
                    .state_get(&flow.id, &key)
                    .map_err(|e| native_error(flow, node, "state.get", e))?;
                let found = stored.is_some();
                let value = stored
                    .or_else(|| input.get("fallback").or(input.get("default")).cloned())
                    .unwrap_or(Value::Null);
                json!({"key": key, "value": value, "found": found})
            }
            Native::StateSet => {
                let key = string_field(flow, node, &input, &["key"])?;
                let value = input.get("value").cloned().unwrap_or(Value::Null);
                self.invoker
                    .state_set(&flow.id, &key, &value)
                    .map_err(|e| native_error(flow, node, "state.set", e))?;
                json!({"key": key, "value": value})
            }
            Native::FlowCall => {
                let target = string_field(flow, node, &input, &["flow", "flow_id"])?;
                if depth + 1 >= MAX_CALL_DEPTH {
                    return Err(native_error(
                        flow,
                        node,
                        "flow.call",
                        format!("calls nested more than {MAX_CALL_DEPTH} deep"),
                    ));
                }
                let callee = if target == flow.id && !self.options.library.contains_key(&target) {
                    None
                } else {
                    Some(self.find_flow(flow, node, &target)?)
                };
                let callee_ref = match &callee {
                    Some(f) => FlowRef::Shared(f.clone()),
                    None => FlowRef::Borrowed(flow),
                };
                let call_entry = input.get("input").cloned().unwrap_or_else(|| json!({}));
                let vars = seed_vars(&callee_ref, Map::new())?;
                // The callee's emits are its own: its output is what it returns.
                let mut callee_egress = Vec::new();
                let last = self.flow(
                    callee_ref,
                    call_entry,
                    vars,
                    None,
                    depth + 1,
                    &mut callee_egress,
                )?;
                finalize(callee_egress, last)
            }
            Native::FlowGoto => {
                let target = string_field(flow, node, &input, &["flow", "flow_id"])?;
                let max_redirects = match input.get("max_redirects") {
                    None | Some(Value::Null) => DEFAULT_MAX_REDIRECTS,
                    Some(v) => v.as_u64().map(|n| n.min(1000) as u32).ok_or_else(|| {
                        native_error(
                            flow,
                            node,
                            "flow.goto",
                            "`max_redirects` must be a number".into(),
                        )
                    })?,
                };
                let target_node = input
                    .get("node")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let entry = input.get("input").cloned();
                return Ok(Outcome {
                    output: input,
                    ok: true,
                    failure: None,
                    jump: Some(Jump::Goto {
                        flow: target,
                        node: target_node,
                        entry,
                        max_redirects,
                    }),
                });
            }
        };
        Ok(Outcome {
            output,
            ok: true,
            failure: None,
            jump: None,
        })
    }

    /// Calls a node's component, retrying errors it flags retryable. A failure
    /// becomes an output (`{ok: false, error}` or the component's own) when the
    /// node routes errors; otherwise the run fails with it.
    fn component(&mut self, flow: &Flow, node: &Node, input: &Value) -> Result<Outcome, RunError> {
        let call_spec = node.component().expect("a component node");
        let mut call = NodeCall {
            flow_id: &flow.id,
            node: &node.id,
            component: &call_spec.reference,
            operation: &call_spec.operation,
            input,
            attempt: 1,
            timeout_ms: node.timeout_ms,
            tenant: &self.options.tenant,
        };
        let failure = loop {
            match self.invoker.invoke(&call) {
                Ok(output) => {
                    let jump = control_jump(flow, node, &output)?;
                    return Ok(Outcome {
                        output,
                        ok: true,
                        failure: None,
                        jump,
                    });
                }
                Err(
                    failure @ NodeFailure::Error {
                        retryable: true,
                        backoff_ms,
                        ..
                    },
                ) if call.attempt < node.retry.max_attempts => {
                    let delay = node.retry.delay_ms(call.attempt, backoff_ms);
                    self.invoker.before_retry(&call, &failure, delay);
                    call.attempt += 1;
                }
                Err(failure) => break failure,
            }
        };
        let attempts = call.attempt;
        let output = match &failure {
            NodeFailure::NotOk(output) => output.clone(),
            NodeFailure::Error { code, message, .. } => {
                json!({"ok": false, "error": {"code": code, "message": message}})
            }
            NodeFailure::BadOutput(message) | NodeFailure::Unbound(message) => {
                json!({"ok": false, "error": {"code": "runner", "message": message}})
            }
        };
        // Binding failures are the host's, not the component's: never routed.
        let routable = node.routes_errors && !matches!(failure, NodeFailure::Unbound(_));
        let error = node_error(flow, node, failure, attempts);
        if !routable {
            return Err(error);
        }
        Ok(Outcome {
            output,
            ok: false,
            failure: Some(error),
            jump: None,
        })
    }

    /// Picks the next node: the first route that holds. On success, unconditional
    /// routes and `status: ok` hold; on failure only `status: error` and
    /// conditions that hold (e.g. `event == "on_error"`) can take the node —
    /// an unconditional route never swallows an error.
    fn next(
        &mut self,
        flow: &Flow,
        node: &Node,
        ctx: &mut RunContext,
        outcome: &Outcome,
    ) -> Result<Option<NodeIndex>, RunError> {
        let needs_conditions = node
            .routes
            .iter()
            .any(|r| matches!(r.when, RouteWhen::Condition(..)));
        if needs_conditions {
            let event = outcome
                .output
                .get("outcome")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    if outcome.ok {
                        node.success_event
                    } else {
                        node.error_event
                    }
                    .to_string()
                });
            ctx.begin_conditions(&outcome.output, event);
        }
        let mut chosen = Ok(None);
        let mut matched = false;
        for route in &node.routes {
            let holds = match &route.when {
                RouteWhen::Always => Ok(outcome.ok),
                RouteWhen::Status(ok) => Ok(*ok == outcome.ok),
                RouteWhen::Condition(text, cond) => {
                    cond.is_true(ctx.data())
                        .map_err(|reason| RunError::Condition {
                            file: flow.name.clone(),
                            node: node.id.clone(),
                            condition: text.clone(),
                            reason,
                        })
                }
            };
            match holds {
                Ok(true) => {
                    chosen = Ok(route.to);
                    matched = true;
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    chosen = Err(e);
                    break;
                }
            }
        }
        if needs_conditions {
            ctx.end_conditions();
        }
        let chosen = chosen?;
        if !outcome.ok && !matched {
            // No route took the failure.
            return Err(outcome
                .failure
                .clone()
                .expect("a failed node has its error"));
        }
        Ok(chosen)
    }
}

/// `greentic_control: {v: 1, action: "jump", flow, node?, payload?, max_redirects?}`
/// in a component's output: continue in another flow, like `flow.goto`.
/// Other actions (`respond`) are left to the flow.
fn control_jump(flow: &Flow, node: &Node, output: &Value) -> Result<Option<Jump>, RunError> {
    let Some(control) = output.get("greentic_control") else {
        return Ok(None);
    };
    if control.get("action").and_then(Value::as_str) != Some("jump") {
        return Ok(None);
    }
    let target = control
        .get("flow")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            native_error(
                flow,
                node,
                "greentic_control",
                "a `jump` needs `flow` (a flow id)".into(),
            )
        })?;
    Ok(Some(Jump::Goto {
        flow: target.to_string(),
        node: control
            .get("node")
            .and_then(Value::as_str)
            .map(str::to_string),
        entry: control.get("payload").cloned(),
        max_redirects: control
            .get("max_redirects")
            .and_then(Value::as_u64)
            .map(|n| n.min(1000) as u32)
            .unwrap_or(DEFAULT_MAX_REDIRECTS),
    }))
}

/// `component.exec.config` goes to the component as the payload's `config`.
fn merge_config(
    flow: &Flow,
    node: &Node,
    input: &mut Value,
    config: Value,
) -> Result<(), RunError> {
    match input {
        Value::Object(map) if !map.contains_key("config") => {
            map.insert("config".into(), config);
            Ok(())
        }
        Value::Object(_) => Err(native_error(
            flow,
            node,
            "component.exec",
            "both `config` and `input.config` are set; keep one".into(),
        )),
        _ => Err(native_error(
            flow,
            node,
            "component.exec",
            "`config` needs `input` to be a mapping (the config is passed as its `config` field)"
                .into(),
        )),
    }
}

/// What an `emit.*` node emits: its payload, or the payload's only field when
/// that is `payload` or `input` (the authoring shapes `{payload: …}`, `{input: …}`).
fn emit_payload(input: Value) -> Value {
    match input {
        Value::Object(map)
            if map.len() == 1 && (map.contains_key("payload") || map.contains_key("input")) =>
        {
            map.into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// A string field of a native node's rendered payload (the first of `keys`).
fn string_field(
    flow: &Flow,
    node: &Node,
    input: &Value,
    keys: &[&str],
) -> Result<String, RunError> {
    keys.iter()
        .find_map(|k| input.get(*k))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            native_error(
                flow,
                node,
                &node.op_key,
                format!("the payload needs `{}` (a string)", keys[0]),
            )
        })
}

fn native_error(flow: &Flow, node: &Node, kind: &str, message: String) -> RunError {
    RunError::Native {
        file: flow.name.clone(),
        node: node.id.clone(),
        kind: kind.to_string(),
        message,
    }
}

fn node_error(flow: &Flow, node: &Node, failure: NodeFailure, attempts: u32) -> RunError {
    let (file, id) = (flow.name.clone(), node.id.clone());
    let component = node
        .component()
        .map(|c| c.reference.clone())
        .unwrap_or_default();
    match failure {
        NodeFailure::Error {
            code,
            message,
            retryable,
            ..
        } => RunError::Node {
            file,
            node: id,
            component,
            code,
            message,
            retryable,
            attempts,
        },
        NodeFailure::NotOk(output) => RunError::NodeOutput {
            file,
            node: id,
            component,
            message: format!("component answered `ok = false` with output {output}"),
        },
        NodeFailure::BadOutput(message) => RunError::NodeOutput {
            file,
            node: id,
            component,
            message,
        },
        NodeFailure::Unbound(message) => RunError::Binding {
            file,
            node: id,
            message,
        },
    }
}
