//! Flows packc compiled into `manifest.cbor`, written back as YGTC.

use serde_json::{Map, Value, json};

/// A flow packc compiled (`manifest.cbor`), written back as YGTC: nodes the
/// runner owns keep their op key; a component node becomes `component.exec`
/// with the component id packc resolved.
pub fn ygtc_from_compiled(flow: &greentic_types::Flow) -> String {
    use greentic_types::flow::Routing;
    let mut nodes = Map::new();
    for (id, node) in &flow.nodes {
        let component = node.component.id.as_str();
        let mapping = node.input.mapping.clone();
        let mut body = Map::new();
        if runner_core::is_runner_op_key(component) {
            body.insert(component.to_string(), mapping);
        } else {
            // `component.exec: {component, operation?, input}` kept its whole
            // payload as the mapping; an op-keyed node's payload is the input.
            let authored_exec = mapping.as_object().is_some_and(|m| {
                m.contains_key("input")
                    && ["component", "component_ref", "operation", "op"]
                        .iter()
                        .any(|k| m.contains_key(*k))
            });
            let (operation, input) = if authored_exec {
                let op = mapping
                    .get("operation")
                    .or(mapping.get("op"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (op, mapping["input"].clone())
            } else {
                (None, mapping)
            };
            let operation = operation.or_else(|| node.component.operation.clone());
            let mut exec = Map::new();
            exec.insert("component".into(), component.into());
            if let Some(op) = operation {
                exec.insert("operation".into(), op.into());
            }
            exec.insert("input".into(), input);
            body.insert("component.exec".into(), Value::Object(exec));
        }
        let routing = match &node.routing {
            Routing::Next { node_id } => json!([{ "to": node_id.to_string() }]),
            Routing::End => json!("out"),
            Routing::Reply => json!("reply"),
            Routing::Branch { on_status, default } => {
                let mut routes: Vec<Value> = on_status
                    .iter()
                    .map(|(status, to)| json!({"status": status, "to": to.to_string()}))
                    .collect();
                routes.push(match default {
                    Some(to) => json!({"to": to.to_string()}),
                    None => json!({"out": true}),
                });
                Value::Array(routes)
            }
            Routing::Custom(raw) => raw.clone(),
        };
        body.insert("routing".into(), routing);
        nodes.insert(id.to_string(), Value::Object(body));
    }
    let mut doc = Map::new();
    doc.insert("id".into(), flow.id.to_string().into());
    if let Ok(Value::String(kind)) = serde_json::to_value(flow.kind) {
        doc.insert("type".into(), kind.into());
    }
    if let Some(start) = flow.entrypoints.get("default").and_then(Value::as_str) {
        doc.insert("start".into(), start.into());
    }
    if !flow.metadata.extra.is_null() {
        doc.insert("parameters".into(), flow.metadata.extra.clone());
    }
    doc.insert("nodes".into(), Value::Object(nodes));
    serde_yaml::to_string(&Value::Object(doc)).expect("JSON values serialise as YAML")
}
