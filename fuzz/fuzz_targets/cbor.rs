//! The CBOR↔JSON codec of the node envelope: decoding arbitrary bytes never
//! panics; what decodes re-encodes to CBOR that decodes to the same JSON; and
//! any JSON value goes through CBOR unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runner_core::{cbor_to_json, json_to_cbor};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor_to_json(data) {
        let again = cbor_to_json(&json_to_cbor(&value)).expect("our own CBOR decodes");
        assert_eq!(value, again, "CBOR→JSON→CBOR→JSON is not stable");
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let back = cbor_to_json(&json_to_cbor(&value)).expect("our own CBOR decodes");
        assert_eq!(value, back, "JSON→CBOR→JSON changed the value");
    }
});
