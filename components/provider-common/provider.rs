// Shared by the test provider components (`include!`d by each): the
// `greentic:provider-schema-core/schema-core-api@1.0.0` export and its ops
// over greentic-types' messaging DTOs, as greentic's messaging providers
// offer them — `ingest_http`, `render_plan`, `encode`, `send_payload`, and
// `send` (encode + send in one, for a flow node). A channel implements
// [`Channel`]: reading its webhook, shaping its API call, reading the answer.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bindings::exports::greentic::provider_schema_core::schema_core_api as api;
use bindings::greentic::http::http_client as http;
use bindings::greentic::secrets_store::secrets_store;
use greentic_types::messaging::universal_dto::{
    HttpInV1, HttpOutV1, ProviderPayloadV1, RenderPlanInV1, SendPayloadInV1,
    SendPayloadResultV1,
};
use greentic_types::{ChannelMessageEnvelope, EnvId, TenantCtx, TenantId};
use serde_json::{Value, json};

/// A failed op: answered as `{ok: false, error: {code, message}}`.
pub struct OpError {
    code: &'static str,
    message: String,
}

fn op_error(code: &'static str, message: impl Into<String>) -> OpError {
    OpError {
        code,
        message: message.into(),
    }
}

/// What a webhook request gave: the answer to the channel and its events.
pub struct Ingested {
    /// HTTP status answered to the channel.
    pub status: u16,
    /// Body answered to the channel.
    pub body: Vec<u8>,
    /// Content type of `body`, if any.
    pub content_type: Option<&'static str>,
    /// The channel's messages, as envelopes.
    pub events: Vec<ChannelMessageEnvelope>,
}

/// One channel's shapes.
pub trait Channel {
    /// `provider_type` as greentic names it.
    const PROVIDER_TYPE: &'static str;
    /// The secret holding the API token (a `config.bot_token` wins).
    const TOKEN_SECRET: &'static str;
    /// Reads a webhook request's body.
    fn ingest(body: &[u8]) -> Result<Ingested, OpError>;
    /// The API call that delivers `text` to destination `to`: its JSON body.
    fn encode(to: &str, text: &str) -> Value;
    /// The channel API's default base URL (a `config.api_base_url` wins: a
    /// self-hosted API server, a staging stand-in).
    const API_BASE: &'static str;
    /// The request sending an encoded body with `token` to the API at `base`.
    fn request(base: &str, token: &str, body: Vec<u8>) -> http::Request;
    /// The field of the API's JSON answer that says what went wrong (both
    /// APIs answer `{"ok": bool, …}`).
    const ERROR_FIELD: &'static str;
}

/// An envelope of a channel message; the host sets the real tenant.
pub fn envelope(id: String, channel: &str, session: &str) -> ChannelMessageEnvelope {
    let ctx = TenantCtx::new(
        EnvId::try_from("local").expect("a valid id"),
        TenantId::try_from("default").expect("a valid id"),
    );
    ChannelMessageEnvelope {
        id,
        tenant: ctx,
        channel: channel.to_string(),
        session_id: session.to_string(),
        reply_scope: None,
        from: None,
        to: Vec::new(),
        correlation_id: None,
        text: None,
        attachments: Vec::new(),
        metadata: Default::default(),
        extensions: Default::default(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(op: &str, input: &[u8]) -> Result<T, OpError> {
    serde_json::from_slice(input)
        .map_err(|e| op_error("invalid-input", format!("`{op}` input: {e}")))
}

fn ingest_http<C: Channel>(input: &[u8]) -> Result<Value, OpError> {
    let request: HttpInV1 = parse("ingest_http", input)?;
    let body = B64
        .decode(request.body_b64.as_bytes())
        .map_err(|e| op_error("invalid-input", format!("body_b64: {e}")))?;
    let ingested = C::ingest(&body)?;
    let headers = ingested
        .content_type
        .map(|ct| {
            vec![greentic_types::messaging::universal_dto::Header {
                name: "content-type".into(),
                value: ct.into(),
            }]
        })
        .unwrap_or_default();
    let out = HttpOutV1 {
        status: ingested.status,
        headers,
        body_b64: B64.encode(&ingested.body),
        events: ingested.events,
    };
    let mut value = serde_json::to_value(out).expect("DTOs serialise");
    value["v"] = json!(1);
    Ok(value)
}

fn destination(message: &ChannelMessageEnvelope) -> String {
    message
        .to
        .first()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| message.session_id.clone())
}

fn render_plan(input: &[u8]) -> Result<Value, OpError> {
    let request: RenderPlanInV1 = parse("render_plan", input)?;
    let plan = json!({"tier": "text", "text": request.message.text.clone().unwrap_or_default()});
    Ok(json!({"ok": true, "plan": {"plan_json": plan.to_string()}}))
}

fn payload<C: Channel>(to: &str, text: &str) -> ProviderPayloadV1 {
    ProviderPayloadV1 {
        content_type: "application/json".into(),
        body_b64: B64.encode(C::encode(to, text).to_string()),
        metadata: Default::default(),
    }
}

/// `encode`'s input: greentic's `EncodeInV1` names a plan of its own shape;
/// greentic-start sends `render_plan`'s answer there. Only the message is read.
#[derive(serde::Deserialize)]
struct EncodeIn {
    message: ChannelMessageEnvelope,
}

fn encode<C: Channel>(input: &[u8]) -> Result<Value, OpError> {
    let request: EncodeIn = parse("encode", input)?;
    let text = request.message.text.clone().unwrap_or_default();
    let payload = payload::<C>(&destination(&request.message), &text);
    Ok(json!({"ok": true, "payload": payload}))
}

fn token<C: Channel>(config: Option<&Value>) -> Result<String, OpError> {
    if let Some(token) = config
        .and_then(|c| c.get("bot_token"))
        .and_then(Value::as_str)
    {
        return Ok(token.to_string());
    }
    match secrets_store::get(C::TOKEN_SECRET) {
        Ok(Some(bytes)) => String::from_utf8(bytes)
            .map_err(|_| op_error("invalid-secret", format!("{} is not UTF-8", C::TOKEN_SECRET))),
        Ok(None) => Err(op_error(
            "missing-secret",
            format!("{} is not set", C::TOKEN_SECRET),
        )),
        Err(e) => Err(op_error("secret-denied", format!("{}: {e:?}", C::TOKEN_SECRET))),
    }
}

fn deliver<C: Channel>(payload: &ProviderPayloadV1, config: Option<&Value>) -> Result<Value, OpError> {
    let body = B64
        .decode(payload.body_b64.as_bytes())
        .map_err(|e| op_error("invalid-input", format!("payload.body_b64: {e}")))?;
    let token = token::<C>(config)?;
    let base = config
        .and_then(|c| c.get("api_base_url"))
        .and_then(Value::as_str)
        .unwrap_or(C::API_BASE)
        .trim_end_matches('/');
    let result = match http::send(&C::request(base, &token, body), None, None) {
        Ok(response) => {
            let (ok, message, retryable) = outcome(
                response.status,
                response.body.as_deref().unwrap_or_default(),
                C::ERROR_FIELD,
            );
            SendPayloadResultV1 {
                ok,
                message,
                retryable,
            }
        }
        Err(e) => SendPayloadResultV1 {
            ok: false,
            retryable: matches!(e.code.as_str(), "timeout" | "unavailable"),
            message: Some(format!("{}: {}", e.code, e.message)),
        },
    };
    Ok(serde_json::to_value(result).expect("DTOs serialise"))
}

/// A JSON API's answer `{"ok": bool, <error_field>: text}` as `(ok, message,
/// retryable)`: a 429 or a 5xx may go through later.
fn outcome(status: u16, body: &[u8], error_field: &str) -> (bool, Option<String>, bool) {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let ok = status == 200 && answer.get("ok").and_then(Value::as_bool) == Some(true);
    let message = answer
        .get(error_field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| (!ok).then(|| format!("HTTP {status}")));
    (ok, message, status == 429 || status >= 500)
}

fn send_payload<C: Channel>(input: &[u8]) -> Result<Value, OpError> {
    let raw: Value = parse("send_payload", input)?;
    let request: SendPayloadInV1 = parse("send_payload", input)?;
    if request.provider_type != C::PROVIDER_TYPE {
        return Err(op_error(
            "invalid-input",
            format!(
                "provider_type `{}` is not `{}`",
                request.provider_type,
                C::PROVIDER_TYPE
            ),
        ));
    }
    deliver::<C>(&request.payload, raw.get("config"))
}

/// `{to, text, config?}`: encode and send in one (a flow's node).
fn send<C: Channel>(input: &[u8]) -> Result<Value, OpError> {
    let input: Value = parse("send", input)?;
    let field = |key: &str| -> Result<String, OpError> {
        match input.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(op_error("invalid-input", format!("`send` needs `{key}`"))),
        }
    };
    let payload = payload::<C>(&field("to")?, &field("text")?);
    deliver::<C>(&payload, input.get("config"))
}

fn dispatch<C: Channel>(op: &str, input: &[u8]) -> Vec<u8> {
    let result = match op {
        "ingest_http" => ingest_http::<C>(input),
        "render_plan" => render_plan(input),
        "encode" => encode::<C>(input),
        "send_payload" => send_payload::<C>(input),
        "send" => send::<C>(input),
        other => Err(op_error("unknown-op", format!("no op `{other}`"))),
    };
    let value = result.unwrap_or_else(|e| {
        json!({"ok": false, "error": {"code": e.code, "message": e.message}})
    });
    value.to_string().into_bytes()
}

fn describe<C: Channel>() -> Vec<u8> {
    json!({
        "provider_type": C::PROVIDER_TYPE,
        "capabilities": ["messaging"],
        "ops": ["ingest_http", "render_plan", "encode", "send_payload", "send"],
        "secrets": [C::TOKEN_SECRET],
    })
    .to_string()
    .into_bytes()
}

/// Exports `$channel` (a [`Channel`]) as the component's schema-core API.
macro_rules! export_provider {
    ($channel:ident) => {
        impl api::Guest for $channel {
            fn describe() -> Vec<u8> {
                describe::<$channel>()
            }
            fn validate_config(_config: Vec<u8>) -> Vec<u8> {
                json!({"ok": true}).to_string().into_bytes()
            }
            fn healthcheck() -> Vec<u8> {
                json!({"status": "ok"}).to_string().into_bytes()
            }
            fn invoke(op: String, input: Vec<u8>) -> Vec<u8> {
                dispatch::<$channel>(&op, &input)
            }
        }
        bindings::export!($channel with_types_in bindings);
    };
}
