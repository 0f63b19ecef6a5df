//! The walk from node to node: one turn of a run, its jumps between flows,
//! routing after each node.

use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::api::{NodeInvoker, RunOptions, RunOutcome};
use crate::context::RunContext;
use crate::error::RunError;
use crate::flow::{Flow, Node, NodeIndex, RouteWhen};
use crate::snapshot::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot, WaitDeadline};

/// The final output: the last node's output alone, or the egress with the last
/// output appended (not twice when it was the last thing emitted; an array is
/// flattened in), as the peer runner's finalize does.
pub(super) fn finalize(mut egress: Vec<Value>, last: Value) -> Value {
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
pub(super) fn seed_vars(
    flow: &Flow,
    mut vars: Map<String, Value>,
) -> Result<Map<String, Value>, RunError> {
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
pub(super) enum FlowRef<'a> {
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
pub(super) struct Run<'r> {
    pub(super) invoker: &'r mut dyn NodeInvoker,
    pub(super) options: &'r RunOptions,
    pub(super) limit: u32,
    pub(super) steps: u32,
    pub(super) redirects: u32,
}

/// Where [`Run::flow`] begins.
pub(super) enum Start {
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
pub(super) enum Ended {
    /// The flow ended with this output.
    Completed(Value),
    /// The run waits at a node of a flow (the snapshot's egress is filled
    /// in when the turn ends).
    Parked(Box<Snapshot>),
}

/// Where routing leads after a node.
pub(super) enum Next {
    Go(NodeIndex),
    End,
    /// Conditions were given and none holds: wait here for the next message.
    Park,
}

impl<'r> Run<'r> {
    /// A turn that has already executed `steps` (a resumed run's count): the
    /// step limit applies to each turn.
    pub(super) fn new(
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

    pub(super) fn outcome(&self, ended: Ended, egress: Vec<Value>) -> RunOutcome {
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
pub(super) enum Jump {
    /// Continue in `flow` (at `node`, else its start) with `entry`.
    Goto {
        flow: String,
        node: Option<String>,
        entry: Option<Value>,
        max_redirects: u32,
    },
    /// `greentic_control` `respond`: this response is the flow's last word.
    Respond(Value),
}

/// How a node ended.
pub(super) struct Outcome {
    pub(super) output: Value,
    pub(super) ok: bool,
    /// The component's failure, kept to fail the run when no route takes it.
    pub(super) failure: Option<RunError>,
    pub(super) jump: Option<Jump>,
    /// `session.wait`: its reason; the run waits after routing.
    pub(super) wait: Option<Option<String>>,
    /// `session.wait`'s deadline (Unix ms), from its `timeout` or `until`.
    pub(super) wait_deadline: Option<u64>,
    /// The rendered input's `answer_fields`, for a parked card's answers.
    pub(super) answer_fields: Option<Value>,
}

impl Outcome {
    pub(super) fn ok(output: Value) -> Self {
        Outcome {
            output,
            ok: true,
            failure: None,
            jump: None,
            wait: None,
            wait_deadline: None,
            answer_fields: None,
        }
    }
}

impl Run<'_> {
    /// Runs `flow` from `start` until it ends or waits, following
    /// `flow.goto`s; returns the last node's output, or where it waits.
    pub(super) fn flow(
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
            if let Some(Jump::Respond(response)) = outcome.jump {
                egress.push(response.clone());
                return Ok(Ended::Completed(response));
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
            let deadline = match outcome.wait_deadline {
                None => None,
                Some(at_ms) => Some(WaitDeadline {
                    at_ms,
                    node: timeout_target(&flow, node)?,
                }),
            };
            let (nodes, prev) = ctx.take_nodes_and_prev();
            return Ok(Ended::Parked(Box::new(Snapshot {
                format: SNAPSHOT_FORMAT.into(),
                version: SNAPSHOT_VERSION,
                flow: flow.id.clone(),
                flow_hash: flow.content_hash.clone(),
                tenant: self.options.tenant.clone(),
                node: flow.nodes[wait_at.0].id.clone(),
                redispatch,
                reason,
                nodes,
                vars: ctx.take_vars(),
                prev,
                steps: self.steps,
                redirects: self.redirects,
                egress: Vec::new(),
                deadline,
            })));
        }
    }

    pub(super) fn find_flow(
        &self,
        flow: &Flow,
        node: &Node,
        id: &str,
    ) -> Result<Arc<Flow>, RunError> {
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

    /// Picks the next node: the first route that holds. On success, unconditional
    /// routes and `status: ok` hold; on failure only `status: error` and
    /// conditions that hold (e.g. `event == "on_error"`) can take the node —
    /// an unconditional route never swallows an error. A successful node whose
    /// conditions all fail parks the run (a card waiting for its answer).
    /// `on_message` routes count only when the run was `resumed` at this node
    /// with a message that is not an action, and then come first.
    pub(super) fn next(
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
                // Taken only when a wait's deadline passes (see `resume`).
                RouteWhen::Timeout => Ok(false),
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

/// Whether a message is an action (a card's button: `metadata.action`)
/// rather than free text.
pub(super) fn is_action(message: &Value) -> bool {
    message
        .pointer("/metadata/action")
        .is_some_and(|a| !a.is_null() && a != "")
}

/// A resumed card's `answers`: the message's fields but `metadata` (and the
/// runner's `input` alias), kept to the node's `answer_fields` when it lists
/// names; any other `answer_fields` (absent, unrendered) filters nothing.
pub(super) fn answers(message: &Value, allow: Option<&Value>) -> Value {
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

pub(super) fn native_error(flow: &Flow, node: &Node, kind: &str, message: String) -> RunError {
    RunError::Native {
        file: flow.name.clone(),
        node: node.id.clone(),
        kind: kind.to_string(),
        message,
    }
}

/// Where a wait with a deadline goes when it passes: its `status: timeout`
/// route's node, `None` to end the flow (`out: true`).
fn timeout_target(flow: &Flow, node: &Node) -> Result<Option<String>, RunError> {
    match node.routes.iter().find(|r| matches!(r.when, RouteWhen::Timeout)) {
        Some(route) => Ok(route.to.map(|to| flow.nodes[to.0].id.clone())),
        None => Err(native_error(
            flow,
            node,
            "session.wait",
            "a wait with `timeout` or `until` needs a route for it: `routing: [{to: <node>}, {to: <node>, status: timeout}]` (or `{out: true, status: timeout}`)".into(),
        )),
    }
}
