//! What an app flow answers, as messages to send back — greentic-start's
//! reading of a flow's output: a string; `{type: "text", text}`;
//! `{type: "adaptive_card", card}`; a list of those; `{messages: […]}` or
//! `{events: […]}`; `{message: …}`; a `greentic_control` `respond`
//! (`{text, card_cbor}`); else a `text` (or this runner's
//! `emit.response` `reply`) field. A waiting turn's `{waiting: true, …}`
//! marker is no message; anything else answers nothing (logged).

use serde_json::Value;

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Text.
    Text(String),
    /// An Adaptive Card (with its fallback text, if the flow gave one).
    Card {
        /// The card.
        card: Value,
        /// Text for channels without cards.
        text: Option<String>,
    },
}

/// The messages in a flow's output; what it could not read goes to `skipped`.
pub fn replies(output: &Value, skipped: &mut Vec<Value>) -> Vec<Reply> {
    let mut out = Vec::new();
    collect(output, &mut out, skipped, 0);
    out
}

fn collect(value: &Value, out: &mut Vec<Reply>, skipped: &mut Vec<Value>, depth: usize) {
    // A flow's output is data: nesting this deep is not a message list.
    if depth > 8 {
        skipped.push(value.clone());
        return;
    }
    let text_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    match value {
        Value::Null => {}
        Value::String(text) if !text.is_empty() => out.push(Reply::Text(text.clone())),
        Value::Array(items) => {
            for item in items {
                collect(item, out, skipped, depth + 1);
            }
        }
        // A waiting turn's own marker (`session.wait`'s output): not a message.
        Value::Object(map) if map.get("waiting") == Some(&Value::Bool(true)) => {}
        Value::Object(map) => {
            match map.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(text) = text_of(value, "text") {
                        out.push(Reply::Text(text));
                        return;
                    }
                }
                Some("adaptive_card") => {
                    if let Some(card) = map.get("card") {
                        out.push(Reply::Card {
                            card: card.clone(),
                            text: text_of(value, "text"),
                        });
                        return;
                    }
                }
                _ => {}
            }
            // greentic_control `respond`: `card_cbor` is the card as CBOR bytes.
            if let Some(Value::Array(bytes)) = map.get("card_cbor") {
                let bytes: Vec<u8> = bytes
                    .iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|b| u8::try_from(b).ok())
                    .collect();
                match ciborium::from_reader::<Value, _>(bytes.as_slice()) {
                    Ok(card) => out.push(Reply::Card {
                        card,
                        text: text_of(value, "text"),
                    }),
                    Err(_) => skipped.push(value.clone()),
                }
                return;
            }
            for list in ["messages", "events"] {
                if let Some(items) = map.get(list).filter(|v| v.is_array()) {
                    return collect(items, out, skipped, depth + 1);
                }
            }
            if let Some(message) = map.get("message") {
                return collect(message, out, skipped, depth + 1);
            }
            match text_of(value, "text").or_else(|| text_of(value, "reply")) {
                Some(text) => out.push(Reply::Text(text)),
                None => skipped.push(value.clone()),
            }
        }
        other => skipped.push(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cbor(value: &Value) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn greentic_start_shapes_are_read_and_others_skipped() {
        let mut skipped = Vec::new();
        let output = json!([
            "plain",
            {"type": "text", "text": "typed"},
            {"type": "adaptive_card", "card": {"type": "AdaptiveCard"}},
            {"messages": [{"text": "listed"}]},
            {"message": "wrapped"},
            {"reply": "emitted"},
            {"count": 3},
            {"waiting": true, "reason": "name"},
            {"text": "responded", "card_cbor": null, "needs_user": null},
            {"text": "with a card", "card_cbor": cbor(&json!({"type": "AdaptiveCard"}))},
            42
        ]);
        assert_eq!(
            replies(&output, &mut skipped),
            vec![
                Reply::Text("plain".into()),
                Reply::Text("typed".into()),
                Reply::Card {
                    card: json!({"type": "AdaptiveCard"}),
                    text: None
                },
                Reply::Text("listed".into()),
                Reply::Text("wrapped".into()),
                Reply::Text("emitted".into()),
                Reply::Text("responded".into()),
                Reply::Card {
                    card: json!({"type": "AdaptiveCard"}),
                    text: Some("with a card".into())
                },
            ]
        );
        assert_eq!(skipped, vec![json!({"count": 3}), json!(42)]);
    }
}
