//! How the state store's bytes are kept in greentic-state, which stores JSON.
//!
//! A written blob is stored as `{"b64": "<standard base64 of the bytes>"}`, so
//! any bytes (binary, invalid UTF-8, JSON with its exact whitespace) read back
//! identical. A value some other greentic-state client stored as plain JSON
//! reads back as its compact JSON text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const FIELD: &str = "b64";

/// The JSON value stored for `bytes`.
pub fn encode(bytes: &[u8]) -> Value {
    json!({ FIELD: STANDARD.encode(bytes) })
}

/// The bytes a stored JSON value stands for.
pub fn decode(value: &Value) -> Vec<u8> {
    if let Value::Object(map) = value
        && map.len() == 1
        && let Some(Value::String(text)) = map.get(FIELD)
        && let Ok(bytes) = STANDARD.decode(text)
    {
        return bytes;
    }
    serde_json::to_vec(value).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let samples: [&[u8]; 5] = [
            b"",
            b"\x00\xff\xfe binary",
            b"{ \"a\" :  1 }\n",
            "ünï".as_bytes(),
            &[0xc3, 0x28],
        ];
        for bytes in samples {
            assert_eq!(decode(&encode(bytes)), bytes);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), all);
    }

    #[test]
    fn foreign_json_reads_as_its_text() {
        assert_eq!(decode(&json!({"count": 3})), br#"{"count":3}"#);
        assert_eq!(
            decode(&json!({"b64": "not base64!"})),
            br#"{"b64":"not base64!"}"#
        );
    }
}
