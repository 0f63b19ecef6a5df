//! The flow model (YGTC v2) and its loading: YAML -> validated [`Flow`] with
//! every template and condition compiled.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use crate::condition::Condition;
use crate::context::ContextNeeds;
use crate::error::FlowError;
use crate::template::{InputTemplate, Templates};
use crate::yaml;

/// Default `max_steps`: how many node executions one run may make.
pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// Operation used by `component.exec` when it names none.
pub const DEFAULT_OPERATION: &str = "invoke";

/// Top-level keys this runner reads. Any other top-level key is accepted, as
/// greentic-flow accepts it: `x-*` keys silently, others with a note.
const TOP_LEVEL_KEYS: &[&str] = &[
    "id",
    "type",
    "schema_version",
    "title",
    "description",
    "start",
    "entrypoints",
    "nodes",
    "parameters",
    "tags",
    "meta",
    "max_steps",
    "templating",
    "slot_schema",
];

/// Flow `type`s greentic-flow's compiler accepts.
const FLOW_TYPES: &[&str] = &[
    "messaging",
    "event",
    "events",
    "component-config",
    "job",
    "http",
];

/// Node keys besides the operation key that this runner interprets.
const NODE_KEYS: &[&str] = &["routing", "retry", "timeout", "operation"];

/// Node keys greentic-flow reserves that have no runtime meaning (in the peer
/// runner either): accepted and ignored, with a note.
const IGNORED_NODE_KEYS: &[&str] = &[
    "title",
    "description",
    "meta",
    "telemetry",
    "output",
    "annotations",
    "conversational",
];

/// YGTC node keys this runner does not implement: refused rather than ignored,
/// because ignoring them would change what the flow does.
const UNSUPPORTED_NODE_KEYS: &[&str] = &["when", "in_map", "out_map", "err_map"];

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

/// A flow as given to the runner: its YAML text, a name for messages and the
/// optional resolve sidecars.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowSource {
    /// Name used in messages, normally the flow file's path.
    pub name: String,
    /// The YAML document.
    pub yaml: String,
    /// The `<flow file>.resolve.json` sidecar's text, if any.
    pub resolve_json: Option<String>,
    /// The `<flow file>.resolve.summary.json` sidecar's text, if any (packc's
    /// resolved form: `component_id`, `digest`, `source` per node).
    pub resolve_summary_json: Option<String>,
    /// Overrides the flow's `templating:` setting (`Some(true)` = strict).
    pub strict_templating: Option<bool>,
}

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
    fn from_op_key(key: &str) -> Option<Native> {
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
fn unsupported_native(key: &str) -> Option<&'static str> {
    match key {
        "provider.invoke" => Some("provider packs are not supported by this runner"),
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
}

const ERROR_EVENTS: [&str; 3] = ["on_error", "on_cancel", "on_timeout"];
const SUCCESS_EVENTS: [&str; 3] = ["on_success", "on_complete", "on_submit"];

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

    /// Parses and validates a flow, compiling all templates and conditions.
    pub fn load(source: &FlowSource) -> Result<Flow, FlowError> {
        Loader::new(source).load()
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

/// A resolved sidecar entry for one node.
#[derive(Debug, Default, Clone)]
struct Resolved {
    reference: Option<String>,
    component_id: Option<String>,
    digest: Option<String>,
}

struct Loader<'a> {
    source: &'a FlowSource,
    notes: std::cell::RefCell<Vec<String>>,
}

impl<'a> Loader<'a> {
    fn new(source: &'a FlowSource) -> Self {
        Loader {
            source,
            notes: Default::default(),
        }
    }

    fn file(&self) -> String {
        self.source.name.clone()
    }

    fn note(&self, text: String) {
        self.notes.borrow_mut().push(text);
    }

    fn invalid(&self, node: Option<&str>, message: impl Into<String>) -> FlowError {
        FlowError::Invalid {
            file: self.file(),
            node: node.map(str::to_string),
            pos: node
                .map(|n| yaml::node_position(&self.source.yaml, n))
                .unwrap_or_default(),
            message: message.into(),
        }
    }

    fn load(&self) -> Result<Flow, FlowError> {
        let doc = yaml::parse(&self.source.name, &self.source.yaml)?;
        let Yaml::Mapping(top) = doc else {
            return Err(self.invalid(None, "a flow must be a YAML mapping with `id` and `nodes`"));
        };
        self.refuse_legacy_document(&top)?;
        for key in top.keys() {
            let key = yaml::key_str(key);
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
                self.note(format!(
                    "top-level key `{key}` is not used by this runner (ignored)"
                ));
            }
        }
        // YGTC requires `id`; seed 001's example has none, so default to the file stem.
        let id = match yaml::get(&top, "id") {
            Some(Yaml::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(self.invalid(None, "`id` must be a non-empty string")),
            None => default_flow_id(&self.source.name),
        };
        match yaml::get(&top, "type") {
            None => {}
            Some(Yaml::String(t)) if FLOW_TYPES.contains(&t.as_str()) => {}
            Some(Yaml::String(t)) => self.note(format!(
                "flow type `{t}` is not one greentic-flow compiles ({}); running it anyway",
                FLOW_TYPES.join(", ")
            )),
            Some(_) => return Err(self.invalid(None, "`type` must be a string")),
        }
        if let Some(v) = yaml::get(&top, "schema_version")
            && v.as_u64() != Some(2)
        {
            return Err(self.invalid(None, "only `schema_version: 2` flows are supported"));
        }
        let max_steps = match yaml::get(&top, "max_steps") {
            None => DEFAULT_MAX_STEPS,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=u32::MAX as u64).contains(n))
                .ok_or_else(|| self.invalid(None, "`max_steps` must be a positive integer"))?
                as u32,
        };
        let flow_strict = match yaml::get(&top, "templating").map(|v| v.as_str()) {
            None | Some(Some("strict")) => true,
            Some(Some("lenient")) => false,
            Some(_) => {
                return Err(
                    self.invalid(None, "`templating` must be `strict` (default) or `lenient`")
                );
            }
        };
        let strict = self.source.strict_templating.unwrap_or(flow_strict);
        let parameters = match yaml::get(&top, "parameters") {
            None | Some(Yaml::Null) => Json::Object(Default::default()),
            Some(p @ Yaml::Mapping(_)) => {
                yaml::to_json(p, "parameters").map_err(|e| self.invalid(None, e))?
            }
            Some(_) => return Err(self.invalid(None, "`parameters` must be a mapping")),
        };
        let vars_init = self.vars_init(&parameters)?;
        let Some(Yaml::Mapping(nodes)) = yaml::get(&top, "nodes") else {
            return Err(self.invalid(None, "missing `nodes` (a mapping of node id to node)"));
        };
        if nodes.is_empty() {
            return Err(self.invalid(None, "`nodes` is empty"));
        }
        let sidecar = self.sidecars()?;

        // First pass: ids, so routing can refer to nodes defined later.
        let mut index = HashMap::new();
        let mut ids = Vec::new();
        for key in nodes.keys() {
            let Yaml::String(id) = key else {
                return Err(self.invalid(
                    None,
                    format!("node id `{}` must be a string", yaml::key_str(key)),
                ));
            };
            if !valid_node_id(id) {
                return Err(self.invalid(
                    Some(id),
                    "node ids must start with a letter or `_` and hold only letters, digits, `_` and `-`",
                ));
            }
            index.insert(id.clone(), NodeIndex(ids.len()));
            ids.push(id.clone());
        }

        let mut templates = Templates::new(&self.source.name, strict);
        let mut built = Vec::with_capacity(ids.len());
        for (i, (id, body)) in ids.iter().zip(nodes.values()).enumerate() {
            // Without `routing`, a node falls through to the next one in the file.
            let next = (i + 1 < ids.len()).then_some(NodeIndex(i + 1));
            built.push(self.node(id, body, next, &index, &sidecar, &mut templates)?);
        }

        let start = self.start(&top, &index, &ids)?;
        let needs = templates.needs();
        let notes = self.notes.take();
        let content_hash = content_hash(self.source);
        Ok(Flow {
            name: self.source.name.clone(),
            id,
            start,
            nodes: built,
            max_steps,
            templates,
            parameters,
            vars_init,
            needs,
            notes,
            content_hash,
        })
    }

    /// Older greentic dialects that greentic-flow no longer accepts: refused
    /// with one message naming the dialect and the v2 spelling.
    fn refuse_legacy_document(&self, top: &Mapping) -> Result<(), FlowError> {
        if let Some(Yaml::Sequence(_)) = yaml::get(top, "nodes") {
            let edges = if yaml::get(top, "edges").is_some() {
                " with `edges`"
            } else {
                ""
            };
            return Err(self.invalid(
                None,
                format!("this is a list-of-nodes flow{edges}, an older greentic dialect; YGTC v2 writes `nodes:` as a mapping of node id to node, with each node's `routing: [{{to: <node>}}]` in place of `edges`"),
            ));
        }
        if let Some(Yaml::Mapping(nodes)) = yaml::get(top, "nodes") {
            for (id, body) in nodes {
                let Yaml::Mapping(body) = body else { continue };
                let legacy: Vec<&str> = ["routes", "assign"]
                    .into_iter()
                    .filter(|k| yaml::get(body, k).is_some())
                    .collect();
                if !legacy.is_empty() {
                    let start = if yaml::get(top, "in").is_some() {
                        ", and top-level `in: <node>` is `start: <node>`"
                    } else {
                        ""
                    };
                    return Err(self.invalid(
                        Some(&yaml::key_str(id)),
                        format!(
                            "{} belong(s) to the older greentic-messaging dialect (`routes:`/`assign:`), which greentic-flow no longer accepts; in YGTC v2 `routes: [a]` is `routing: [{{to: a}}]`, `routes: [end]` is `routing: out`{start}, and `assign:` has no v2 equivalent (use `vars_out`)",
                            legacy.iter().map(|k| format!("`{k}:`")).collect::<Vec<_>>().join(" and ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn vars_init(&self, parameters: &Json) -> Result<Vec<VarDecl>, FlowError> {
        let Some(init) = parameters.get("vars_init") else {
            return Ok(Vec::new());
        };
        let Json::Object(init) = init else {
            return Err(self.invalid(None, "`parameters.vars_init` must be a mapping of variable name to `{type, default, required}`"));
        };
        let mut decls = Vec::new();
        for (name, decl) in init {
            let (default, required) = match decl {
                Json::Object(d) => (
                    d.get("default").cloned(),
                    d.get("required").and_then(Json::as_bool).unwrap_or(false),
                ),
                // A bare value is its default.
                other => (Some(other.clone()), false),
            };
            decls.push(VarDecl {
                name: name.clone(),
                default,
                required,
            });
        }
        Ok(decls)
    }

    fn start(
        &self,
        top: &Mapping,
        index: &HashMap<String, NodeIndex>,
        ids: &[String],
    ) -> Result<NodeIndex, FlowError> {
        let (named, origin) = match (yaml::get(top, "start"), yaml::get(top, "entrypoints")) {
            (Some(v), _) => (v, "`start`"),
            (None, Some(Yaml::Mapping(eps))) if yaml::get(eps, "default").is_some() => {
                (yaml::get(eps, "default").unwrap(), "`entrypoints.default`")
            }
            // greentic-flow: a node named `in` is the default start.
            _ => return Ok(index.get("in").copied().unwrap_or(index[&ids[0]])),
        };
        let Yaml::String(name) = named else {
            return Err(self.invalid(None, format!("{origin} must be a node id")));
        };
        index.get(name).copied().ok_or_else(|| {
            self.invalid(
                None,
                format!(
                    "{origin} names `{name}`, which is not a node (nodes: {})",
                    ids.join(", ")
                ),
            )
        })
    }

    fn node(
        &self,
        id: &str,
        body: &Yaml,
        next: Option<NodeIndex>,
        index: &HashMap<String, NodeIndex>,
        sidecar: &HashMap<String, Resolved>,
        templates: &mut Templates,
    ) -> Result<Node, FlowError> {
        let Yaml::Mapping(body) = body else {
            return Err(self.invalid(Some(id), "a node must be a mapping with one operation key"));
        };
        let mut op_keys = Vec::new();
        let mut ignored = Vec::new();
        for (raw_key, value) in body.iter() {
            let key = yaml::key_str(raw_key);
            if UNSUPPORTED_NODE_KEYS.contains(&key.as_str()) {
                return Err(self.invalid(
                    Some(id),
                    format!("`{key}` is not supported by this runner (greentic-runner does not apply it either); remove it or express it with routing conditions"),
                ));
            }
            if IGNORED_NODE_KEYS.contains(&key.as_str()) {
                ignored.push(key);
            } else if !NODE_KEYS.contains(&key.as_str()) {
                // The value comes with its key: a non-string key (`1:`, `true:`)
                // is named by its text but not found by it.
                op_keys.push((key, value));
            }
        }
        if !ignored.is_empty() {
            self.note(format!(
                "node `{id}`: {} ignored (no runtime meaning)",
                ignored
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let (op_key, op_value) = match op_keys.as_slice() {
            [(key, value)] => (key.clone(), *value),
            [] => {
                return Err(self.invalid(
                    Some(id),
                    "no operation key (e.g. `component.exec:` or `<op>:`)",
                ));
            }
            many => {
                return Err(self.invalid(
                    Some(id),
                    format!(
                        "more than one operation key: {} (a node has exactly one; the others may be `routing`, `retry`, `timeout`, `operation` and the ignored {})",
                        many.iter()
                            .map(|(k, _)| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        IGNORED_NODE_KEYS.join(", ")
                    ),
                ));
            }
        };
        // The sibling `operation:` key names the component operation.
        let sibling_operation = match yaml::get(body, "operation") {
            None => None,
            Some(Yaml::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(self.invalid(Some(id), "`operation` must be a non-empty string")),
        };
        if let Some(reason) = unsupported_native(&op_key) {
            return Err(self.invalid(
                Some(id),
                format!("`{op_key}` is a native node of greentic-runner: {reason}"),
            ));
        }
        if matches!(
            op_key.as_str(),
            "mcp" | "mcp.exec" | "questions" | "template"
        ) || op_key.starts_with("mcp:")
        {
            self.note(format!(
                "node `{id}`: `{op_key}` is executed natively by greentic-runner/greentic-flow; here it calls a component"
            ));
        }

        let (action, input) = if op_key == "component.exec" {
            let (call, input) =
                self.component_exec(id, op_value, sibling_operation, sidecar, templates)?;
            (Action::Component(call), input)
        } else if let Some(native) = Native::from_op_key(&op_key) {
            let input = match op_value {
                Yaml::Null => Yaml::Mapping(Mapping::new()),
                other => other.clone(),
            };
            (Action::Native(native), input)
        } else {
            // `<op>: {input…}`; the greentic-flow v2 authoring shape `<op>: {input: {…}}`
            // is unwrapped. The component comes from the sidecars, else it is named like the op.
            let input = match op_value {
                Yaml::Mapping(m) if m.len() == 1 && yaml::get(m, "input").is_some() => {
                    yaml::get(m, "input").unwrap().clone()
                }
                Yaml::Null => Yaml::Mapping(Mapping::new()),
                other => other.clone(),
            };
            let resolved = sidecar.get(id).cloned().unwrap_or_default();
            let reference = resolved
                .reference
                .or_else(|| resolved.component_id.clone())
                .unwrap_or_else(|| op_key.clone());
            let call = ComponentCall {
                reference,
                operation: sibling_operation.unwrap_or_else(|| op_key.clone()),
                component_id: resolved.component_id,
                digest: resolved.digest,
                config: None,
            };
            (Action::Component(call), input)
        };

        let mut input = yaml::to_json(&input, "input").map_err(|e| self.invalid(Some(id), e))?;
        // `vars_out` inside the payload: the runner's, never sent to the component.
        let mut vars_out = Vec::new();
        if let Json::Object(map) = &mut input
            && let Some(spec) = map.remove("vars_out")
        {
            let Json::Object(spec) = spec else {
                return Err(
                    self.invalid(Some(id), "`vars_out` must map variable names to templates")
                );
            };
            for (name, template) in spec {
                let compiled = templates.compile(id, &format!("vars_out.{name}"), &template)?;
                vars_out.push((name, compiled));
            }
        }
        let input = templates.compile(id, "input", &input)?;
        let routes = self.routes(id, body, index)?;
        for route in routes.iter().flatten() {
            if let RouteWhen::Condition(text, _) = &route.when {
                templates.note_text(text);
            }
        }
        let routes = routes.unwrap_or_else(|| {
            vec![Route {
                to: next,
                when: RouteWhen::Always,
                on_message: false,
            }]
        });
        if matches!(action, Action::Native(Native::Wait)) && routes.iter().all(|r| r.to.is_none()) {
            return Err(self.invalid(
                Some(id),
                "`session.wait` needs a route to the node the run resumes at (`routing: [{to: <node>}]`)",
            ));
        }
        let mentions = |event: &str| {
            routes.iter().any(|r| match &r.when {
                RouteWhen::Condition(text, _) => text.contains(event),
                _ => false,
            })
        };
        let routes_errors = routes
            .iter()
            .any(|r| matches!(r.when, RouteWhen::Status(false)))
            || ERROR_EVENTS.iter().any(|e| mentions(e));
        let success_event = SUCCESS_EVENTS
            .into_iter()
            .find(|e| mentions(e))
            .unwrap_or(SUCCESS_EVENTS[0]);
        let error_event = ERROR_EVENTS
            .into_iter()
            .find(|e| mentions(e))
            .unwrap_or(ERROR_EVENTS[0]);
        let retry = self.retry(id, yaml::get(body, "retry"))?;
        let timeout_ms = yaml::get(body, "timeout")
            .map(|v| parse_duration_ms(v).ok_or_else(|| {
                self.invalid(Some(id), "`timeout` must be milliseconds (`500`) or a duration (`500ms`, `2s`, `1m`)")
            }))
            .transpose()?;
        Ok(Node {
            id: id.to_string(),
            op_key,
            action,
            input,
            vars_out,
            routes,
            routes_errors,
            success_event,
            error_event,
            retry,
            timeout_ms,
        })
    }

    /// `component.exec: {component|component_ref, operation|op, input, config}`.
    fn component_exec(
        &self,
        id: &str,
        value: &Yaml,
        sibling_operation: Option<String>,
        sidecar: &HashMap<String, Resolved>,
        templates: &mut Templates,
    ) -> Result<(ComponentCall, Yaml), FlowError> {
        let Yaml::Mapping(exec) = value else {
            return Err(self.invalid(
                Some(id),
                "`component.exec` must be a mapping with `component`, `operation`, `input`",
            ));
        };
        let string = |keys: &[&str]| -> Result<Option<String>, FlowError> {
            let found: Vec<(&str, &Yaml)> = keys
                .iter()
                .filter_map(|k| yaml::get(exec, k).map(|v| (*k, v)))
                .collect();
            match found.as_slice() {
                [] => Ok(None),
                [(_, Yaml::String(s))] if !s.is_empty() => Ok(Some(s.clone())),
                [(k, _)] => Err(self.invalid(
                    Some(id),
                    format!("`component.exec.{k}` must be a non-empty string"),
                )),
                _ => Err(self.invalid(
                    Some(id),
                    format!(
                        "`component.exec` has both {}; give one",
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )),
            }
        };
        let known = [
            "component",
            "component_ref",
            "operation",
            "op",
            "input",
            "config",
        ];
        let extra: Vec<String> = exec
            .keys()
            .map(yaml::key_str)
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        if !extra.is_empty() {
            self.note(format!(
                "node `{id}`: `component.exec` keys {} ignored",
                extra
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let resolved = sidecar.get(id).cloned().unwrap_or_default();
        let reference = match string(&["component", "component_ref"])? {
            Some(r) => r,
            None => resolved
                .reference
                .clone()
                .or_else(|| resolved.component_id.clone())
                .ok_or_else(|| {
                    self.invalid(
                        Some(id),
                        "`component.exec` names no `component` and the resolve sidecars do not either",
                    )
                })?,
        };
        let operation = string(&["operation", "op"])?
            .or(sibling_operation)
            .unwrap_or_else(|| DEFAULT_OPERATION.to_string());
        let input = yaml::get(exec, "input")
            .cloned()
            .unwrap_or(Yaml::Mapping(Mapping::new()));
        let config = match yaml::get(exec, "config") {
            None | Some(Yaml::Null) => None,
            Some(c) => {
                let c = yaml::to_json(c, "config").map_err(|e| self.invalid(Some(id), e))?;
                Some(templates.compile(id, "config", &c)?)
            }
        };
        Ok((
            ComponentCall {
                reference,
                operation,
                component_id: resolved.component_id,
                digest: resolved.digest,
                config,
            },
            input,
        ))
    }

    fn routes(
        &self,
        id: &str,
        body: &Mapping,
        index: &HashMap<String, NodeIndex>,
    ) -> Result<Option<Vec<Route>>, FlowError> {
        let entries: Vec<&Yaml> = match yaml::get(body, "routing") {
            None | Some(Yaml::Null) => return Ok(None),
            Some(Yaml::String(s)) if s == "out" || s == "reply" => {
                return Ok(Some(vec![Route {
                    to: None,
                    when: RouteWhen::Always,
                    on_message: false,
                }]));
            }
            Some(Yaml::String(s)) => {
                return Err(self.invalid(
                    Some(id),
                    format!("`routing: {s}` is not valid: use `out`, `reply` or a list of `{{to: <node>}}`"),
                ));
            }
            Some(Yaml::Sequence(items)) => items.iter().collect(),
            Some(m @ Yaml::Mapping(_)) => vec![m],
            Some(_) => {
                return Err(self.invalid(
                    Some(id),
                    "`routing` must be `out`, `reply` or a list of routes",
                ));
            }
        };
        let mut routes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let Yaml::Mapping(entry) = entry else {
                return Err(self.invalid(
                    Some(id),
                    format!("routing entry {i} must be a mapping like `{{to: <node>}}`"),
                ));
            };
            let mut to = None;
            let mut terminal = false;
            let mut when = RouteWhen::Always;
            let mut on_message = false;
            for (key, value) in entry {
                match (yaml::key_str(key).as_str(), value) {
                    ("to", Yaml::String(target)) => to = Some(target.clone()),
                    ("on_message", Yaml::Bool(b)) => on_message = *b,
                    ("out" | "reply", Yaml::Bool(b)) => terminal |= *b,
                    ("condition", Yaml::String(text)) => {
                        let parsed = Condition::parse(text).map_err(|e| {
                            self.invalid(
                                Some(id),
                                format!("routing entry {i}: condition `{text}`: {e}"),
                            )
                        })?;
                        let mut roots = Vec::new();
                        parsed.roots(&mut roots);
                        if let Some(bad) = roots.iter().find(|r| !condition_root(r)) {
                            return Err(self.invalid(
                                Some(id),
                                format!("routing entry {i}: condition `{text}` reads `{bad}`; paths start at {}, {}", OUTCOME_ROOTS.join(", "), crate::context::ROOTS.join(", ")),
                            ));
                        }
                        when = RouteWhen::Condition(text.clone(), parsed);
                    }
                    ("status", Yaml::String(s)) => {
                        when = RouteWhen::Status(match s.as_str() {
                            "ok" | "success" => true,
                            "error" | "failure" | "failed" => false,
                            other => {
                                return Err(self.invalid(
                                    Some(id),
                                    format!(
                                        "routing entry {i}: `status: {other}`: use `ok` or `error`"
                                    ),
                                ));
                            }
                        });
                    }
                    ("next", _) => {
                        return Err(self.invalid(Some(id), format!("routing entry {i}: `next:` is an older spelling that greentic-flow no longer accepts (and older runners ignored, ending the flow); YGTC v2 writes `to: <node>`")));
                    }
                    ("when", _) => {
                        return Err(self.invalid(Some(id), format!("routing entry {i}: `when:` is not a YGTC v2 route key; write `condition: <expression>`")));
                    }
                    (other, _) => {
                        return Err(self.invalid(Some(id), format!("routing entry {i}: unexpected `{other}` (expected `to`, `out`, `reply`, `condition`, `status`, `on_message`)")));
                    }
                }
            }
            let target = match (to, terminal) {
                (Some(_), true) => {
                    return Err(self.invalid(
                        Some(id),
                        format!("routing entry {i} has both `to` and `out`/`reply`"),
                    ));
                }
                (None, true) => None,
                // `to: out` / `to: reply` end the flow unless a node has that id.
                (Some(t), false) if !index.contains_key(&t) && (t == "out" || t == "reply") => None,
                (Some(t), false) => Some(*index.get(&t).ok_or_else(|| {
                    let mut known: Vec<&String> = index.keys().collect();
                    known.sort();
                    self.invalid(
                        Some(id),
                        format!(
                            "routing entry {i} goes to unknown node `{t}` (nodes: {})",
                            known
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?),
                (None, false) => {
                    return Err(self.invalid(
                        Some(id),
                        format!("routing entry {i} needs `to: <node>` or `out: true`"),
                    ));
                }
            };
            routes.push(Route {
                to: target,
                when,
                on_message,
            });
        }
        Ok(Some(routes))
    }

    /// `retry: N` or `retry: {max_attempts: N, delay_ms: D}`.
    fn retry(&self, id: &str, value: Option<&Yaml>) -> Result<RetryPolicy, FlowError> {
        let mut policy = RetryPolicy::default();
        let bad = || {
            self.invalid(
                Some(id),
                "`retry` must be a number of attempts or `{max_attempts: N, delay_ms: D}`",
            )
        };
        match value {
            None => {}
            Some(Yaml::Number(n)) => {
                policy.max_attempts = n
                    .as_u64()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(bad)? as u32
            }
            Some(Yaml::Mapping(m)) => {
                for (k, v) in m {
                    match (yaml::key_str(k).as_str(), v.as_u64()) {
                        ("max_attempts", Some(n)) if (1..=100).contains(&n) => {
                            policy.max_attempts = n as u32
                        }
                        ("delay_ms", Some(n)) => policy.delay_ms = n.min(MAX_RETRY_DELAY_MS),
                        _ => return Err(bad()),
                    }
                }
            }
            Some(_) => return Err(bad()),
        }
        Ok(policy)
    }

    /// Reads the resolve sidecars into node id -> resolved component: first
    /// `<flow>.resolve.json`, then `<flow>.resolve.summary.json` on top (it adds
    /// `component_id` and `digest`).
    fn sidecars(&self) -> Result<HashMap<String, Resolved>, FlowError> {
        let mut out = HashMap::new();
        for (text, suffix) in [
            (&self.source.resolve_json, "resolve.json"),
            (&self.source.resolve_summary_json, "resolve.summary.json"),
        ] {
            if let Some(text) = text {
                self.read_sidecar(text, suffix, &mut out)?;
            }
        }
        Ok(out)
    }

    /// One sidecar. Accepted shapes, per node: `"id": "comp"`,
    /// `"id": {"component": "comp"}`, or greentic-flow's
    /// `"id": {"source": {"kind": …, "path"|"ref"|…: "…"}, "component_id"?, "digest"?}`;
    /// the map may be the whole document or its `nodes` field.
    fn read_sidecar(
        &self,
        text: &str,
        suffix: &'static str,
        out: &mut HashMap<String, Resolved>,
    ) -> Result<(), FlowError> {
        let err = |message: String| FlowError::Sidecar {
            file: self.file(),
            suffix,
            message,
        };
        let doc: Json =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let nodes = match doc.get("nodes") {
            Some(n) => n,
            None => &doc,
        };
        let Json::Object(nodes) = nodes else {
            return Err(err(
                "expected an object mapping node ids to components".into()
            ));
        };
        for (id, entry) in nodes {
            if id == "schema_version" || id == "flow" {
                continue;
            }
            let resolved = out.entry(id.clone()).or_default();
            match entry {
                Json::String(s) => resolved.reference = Some(s.clone()),
                Json::Object(o) => {
                    if let Some(Json::String(s)) = o.get("component") {
                        resolved.reference = Some(s.clone());
                    }
                    if let Some(Json::Object(src)) = o.get("source") {
                        let reference = ["path", "ref", "reference", "uri", "url"]
                            .iter()
                            .find_map(|k| src.get(*k).and_then(Json::as_str));
                        match reference {
                            Some(r) => {
                                resolved.reference =
                                    Some(r.strip_prefix("file://").unwrap_or(r).to_string())
                            }
                            None => {
                                return Err(err(format!(
                                    "node `{id}`: `source` has no `path` or `ref`"
                                )));
                            }
                        }
                    }
                    if let Some(Json::String(cid)) = o.get("component_id") {
                        resolved.component_id = Some(cid.clone());
                    }
                    if let Some(Json::String(digest)) = o.get("digest") {
                        if !valid_digest(digest) {
                            return Err(err(format!(
                                "node `{id}`: digest `{digest}` is not `sha256:<64 hex digits>`"
                            )));
                        }
                        resolved.digest = Some(digest.to_ascii_lowercase());
                    }
                    if resolved.reference.is_none() && resolved.component_id.is_none() {
                        return Err(err(format!(
                            "node `{id}`: expected a component name, `component_id`, or {{\"source\": {{\"path\": …}}}}"
                        )));
                    }
                }
                _ => {
                    return Err(err(format!(
                        "node `{id}`: expected a component name or an object"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Roots a routing condition may read besides the run context's
/// ([`crate::context::ROOTS`]): the node's own outcome.
const OUTCOME_ROOTS: &[&str] = &["out", "event", "response"];

/// Whether a routing condition may read the root `name`.
fn condition_root(name: &str) -> bool {
    crate::context::ROOTS.contains(&name) || OUTCOME_ROOTS.contains(&name)
}
/// `sha256:<hex>` over the flow's YAML and its sidecars.
fn content_hash(source: &FlowSource) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [
        Some(source.yaml.as_str()),
        source.resolve_json.as_deref(),
        source.resolve_summary_json.as_deref(),
    ] {
        // Length-prefixed, so moving text between parts changes the hash.
        let part = part.unwrap_or_default();
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `500` (ms), `"500ms"`, `"2s"`, `"1m"`.
fn parse_duration_ms(value: &Yaml) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let text = value.as_str()?.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => None,
    }
}

fn default_flow_id(name: &str) -> String {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = file.split('.').next().unwrap_or(file);
    if stem.is_empty() {
        "flow".to_string()
    } else {
        stem.to_string()
    }
}

/// Node ids: `[A-Za-z_][A-Za-z0-9_-]*`, so `node.<id>.x` is always a path
/// (no corpus flow uses anything else).
fn valid_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
