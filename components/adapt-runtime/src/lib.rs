//! `adapt-runtime`: plugged by `compose` between a node component that exports
//! only `greentic:component/component-runtime@0.6.0` and its runner slot.
//!
//! `run(input, state)` gets the envelope's payload and the `new-state` this
//! node returned on its previous call in the same run (empty on its first);
//! the output becomes an `ok` result. State is kept per node (`step-id`) and
//! forgotten when a new run starts (a new `trace-id`) — the same contract as
//! host-shim's own adapter. It is never persisted and never shared between nodes.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use std::cell::RefCell;
use std::collections::HashMap;

use bindings::exports::greentic::component::node::{
    ComponentDescriptor, Guest, InvocationEnvelope, InvocationResult,
};
use bindings::greentic::component::component_runtime;
use bindings::greentic::types_core::core::NodeError;

/// The run being served (its trace id) and each node's state in it.
#[derive(Default)]
struct RunStates {
    trace_id: String,
    states: HashMap<String, Vec<u8>>,
}

thread_local! {
    static RUN: RefCell<RunStates> = RefCell::default();
}

struct Adapter;

impl Guest for Adapter {
    fn describe() -> ComponentDescriptor {
        ComponentDescriptor {
            name: "component-runtime".into(),
            version: "0.6.0".into(),
            summary: Some("a component-runtime node, adapted to node@0.6.0".into()),
            capabilities: Vec::new(),
            ops: Vec::new(),
            schemas: Vec::new(),
            setup: None,
        }
    }

    fn invoke(_op: String, envelope: InvocationEnvelope) -> Result<InvocationResult, NodeError> {
        RUN.with(|run| {
            let mut run = run.borrow_mut();
            if run.trace_id != envelope.ctx.trace_id {
                run.trace_id = envelope.ctx.trace_id.clone();
                run.states.clear();
            }
            let state = run.states.remove(&envelope.step_id).unwrap_or_default();
            let result = component_runtime::run(&envelope.payload_cbor, &state);
            run.states.insert(envelope.step_id, result.new_state);
            Ok(InvocationResult {
                ok: true,
                output_cbor: result.output,
                output_metadata_cbor: None,
            })
        })
    }
}

bindings::export!(Adapter with_types_in bindings);
