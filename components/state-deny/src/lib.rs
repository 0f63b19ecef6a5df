//! `state-deny`: plugged by `compose --deny-unapproved` into the state-store import
//! of a component that is not approved for state: every call is refused.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::state::state_store::{
    Guest, HostError, OpAck, StateKey, TenantCtx,
};

struct Deny;

fn denied() -> HostError {
    HostError {
        code: "permission-denied".into(),
        message: "this component is not approved for state (denied when the flow was composed)"
            .into(),
    }
}

impl Guest for Deny {
    fn read(_: StateKey, _: Option<TenantCtx>) -> Result<Vec<u8>, HostError> {
        Err(denied())
    }
    fn write(_: StateKey, _: Vec<u8>, _: Option<TenantCtx>) -> Result<OpAck, HostError> {
        Err(denied())
    }
    fn delete(_: StateKey, _: Option<TenantCtx>) -> Result<OpAck, HostError> {
        Err(denied())
    }
    fn write_if_absent(_: StateKey, _: Vec<u8>, _: Option<TenantCtx>) -> Result<bool, HostError> {
        Err(denied())
    }
}

bindings::export!(Deny with_types_in bindings);
