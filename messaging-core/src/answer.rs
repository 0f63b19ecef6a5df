//! Reading a provider op's answer, as every host reads it: a JSON answer is
//! the op's result, except `{ok: false, …}`, a failure with the answer's
//! `error.code` / `error.message` (or `message`), retryable when it says
//! `retryable: true` (a channel API's 429 or 5xx, a timeout).

use serde_json::Value;

/// Attempts of a retryable `send_payload`, and the first delay between them
/// (doubling), in every host.
pub const SEND_ATTEMPTS: u32 = 4;
/// See [`SEND_ATTEMPTS`].
pub const SEND_FIRST_DELAY_MS: u64 = 200;

/// A provider op that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct OpFailed {
    /// The provider's error code (`provider-error` when it gave none,
    /// `invalid-output` for an answer that is not JSON).
    pub code: String,
    /// What it said.
    pub message: String,
    /// Whether sending again may succeed.
    pub retryable: bool,
}

/// The op's result in `answer`, or its failure.
pub fn read_answer(answer: &[u8]) -> Result<Value, OpFailed> {
    let value: Value = serde_json::from_slice(answer).map_err(|e| OpFailed {
        code: "invalid-output".into(),
        message: format!("the provider's answer is not JSON: {e}"),
        retryable: false,
    })?;
    if value.get("ok") != Some(&Value::Bool(false)) {
        return Ok(value);
    }
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    Err(OpFailed {
        code: text("/error/code").unwrap_or("provider-error").to_string(),
        message: text("/error/message")
            .or(text("/message"))
            .unwrap_or("the provider answered ok: false")
            .to_string(),
        retryable: value.get("retryable") == Some(&Value::Bool(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_false_is_a_failure_and_anything_else_the_result() {
        let failed =
            read_answer(br#"{"ok":false,"error":{"code":"unknown-op","message":"no op `x`"}}"#)
                .unwrap_err();
        assert_eq!(
            (
                failed.code.as_str(),
                failed.message.as_str(),
                failed.retryable
            ),
            ("unknown-op", "no op `x`", false)
        );
        let failed =
            read_answer(br#"{"ok":false,"message":"HTTP 502","retryable":true}"#).unwrap_err();
        assert_eq!(
            (
                failed.code.as_str(),
                failed.message.as_str(),
                failed.retryable
            ),
            ("provider-error", "HTTP 502", true)
        );
        assert_eq!(
            read_answer(br#"{"ok":true,"message":null}"#).unwrap(),
            serde_json::json!({"ok": true, "message": null})
        );
        assert_eq!(read_answer(b"nope").unwrap_err().code, "invalid-output");
    }
}
