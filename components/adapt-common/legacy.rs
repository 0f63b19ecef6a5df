// A composition part shared by the adapt-v04/-v05 crates (and their pre-i18n
// shapes, built with `cfg(pre_i18n)`): plugged by `compose` between a node
// component on a legacy JSON ABI (greentic:component@0.4.0 / @0.5.0, seed 002)
// and its runner slot, so the node answers `node@0.6.0` inside a composition.
//
// The CBOR payload goes in as JSON text with an `exec-ctx` made from the
// envelope; `invoke-result` comes back as the 0.6 result (errors keep their
// code, message, retry hints and details). `on-start` runs before the
// instance's first call, as host-shim does. What a composition cannot offer:
// `invoke-stream` progress and `on-stop` (no host is there to see the run end).

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use std::cell::Cell;

use bindings::exports::greentic::component0_6_0::node::{
    ComponentDescriptor, Guest, InvocationEnvelope, InvocationResult,
};
use bindings::legacy_node as legacy;
use bindings::greentic::types_core::core::NodeError;
use serde_json::Value;

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

fn exec_ctx(envelope: &InvocationEnvelope) -> legacy::ExecCtx {
    let ctx = &envelope.ctx;
    legacy::ExecCtx {
        tenant: legacy::TenantCtx {
            tenant: ctx.tenant_id.clone(),
            team: ctx.team_id.clone(),
            user: ctx.user_id.clone(),
            trace_id: Some(ctx.trace_id.clone()),
            #[cfg(not(pre_i18n))]
            i18n_id: None,
            correlation_id: Some(ctx.correlation_id.clone()),
            deadline_unix_ms: (ctx.deadline_ms != 0).then_some(ctx.deadline_ms),
            attempt: envelope.attempt,
            idempotency_key: ctx.idempotency_key.clone(),
        },
        #[cfg(not(pre_i18n))]
        i18n_id: None,
        flow_id: envelope.flow_id.clone(),
        node_id: Some(envelope.step_id.clone()),
    }
}

fn error(code: &str, message: String) -> NodeError {
    NodeError {
        code: code.into(),
        message,
        retryable: false,
        backoff_ms: None,
        details: None,
    }
}

struct Adapter;

impl Guest for Adapter {
    fn describe() -> ComponentDescriptor {
        let manifest: Value = serde_json::from_str(&legacy::get_manifest()).unwrap_or(Value::Null);
        let text = |key: &str| manifest.get(key).and_then(Value::as_str).map(str::to_string);
        ComponentDescriptor {
            name: text("name").unwrap_or_else(|| "legacy".into()),
            version: text("version").unwrap_or_else(|| "0.0.0".into()),
            summary: text("description"),
            capabilities: Vec::new(),
            ops: Vec::new(),
            schemas: Vec::new(),
            setup: None,
        }
    }

    fn invoke(op: String, envelope: InvocationEnvelope) -> Result<InvocationResult, NodeError> {
        let ctx = exec_ctx(&envelope);
        if !STARTED.get() {
            legacy::on_start(&ctx).map_err(|m| error("start-failed", format!("on-start failed: {m}")))?;
            STARTED.set(true);
        }
        let input: Value = ciborium::from_reader(envelope.payload_cbor.as_slice())
            .map_err(|e| error("invalid-input", format!("the payload is not CBOR JSON: {e}")))?;
        match legacy::invoke(&ctx, &op, &input.to_string()) {
            legacy::InvokeResult::Ok(json) => {
                let output: Value = serde_json::from_str(&json)
                    .map_err(|e| error("invalid-output", format!("output is not JSON: {e}")))?;
                let mut output_cbor = Vec::new();
                ciborium::into_writer(&output, &mut output_cbor).expect("JSON values encode as CBOR");
                Ok(InvocationResult {
                    ok: true,
                    output_cbor,
                    output_metadata_cbor: None,
                })
            }
            legacy::InvokeResult::Err(e) => Err(NodeError {
                code: e.code,
                message: e.message,
                retryable: e.retryable,
                backoff_ms: e.backoff_ms,
                details: e.details.map(String::into_bytes),
            }),
        }
    }
}

bindings::export!(Adapter with_types_in bindings);
