//! The flow model: a validated [`Flow`] (nodes, routes, templates compiled)
//! and its [`FlowPlan`].

use serde_json::Value as Json;

use crate::condition::Condition;
use crate::context::ContextNeeds;
use crate::template::{InputTemplate, Templates};

/// Default `max_steps`: how many node executions one run may make.
pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// Operation used by `component.exec` when it names none.
pub const DEFAULT_OPERATION: &str = "invoke";

/// Retry policy of a node for errors its component flags `retryable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt when the component gives no
    /// `backoff_ms`; doubled for each further attempt.
    pub delay_ms: u64,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms then 200 ms apart.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            delay_ms: 100,
        }
    }
}

/// Longest wait between attempts.
pub const MAX_RETRY_DELAY_MS: u64 = 30_000;

impl RetryPolicy {
    /// The wait after failed `attempt` (1-based): the component's `backoff_ms`
    /// if it gave one, else the doubling delay; capped at [`MAX_RETRY_DELAY_MS`].
    pub fn delay_ms(&self, attempt: u32, backoff_ms: Option<u64>) -> u64 {
        let doubling = self
            .delay_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20));
        backoff_ms.unwrap_or(doubling).min(MAX_RETRY_DELAY_MS)
    }
}

/// A flow as given to the runner (defined with the other plain-data records
/// in `greentic-baked-doc`, so a baked composition carries it as it is).
pub use greentic_baked_doc::FlowSource;

/// Index of a node in [`Flow::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeIndex(pub(crate) usize);

/// A validated flow, ready to run any number of times.
#[derive(Debug)]
pub struct Flow {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) start: NodeIndex,
    pub(crate) nodes: Vec<Node>,
    pub(crate) max_steps: u32,
    pub(crate) templates: Templates,
    /// The flow's `parameters` map (JSON), the `parameters` template root.
    pub(crate) parameters: Json,
    /// `parameters.vars_init`: declared flow variables.
    pub(crate) vars_init: Vec<VarDecl>,
    /// Template roots the flow reads that cost something to build per run.
    pub(crate) needs: ContextNeeds,
    /// Things accepted but ignored, or accepted with a doubt: one line each.
    pub(crate) notes: Vec<String>,
    /// `sha256:<hex>` of the flow's YAML and sidecars: a waiting run's
    /// snapshot names it, so it is never resumed on another version.
    pub(crate) content_hash: String,
}

/// One `parameters.vars_init` entry.
#[derive(Debug, Clone)]
pub(crate) struct VarDecl {
    pub(crate) name: String,
    pub(crate) default: Option<Json>,
    pub(crate) required: bool,
}

/// What a node does.
#[derive(Debug)]
pub(crate) enum Action {
    /// Calls a node component.
    Component(ComponentCall),
    /// Executed by the runner itself.
    Native(Native),
}

/// A component call of a node.
#[derive(Debug)]
pub(crate) struct ComponentCall {
    /// Reference as resolved from the flow and its sidecars.
    pub(crate) reference: String,
    pub(crate) operation: String,
    /// `component_id` from the resolve summary, for lookup by id.
    pub(crate) component_id: Option<String>,
    /// `sha256:<hex>` the component's bytes must have.
    pub(crate) digest: Option<String>,
    /// `component.exec.config`, merged into the payload as `config`.
    pub(crate) config: Option<InputTemplate>,
    /// `provider.invoke`'s `in_map` / `out_map` (see [`ProviderMaps`]).
    pub(crate) maps: Option<Box<ProviderMaps>>,
}

/// greentic-runner's `provider.invoke` maps: `in_map` makes the provider's
/// input and `out_map` the node's output from the answer; each sees the
/// run context plus `input` and `result` (the payload's `input` for
/// `in_map`, the answer for `out_map`).
#[derive(Debug)]
pub(crate) struct ProviderMaps {
    pub(crate) in_map: Option<InputTemplate>,
    pub(crate) out_map: Option<InputTemplate>,
}

/// Node kinds the runner executes itself (no component involved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Native {
    /// `emit.<kind>`: adds the payload to the run's egress.
    Emit(String),
    /// `var.set {name, value}`.
    VarSet,
    /// `state.get {key}`.
    StateGet,
    /// `state.set {key, value}`.
    StateSet,
    /// `flow.call {flow, input}`: runs another flow as a subroutine.
    FlowCall,
    /// `flow.goto {flow, node?, input?, max_redirects?}`: continues in another flow.
    FlowGoto,
    /// `session.wait: <reason>` / `{reason}`: ends the turn; the run waits for
    /// the next message and resumes at the node its routing names.
    Wait,
}

impl Native {
    pub(crate) fn from_op_key(key: &str) -> Option<Native> {
        Some(match key {
            "var.set" => Native::VarSet,
            "state.get" => Native::StateGet,
            "state.set" => Native::StateSet,
            "flow.call" => Native::FlowCall,
            "flow.goto" => Native::FlowGoto,
            "session.wait" => Native::Wait,
            _ => Native::Emit(
                key.strip_prefix("emit.")
                    .filter(|k| !k.is_empty())?
                    .to_string(),
            ),
        })
    }
}

/// Whether `key` is an operation key the runner owns (its native nodes, and
/// the peer runner's that it refuses by name) rather than a component's.
pub fn is_runner_op_key(key: &str) -> bool {
    Native::from_op_key(key).is_some() || unsupported_native(key).is_some()
}

/// Native node kinds of the peer runner this runner does not execute; a node
/// using one is refused with this reason.
pub(crate) fn unsupported_native(key: &str) -> Option<&'static str> {
    match key {
        "dw.agent" | "dw.agent_graph" | "sorla.call" | "operala.call" | "agentic.call"
        | "telco-x.call" | "approval.call" | "a2a" => {
            Some("remote/agent dispatch nodes are not supported by this runner")
        }
        _ => None,
    }
}

/// One node of a flow.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: String,
    /// The operation key as written (`component.exec`, `text`, `emit.log`, …).
    pub(crate) op_key: String,
    pub(crate) action: Action,
    pub(crate) input: InputTemplate,
    /// `vars_out` in the payload: variables set from the node's output.
    pub(crate) vars_out: Vec<(String, InputTemplate)>,
    pub(crate) routes: Vec<Route>,
    /// Whether a failure of this node is routed rather than failing the run:
    /// some route names `status: error` or an error event (`on_error`, …).
    pub(crate) routes_errors: bool,
    /// The `event` value on success when no `outcome` is given (the first of
    /// `on_success`, `on_complete`, `on_submit` the routes mention).
    pub(crate) success_event: &'static str,
    /// The `event` value on failure (`on_error`, `on_cancel` or `on_timeout`).
    pub(crate) error_event: &'static str,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout_ms: Option<u64>,
}

impl Node {
    /// The component call, for component nodes.
    pub(crate) fn component(&self) -> Option<&ComponentCall> {
        match &self.action {
            Action::Component(c) => Some(c),
            Action::Native(_) => None,
        }
    }
}

/// One routing entry. Routes are tried in order; the first that holds is
/// taken; if none holds, the flow ends. A node without `routing` gets one
/// route to the next node in the file (none for the last node).
#[derive(Debug)]
pub(crate) struct Route {
    /// `None` ends the flow (`out` / `reply`).
    pub(crate) to: Option<NodeIndex>,
    pub(crate) when: RouteWhen,
    /// `on_message: true`: taken first when the run resumed this waiting node
    /// with a message that is not an action (free text, not a card button).
    pub(crate) on_message: bool,
}

/// When a route is taken.
#[derive(Debug)]
pub(crate) enum RouteWhen {
    /// Always (if the node succeeded).
    Always,
    /// `condition:` holds (evaluated after the node, success or routed failure).
    Condition(String, Condition),
    /// `status: ok` (success) or `status: error` (failure).
    Status(bool),
    /// `status: timeout`: on a `session.wait` with a deadline, where the run
    /// goes when the deadline passes without a message (never otherwise).
    Timeout,
}

/// What a host needs to know to run a flow: which components to provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    /// The flow id.
    pub id: String,
    /// The start node.
    pub start: String,
    /// Every node with its resolved component and operation, in file order.
    pub nodes: Vec<NodePlan>,
    /// Distinct component references, in first-use order.
    pub components: Vec<String>,
    /// Ids of the flows this one calls (`flow.call`) or jumps to (`flow.goto`)
    /// with a literal flow id, in first-use order.
    pub calls: Vec<String>,
    /// Notes about accepted-but-ignored or doubtful parts of the flow.
    pub notes: Vec<String>,
}

/// One node in a [`FlowPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// Node id.
    pub id: String,
    /// Component reference (bare name, path relative to the flow file, or the
    /// sidecar's source reference); empty for native nodes.
    pub component: String,
    /// Operation passed to the component, or the native kind (`emit.log`, …).
    pub operation: String,
    /// The resolve summary's `component_id`, if any.
    pub component_id: Option<String>,
    /// The resolve summary's `digest` (`sha256:<hex>`), if any.
    pub digest: Option<String>,
}

impl Flow {
    /// What the run context takes from the flow.
    pub(crate) fn facts(&self) -> crate::context::FlowFacts<'_> {
        crate::context::FlowFacts {
            id: &self.id,
            needs: self.needs,
            parameters: &self.parameters,
        }
    }

    /// The flow id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The plan: nodes and the distinct components they use.
    pub fn plan(&self) -> FlowPlan {
        let mut components: Vec<String> = Vec::new();
        let mut calls: Vec<String> = Vec::new();
        for node in &self.nodes {
            match &node.action {
                Action::Component(c) if !components.contains(&c.reference) => {
                    components.push(c.reference.clone())
                }
                Action::Native(Native::FlowCall | Native::FlowGoto) => {
                    if let Some(id) = node.input.literal_field(&["flow", "flow_id"])
                        && !calls.contains(&id)
                    {
                        calls.push(id);
                    }
                }
                _ => {}
            }
        }
        FlowPlan {
            id: self.id.clone(),
            start: self.nodes[self.start.0].id.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| match &n.action {
                    Action::Component(c) => NodePlan {
                        id: n.id.clone(),
                        component: c.reference.clone(),
                        operation: c.operation.clone(),
                        component_id: c.component_id.clone(),
                        digest: c.digest.clone(),
                    },
                    Action::Native(_) => NodePlan {
                        id: n.id.clone(),
                        component: String::new(),
                        operation: n.op_key.clone(),
                        component_id: None,
                        digest: None,
                    },
                })
                .collect(),
            components,
            calls,
            notes: self.notes.clone(),
        }
    }

    pub(crate) fn node_index(&self, id: &str) -> Option<NodeIndex> {
        self.nodes.iter().position(|n| n.id == id).map(NodeIndex)
    }
}
