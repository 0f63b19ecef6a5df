//! Nodes the runner executes itself: `emit.*`, `state.*`, `flow.call`,
//! `session.wait`, `vars_out`.

use serde_json::{Map, Value, json};

use super::api::{DEFAULT_MAX_REDIRECTS, MAX_CALL_DEPTH};
use super::walk::{Ended, FlowRef, Jump, Outcome, Run, Start, finalize, native_error, seed_vars};
use crate::context::RunContext;
use crate::error::RunError;
use crate::flow::{Action, Flow, Native, Node};

impl Run<'_> {
    /// Renders a node's input and executes it.
    pub(super) fn node(
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
                let maps = call.maps.as_deref();
                if let Some(in_map) = maps.and_then(|m| m.in_map.as_ref()) {
                    input = map_with(flow, node, in_map, ctx, &input)?;
                }
                let mut outcome = self.component(flow, node, &input)?;
                if let Some(out_map) = maps.and_then(|m| m.out_map.as_ref())
                    && outcome.ok
                {
                    outcome.output = map_with(flow, node, out_map, ctx, &outcome.output)?;
                }
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
                let deadline = wait_deadline(&input)
                    .map_err(|message| native_error(flow, node, "session.wait", message))?;
                let mut outcome = Outcome::ok(json!({"waiting": true, "reason": reason}));
                outcome.wait = Some(reason);
                outcome.wait_deadline = deadline;
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
}

/// `component.exec.config` goes to the component as the payload's `config`.
/// Renders a `provider.invoke` map with `input` and `result` = `value`.
fn map_with(
    flow: &Flow,
    node: &Node,
    map: &crate::template::InputTemplate,
    ctx: &mut RunContext,
    value: &Value,
) -> Result<Value, RunError> {
    ctx.begin_mapping(value);
    let mapped = flow.templates.render(&node.id, map, ctx.handlebars());
    ctx.end_mapping();
    mapped.map_err(RunError::Template)
}

pub(super) fn merge_config(
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
pub(super) fn emit_payload(input: Value) -> Value {
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
pub(super) fn string_field(
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

/// A wait's deadline (Unix ms) from its input's `timeout` (`"10m"`, `"90s"`,
/// or milliseconds) or `until` (RFC 3339), if it has one.
fn wait_deadline(input: &Value) -> Result<Option<u64>, String> {
    let now_ms = crate::clock::now_ms();
    match (input.get("timeout"), input.get("until")) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(None),
        (Some(_), Some(_)) => Err("give `timeout` or `until`, not both".into()),
        (Some(Value::Number(ms)), _) => ms
            .as_u64()
            .map(|ms| Some(now_ms.saturating_add(ms)))
            .ok_or_else(|| format!("`timeout: {ms}` is not a number of milliseconds")),
        (Some(Value::String(text)), _) => humantime::parse_duration(text)
            .map(|d| Some(now_ms.saturating_add(d.as_millis() as u64)))
            .map_err(|e| format!("`timeout: {text}`: {e} (write e.g. `10m`, `90s`, `1h 30m`)")),
        (_, Some(Value::String(text))) => humantime::parse_rfc3339_weak(text)
            .map(|t| Some(crate::clock::unix_ms(t)))
            .map_err(|e| {
                format!("`until: {text}`: {e} (an RFC 3339 time such as `2026-12-04T09:00:00Z`)")
            }),
        (Some(other), _) => Err(format!(
            "`timeout: {other}` must be a duration such as `10m`"
        )),
        (_, Some(other)) => Err(format!("`until: {other}` must be an RFC 3339 time")),
    }
}
