//! `logger`: logs its input through `greentic:telemetry/logger-api@1.0.0`
//! (one field per top-level input key, plus `message`) and returns the input
//! with `logged: true`. A host error is returned as `{logged: false, code}`.

use greentic_interfaces_guest::telemetry_logger as telemetry;
use node_kit::node;
use serde_json::{Value, json};

struct Logger;

impl node::Guest for Logger {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "logger",
            env!("CARGO_PKG_VERSION"),
            "Logs its input, then echoes it.",
        )
    }

    fn invoke(
        _op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let fields: Vec<(String, String)> = match &input {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
            other => vec![("message".into(), other.to_string())],
        };
        let span = telemetry::SpanContext {
            tenant: envelope.ctx.tenant_id.clone(),
            session_id: None,
            flow_id: envelope.flow_id.clone(),
            node_id: Some(envelope.step_id.clone()),
            provider: "logger".into(),
            start_ms: None,
            end_ms: None,
        };
        let mut out = input.clone();
        match telemetry::log(&span, &fields, None) {
            Ok(_) => out["logged"] = json!(true),
            Err(e) => {
                out["logged"] = json!(false);
                out["code"] = json!(e.code);
            }
        }
        node_kit::output(&out)
    }
}

node_kit::export_node!(Logger);
