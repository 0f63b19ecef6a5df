//! `runtime-counter`: a component in the style that exports only
//! `greentic:component/component-runtime@0.6.0`. Each call adds the input's
//! `add` (default 1) to a count kept in the state the host hands back, and
//! answers `{count, seen}` where `seen` is the input.
//!
//! No greentic crate ships this interface's WIT (greentic's tooling writes it
//! inline), so this test component declares the shape itself, from the ABI's
//! description: `run(input: list<u8>, state: list<u8>) -> run-result`.

use serde_json::{Value, json};

wit_bindgen::generate!({
    inline: "
        package greentic:component@0.6.0;
        interface component-runtime {
            record run-result { output: list<u8>, new-state: list<u8> }
            run: func(input: list<u8>, state: list<u8>) -> run-result;
        }
        world runtime-only { export component-runtime; }
    ",
    world: "runtime-only",
});

use exports::greentic::component::component_runtime::{Guest, RunResult};

struct Counter;

fn cbor(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("JSON values encode as CBOR");
    bytes
}

impl Guest for Counter {
    fn run(input: Vec<u8>, state: Vec<u8>) -> RunResult {
        let input: Value = ciborium::from_reader(input.as_slice()).unwrap_or(Value::Null);
        let before: u64 = ciborium::from_reader::<Value, _>(state.as_slice())
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let count = before + input.get("add").and_then(Value::as_u64).unwrap_or(1);
        RunResult {
            output: cbor(&json!({"count": count, "seen": input})),
            new_state: cbor(&json!(count)),
        }
    }
}

export!(Counter);
