//! `state-memory`: an in-memory `greentic:state/state-store@1.1.0` provider
//! for compositions that carry their own state. `compose` gives each approved
//! component its own instance, so components never see each other's keys;
//! within one, entries are kept per run scope (env, tenant, team, user) as
//! the runner entered it in the `run-scope` part — never as the calling
//! component says — so an app instance run for several tenants keeps them
//! apart. The state lives as long as the composed component's instance. A
//! `@1.0.0` import is satisfied by this `@1.1.0` export (it only adds
//! `write-if-absent`).

use std::cell::RefCell;
use std::collections::HashMap;

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::state::state_store::{
    Guest, HostError, OpAck, StateKey, TenantCtx,
};
use bindings::greentic::runner::current_scope;

/// (run scope, key) → bytes.
type Entries = HashMap<(String, StateKey), Vec<u8>>;

thread_local! {
    static ENTRIES: RefCell<Entries> = RefCell::new(HashMap::new());
}

struct Memory;

/// The entry `key` names in the current run's scope; an empty key is refused.
fn entry(key: StateKey) -> Result<(String, StateKey), HostError> {
    if key.is_empty() {
        return Err(HostError {
            code: "invalid-input".into(),
            message: "the key is empty".into(),
        });
    }
    Ok((current_scope::current(), key))
}

impl Guest for Memory {
    fn read(key: StateKey, _ctx: Option<TenantCtx>) -> Result<Vec<u8>, HostError> {
        let entry = entry(key)?;
        ENTRIES
            .with(|e| e.borrow().get(&entry).cloned())
            .ok_or_else(|| HostError {
                code: "not-found".into(),
                message: format!("no state under key `{}`", entry.1),
            })
    }

    fn write(key: StateKey, bytes: Vec<u8>, _ctx: Option<TenantCtx>) -> Result<OpAck, HostError> {
        let entry = entry(key)?;
        ENTRIES.with(|e| e.borrow_mut().insert(entry, bytes));
        Ok(OpAck::Ok)
    }

    fn delete(key: StateKey, _ctx: Option<TenantCtx>) -> Result<OpAck, HostError> {
        let entry = entry(key)?;
        ENTRIES.with(|e| e.borrow_mut().remove(&entry));
        Ok(OpAck::Ok)
    }

    fn write_if_absent(
        key: StateKey,
        bytes: Vec<u8>,
        _ctx: Option<TenantCtx>,
    ) -> Result<bool, HostError> {
        let entry = entry(key)?;
        Ok(ENTRIES.with(|e| {
            let mut entries = e.borrow_mut();
            if entries.contains_key(&entry) {
                false
            } else {
                entries.insert(entry, bytes);
                true
            }
        }))
    }
}

bindings::export!(Memory with_types_in bindings);
