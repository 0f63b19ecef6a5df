// A node on the legacy JSON ABI (greentic:component@0.4.0 / @0.5.0, seed 002),
// shared by legacy-v04 and legacy-v05: the two interfaces are the same.
//
// - `upper`: the input with every string upper-cased, plus `{"abi": "<version>"}`
// - `stream`: invoke-stream emits progress 0, 50, 100, one `data` event, `done`
// - `stream-unterminated`: invoke-stream emits progress but never `done`/`error`
// - `stream-error`: invoke-stream ends with `error`
// - `started`: `{"started": true}` if `on-start` ran before this call
// - `fail-stop`: answers `{}`, and makes the following `on-stop` fail
// - `fail`: `err(node-error)` with code `E_LEGACY`

use std::cell::Cell;

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::component::node::{ExecCtx, Guest, InvokeResult, LifecycleStatus, NodeError, StreamEvent};
use serde_json::{Value, json};

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
    static FAIL_STOP: Cell<bool> = const { Cell::new(false) };
}

const ABI: &str = env!("CARGO_PKG_NAME");

fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

struct Legacy;

impl Guest for Legacy {
    fn get_manifest() -> String {
        json!({ "name": ABI, "version": env!("CARGO_PKG_VERSION") }).to_string()
    }

    fn on_start(_ctx: ExecCtx) -> Result<LifecycleStatus, String> {
        STARTED.with(|s| s.set(true));
        Ok(LifecycleStatus::Ok)
    }

    fn on_stop(_ctx: ExecCtx, reason: String) -> Result<LifecycleStatus, String> {
        if FAIL_STOP.with(|f| f.get()) {
            return Err(format!("could not stop cleanly ({reason})"));
        }
        Ok(LifecycleStatus::Ok)
    }

    fn invoke(_ctx: ExecCtx, op: String, input: String) -> InvokeResult {
        let input: Value = match serde_json::from_str(&input) {
            Ok(v) => v,
            Err(e) => return InvokeResult::Err(error("invalid-input", &e.to_string())),
        };
        match op.as_str() {
            "upper" => {
                let mut out = upper(input);
                if let Value::Object(map) = &mut out {
                    map.insert("abi".into(), json!(ABI));
                }
                InvokeResult::Ok(out.to_string())
            }
            "started" => InvokeResult::Ok(json!({ "started": STARTED.with(|s| s.get()) }).to_string()),
            "fail-stop" => {
                FAIL_STOP.with(|f| f.set(true));
                InvokeResult::Ok("{}".into())
            }
            "fail" => InvokeResult::Err(error("E_LEGACY", "failed as asked")),
            other => InvokeResult::Err(error("unknown-op", &format!("no operation `{other}`"))),
        }
    }

    fn invoke_stream(ctx: ExecCtx, op: String, input: String) -> Vec<StreamEvent> {
        match op.as_str() {
            "stream" => vec![
                StreamEvent::Progress(0),
                StreamEvent::Progress(50),
                StreamEvent::Data(json!({ "streamed": input.len(), "abi": ABI }).to_string()),
                StreamEvent::Progress(100),
                StreamEvent::Done,
            ],
            "stream-unterminated" => vec![StreamEvent::Progress(10), StreamEvent::Progress(20)],
            "stream-error" => vec![StreamEvent::Progress(10), StreamEvent::Error("stream broke".into())],
            // Anything else streams the plain result.
            _ => match Self::invoke(ctx, op, input) {
                InvokeResult::Ok(json) => vec![StreamEvent::Data(json), StreamEvent::Done],
                InvokeResult::Err(e) => vec![StreamEvent::Error(e.message)],
            },
        }
    }
}

fn error(code: &str, message: &str) -> NodeError {
    NodeError { code: code.into(), message: message.into(), retryable: false, backoff_ms: None, details: None }
}

bindings::export!(Legacy with_types_in bindings);
