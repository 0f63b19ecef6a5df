//! The run context templates and conditions read, one per flow invocation.
//!
//! Roots:
//! - `entry`: the entry payload (`{}` if none). When the flow mentions
//!   `input`, an entry object without an `input` field gets `input` = itself,
//!   as greentic-runner aliases it (so `{{entry.input.text}}` works for a
//!   bare message as well as for a wrapped one);
//! - `in`: the same as `entry` (greentic-runner's alias);
//! - `prev`: the previous node's output (`{}` for the first node);
//! - `node.<id>`: outputs of the nodes executed so far (the latest, if a node ran twice);
//! - `state`: a runner-made view of the run, never read from a store:
//!   `{flow, node, step, visits, tenant: {env, tenant, team, user}}`, plus
//!   greentic-runner's `entry`, `input` (both the entry) and
//!   `nodes.<id>.{ok, payload}` when the flow mentions them;
//! - `vars`: flow variables (`parameters.vars_init`, `var.set`, `vars_out`);
//! - `parameters`: the flow's `parameters` map, read-only;
//! - `now`: `{iso, epoch_ms, date}`, one instant per node (only built when mentioned);
//! - in conditions only: `out` (the node's own output) and `event` (its outcome).
//!
//! All of it lives for one run only; nothing persists.

use handlebars::Context;
use serde_json::{Map, Value, json};

/// The roots above that every run context has (conditions add `out`,
/// `event` and `response`).
pub(crate) const ROOTS: &[&str] = &[
    "entry",
    "in",
    "prev",
    "node",
    "state",
    "vars",
    "parameters",
    "now",
];

/// Who a run acts for (also as a snapshot records it).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Which optional parts of the run context the flow's templates and
/// conditions mention (found by a plain text search, so it may over-approximate).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ContextNeeds {
    /// `in.*`
    pub(crate) in_alias: bool,
    /// `state.entry` / `state.input` / `state.nodes`
    pub(crate) state_view: bool,
    /// `now.*`
    pub(crate) now: bool,
    /// `….input…`: the entry gets its `input` alias.
    pub(crate) entry_input: bool,
}

/// What a run's context takes from its flow.
#[derive(Clone, Copy)]
pub(crate) struct FlowFacts<'a> {
    pub(crate) id: &'a str,
    pub(crate) needs: ContextNeeds,
    pub(crate) parameters: &'a Value,
}

pub(crate) struct RunContext {
    ctx: Context,
    state_view: bool,
    now: bool,
}

impl RunContext {
    pub(crate) fn new(
        flow: FlowFacts<'_>,
        mut entry: Value,
        vars: Map<String, Value>,
        tenant: &Tenant,
    ) -> Self {
        let needs = flow.needs;
        if needs.entry_input
            && let Value::Object(map) = &mut entry
            && !map.contains_key("input")
        {
            let copy = Value::Object(map.clone());
            map.insert("input".into(), copy);
        }
        let mut state = json!({
            "flow": flow.id,
            "node": null,
            "step": 0,
            "visits": 0,
            "tenant": {
                "env": tenant.env,
                "tenant": tenant.tenant,
                "team": tenant.team,
                "user": tenant.user,
            },
        });
        if needs.state_view {
            state["entry"] = entry.clone();
            state["input"] = entry.clone();
            state["nodes"] = json!({});
        }
        let mut data = json!({
            "prev": {},
            "node": {},
            "vars": vars,
            "parameters": flow.parameters,
        });
        if needs.in_alias {
            data["in"] = entry.clone();
        }
        data["entry"] = entry;
        data["state"] = state;
        RunContext {
            ctx: Context::from(data),
            state_view: needs.state_view,
            now: needs.now,
        }
    }

    /// Before rendering `node`: updates `state.{node, step, visits}` and `now`.
    pub(crate) fn enter(&mut self, node: &str, step: u32, visits: u32) {
        let data = self.ctx.data_mut();
        let state = &mut data["state"];
        state["node"] = Value::String(node.to_string());
        state["step"] = step.into();
        state["visits"] = visits.into();
        if self.now {
            data["now"] = now();
        }
    }

    /// After `node` ran: its output becomes `node.<id>` and `prev`.
    pub(crate) fn record(&mut self, node: &str, output: &Value, ok: bool) {
        let data = self.ctx.data_mut();
        if self.state_view {
            data["state"]["nodes"][node] = json!({"ok": ok, "payload": output});
        }
        data["node"]
            .as_object_mut()
            .expect("`node` is an object")
            .insert(node.to_string(), output.clone());
        data["prev"] = output.clone();
    }

    pub(crate) fn set_var(&mut self, name: &str, value: Value) {
        self.ctx.data_mut()["vars"][name] = value;
    }

    pub(crate) fn take_vars(&mut self) -> Map<String, Value> {
        match std::mem::take(&mut self.ctx.data_mut()["vars"]) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    pub(crate) fn entry(&self) -> &Value {
        &self.ctx.data()["entry"]
    }

    pub(crate) fn take_prev(&mut self) -> Value {
        std::mem::take(&mut self.ctx.data_mut()["prev"])
    }

    /// `node.*` and `prev`, for a waiting run's snapshot.
    pub(crate) fn take_nodes_and_prev(&mut self) -> (Map<String, Value>, Value) {
        let nodes = match std::mem::take(&mut self.ctx.data_mut()["node"]) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        (nodes, self.take_prev())
    }

    /// A resumed run's `node.*` and `prev` (from its snapshot).
    pub(crate) fn restore(&mut self, nodes: Map<String, Value>, prev: Value) {
        let data = self.ctx.data_mut();
        if self.state_view {
            for (id, output) in &nodes {
                data["state"]["nodes"][id] = json!({"ok": true, "payload": output});
            }
        }
        data["node"] = Value::Object(nodes);
        data["prev"] = prev;
    }

    pub(crate) fn handlebars(&self) -> &Context {
        &self.ctx
    }

    pub(crate) fn data(&self) -> &Value {
        self.ctx.data()
    }

    /// Conditions see the node's own output as `out`, its outcome as `event`
    /// and, as greentic-runner builds it, the message's `metadata` fields and
    /// `text` as `response` (`response.action == "submit"` for a card button).
    pub(crate) fn begin_conditions(&mut self, out: &Value, event: String) {
        let data = self.ctx.data_mut();
        let mut response = match data["entry"].get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if let Some(text) = data["entry"].get("text") {
            response.insert("text".into(), text.clone());
        }
        data["response"] = Value::Object(response);
        data["out"] = out.clone();
        data["event"] = Value::String(event);
    }

    /// `provider.invoke`'s maps see `input` and `result` besides the run
    /// context (greentic-runner's roots), both `value`.
    pub(crate) fn begin_mapping(&mut self, value: &Value) {
        let data = self.ctx.data_mut();
        data["input"] = value.clone();
        data["result"] = value.clone();
    }

    pub(crate) fn end_mapping(&mut self) {
        if let Value::Object(map) = self.ctx.data_mut() {
            map.remove("input");
            map.remove("result");
        }
    }

    pub(crate) fn end_conditions(&mut self) {
        if let Value::Object(map) = self.ctx.data_mut() {
            map.remove("out");
            map.remove("event");
            map.remove("response");
        }
    }
}

/// `{iso, epoch_ms, date}` for this instant (UTC, millisecond precision).
fn now() -> Value {
    let epoch_ms = crate::clock::now_ms();
    let iso = crate::clock::rfc3339_ms(epoch_ms);
    let date = iso.get(..10).unwrap_or_default().to_string();
    json!({"iso": iso, "epoch_ms": epoch_ms, "date": date})
}
