//! `asset-reader`: reads `/assets/<path>` through WASI (a read-only preopen
//! the host gives components whose manifest mounts `assets`) and returns
//! `{path, text}`, or `{path, error}` when it cannot.

use node_kit::node;
use serde_json::{Value, json};

struct AssetReader;

impl node::Guest for AssetReader {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "asset-reader",
            env!("CARGO_PKG_VERSION"),
            "Reads a pack asset.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let path = format!(
            "/assets/{}",
            input
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        let out = if op == "write" {
            match std::fs::write(&path, b"x") {
                Ok(()) => json!({"path": path, "written": true}),
                Err(e) => json!({"path": path, "error": e.to_string()}),
            }
        } else {
            match std::fs::read_to_string(&path) {
                Ok(text) => json!({"path": path, "text": text}),
                Err(e) => json!({"path": path, "error": e.to_string()}),
            }
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(AssetReader);
