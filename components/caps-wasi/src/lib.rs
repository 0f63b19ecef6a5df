//! `caps-wasi`: put by `host-shim compose --provider` into the secrets and
//! HTTP imports of the composed bot's provider, so the bot needs nothing but
//! WASI from its host (`wasmtime serve -S cli,http`):
//!
//! - `greentic:http/http-client@1.0.0|1.1.0` → `wasi:http/outgoing-handler`,
//!   only to the hosts compose baked (the profile's `http.allow`, matched as
//!   host-shim matches them), with the baked timeout (or less if asked) and
//!   response cap. Redirects are answered, not followed (host-shim follows
//!   them itself, checking each hop; a part has no such policy of its own).
//! - `greentic:secrets-store/secrets-store@1.0.0` → the environment variable
//!   of the key's name, for the keys the provider's manifest declares;
//!   others are `denied`.
//!
//! Errors keep host-shim's codes: `denied`, `invalid-request`, `timeout`,
//! `too-large`, `unavailable`.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use std::io::{Read as _, Write as _};
use std::sync::OnceLock;

use bindings::exports::greentic::http1_0_0::http_client as http10;
use bindings::exports::greentic::http1_1_0::http_client as http11;
use bindings::exports::greentic::secrets_store::secrets_store;
use bindings::greentic::interfaces_types::types::TenantCtx;
use bindings::greentic::runner::baked_flows;
use greentic_baked_doc::{Baked, BotSettings, host_allowed};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// The grants compose baked, read once per instance.
fn grants() -> &'static BotSettings {
    static BOT: OnceLock<BotSettings> = OnceLock::new();
    BOT.get_or_init(|| {
        // Written by compose together with this part: unreadable means a
        // broken composition, not a caller's mistake.
        let baked: Baked = serde_json::from_str(&baked_flows::flows_json())
            .expect("the baked-flows part of this composition is not what compose writes");
        baked
            .bot
            .expect("compose plugs caps-wasi only into a bot, whose document has `bot`")
    })
}

struct Caps;

impl secrets_store::Guest for Caps {
    fn get(key: String) -> Result<Option<Vec<u8>>, secrets_store::SecretsError> {
        if !grants().secrets.contains(&key) {
            return Err(secrets_store::SecretsError::Denied);
        }
        Ok(wasip2::cli::environment::get_environment()
            .into_iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.into_bytes()))
    }
}

/// A request in the shape both client versions share.
struct Call {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

/// A response or `(code, message)`.
type Outcome = Result<(u16, Vec<(String, String)>, Vec<u8>), (&'static str, String)>;

impl http11::Guest for Caps {
    fn send(
        req: http11::Request,
        opts: Option<http11::RequestOptions>,
        _ctx: Option<TenantCtx>,
    ) -> Result<http11::Response, http11::HostError> {
        let call = Call {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout_ms: opts.and_then(|o| o.timeout_ms),
        };
        send(call)
            .map(|(status, headers, body)| http11::Response {
                status,
                headers,
                body: Some(body),
            })
            .map_err(|(code, message)| http11::HostError {
                code: code.into(),
                message,
            })
    }
}

impl http10::Guest for Caps {
    fn send(
        req: http10::Request,
        _ctx: Option<TenantCtx>,
    ) -> Result<http10::Response, http10::HostError> {
        let call = Call {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout_ms: None,
        };
        send(call)
            .map(|(status, headers, body)| http10::Response {
                status,
                headers,
                body: Some(body),
            })
            .map_err(|(code, message)| http10::HostError {
                code: code.into(),
                message,
            })
    }
}

fn send(call: Call) -> Outcome {
    let grants = grants();
    let uri: http::Uri = call.url.parse().map_err(|e| {
        (
            "invalid-request",
            format!("`{}` is not a URL: {e}", call.url),
        )
    })?;
    let (scheme, default_port) = match uri.scheme_str() {
        Some("http") => (Scheme::Http, 80),
        Some("https") => (Scheme::Https, 443),
        _ => {
            return Err((
                "invalid-request",
                format!("`{}`: only http and https URLs", call.url),
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| ("invalid-request", format!("`{}` has no host", call.url)))?;
    let port = uri.port_u16().unwrap_or(default_port);
    if !host_allowed(&grants.http_allow, host, port, default_port) {
        return Err((
            "denied",
            format!("{host}:{port} is not in the profile's http.allow"),
        ));
    }
    let headers = Fields::new();
    for (name, value) in &call.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| ("invalid-request", format!("header `{name}`: {e:?}")))?;
    }
    // A known length, as ureq sends it in host-shim: without it the body
    // goes chunked, which some channel APIs (and simple servers) do not read.
    if let Some(body) = &call.body
        && !call
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        headers
            .append("content-length", body.len().to_string().as_bytes())
            .map_err(|e| ("invalid-request", format!("header `content-length`: {e:?}")))?;
    }
    let request = OutgoingRequest::new(headers);
    let method = method(&call.method);
    request
        .set_method(&method)
        .map_err(|()| ("invalid-request", format!("method `{}`", call.method)))?;
    request
        .set_scheme(Some(&scheme))
        .and_then(|()| request.set_authority(uri.authority().map(|a| a.as_str())))
        .and_then(|()| {
            request.set_path_with_query(Some(
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            ))
        })
        .map_err(|()| ("invalid-request", format!("`{}`", call.url)))?;
    let timeout_ms = call
        .timeout_ms
        .map(u64::from)
        .map_or(grants.http_timeout_ms, |ms| ms.min(grants.http_timeout_ms));
    let options = RequestOptions::new();
    let nanos = timeout_ms.saturating_mul(1_000_000);
    // A host may not support some of these; the deadline below still holds.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    let body = request
        .body()
        .map_err(|()| ("invalid-request", "the request body".to_string()))?;
    let pending = outgoing_handler::handle(request, Some(options)).map_err(transport)?;
    {
        let stream = body
            .write()
            .map_err(|()| ("invalid-request", "the request body".to_string()))?;
        if let Some(bytes) = &call.body {
            write_all(stream, bytes)?;
        }
    }
    OutgoingBody::finish(body, None).map_err(transport)?;
    // One deadline over the whole exchange, whatever the host does with the
    // options above.
    let deadline = wasip2::clocks::monotonic_clock::subscribe_duration(nanos);
    let ready = pending.subscribe();
    let woke = wasip2::io::poll::poll(&[&ready, &deadline]);
    if !woke.contains(&0) {
        return Err(("timeout", format!("no answer within {timeout_ms} ms")));
    }
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(transport(code)),
        _ => return Err(("unavailable", "the response was lost".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body = read_body(response.consume(), grants.http_max_response)?;
    Ok((status, headers, body))
}

/// Writes the whole body; the stream is dropped after, as the body's
/// `finish` requires.
fn write_all(
    mut stream: wasip2::io::streams::OutputStream,
    bytes: &[u8],
) -> Result<(), (&'static str, String)> {
    stream
        .write_all(bytes)
        .map_err(|e| ("unavailable", format!("sending the body: {e}")))?;
    // With a content-length, the host may close the body as soon as its last
    // byte is written (the request is then complete): a flush finding the
    // stream closed is success — calling it a failure would have the request
    // sent again (seen under load: the channel got every reply twice).
    match stream.blocking_flush() {
        Ok(()) | Err(wasip2::io::streams::StreamError::Closed) => Ok(()),
        Err(e) => Err(("unavailable", format!("sending the body: {e:?}"))),
    }
}

fn read_body(body: Result<IncomingBody, ()>, max: u64) -> Result<Vec<u8>, (&'static str, String)> {
    let body = body.map_err(|()| ("unavailable", "the response body".to_string()))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| ("unavailable", "the response body".to_string()))?;
        stream
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ("unavailable", format!("reading the response: {e}")))?;
    }
    drop(IncomingBody::finish(body));
    if bytes.len() as u64 > max {
        return Err((
            "too-large",
            format!("the response body exceeds {max} bytes"),
        ));
    }
    Ok(bytes)
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn transport(code: ErrorCode) -> (&'static str, String) {
    match code {
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => {
            ("timeout", format!("{code:?}"))
        }
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            ("invalid-request", format!("{code:?}"))
        }
        other => ("unavailable", format!("{other:?}")),
    }
}

bindings::export!(Caps with_types_in bindings);
