//! `counter`: keeps a count in the canonical state store (`greentic:state/store@1.0.0`).
//! The host scopes it to the run's tenant, so each tenant has its own count.
//!
//! - `increment` `{by?}` -> `{count}` (the new count)
//! - `get` -> `{count}` (0 when never counted)
//! - `reset` -> `{count: 0}`

use greentic_interfaces_guest::state_store;
use node_kit::node;
use serde_json::{Value, json};

struct Counter;

const KEY: &str = "count";

fn current() -> Result<u64, node::NodeError> {
    match state_store::read(KEY, None) {
        Ok(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| node_kit::error("corrupt-state", "stored count is not a number")),
        Err(e) if e.code == "not-found" => Ok(0),
        Err(e) => Err(node_kit::error(&e.code, &e.message)),
    }
}

impl node::Guest for Counter {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "counter",
            env!("CARGO_PKG_VERSION"),
            "A per-tenant counter kept in state.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let count = match op.as_str() {
            "increment" => {
                let by = input.get("by").and_then(Value::as_u64).unwrap_or(1);
                let next = current()? + by;
                state_store::write(KEY, next.to_string().as_bytes(), None)
                    .map_err(|e| node_kit::error(&e.code, &e.message))?;
                next
            }
            "get" => current()?,
            "reset" => {
                state_store::delete(KEY, None).map_err(|e| node_kit::error(&e.code, &e.message))?;
                0
            }
            other => {
                return Err(node_kit::error(
                    "unknown-op",
                    &format!("counter has no operation `{other}`"),
                ));
            }
        };
        node_kit::output(&json!({ "count": count }))
    }
}

node_kit::export_node!(Counter);
