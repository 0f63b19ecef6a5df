//! Helpers shared by the example node components (`greentic:component/node@0.6.0`).

pub use greentic_interfaces_guest;
pub use greentic_interfaces_guest::component_v0_6::node;
use serde_json::Value;

/// Decodes the envelope's CBOR payload into JSON.
pub fn input(envelope: &node::InvocationEnvelope) -> Result<Value, node::NodeError> {
    ciborium::from_reader(envelope.payload_cbor.as_slice()).map_err(|e| {
        error(
            "invalid-input",
            &format!("payload is not JSON-shaped CBOR: {e}"),
        )
    })
}

/// A successful result carrying `value` as CBOR.
pub fn output(value: &Value) -> Result<node::InvocationResult, node::NodeError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| error("internal", &e.to_string()))?;
    Ok(node::InvocationResult {
        ok: true,
        output_cbor: bytes,
        output_metadata_cbor: None,
    })
}

/// A non-retryable node error.
pub fn error(code: &str, message: &str) -> node::NodeError {
    node::NodeError {
        code: code.into(),
        message: message.into(),
        retryable: false,
        backoff_ms: None,
        details: None,
    }
}

/// A descriptor with the given name and summary and no declared ops.
pub fn descriptor(name: &str, version: &str, summary: &str) -> node::ComponentDescriptor {
    node::ComponentDescriptor {
        name: name.into(),
        version: version.into(),
        summary: Some(summary.into()),
        capabilities: vec![],
        ops: vec![],
        schemas: vec![],
        setup: None,
    }
}

/// Exports `$ty` (which implements `node::Guest`) as a node component, with the
/// empty QA and i18n exports greentic-interfaces-guest 1.2 requires to link.
#[macro_export]
macro_rules! export_node {
    ($ty:ident) => {
        impl $crate::greentic_interfaces_guest::component_v0_6::component_qa::Guest for $ty {
            fn qa_spec(
                _: $crate::greentic_interfaces_guest::component_v0_6::component_qa::QaMode,
            ) -> Vec<u8> {
                Vec::new()
            }
            fn apply_answers(
                _: $crate::greentic_interfaces_guest::component_v0_6::component_qa::QaMode,
                current: Vec<u8>,
                _: Vec<u8>,
            ) -> Vec<u8> {
                current
            }
        }
        impl $crate::greentic_interfaces_guest::component_v0_6::component_i18n::Guest for $ty {
            fn i18n_keys() -> Vec<String> {
                Vec::new()
            }
        }
        $crate::greentic_interfaces_guest::export_component_v060!($ty, component_qa: $ty, component_i18n: $ty);
    };
}
