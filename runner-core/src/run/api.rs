//! What a run is given and gives back: [`RunOptions`], [`RunOutcome`], and the
//! [`NodeInvoker`] a host implements to call node components.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::context::Tenant;
use crate::flow::Flow;
use crate::snapshot::Snapshot;

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
