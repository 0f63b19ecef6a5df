//! `bot-telegram`: a Telegram-style messaging provider, written here for tests
//! and examples (not greentic's provider). Webhook bodies are Bot API updates
//! (`{update_id, message: {chat: {id}, from: {id, is_bot}, text}}`); a message
//! becomes an envelope `tg:<update_id>` in session `<chat id>`. Replies are
//! `POST https://api.telegram.org/bot<TOKEN>/sendMessage {chat_id, text}`
//! with the token from the secret `TELEGRAM_BOT_TOKEN` (or `config.bot_token`);
//! `config.api_base_url` points at a local Bot API server instead.

include!("../../provider-common/provider.rs");

use greentic_types::{Actor, Destination};

struct Telegram;

impl Channel for Telegram {
    const PROVIDER_TYPE: &'static str = "messaging.telegram.bot";
    const ERROR_FIELD: &'static str = "description";
    const TOKEN_SECRET: &'static str = "TELEGRAM_BOT_TOKEN";

    fn ingest(body: &[u8]) -> Result<Ingested, OpError> {
        let update: Value = serde_json::from_slice(body)
            .map_err(|e| op_error("invalid-input", format!("not a Telegram update: {e}")))?;
        let answer = |events| Ingested {
            status: 200,
            body: Vec::new(),
            content_type: None,
            events,
        };
        let Some(update_id) = update.get("update_id").and_then(Value::as_i64) else {
            return Err(op_error(
                "invalid-input",
                "a Telegram update has an `update_id`",
            ));
        };
        let Some(message) = update.get("message") else {
            // Edits, callbacks, …: acknowledged, nothing for the flow.
            return Ok(answer(Vec::new()));
        };
        let Some(chat) = message.pointer("/chat/id").and_then(Value::as_i64) else {
            return Err(op_error("invalid-input", "a message has `chat.id`"));
        };
        let chat = chat.to_string();
        let mut event = envelope(format!("tg:{update_id}"), "telegram", &chat);
        event.to = vec![Destination {
            id: chat,
            kind: Some("chat".into()),
        }];
        event.text = message
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(from) = message.pointer("/from/id").and_then(Value::as_i64) {
            event.from = Some(Actor {
                id: from.to_string(),
                kind: Some("user".into()),
            });
        }
        event
            .metadata
            .insert("update_id".into(), update_id.to_string());
        if message.pointer("/from/is_bot").and_then(Value::as_bool) == Some(true) {
            event
                .metadata
                .insert("is_bot_message".into(), "true".into());
        }
        Ok(answer(vec![event]))
    }

    fn encode(to: &str, text: &str) -> Value {
        json!({"chat_id": to, "text": text})
    }

    const API_BASE: &'static str = "https://api.telegram.org";

    fn request(base: &str, token: &str, body: Vec<u8>) -> http::Request {
        http::Request {
            method: "POST".into(),
            url: format!("{base}/bot{token}/sendMessage"),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body),
        }
    }
}

export_provider!(Telegram);
