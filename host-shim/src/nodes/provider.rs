//! Messaging provider components as nodes: greentic's
//! `greentic:provider-schema-core/schema-core-api@1.0.0`, where every
//! operation is `invoke(op, input-json) -> json` (greentic's messaging
//! providers: `ingest_http`, `render_plan`, `encode`, `send_payload`, …).
//!
//! The node's operation is the provider op and its input the JSON sent. A
//! JSON answer is the node's output, except `{ok: false, …}`: that is a
//! node error with the answer's `error.code` / `error.message` (or
//! `message`), retryable when the answer says `retryable: true` — so a flow's
//! retry policy covers a channel API that failed for a while.
//!
//! Bound by name and checked by type at link time, as the component-runtime
//! ABI: the interface is three opaque-JSON functions.

use greentic_interfaces_wasmtime::component_v0_6::exports::greentic::component::node::{
    InvocationEnvelope, InvocationResult,
};
use greentic_interfaces_wasmtime::component_v0_6::greentic::types_core::core::NodeError;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, TypedFunc};

use compose::PROVIDER_EXPORT;

use super::store::{NodeState, node_error};

type InvokeFunc = TypedFunc<(String, Vec<u8>), (Vec<u8>,)>;

/// A linked provider component: where its `invoke` is.
#[derive(Clone)]
pub struct ProviderPre {
    invoke: ComponentExportIndex,
}

impl ProviderPre {
    /// Finds `invoke` in the component's `schema-core-api` export.
    pub fn new(pre: &InstancePre<NodeState>) -> wasmtime::Result<Self> {
        let component = pre.component();
        let interface = component
            .get_export_index(None, PROVIDER_EXPORT)
            .ok_or_else(|| wasmtime::format_err!("no `{PROVIDER_EXPORT}` export"))?;
        let invoke = component
            .get_export_index(Some(&interface), "invoke")
            .ok_or_else(|| wasmtime::format_err!("`{PROVIDER_EXPORT}` exports no `invoke`"))?;
        Ok(ProviderPre { invoke })
    }

    /// Its `invoke`, checked against the expected signature.
    pub fn instantiate(
        &self,
        store: &mut Store<NodeState>,
        instance: &Instance,
    ) -> wasmtime::Result<ProviderInstance> {
        Ok(ProviderInstance {
            invoke: instance.get_typed_func(&mut *store, self.invoke)?,
        })
    }
}

/// A live provider instance.
pub struct ProviderInstance {
    invoke: InvokeFunc,
}

impl ProviderInstance {
    /// Calls `invoke(op, input)` with the envelope's payload as JSON.
    pub fn invoke(
        &self,
        store: &mut Store<NodeState>,
        op: &str,
        envelope: &InvocationEnvelope,
    ) -> wasmtime::Result<Result<InvocationResult, NodeError>> {
        let input = match runner_core::cbor_to_json(&envelope.payload_cbor) {
            Ok(value) => value.to_string().into_bytes(),
            Err(e) => return Ok(Err(node_error("invalid-input", e))),
        };
        let (answer,) = self.invoke.call(&mut *store, (op.to_string(), input))?;
        Ok(answer_to_result(&answer))
    }
}

/// The node result of a provider's answer (read as every messaging host
/// reads it): `ok: false` is a node error, retryable as the answer says.
fn answer_to_result(answer: &[u8]) -> Result<InvocationResult, NodeError> {
    let value = greentic_messaging_core::read_answer(answer).map_err(|failed| {
        let mut error = node_error(&failed.code, failed.message);
        error.retryable = failed.retryable;
        error
    })?;
    Ok(InvocationResult {
        ok: true,
        output_cbor: runner_core::json_to_cbor(&value),
        output_metadata_cbor: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_false_is_a_node_error_and_anything_else_the_output() {
        let error = answer_to_result(
            br#"{"ok":false,"error":{"code":"unknown-op","message":"no op `x`"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            (error.code.as_str(), error.retryable),
            ("unknown-op", false)
        );
        assert_eq!(error.message, "no op `x`");
        let error =
            answer_to_result(br#"{"ok":false,"message":"HTTP 502","retryable":true}"#).unwrap_err();
        assert_eq!(
            (error.code.as_str(), error.retryable),
            ("provider-error", true)
        );
        assert_eq!(error.message, "HTTP 502");
        let ok = answer_to_result(br#"{"ok":true,"message":null,"retryable":false}"#).unwrap();
        assert_eq!(
            runner_core::cbor_to_json(&ok.output_cbor).unwrap(),
            serde_json::json!({"ok": true, "message": null, "retryable": false})
        );
        assert_eq!(
            answer_to_result(b"nope").unwrap_err().code,
            "invalid-output"
        );
    }
}
