//! Component nodes: the call through the [`NodeInvoker`], retries, the
//! `greentic_control` jump, and node errors.

use serde_json::{Value, json};

use super::api::{DEFAULT_MAX_REDIRECTS, NodeCall, NodeFailure};
use super::walk::{Jump, Outcome, Run, native_error};
use crate::error::RunError;
use crate::flow::{Flow, Node};

impl Run<'_> {
    /// Calls a node's component, retrying errors it flags retryable. A failure
    /// becomes an output (`{ok: false, error}` or the component's own) when the
    /// node routes errors; otherwise the run fails with it.
    pub(super) fn component(
        &mut self,
        flow: &Flow,
        node: &Node,
        input: &Value,
    ) -> Result<Outcome, RunError> {
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
}

/// `greentic_control` in a component's output (greentic-runner's, `v: 1`):
/// - `{action: "jump", flow, node?, payload?, max_redirects?}` — or with
///   `target: {flow, node?}` and `params`, as greentic's pack2flow writes it —
///   continues in another flow, like `flow.goto`;
/// - `{action: "respond", text?, card_cbor?, needs_user?}` adds that response
///   to the egress and ends the flow.
///
/// Other actions are left to the flow.
pub(super) fn control_jump(
    flow: &Flow,
    node: &Node,
    output: &Value,
) -> Result<Option<Jump>, RunError> {
    let Some(control) = output.get("greentic_control") else {
        return Ok(None);
    };
    let bad = |message: String| native_error(flow, node, "greentic_control", message);
    if let Some(v) = control.get("v")
        && v != &json!(1)
    {
        return Err(bad(format!(
            "unsupported version `v: {v}` (this runner reads v: 1)"
        )));
    }
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match control.get("action").and_then(Value::as_str) {
        Some("jump") => {
            let target = control.get("target");
            let to_flow = text(control.get("flow"))
                .or_else(|| text(target.and_then(|t| t.get("flow"))))
                .ok_or_else(|| bad("a `jump` needs `flow` (a flow id)".into()))?;
            Ok(Some(Jump::Goto {
                flow: to_flow,
                node: text(control.get("node"))
                    .or_else(|| text(target.and_then(|t| t.get("node")))),
                entry: control.get("payload").or(control.get("params")).cloned(),
                max_redirects: control
                    .get("max_redirects")
                    .and_then(Value::as_u64)
                    .map(|n| n.min(1000) as u32)
                    .unwrap_or(DEFAULT_MAX_REDIRECTS),
            }))
        }
        Some("respond") => Ok(Some(Jump::Respond(json!({
            "text": control.get("text").cloned().unwrap_or(Value::Null),
            "card_cbor": control.get("card_cbor").cloned().unwrap_or(Value::Null),
            "needs_user": control.get("needs_user").cloned().unwrap_or(Value::Null),
        })))),
        _ => Ok(None),
    }
}

pub(super) fn node_error(
    flow: &Flow,
    node: &Node,
    failure: NodeFailure,
    attempts: u32,
) -> RunError {
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
