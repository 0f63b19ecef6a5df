//! `echo`: every operation returns its input unchanged (the very same CBOR bytes).

use node_kit::node;

struct Echo;

impl node::Guest for Echo {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "echo",
            env!("CARGO_PKG_VERSION"),
            "Returns its input unchanged, whatever the operation.",
        )
    }

    fn invoke(
        _op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        Ok(node::InvocationResult {
            ok: true,
            output_cbor: envelope.payload_cbor,
            output_metadata_cbor: None,
        })
    }
}

node_kit::export_node!(Echo);
