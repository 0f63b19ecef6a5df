//! Loading one node: its operation, component call, routing and retry.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use super::load::{Loader, Resolved};
use super::model::{
    Action, ComponentCall, DEFAULT_OPERATION, Native, Node, NodeIndex, Route, RouteWhen,
    unsupported_native,
};
use crate::condition::Condition;
use crate::error::FlowError;
use crate::template::Templates;
use crate::yaml;

/// Node keys besides the operation key that this runner interprets.
pub(super) const NODE_KEYS: &[&str] = &["routing", "retry", "timeout", "operation"];

/// Node keys greentic-flow reserves that have no runtime meaning (in the peer
/// runner either): accepted and ignored, with a note.
pub(super) const IGNORED_NODE_KEYS: &[&str] = &[
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
pub(super) const UNSUPPORTED_NODE_KEYS: &[&str] = &["when", "in_map", "out_map", "err_map"];

pub(super) const ERROR_EVENTS: [&str; 3] = ["on_error", "on_cancel", "on_timeout"];
pub(super) const SUCCESS_EVENTS: [&str; 3] = ["on_success", "on_complete", "on_submit"];

impl Loader<'_> {
    pub(super) fn node(
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

        let (action, input) = if op_key == "provider.invoke" {
            let (call, input) = self.provider_invoke(id, op_value, sidecar, templates)?;
            (Action::Component(call), input)
        } else if op_key == "component.exec" {
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
                maps: None,
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
        let waits = matches!(action, Action::Native(Native::Wait));
        let timeout_route = |r: &Route| matches!(r.when, RouteWhen::Timeout);
        if waits
            && routes
                .iter()
                .filter(|r| !timeout_route(r))
                .all(|r| r.to.is_none())
        {
            return Err(self.invalid(
                Some(id),
                "`session.wait` needs a route to the node the run resumes at (`routing: [{to: <node>}]`)",
            ));
        }
        if !waits && routes.iter().any(timeout_route) {
            return Err(self.invalid(
                Some(id),
                "`status: timeout` routes only follow a `session.wait` (with a `timeout` or `until`)",
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
    pub(super) fn component_exec(
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
                maps: None,
            },
            input,
        ))
    }

    pub(super) fn routes(
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
                        when = match s.as_str() {
                            "ok" | "success" => RouteWhen::Status(true),
                            "error" | "failure" | "failed" => RouteWhen::Status(false),
                            "timeout" => RouteWhen::Timeout,
                            other => {
                                return Err(self.invalid(
                                    Some(id),
                                    format!(
                                        "routing entry {i}: `status: {other}`: use `ok`, `error` or (after `session.wait`) `timeout`"
                                    ),
                                ));
                            }
                        };
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
}

/// Roots a routing condition may read besides the run context's
/// ([`crate::context::ROOTS`]): the node's own outcome.
pub(super) const OUTCOME_ROOTS: &[&str] = &["out", "event", "response"];

/// Whether a routing condition may read the root `name`.
pub(super) fn condition_root(name: &str) -> bool {
    crate::context::ROOTS.contains(&name) || OUTCOME_ROOTS.contains(&name)
}
/// `500` (ms), `"500ms"`, `"2s"`, `"1m"`.
pub(super) fn parse_duration_ms(value: &Yaml) -> Option<u64> {
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
