//! `empty-slot`: plugged into the runner's unused node slots by `compose`.
//! The runner never binds a component to such a slot, so a call means a
//! binding mistake: it answers a node error saying so.

use node_kit::node;

struct EmptySlot;

impl node::Guest for EmptySlot {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "empty-slot",
            env!("CARGO_PKG_VERSION"),
            "Fills unused runner slots.",
        )
    }

    fn invoke(
        op: String,
        _: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        Err(node_kit::error(
            "empty-slot",
            &format!(
                "operation `{op}` called on a runner slot that no component was composed into"
            ),
        ))
    }
}

node_kit::export_node!(EmptySlot);
