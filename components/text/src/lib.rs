//! `text`: small text utilities.
//!
//! - `greet` `{name, greeting?}` -> `{message: "<greeting>, <name>!"}`
//! - `upper` / `lower` any JSON -> the same JSON with every string upper/lower-cased
//! - `stats` `{text}` -> `{chars, words, lines}`
//! - `join` `{items: [..], sep?}` -> `{text}`

use node_kit::node;
use serde_json::{Value, json};

struct Text;

fn map_strings(value: Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
}

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, node::NodeError> {
    input
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| node_kit::error("invalid-input", &format!("`{name}` must be a string")))
}

impl node::Guest for Text {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "text",
            env!("CARGO_PKG_VERSION"),
            "Text utilities: greet, upper, lower, stats, join.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let out = match op.as_str() {
            "greet" => {
                let name = field(&input, "name")?;
                let greeting = input
                    .get("greeting")
                    .and_then(Value::as_str)
                    .unwrap_or("Hello");
                json!({ "message": format!("{greeting}, {name}!") })
            }
            "upper" => map_strings(input, &|s| s.to_uppercase()),
            "lower" => map_strings(input, &|s| s.to_lowercase()),
            "stats" => {
                let text = field(&input, "text")?;
                json!({
                    "chars": text.chars().count(),
                    "words": text.split_whitespace().count(),
                    "lines": text.lines().count(),
                })
            }
            "join" => {
                let items = input
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(|| node_kit::error("invalid-input", "`items` must be an array"))?;
                let sep = input.get("sep").and_then(Value::as_str).unwrap_or(" ");
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                json!({ "text": parts.join(sep) })
            }
            other => {
                return Err(node_kit::error(
                    "unknown-op",
                    &format!("text has no operation `{other}`"),
                ));
            }
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(Text);
