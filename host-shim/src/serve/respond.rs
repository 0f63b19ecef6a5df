//! Turning outcomes into HTTP answers, and reading what a request says about
//! itself (its `Host`, its content type, single-valued headers).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::time::Duration;

use super::slots::NoSlot;
use crate::auth::Denied;
use crate::host::Failure;
use crate::runner::ErrorKind;

/// The HTTP status of a failed run: the client's mistakes are 4xx, the
/// flow's and the server's 5xx (as exit codes 2 and 1 split them, except
/// that a flow or component the server cannot load is the server's).
pub(super) fn status_of(failure: &Failure) -> StatusCode {
    match failure {
        Failure::Flow(e) => match e.kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Session => StatusCode::CONFLICT,
            ErrorKind::InvalidFlow | ErrorKind::Binding => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Template | ErrorKind::Routing | ErrorKind::Node => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        },
        Failure::InvalidFlow(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Failure::Invalid(e)
            if e.downcast_ref::<crate::sessions::InvalidSessionId>()
                .is_some() =>
        {
            StatusCode::BAD_REQUEST
        }
        Failure::Invalid(e)
            if e.downcast_ref::<crate::caps::state::scope::InvalidTenantId>()
                .is_some() =>
        {
            StatusCode::BAD_REQUEST
        }
        Failure::Invalid(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Failure::Internal(_) if failure.is_session_busy() => StatusCode::CONFLICT,
        Failure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Failure::RunTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// `name` without its port: `[::1]:80` → `[::1]`, `localhost:8080` → `localhost`.
pub(super) fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.split(':').next().unwrap_or(host)
}

/// The header `name` as text, if sent once. Sent twice is refused: a gateway
/// that appends its own value instead of replacing the client's would
/// otherwise have the client's believed.
pub(super) fn single_header(
    request: &Request<Incoming>,
    name: &str,
) -> Result<Option<String>, Denied> {
    let bad = |message: String| Denied {
        status: 400,
        reason: "bad_header",
        message,
    };
    let mut values = request.headers().get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(bad(format!("header `{name}` is sent more than once"))),
        (Some(v), None) => v
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| bad(format!("header `{name}` is not text"))),
    }
}

/// Whether the request says its body is JSON (`application/json`, or a
/// `+json` type). Required: an HTML form cannot send it, so a web page
/// cannot make a visitor's browser run a flow.
pub(super) fn is_json(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|t| {
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        })
}

pub(super) fn invalid_input_record(message: &str) -> String {
    json!({"error": {"kind": "invalid-input", "message": message, "node": null, "code": null, "line": null, "column": null}}).to_string()
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"error": {"kind": "host", "message": message}}).to_string(),
    )
}

/// How long [`linger`] keeps reading a refused body.
const LINGER: Duration = Duration::from_secs(5);

/// Reads and drops (at most `limit` bytes of, for at most [`LINGER`]) the
/// body of a request refused before it was read, as nginx's lingering close
/// does: a client that sends its whole body before reading the answer then
/// gets the answer instead of a reset connection.
pub(super) fn linger(mut body: Incoming, limit: usize) {
    tokio::spawn(async move {
        let drain = async {
            let mut left = limit;
            while let Some(Ok(frame)) = body.frame().await {
                let n = frame.data_ref().map_or(0, Bytes::len);
                if n >= left {
                    break;
                }
                left -= n;
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// 429 with `Retry-After: 1` for a request that got no run slot.
pub(super) fn busy_response(
    no_slot: NoSlot,
    max_concurrent: usize,
    max_queue: usize,
) -> Response<Full<Bytes>> {
    let message = match no_slot {
        NoSlot::QueueFull => format!(
            "{max_concurrent} runs are in progress and {max_queue} requests wait; try again"
        ),
        NoSlot::Waited => {
            format!("no run slot came free in time ({max_concurrent} runs in progress); try again")
        }
    };
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, &message);
    response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
