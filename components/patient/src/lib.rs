//! `patient`: works until the host asks it to stop, through
//! `greentic:component/control@0.6.0`, for tests of cooperative cancellation.
//!
//! - `wait`: says `patient: waiting for cancellation` on stderr, loops calling
//!   `yield-now` until `should-cancel` turns true, then answers
//!   `{cancelled: true}`

use greentic_interfaces_guest::bindings::greentic_component_0_6_0_component::greentic::component::control;
use node_kit::node;
use serde_json::json;

struct Patient;

impl node::Guest for Patient {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "patient",
            env!("CARGO_PKG_VERSION"),
            "Waits for the host's cancellation.",
        )
    }

    fn invoke(
        op: String,
        _: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        if op != "wait" {
            return Err(node_kit::error(
                "unknown-op",
                &format!("patient has no operation `{op}`"),
            ));
        }
        // Tests wait for this line before interrupting (the stderr of node
        // components is the host's).
        eprintln!("patient: waiting for cancellation");
        while !control::should_cancel() {
            control::yield_now();
        }
        node_kit::output(&json!({ "cancelled": true }))
    }
}

node_kit::export_node!(Patient);
