//! host-shim serve's request/response contract, for a composed app that any
//! `wasi:http` host serves: `POST /flows/{flow_id}` with the entry JSON as body
//! → 200 and the output JSON (or the waiting record), or `{"error": …}` with
//! the status serve gives the same failure; `GET /healthz`. Free of WASI
//! types: `http-front` moves bytes, this decides what they say.

use serde_json::json;

use crate::bindings::greentic::runner::run::{ErrorKind, RunError, RunOutcome, Tenant};
use crate::{Baked, run_baked};

/// An answer: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// serve's refusal record: `{"error": {"kind": "host", "message"}}`.
    pub fn host_error(status: u16, message: &str) -> Response {
        Response::json(
            status,
            json!({"error": {"kind": "host", "message": message}}),
        )
    }
}

/// Where a request goes, decided from its method and path alone.
#[derive(Debug)]
pub enum Route {
    Healthz,
    /// A run of the baked flow: read the body (at most `max_body` bytes) and
    /// call [`run`].
    Run,
    /// Answered without reading the body.
    Answer(Response),
}

/// Routes a request for the flow `baked` (the query string is ignored).
pub fn route(baked: &Baked, method: &str, path_with_query: &str) -> Route {
    let path = path_with_query.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/healthz") => Route::Healthz,
        ("POST", p) if p.starts_with("/flows/") => {
            let id = &p["/flows/".len()..];
            if id == baked.flow_id {
                Route::Run
            } else {
                Route::Answer(Response::host_error(
                    404,
                    &format!("no flow `{id}` is served here"),
                ))
            }
        }
        (_, "/healthz") => Route::Answer(Response::host_error(405, "use GET")),
        (_, p) if p.starts_with("/flows/") => Route::Answer(Response::host_error(
            405,
            "use POST with the entry JSON as body",
        )),
        _ => Route::Answer(Response::host_error(
            404,
            "no such route: POST /flows/{flow_id}, GET /healthz",
        )),
    }
}

/// The health answer.
pub fn healthz() -> Response {
    Response::json(200, json!({"status": "ok"}))
}

/// The answer to a body larger than allowed.
pub fn too_large(baked: &Baked) -> Response {
    Response::host_error(
        413,
        &format!("the body is larger than {} bytes", baked.http.max_body),
    )
}

/// Runs the baked flow on a request's `body`; `header` gives a request
/// header's value (`Err` when it is not text).
pub fn run(
    baked: &Baked,
    header: impl Fn(&str) -> Result<Option<String>, ()>,
    body: &[u8],
) -> Response {
    let tenant = match tenant(baked, &header) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match header("x-greentic-session") {
        Ok(None) => {}
        // A session's snapshot must outlive the instance, and a wasi:http host
        // gives no store to keep it in (wasmtime serve: a fresh instance per
        // request). Refused, not silently run as a new conversation.
        Ok(Some(_)) | Err(()) => {
            return Response::host_error(
                501,
                "this composed app keeps no sessions (`x-greentic-session`); serve the flow with `host-shim serve` for conversations",
            );
        }
    }
    let entry = match std::str::from_utf8(body) {
        Ok(text) if text.trim().is_empty() => "{}".to_string(),
        Ok(text) if serde_json::from_str::<serde_json::Value>(text).is_ok() => text.to_string(),
        _ => {
            return Response::json(
                400,
                json!({"error": {"kind": "invalid-input", "message": "the body is not JSON", "node": null, "code": null, "line": null, "column": null}}),
            );
        }
    };
    match run_baked(entry, tenant, String::new()) {
        Ok(outcome) => outcome_response(outcome),
        Err(error) => error_response(&error),
    }
}

/// The run's tenant: the baked one, or (when trusted) the headers over it.
fn tenant(
    baked: &Baked,
    header: &impl Fn(&str) -> Result<Option<String>, ()>,
) -> Result<Tenant, Response> {
    let settings = &baked.http;
    let mut tenant = Tenant {
        env: settings.env.clone(),
        tenant: settings.tenant.clone(),
        team: settings.team.clone(),
        user: settings.user.clone(),
    };
    if !settings.trust_tenant_headers {
        return Ok(tenant);
    }
    let text = |name: &str| {
        header(name)
            .map_err(|()| Response::host_error(400, &format!("header `{name}` is not text")))
    };
    if let Some(v) = text("x-greentic-env")? {
        tenant.env = v;
    }
    if let Some(v) = text("x-greentic-tenant")? {
        tenant.tenant = v;
    }
    if let Some(v) = text("x-greentic-team")? {
        tenant.team = Some(v);
    }
    if let Some(v) = text("x-greentic-user")? {
        tenant.user = Some(v);
    }
    Ok(tenant)
}

/// 200 with the output, or the waiting record as host-shim prints it.
fn outcome_response(outcome: RunOutcome) -> Response {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text);
    let value = match outcome {
        RunOutcome::Completed(output) => parse(&output),
        RunOutcome::Waiting(waiting) => parse(&waiting.output_json).map(|output| {
            let mut record = serde_json::Map::new();
            record.insert("status".into(), "waiting".into());
            record.insert("node".into(), waiting.node.into());
            if let Some(reason) = waiting.reason {
                record.insert("reason".into(), reason.into());
            }
            record.insert("output".into(), output);
            serde_json::Value::Object(record)
        }),
    };
    match value {
        Ok(value) => Response::json(200, value),
        Err(e) => Response::json(
            500,
            json!({"error": {"kind": "host", "message": format!("the runner's output is not JSON: {e}"), "node": null, "code": null, "line": null, "column": null}}),
        ),
    }
}

/// The runner's error record with serve's status for its kind: the client's
/// mistakes 4xx, the flow's 422, a flow that cannot load 500.
fn error_response(error: &RunError) -> Response {
    let (status, kind) = match error.kind {
        ErrorKind::InvalidInput => (400, "invalid-input"),
        ErrorKind::Session => (409, "session"),
        ErrorKind::InvalidFlow => (500, "invalid-flow"),
        ErrorKind::Binding => (500, "binding"),
        ErrorKind::Template => (422, "template"),
        ErrorKind::Routing => (422, "routing"),
        ErrorKind::Node => (422, "node"),
    };
    Response::json(
        status,
        json!({"error": {
            "kind": kind,
            "message": error.message,
            "node": error.node,
            "code": error.code,
            "line": error.line,
            "column": error.column,
        }}),
    )
}
