//! `bot-slack`: a Slack-style messaging provider, written here for tests and
//! examples (not greentic's provider). Webhook bodies are Events API
//! callbacks: `url_verification` is answered with its challenge;
//! `event_callback` with a `message` event becomes an envelope
//! `slack:<event_id>` in session `<channel>` (`<channel>:<thread_ts>` in a
//! thread); a bot's own message (`bot_id`) is marked `is_bot_message`.
//! Replies are `POST https://slack.com/api/chat.postMessage {channel, text}`
//! with `Authorization: Bearer` the secret `SLACK_BOT_TOKEN`.

include!("../../provider-common/provider.rs");

use greentic_types::{Actor, Destination};

struct Slack;

impl Channel for Slack {
    const PROVIDER_TYPE: &'static str = "messaging.slack.api";
    const ERROR_FIELD: &'static str = "error";
    const TOKEN_SECRET: &'static str = "SLACK_BOT_TOKEN";

    fn ingest(body: &[u8]) -> Result<Ingested, OpError> {
        let callback: Value = serde_json::from_slice(body)
            .map_err(|e| op_error("invalid-input", format!("not a Slack callback: {e}")))?;
        let ok = |body: Vec<u8>, content_type, events| Ingested {
            status: 200,
            body,
            content_type,
            events,
        };
        match callback.get("type").and_then(Value::as_str) {
            Some("url_verification") => {
                let challenge = callback
                    .get("challenge")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        op_error("invalid-input", "url_verification has no challenge")
                    })?;
                Ok(ok(
                    challenge.as_bytes().to_vec(),
                    Some("text/plain"),
                    Vec::new(),
                ))
            }
            Some("event_callback") => {
                let event = callback.get("event").cloned().unwrap_or(Value::Null);
                if event.get("type").and_then(Value::as_str) != Some("message") {
                    return Ok(ok(Vec::new(), None, Vec::new()));
                }
                let event_id = callback
                    .get("event_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        op_error("invalid-input", "an event_callback has an `event_id`")
                    })?;
                let channel = event
                    .get("channel")
                    .and_then(Value::as_str)
                    .ok_or_else(|| op_error("invalid-input", "a message event has a `channel`"))?;
                let session = match event.get("thread_ts").and_then(Value::as_str) {
                    Some(thread) => format!("{channel}:{thread}"),
                    None => channel.to_string(),
                };
                let mut message = envelope(format!("slack:{event_id}"), "slack", &session);
                message.to = vec![Destination {
                    id: channel.to_string(),
                    kind: Some("channel".into()),
                }];
                message.text = event
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if let Some(user) = event.get("user").and_then(Value::as_str) {
                    message.from = Some(Actor {
                        id: user.to_string(),
                        kind: Some("user".into()),
                    });
                }
                message
                    .metadata
                    .insert("event_id".into(), event_id.to_string());
                if event.get("bot_id").is_some()
                    || event.get("subtype").and_then(Value::as_str) == Some("bot_message")
                {
                    message
                        .metadata
                        .insert("is_bot_message".into(), "true".into());
                }
                Ok(ok(Vec::new(), None, vec![message]))
            }
            _ => Ok(ok(Vec::new(), None, Vec::new())),
        }
    }

    fn encode(to: &str, text: &str) -> Value {
        json!({"channel": to, "text": text})
    }

    const API_BASE: &'static str = "https://slack.com/api";

    fn request(base: &str, token: &str, body: Vec<u8>) -> http::Request {
        http::Request {
            method: "POST".into(),
            url: format!("{base}/chat.postMessage"),
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("authorization".into(), format!("Bearer {token}")),
            ],
            body: Some(body),
        }
    }
}

export_provider!(Slack);
