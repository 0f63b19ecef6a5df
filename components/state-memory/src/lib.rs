//! `state-memory`: an in-memory `greentic:state/state-store@1.1.0` provider
//! for compositions that carry their own state. `compose` gives each approved
//! component its own instance, so components never see each other's keys; the
//! state lives as long as the composed component's instance. A `@1.0.0` import
//! is satisfied by this `@1.1.0` export (it only adds `write-if-absent`).

use std::cell::RefCell;
use std::collections::HashMap;

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::state::state_store::{
    Guest, HostError, OpAck, StateKey, TenantCtx,
};

thread_local! {
    static ENTRIES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
}

struct Memory;

fn invalid_key() -> HostError {
    HostError {
        code: "invalid-input".into(),
        message: "the key is empty".into(),
    }
}

impl Guest for Memory {
    fn read(key: StateKey, _ctx: Option<TenantCtx>) -> Result<Vec<u8>, HostError> {
        if key.is_empty() {
            return Err(invalid_key());
        }
        ENTRIES
            .with(|e| e.borrow().get(&key).cloned())
            .ok_or_else(|| HostError {
                code: "not-found".into(),
                message: format!("no state under key `{key}`"),
            })
    }

    fn write(key: StateKey, bytes: Vec<u8>, _ctx: Option<TenantCtx>) -> Result<OpAck, HostError> {
        if key.is_empty() {
            return Err(invalid_key());
        }
        ENTRIES.with(|e| e.borrow_mut().insert(key, bytes));
        Ok(OpAck::Ok)
    }

    fn delete(key: StateKey, _ctx: Option<TenantCtx>) -> Result<OpAck, HostError> {
        ENTRIES.with(|e| e.borrow_mut().remove(&key));
        Ok(OpAck::Ok)
    }

    fn write_if_absent(
        key: StateKey,
        bytes: Vec<u8>,
        _ctx: Option<TenantCtx>,
    ) -> Result<bool, HostError> {
        if key.is_empty() {
            return Err(invalid_key());
        }
        Ok(ENTRIES.with(|e| {
            let mut entries = e.borrow_mut();
            if entries.contains_key(&key) {
                false
            } else {
                entries.insert(key, bytes);
                true
            }
        }))
    }
}

bindings::export!(Memory with_types_in bindings);
