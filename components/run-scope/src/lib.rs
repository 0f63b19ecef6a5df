//! `run-scope`: put by `compose` beside the runner. The runner enters the
//! scope of each run before its first node; the state-memory parts read it
//! to key their entries. One instance per composition, so all of them see
//! the same run.

use std::cell::RefCell;

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

thread_local! {
    static SCOPE: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Scope;

impl bindings::exports::greentic::runner::run_scope::Guest for Scope {
    fn enter(scope: String) {
        SCOPE.with(|s| *s.borrow_mut() = scope);
    }
}

impl bindings::exports::greentic::runner::current_scope::Guest for Scope {
    fn current() -> String {
        SCOPE.with(|s| s.borrow().clone())
    }
}

bindings::export!(Scope with_types_in bindings);
