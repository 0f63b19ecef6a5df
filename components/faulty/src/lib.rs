//! `faulty`: misbehaves on purpose, for tests of the host's error handling.
//!
//! - `trap`: hits `unreachable`
//! - `bad-cbor`: answers bytes that are not CBOR
//! - `not-ok`: answers `ok = false`
//! - `fail`: returns a non-retryable `node-error` with code `E_FAULTY`
//! - anything else: returns its input

use node_kit::node;

struct Faulty;

impl node::Guest for Faulty {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "faulty",
            env!("CARGO_PKG_VERSION"),
            "Fails in chosen ways, for tests.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        match op.as_str() {
            "trap" => core::arch::wasm32::unreachable(),
            "bad-cbor" => Ok(node::InvocationResult {
                ok: true,
                output_cbor: vec![0xff, 0xfe, 0x00],
                output_metadata_cbor: None,
            }),
            "not-ok" => Ok(node::InvocationResult {
                ok: false,
                output_cbor: envelope.payload_cbor,
                output_metadata_cbor: None,
            }),
            "fail" => Err(node_kit::error("E_FAULTY", "failed as asked")),
            _ => Ok(node::InvocationResult {
                ok: true,
                output_cbor: envelope.payload_cbor,
                output_metadata_cbor: None,
            }),
        }
    }
}

node_kit::export_node!(Faulty);
