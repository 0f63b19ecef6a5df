//! Sequencing: runs a [`Flow`] from its start node, rendering each node's
//! input, calling its component through a [`NodeInvoker`] and following the
//! routing, until a node ends the flow.
//!
//! The run context seen by templates and conditions:
//! - `entry`: the entry payload (`{}` if none), never modified;
//! - `prev`: the previous node's output (`{}` for the first node);
//! - `node.<id>`: outputs of the nodes executed so far (the latest, if a node ran twice);
//! - `state`: a runner-made local view of the run, never read from a store:
//!   `{flow, node, step, visits, tenant: {env, tenant, team, user}}` where `node`
//!   is the node being rendered, `step` counts executed nodes from 1 and
//!   `visits` is how many times this node has run, this time included;
//! - `out` (conditions only): the output of the node whose routing is evaluated.
//!
//! All of it lives for one run only (the ephemeral outputs map); nothing persists.

use handlebars::Context;
use serde_json::{Map, Value, json};

use crate::error::RunError;
use crate::flow::{Flow, NodeIndex};

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
    /// The component answered with an unusable output (bad CBOR, `ok = false`, ...).
    BadOutput(String),
    /// There is no way to call the component (no slot bound).
    Unbound(String),
}

/// Calls node components. The wasm guest calls slot imports; native callers
/// (tests, benchmarks) plug in plain functions.
pub trait NodeInvoker {
    /// Invokes one node with its rendered input and returns its output.
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure>;

    /// Waits `delay_ms` before retrying `call`, which failed with `failure`.
    /// The default sleeps; the guest also reports the retry on stderr.
    fn before_retry(&mut self, call: &NodeCall<'_>, failure: &NodeFailure, delay_ms: u64) {
        let _ = (call, failure);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
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

impl Flow {
    /// Runs the flow with `entry` as input and returns the last node's output.
    pub fn run(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<Value, RunError> {
        let limit = options.max_steps.unwrap_or(self.max_steps);
        let tenant = &options.tenant;
        let mut ctx = Context::from(json!({
            "entry": entry,
            "prev": {},
            "node": {},
            "state": {
                "flow": self.id,
                "node": null,
                "step": 0,
                "visits": 0,
                "tenant": {
                    "env": tenant.env,
                    "tenant": tenant.tenant,
                    "team": tenant.team,
                    "user": tenant.user,
                },
            },
        }));
        let mut visits = vec![0u32; self.nodes.len()];
        let mut current = self.start;
        let mut step = 0u32;
        loop {
            let node = &self.nodes[current.0];
            if step == limit {
                return Err(RunError::StepLimit {
                    file: self.name.clone(),
                    node: node.id.clone(),
                    limit,
                });
            }
            step += 1;
            visits[current.0] += 1;
            {
                let state = &mut ctx.data_mut()["state"];
                state["node"] = Value::String(node.id.clone());
                state["step"] = step.into();
                state["visits"] = visits[current.0].into();
            }
            let input = self
                .templates
                .render(&node.id, &node.input, &ctx)
                .map_err(RunError::Template)?;
            let mut call = NodeCall {
                flow_id: &self.id,
                node: &node.id,
                component: &node.component,
                operation: &node.operation,
                input: &input,
                attempt: 1,
                timeout_ms: node.timeout_ms,
                tenant,
            };
            // Retry errors the component flags retryable, per the node's policy.
            let output = loop {
                match invoker.invoke(&call) {
                    Ok(output) => break output,
                    Err(
                        failure @ NodeFailure::Error {
                            retryable: true,
                            backoff_ms,
                            ..
                        },
                    ) if call.attempt < node.retry.max_attempts => {
                        let delay = node.retry.delay_ms(call.attempt, backoff_ms);
                        invoker.before_retry(&call, &failure, delay);
                        call.attempt += 1;
                    }
                    Err(failure) => return Err(self.node_error(current, failure, call.attempt)),
                }
            };

            let data = ctx.data_mut();
            data["node"]
                .as_object_mut()
                .expect("`node` is an object")
                .insert(node.id.clone(), output.clone());
            data["prev"] = output;
            match self.next(current, data)? {
                Some(next) => current = next,
                None => return Ok(std::mem::take(&mut data["prev"])),
            }
        }
    }

    /// Picks the first route whose condition holds; `None` ends the flow.
    fn next(&self, current: NodeIndex, data: &mut Value) -> Result<Option<NodeIndex>, RunError> {
        let node = &self.nodes[current.0];
        if node.routes.iter().all(|r| r.condition.is_none()) {
            return Ok(node.routes.first().and_then(|r| r.to));
        }
        // Conditions see this node's output as `out` (it is also `prev` now).
        let roots: &mut Map<String, Value> = data.as_object_mut().expect("context is an object");
        let out = roots["prev"].clone();
        roots.insert("out".into(), out);
        let mut chosen = Ok(None);
        for route in &node.routes {
            let holds = match &route.condition {
                None => Ok(true),
                Some((text, cond)) => cond.is_true(data).map_err(|reason| RunError::Condition {
                    file: self.name.clone(),
                    node: node.id.clone(),
                    condition: text.clone(),
                    reason,
                }),
            };
            match holds {
                Ok(true) => {
                    chosen = Ok(route.to);
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    chosen = Err(e);
                    break;
                }
            }
        }
        data.as_object_mut()
            .expect("context is an object")
            .remove("out");
        chosen
    }

    fn node_error(&self, at: NodeIndex, failure: NodeFailure, attempts: u32) -> RunError {
        let node = &self.nodes[at.0];
        let (file, id, component) = (self.name.clone(), node.id.clone(), node.component.clone());
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
}
