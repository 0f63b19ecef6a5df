//! `faulty`: misbehaves on purpose, for tests of the host's error handling
//! and limits.
//!
//! - `trap`: hits `unreachable`
//! - `bad-cbor`: answers bytes that are not CBOR
//! - `empty`: answers `ok = true` with no output bytes
//! - `not-ok`: answers `ok = false`
//! - `fail`: a non-retryable `node-error` with code `E_FAULTY`
//! - `flaky` `{succeed_at, backoff_ms?}`: a retryable error (with `backoff_ms`
//!   when given) until the envelope's attempt reaches `succeed_at`, then
//!   `{attempt}`
//! - `spin`: loops forever without cooperating
//! - `hog` `{step_mb?}`: allocates (and touches) memory until something stops it
//! - `big` `{mb}`: answers an output of about `mb` MiB
//! - anything else: returns its input

use node_kit::node;
use serde_json::{Value, json};

struct Faulty;

fn raw(bytes: Vec<u8>, ok: bool) -> Result<node::InvocationResult, node::NodeError> {
    Ok(node::InvocationResult {
        ok,
        output_cbor: bytes,
        output_metadata_cbor: None,
    })
}

impl node::Guest for Faulty {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "faulty",
            env!("CARGO_PKG_VERSION"),
            "Fails in chosen ways, for tests.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        match op.as_str() {
            "trap" => core::arch::wasm32::unreachable(),
            "bad-cbor" => raw(vec![0xff, 0xfe, 0x00], true),
            "empty" => raw(Vec::new(), true),
            "not-ok" => raw(envelope.payload_cbor, false),
            "fail" => Err(node_kit::error("E_FAULTY", "failed as asked")),
            "flaky" => {
                let input = node_kit::input(&envelope)?;
                let succeed_at = input.get("succeed_at").and_then(Value::as_u64).unwrap_or(1);
                if u64::from(envelope.attempt) < succeed_at {
                    return Err(node::NodeError {
                        code: "E_FLAKY".into(),
                        message: format!("attempt {} failed, try again", envelope.attempt),
                        retryable: true,
                        backoff_ms: input.get("backoff_ms").and_then(Value::as_u64),
                        details: None,
                    });
                }
                node_kit::output(&json!({ "attempt": envelope.attempt }))
            }
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = core::hint::black_box(x.wrapping_add(1));
                }
            }
            "hog" => {
                let input = node_kit::input(&envelope)?;
                let step = input.get("step_mb").and_then(Value::as_u64).unwrap_or(16) as usize
                    * 1024
                    * 1024;
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; step]);
                    core::hint::black_box(&hoard);
                }
            }
            "big" => {
                let input = node_kit::input(&envelope)?;
                let mb = input.get("mb").and_then(Value::as_u64).unwrap_or(1) as usize;
                node_kit::output(&json!({ "blob": "x".repeat(mb * 1024 * 1024) }))
            }
            _ => raw(envelope.payload_cbor, true),
        }
    }
}

node_kit::export_node!(Faulty);
