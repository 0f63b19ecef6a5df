//! Loading a flow: YAML and sidecars -> [`Flow`], the document's top level.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use super::model::{
    DEFAULT_MAX_STEPS, Flow, FlowSource, MAX_RETRY_DELAY_MS, NodeIndex, RetryPolicy, VarDecl,
};
use crate::error::FlowError;
use crate::template::Templates;
use crate::yaml;

/// Top-level keys this runner reads. Any other top-level key is accepted, as
/// greentic-flow accepts it: `x-*` keys silently, others with a note.
pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
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
pub(super) const FLOW_TYPES: &[&str] = &[
    "messaging",
    "event",
    "events",
    "component-config",
    "job",
    "http",
];

/// A resolved sidecar entry for one node.
#[derive(Debug, Default, Clone)]
pub(super) struct Resolved {
    pub(super) reference: Option<String>,
    pub(super) component_id: Option<String>,
    pub(super) digest: Option<String>,
}

pub(super) struct Loader<'a> {
    pub(super) source: &'a FlowSource,
    pub(super) notes: std::cell::RefCell<Vec<String>>,
}

impl Flow {
    /// Parses and validates a flow, compiling all templates and conditions.
    pub fn load(source: &FlowSource) -> Result<Flow, FlowError> {
        Loader::new(source).load().map_err(|e| match e {
            // Placed in the file for editors (the message names node and field).
            FlowError::Template(t, _) => {
                let pos = yaml::template_position(&source.yaml, &t.node, &t.expr, &t.reason);
                FlowError::Template(t, pos)
            }
            e => e,
        })
    }
}

impl<'a> Loader<'a> {
    pub(super) fn new(source: &'a FlowSource) -> Self {
        Loader {
            source,
            notes: Default::default(),
        }
    }

    pub(super) fn file(&self) -> String {
        self.source.name.clone()
    }

    pub(super) fn note(&self, text: String) {
        self.notes.borrow_mut().push(text);
    }

    pub(super) fn invalid(&self, node: Option<&str>, message: impl Into<String>) -> FlowError {
        FlowError::Invalid {
            file: self.file(),
            node: node.map(str::to_string),
            pos: node
                .map(|n| yaml::node_position(&self.source.yaml, n))
                .unwrap_or_default(),
            message: message.into(),
        }
    }

    pub(super) fn load(&self) -> Result<Flow, FlowError> {
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
    pub(super) fn refuse_legacy_document(&self, top: &Mapping) -> Result<(), FlowError> {
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

    pub(super) fn vars_init(&self, parameters: &Json) -> Result<Vec<VarDecl>, FlowError> {
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

    pub(super) fn start(
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

    /// `retry: N` or `retry: {max_attempts: N, delay_ms: D}`.
    pub(super) fn retry(&self, id: &str, value: Option<&Yaml>) -> Result<RetryPolicy, FlowError> {
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
    pub(super) fn sidecars(&self) -> Result<HashMap<String, Resolved>, FlowError> {
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
    pub(super) fn read_sidecar(
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

/// `sha256:<hex>` over the flow's YAML and its sidecars.
pub(super) fn content_hash(source: &FlowSource) -> String {
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

pub(super) fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) fn default_flow_id(name: &str) -> String {
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
pub(super) fn valid_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
