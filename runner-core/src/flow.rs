//! The flow model (YGTC v2) and its loading: YAML -> validated [`Flow`] with
//! every template and condition compiled.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use crate::condition::Condition;
use crate::error::FlowError;
use crate::template::{InputTemplate, Templates};
use crate::yaml;

/// Default `max_steps`: how many node executions one run may make.
pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// Operation used by `component.exec` when it names none.
pub const DEFAULT_OPERATION: &str = "invoke";

/// Top-level keys a flow may have. YGTC keys we do not interpret are accepted
/// and ignored (`type`, `title`, ...); anything else is probably a typo.
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
];

/// Node keys besides the operation key. The ones in [`UNSUPPORTED_NODE_KEYS`]
/// are YGTC keys this runner does not implement yet: they are refused rather
/// than silently ignored.
const NODE_KEYS: &[&str] = &[
    "routing",
    "title",
    "description",
    "meta",
    "retry",
    "timeout",
];
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
/// optional resolve sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSource {
    /// Name used in messages, normally the flow file's path.
    pub name: String,
    /// The YAML document.
    pub yaml: String,
    /// The `<flow file>.resolve.json` sidecar's text, if any.
    pub resolve_json: Option<String>,
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
}

/// One node of a flow.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) component: String,
    pub(crate) operation: String,
    pub(crate) input: InputTemplate,
    pub(crate) routes: Vec<Route>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout_ms: Option<u64>,
}

/// One routing entry. Routes are tried in order; the first whose condition
/// holds is taken; if none holds, the flow ends. A node without `routing`
/// gets one route to the next node in the file (none for the last node).
#[derive(Debug)]
pub(crate) struct Route {
    /// `None` ends the flow (`out` / `reply`).
    pub(crate) to: Option<NodeIndex>,
    pub(crate) condition: Option<(String, Condition)>,
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
}

/// One node in a [`FlowPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// Node id.
    pub id: String,
    /// Component reference (bare name or path relative to the flow file).
    pub component: String,
    /// Operation passed to the component.
    pub operation: String,
}

impl Flow {
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
        for node in &self.nodes {
            if !components.contains(&node.component) {
                components.push(node.component.clone());
            }
        }
        FlowPlan {
            id: self.id.clone(),
            start: self.nodes[self.start.0].id.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodePlan {
                    id: n.id.clone(),
                    component: n.component.clone(),
                    operation: n.operation.clone(),
                })
                .collect(),
            components,
        }
    }
}

struct Loader<'a> {
    source: &'a FlowSource,
}

impl<'a> Loader<'a> {
    fn new(source: &'a FlowSource) -> Self {
        Loader { source }
    }

    fn file(&self) -> String {
        self.source.name.clone()
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
        for key in top.keys() {
            let key = yaml::key_str(key);
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                return Err(self.invalid(
                    None,
                    format!(
                        "unknown top-level key `{key}` (known: {})",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                ));
            }
        }
        // YGTC requires `id`; seed 001's example has none, so default to the file stem.
        let id = match yaml::get(&top, "id") {
            Some(Yaml::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(self.invalid(None, "`id` must be a non-empty string")),
            None => default_flow_id(&self.source.name),
        };
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
        let strict = match yaml::get(&top, "templating").map(|v| v.as_str()) {
            None | Some(Some("strict")) => true,
            Some(Some("lenient")) => false,
            Some(_) => {
                return Err(
                    self.invalid(None, "`templating` must be `strict` (default) or `lenient`")
                );
            }
        };
        let Some(Yaml::Mapping(nodes)) = yaml::get(&top, "nodes") else {
            return Err(self.invalid(None, "missing `nodes` (a mapping of node id to node)"));
        };
        if nodes.is_empty() {
            return Err(self.invalid(None, "`nodes` is empty"));
        }
        let sidecar = self.sidecar()?;

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
        Ok(Flow {
            name: self.source.name.clone(),
            id,
            start,
            nodes: built,
            max_steps,
            templates,
        })
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
            _ => return Ok(index[&ids[0]]),
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
        sidecar: &HashMap<String, String>,
        templates: &mut Templates,
    ) -> Result<Node, FlowError> {
        let Yaml::Mapping(body) = body else {
            return Err(self.invalid(Some(id), "a node must be a mapping with one operation key"));
        };
        let mut op_keys = Vec::new();
        for key in body.keys() {
            let key = yaml::key_str(key);
            if UNSUPPORTED_NODE_KEYS.contains(&key.as_str()) {
                return Err(self.invalid(
                    Some(id),
                    format!("`{key}` is not supported by this runner yet"),
                ));
            }
            if !NODE_KEYS.contains(&key.as_str()) {
                op_keys.push(key);
            }
        }
        let op_key = match op_keys.as_slice() {
            [one] => one.clone(),
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
                        "more than one operation key: {}",
                        many.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        let op_value = yaml::get(body, &op_key).unwrap();

        let (component, operation, input) = if op_key == "component.exec" {
            let Yaml::Mapping(exec) = op_value else {
                return Err(self.invalid(
                    Some(id),
                    "`component.exec` must be a mapping with `component`, `operation`, `input`",
                ));
            };
            for key in exec.keys() {
                let key = yaml::key_str(key);
                if !["component", "operation", "input"].contains(&key.as_str()) {
                    return Err(
                        self.invalid(Some(id), format!("unknown key `{key}` in `component.exec`"))
                    );
                }
            }
            let component = match yaml::get(exec, "component") {
                Some(Yaml::String(s)) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(self.invalid(
                        Some(id),
                        "`component.exec.component` must be a non-empty string",
                    ));
                }
            };
            let operation = match yaml::get(exec, "operation") {
                None => DEFAULT_OPERATION.to_string(),
                Some(Yaml::String(s)) if !s.is_empty() => s.clone(),
                Some(_) => {
                    return Err(
                        self.invalid(Some(id), "`component.exec.operation` must be a string")
                    );
                }
            };
            let input = yaml::get(exec, "input")
                .cloned()
                .unwrap_or(Yaml::Mapping(Mapping::new()));
            (component, operation, input)
        } else {
            // `<op>: {input…}`; the greentic-flow v2 authoring shape `<op>: {input: {…}}`
            // is unwrapped. The component comes from the sidecar, else it is named like the op.
            let input = match op_value {
                Yaml::Mapping(m) if m.len() == 1 && yaml::get(m, "input").is_some() => {
                    yaml::get(m, "input").unwrap().clone()
                }
                Yaml::Null => Yaml::Mapping(Mapping::new()),
                other => other.clone(),
            };
            let component = sidecar.get(id).cloned().unwrap_or_else(|| op_key.clone());
            (component, op_key.clone(), input)
        };

        let input = yaml::to_json(&input, "input").map_err(|e| self.invalid(Some(id), e))?;
        let input = templates.compile(id, "input", &input)?;
        let routes = self.routes(id, body, index)?.unwrap_or_else(|| {
            vec![Route {
                to: next,
                condition: None,
            }]
        });
        let retry = self.retry(id, yaml::get(body, "retry"))?;
        let timeout_ms = yaml::get(body, "timeout")
            .map(|v| parse_duration_ms(v).ok_or_else(|| {
                self.invalid(Some(id), "`timeout` must be milliseconds (`500`) or a duration (`500ms`, `2s`, `1m`)")
            }))
            .transpose()?;
        Ok(Node {
            id: id.to_string(),
            component,
            operation,
            input,
            routes,
            retry,
            timeout_ms,
        })
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
                    condition: None,
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
            let mut condition = None;
            for (key, value) in entry {
                match (yaml::key_str(key).as_str(), value) {
                    ("to", Yaml::String(target)) => to = Some(target.clone()),
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
                        if let Some(bad) = roots.iter().find(|r| {
                            !["out", "entry", "prev", "node", "state"].contains(&r.as_str())
                        }) {
                            return Err(self.invalid(
                                Some(id),
                                format!("routing entry {i}: condition `{text}` reads `{bad}`; paths start at out, entry, prev, node or state"),
                            ));
                        }
                        condition = Some((text.clone(), parsed));
                    }
                    ("status", _) => {
                        return Err(self.invalid(Some(id), format!("routing entry {i}: `status` routing is not supported by this runner yet")));
                    }
                    (other, _) => {
                        return Err(self.invalid(Some(id), format!("routing entry {i}: unexpected `{other}` (expected `to`, `out`, `reply`, `condition`)")));
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
                condition,
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

    /// Reads the resolve sidecar into node id -> component reference.
    ///
    /// Accepted shapes, per node: `"id": "comp"`, `"id": {"component": "comp"}`,
    /// or greentic-flow's `"id": {"source": {"kind": "local", "path"|"ref": "comp"}}`;
    /// the map may be the whole document or its `nodes` field.
    fn sidecar(&self) -> Result<HashMap<String, String>, FlowError> {
        let Some(text) = &self.source.resolve_json else {
            return Ok(HashMap::new());
        };
        let err = |message: String| FlowError::Sidecar {
            file: self.file(),
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
        let mut out = HashMap::new();
        for (id, entry) in nodes {
            if id == "schema_version" || id == "flow" {
                continue;
            }
            let component = match entry {
                Json::String(s) => Some(s.clone()),
                Json::Object(o) => match (o.get("component"), o.get("source")) {
                    (Some(Json::String(s)), _) => Some(s.clone()),
                    (_, Some(Json::Object(src))) => {
                        let kind = src.get("kind").and_then(Json::as_str).unwrap_or("local");
                        if !["local", "file", "path"].contains(&kind) {
                            return Err(err(format!(
                                "node `{id}`: source kind `{kind}` is not supported (only local files)"
                            )));
                        }
                        src.get("path")
                            .or_else(|| src.get("ref"))
                            .and_then(Json::as_str)
                            .map(str::to_string)
                    }
                    _ => None,
                },
                _ => None,
            };
            let component = component
                .ok_or_else(|| err(format!("node `{id}`: expected a component name, path, or {{\"source\": {{\"path\": …}}}}")))?;
            out.insert(id.clone(), component);
        }
        Ok(out)
    }
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

fn valid_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
