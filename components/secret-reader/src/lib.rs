//! `secret-reader`: reads the secret named by `{key}` through
//! `greentic:secrets-store/secrets-store@1.0.0` and reports what it got
//! *without* the value: `{key, found, length, matches?}`, where `matches`
//! compares with an optional `expect` so tests can check the value without
//! it ever reaching an output. Host errors are reported as `{error}`.

use greentic_interfaces_guest::secrets_store as secrets;
use node_kit::node;
use serde_json::{Value, json};

struct SecretReader;

impl node::Guest for SecretReader {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "secret-reader",
            env!("CARGO_PKG_VERSION"),
            "Reads one secret.",
        )
    }

    fn invoke(
        _op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let key = input.get("key").and_then(Value::as_str).unwrap_or_default();
        let out = match secrets::get(key) {
            Ok(Some(value)) => {
                let mut out = json!({"key": key, "found": true, "length": value.len()});
                if let Some(expect) = input.get("expect").and_then(Value::as_str) {
                    out["matches"] = json!(value == expect.as_bytes());
                }
                out
            }
            Ok(None) => json!({"key": key, "found": false}),
            Err(e) => json!({"key": key, "error": format!("{e:?}").to_lowercase()}),
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(SecretReader);
