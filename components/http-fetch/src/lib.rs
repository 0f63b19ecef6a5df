//! `http-fetch`: sends `{method?, url, headers?, body?, timeout_ms?, follow?}` through
//! `greentic:http/http-client@1.1.0` and returns `{status, headers, body}`
//! (body as UTF-8 text), or `{error: {code, message}}` with the host's error.
//! (Only `@1.1.0`: one component cannot import both versions, and the guest
//! crate's features are unified across this workspace.)

use greentic_interfaces_guest::http_client_v1_1 as v11;
use node_kit::node;
use serde_json::{Value, json};

struct HttpFetch;

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

impl node::Guest for HttpFetch {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "http-fetch",
            env!("CARGO_PKG_VERSION"),
            "Sends one HTTP request.",
        )
    }

    fn invoke(
        _op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let method = text(&input, "method").unwrap_or_else(|| "GET".into());
        let url = text(&input, "url").unwrap_or_default();
        let headers: Vec<(String, String)> = input
            .get("headers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let body = text(&input, "body").map(String::into_bytes);
        let req = v11::Request {
            method,
            url,
            headers,
            body,
        };
        let timeout_ms = input.get("timeout_ms").and_then(Value::as_u64);
        let follow = input.get("follow").and_then(Value::as_bool);
        let opts = (timeout_ms.is_some() || follow.is_some()).then(|| v11::RequestOptions {
            timeout_ms: timeout_ms.map(|t| t as u32),
            allow_insecure: None,
            follow_redirects: follow,
        });
        let result = v11::send(&req, opts, None)
            .map(|r| (r.status, r.headers, r.body))
            .map_err(|e| (e.code, e.message));
        let out = match result {
            Ok((status, headers, body)) => json!({
                "status": status,
                "headers": headers.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "body": body.map(|b| String::from_utf8_lossy(&b).into_owned()),
            }),
            Err((code, message)) => json!({"error": {"code": code, "message": message}}),
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(HttpFetch);
