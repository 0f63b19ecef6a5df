//! `users`: a stand-in for a user API (no network in a node component here),
//! so seed 001's example flow can run. Operation `read` takes `{url}` ending in
//! `/users/<id>` and answers like an HTTP API: `{status, url, user?}`.

use node_kit::node;
use serde_json::{Value, json};

struct Users;

const USERS: &[(u64, &str, &str)] = &[
    (1, "Ada Lovelace", "active"),
    (7, "Grace Hopper", "active"),
    (42, "Alan Turing", "away"),
];

impl node::Guest for Users {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "users",
            env!("CARGO_PKG_VERSION"),
            "Reads a user record by URL from a built-in table.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        if op != "read" {
            return Err(node_kit::error(
                "unknown-op",
                &format!("users has no operation `{op}`"),
            ));
        }
        let input = node_kit::input(&envelope)?;
        let url = input
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| node_kit::error("invalid-input", "`url` must be a string"))?;
        let id = url
            .rsplit_once("/users/")
            .and_then(|(_, id)| id.parse::<u64>().ok())
            .ok_or_else(|| {
                node_kit::error(
                    "invalid-input",
                    &format!("`{url}` does not end in /users/<id>"),
                )
            })?;
        let out = match USERS.iter().find(|(uid, ..)| *uid == id) {
            Some((id, name, status)) => json!({
                "status": 200,
                "url": url,
                "user": { "id": id, "name": name, "status": status },
            }),
            None => json!({ "status": 404, "url": url }),
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(Users);
