//! Sequencing: runs a [`Flow`] from its start node, rendering each node's
//! input, calling its component through a [`NodeInvoker`] (or executing a
//! native node), and following the routing until a node ends the flow.
//!
//! The run context seen by templates and conditions is built by
//! [`crate::context`]; this module owns what happens between nodes: retries,
//! error routing, `vars_out`, emits, `flow.call` / `flow.goto` and the
//! `greentic_control` jump, and turns: a run that waits (`session.wait`, or
//! conditional routing that matches nothing) ends its turn with a
//! [`Snapshot`] that [`Flow::resume`] continues with the next message.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::context::{RunContext, Tenant};
use crate::error::RunError;
use crate::flow::{Action, Flow, Native, Node, NodeIndex, RouteWhen};
use crate::snapshot::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot};

/// How a turn of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The flow ended: its output.
    Completed(Value),
    /// The run waits for the next message.
    Waiting {
        /// What this turn answers: the egress and the waiting node's output,
        /// as a completed run's output is made.
        output: Value,
        /// What [`Flow::resume`] needs to continue.
        snapshot: Box<Snapshot>,
    },
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
    /// node's output, or, when nodes emitted (`emit.*`), the egress list. A
    /// run that would wait for another message is an error here; use
    /// [`Flow::start`] where runs may wait.
    pub fn run(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<Value, RunError> {
        match self.start(entry, invoker, options)? {
            RunOutcome::Completed(output) => Ok(output),
            RunOutcome::Waiting { snapshot, .. } => {
                let Snapshot { flow, node, .. } = *snapshot;
                Err(RunError::Waits {
                    file: self.name.clone(),
                    flow,
                    node,
                })
            }
        }
    }

    /// Runs the flow's first turn with `entry` as input.
    pub fn start(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let mut run = Run::new(invoker, options, self, 0, 0);
        let vars = seed_vars(self, options.vars.clone())?;
        let mut egress = Vec::new();
        let ended = run.flow(
            FlowRef::Borrowed(self),
            entry,
            vars,
            Start::At(None),
            0,
            &mut egress,
        )?;
        Ok(run.outcome(ended, egress))
    }

    /// Continues a waiting run (`snapshot`, from a turn of this flow) with the
    /// next `message`, which replaces `entry` and `in`; `node.*`, `vars` and
    /// `prev` are the snapshot's. The snapshot must belong to this flow or,
    /// after a `flow.goto`, to a flow of `options.library`, in the very
    /// version that wrote it.
    pub fn resume(
        &self,
        snapshot: &Snapshot,
        message: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let refused = |message: String| RunError::Snapshot {
            file: self.name.clone(),
            message,
        };
        if snapshot.format != SNAPSHOT_FORMAT || snapshot.version != SNAPSHOT_VERSION {
            return Err(refused(format!(
                "format `{}` version {} is not this runner's",
                snapshot.format, snapshot.version
            )));
        }
        let flow = if snapshot.flow == self.id {
            FlowRef::Borrowed(self)
        } else {
            match options.library.get(&snapshot.flow) {
                Some(f) => FlowRef::Shared(f.clone()),
                None => {
                    return Err(refused(format!(
                        "the run waits in flow `{}`, which is neither this flow (`{}`) nor one of the flows given with it",
                        snapshot.flow, self.id
                    )));
                }
            }
        };
        let tenant = crate::snapshot::SnapshotTenant::from(&options.tenant);
        if snapshot.tenant != tenant {
            return Err(refused(format!(
                "the run belongs to tenant `{}`/`{}` (team {:?}, user {:?}), not to this run's",
                snapshot.tenant.env,
                snapshot.tenant.tenant,
                snapshot.tenant.team,
                snapshot.tenant.user
            )));
        }
        if flow.content_hash != snapshot.flow_hash {
            return Err(refused(format!(
                "the run waits in another version of flow `{}` ({}; this one is {}): it cannot be resumed on a changed flow",
                snapshot.flow, snapshot.flow_hash, flow.content_hash
            )));
        }
        let at = flow.node_index(&snapshot.node).ok_or_else(|| {
            refused(format!(
                "flow `{}` has no node `{}`",
                snapshot.flow, snapshot.node
            ))
        })?;
        let mut vars = snapshot.vars.clone();
        for (name, value) in &options.vars {
            vars.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let mut run = Run::new(invoker, options, &flow, snapshot.steps, snapshot.redirects);
        let mut egress = Vec::new();
        let start = Start::Resume {
            at,
            redispatch: snapshot.redispatch,
            nodes: snapshot.nodes.clone(),
            prev: snapshot.prev.clone(),
        };
        let ended = run.flow(flow, message, vars, start, 0, &mut egress)?;
        Ok(run.outcome(ended, egress))
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

/// One turn of a run: the counters shared by every flow it enters.
struct Run<'r> {
    invoker: &'r mut dyn NodeInvoker,
    options: &'r RunOptions,
    limit: u32,
    steps: u32,
    redirects: u32,
}

/// Where [`Run::flow`] begins.
enum Start {
    /// At a node, else the flow's start: a new run (or a goto / call).
    At(Option<NodeIndex>),
    /// A waiting run's next turn.
    Resume {
        at: NodeIndex,
        /// Run `at` again (a parked card) rather than for the first time.
        redispatch: bool,
        nodes: Map<String, Value>,
        prev: Value,
    },
}

/// How [`Run::flow`] ended.
enum Ended {
    /// The flow ended with this output.
    Completed(Value),
    /// The run waits at a node of a flow (the snapshot's egress is filled
    /// in when the turn ends).
    Parked(Box<Snapshot>),
}

/// Where routing leads after a node.
enum Next {
    Go(NodeIndex),
    End,
    /// Conditions were given and none holds: wait here for the next message.
    Park,
}

impl<'r> Run<'r> {
    /// A turn that has already executed `steps` (a resumed run's count): the
    /// step limit applies to each turn.
    fn new(
        invoker: &'r mut dyn NodeInvoker,
        options: &'r RunOptions,
        flow: &Flow,
        steps: u32,
        redirects: u32,
    ) -> Self {
        Run {
            invoker,
            options,
            limit: steps.saturating_add(options.max_steps.unwrap_or(flow.max_steps)),
            steps,
            redirects,
        }
    }

    fn outcome(&self, ended: Ended, egress: Vec<Value>) -> RunOutcome {
        match ended {
            Ended::Completed(last) => RunOutcome::Completed(finalize(egress, last)),
            Ended::Parked(mut snapshot) => {
                snapshot.egress = egress;
                RunOutcome::Waiting {
                    output: finalize(snapshot.egress.clone(), snapshot.prev.clone()),
                    snapshot,
                }
            }
        }
    }
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
    /// `session.wait`: its reason; the run waits after routing.
    wait: Option<Option<String>>,
    /// The rendered input's `answer_fields`, for a parked card's answers.
    answer_fields: Option<Value>,
}

impl Outcome {
    fn ok(output: Value) -> Self {
        Outcome {
            output,
            ok: true,
            failure: None,
            jump: None,
            wait: None,
            answer_fields: None,
        }
    }
}

impl Run<'_> {
    /// Runs `flow` from `start` until it ends or waits, following
    /// `flow.goto`s; returns the last node's output, or where it waits.
    fn flow(
        &mut self,
        mut flow: FlowRef<'_>,
        entry: Value,
        vars: Map<String, Value>,
        start: Start,
        depth: u32,
        egress: &mut Vec<Value>,
    ) -> Result<Ended, RunError> {
        let mut ctx = RunContext::new(flow.facts(), entry, vars, &self.options.tenant);
        let mut visits = vec![0u32; flow.nodes.len()];
        // The node a parked card resumes at runs again with the answers.
        let (mut current, mut resumed) = match start {
            Start::At(at) => (at.unwrap_or(flow.start), false),
            Start::Resume {
                at,
                redispatch,
                nodes,
                prev,
            } => {
                ctx.restore(nodes, prev);
                (at, redispatch)
            }
        };
        loop {
            let node = &flow.nodes[current.0];
            let resumed_here = std::mem::take(&mut resumed);
            if self.steps == self.limit {
                return Err(RunError::StepLimit {
                    file: flow.name.clone(),
                    node: node.id.clone(),
                    limit: self.limit,
                });
            }
            self.steps += 1;
            visits[current.0] += 1;
            ctx.enter(&node.id, self.steps, visits[current.0]);
            let mut outcome = self.node(&flow, node, &mut ctx, depth, egress)?;
            if resumed_here && let Value::Object(output) = &mut outcome.output {
                output.insert(
                    "answers".into(),
                    answers(ctx.entry(), outcome.answer_fields.as_ref()),
                );
            }
            ctx.record(&node.id, &outcome.output, outcome.ok);
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
                ctx = RunContext::new(next.facts(), entry, vars, &self.options.tenant);
                visits = vec![0u32; next.nodes.len()];
                current = start.unwrap_or(next.start);
                flow = FlowRef::Shared(next);
                continue;
            }
            let next = self.next(&flow, node, &mut ctx, &outcome, resumed_here)?;
            let (wait_at, redispatch, reason) = match (outcome.wait, next) {
                (Some(reason), Next::Go(next)) => (next, false, reason),
                (Some(_), _) => {
                    return Err(native_error(
                        &flow,
                        node,
                        "session.wait",
                        "no route was taken: a waiting run needs the node to resume at".into(),
                    ));
                }
                (None, Next::Go(next)) => {
                    current = next;
                    continue;
                }
                (None, Next::End) => return Ok(Ended::Completed(ctx.take_prev())),
                (None, Next::Park) => (current, true, None),
            };
            if depth > 0 {
                return Err(native_error(
                    &flow,
                    node,
                    "flow.call",
                    format!(
                        "flow `{}` was called with `flow.call` and would wait here for the next message; a called flow cannot wait (continue with `flow.goto` instead)",
                        flow.id
                    ),
                ));
            }
            let (nodes, prev) = ctx.take_nodes_and_prev();
            return Ok(Ended::Parked(Box::new(Snapshot {
                format: SNAPSHOT_FORMAT.into(),
                version: SNAPSHOT_VERSION,
                flow: flow.id.clone(),
                flow_hash: flow.content_hash.clone(),
                tenant: (&self.options.tenant).into(),
                node: flow.nodes[wait_at.0].id.clone(),
                redispatch,
                reason,
                nodes,
                vars: ctx.take_vars(),
                prev,
                steps: self.steps,
                redirects: self.redirects,
                egress: Vec::new(),
            })));
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
                let mut outcome = self.component(flow, node, &input)?;
                outcome.answer_fields = input.get("answer_fields").cloned();
                return Ok(outcome);
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
                let ended = self.flow(
                    callee_ref,
                    call_entry,
                    vars,
                    Start::At(None),
                    depth + 1,
                    &mut callee_egress,
                )?;
                let Ended::Completed(last) = ended else {
                    unreachable!("a called flow that waits is an error where it waits");
                };
                finalize(callee_egress, last)
            }
            Native::Wait => {
                let reason = match &input {
                    Value::String(s) => Some(s.clone()),
                    other => other
                        .get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                };
                let mut outcome = Outcome::ok(json!({"waiting": true, "reason": reason}));
                outcome.wait = Some(reason);
                return Ok(outcome);
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
                let mut outcome = Outcome::ok(input);
                outcome.jump = Some(Jump::Goto {
                    flow: target,
                    node: target_node,
                    entry,
                    max_redirects,
                });
                return Ok(outcome);
            }
        };
        Ok(Outcome::ok(output))
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
                    let mut outcome = Outcome::ok(output);
                    outcome.jump = jump;
                    return Ok(outcome);
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
            ok: false,
            failure: Some(error),
            ..Outcome::ok(output)
        })
    }

    /// Picks the next node: the first route that holds. On success, unconditional
    /// routes and `status: ok` hold; on failure only `status: error` and
    /// conditions that hold (e.g. `event == "on_error"`) can take the node —
    /// an unconditional route never swallows an error. A successful node whose
    /// conditions all fail parks the run (a card waiting for its answer).
    /// `on_message` routes count only when the run was `resumed` at this node
    /// with a message that is not an action, and then come first.
    fn next(
        &mut self,
        flow: &Flow,
        node: &Node,
        ctx: &mut RunContext,
        outcome: &Outcome,
        resumed: bool,
    ) -> Result<Next, RunError> {
        let free_text = resumed && !is_action(ctx.entry());
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
        let on_message_first = node
            .routes
            .iter()
            .filter(|r| r.on_message && free_text)
            .chain(node.routes.iter().filter(|r| !r.on_message));
        for route in on_message_first {
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
        Ok(match chosen {
            Some(next) => Next::Go(next),
            None if needs_conditions && !matched => Next::Park,
            None => Next::End,
        })
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

/// Whether a message is an action (a card's button: `metadata.action`)
/// rather than free text.
fn is_action(message: &Value) -> bool {
    message
        .pointer("/metadata/action")
        .is_some_and(|a| !a.is_null() && a != "")
}

/// A resumed card's `answers`: the message's fields but `metadata` (and the
/// runner's `input` alias), kept to the node's `answer_fields` when it lists
/// names; any other `answer_fields` (absent, unrendered) filters nothing.
fn answers(message: &Value, allow: Option<&Value>) -> Value {
    let Value::Object(fields) = message else {
        return json!({});
    };
    let allowed: Option<Vec<&str>> = allow
        .and_then(Value::as_array)
        .and_then(|names| names.iter().map(Value::as_str).collect());
    Value::Object(
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "metadata" && k.as_str() != "input")
            .filter(|(k, _)| allowed.as_ref().is_none_or(|a| a.contains(&k.as_str())))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
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
