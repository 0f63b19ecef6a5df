//! Stages the provider world with greentic's state-store WIT (from the
//! greentic-interfaces crate) and writes the bindings call `src/lib.rs` includes.
include!("../state-common/build.rs");
