//! `http-front`: put by `host-shim compose --http` in front of the runner, so
//! the composed component is a `wasi:http/proxy` app — `wasmtime serve`,
//! `jco serve`, Spin run it unchanged — and still exports
//! `greentic:runner/app@0.1.0`. What requests mean is `front_kit::http`; this
//! moves the bytes.

use std::io::{Read as _, Write as _};

use front_kit::AppFront;
use front_kit::http::{self, Response, Route};
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

front_kit::bindings::export_app_front!(AppFront);
wasip2::http::proxy::export!(HttpFront);

struct HttpFront;

impl wasip2::exports::http::incoming_handler::Guest for HttpFront {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let baked = front_kit::baked();
        let method = method_name(&request.method());
        let path = request.path_with_query().unwrap_or_default();
        let response = match http::route(baked, &method, &path) {
            Route::Healthz => http::healthz(),
            Route::Answer(response) => response,
            Route::Run => {
                let headers = request.headers();
                let header = |name: &str| -> Result<Option<String>, ()> {
                    match headers.get(name).into_iter().next() {
                        None => Ok(None),
                        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| ()),
                    }
                };
                match read_body(request, baked.http.max_body) {
                    Some(body) => http::run(baked, header, &body),
                    None => http::too_large(baked),
                }
            }
        };
        send(response_out, response);
    }
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}

/// The request body, or `None` when it is longer than `max` bytes (or
/// unreadable). Reads at most `max + 1` bytes: a client cannot make the
/// instance buffer more.
fn read_body(request: IncomingRequest, max: u64) -> Option<Vec<u8>> {
    let body = request.consume().ok()?;
    let mut body_bytes = Vec::new();
    {
        let stream = body.stream().ok()?;
        let mut limited = stream.take(max + 1);
        limited.read_to_end(&mut body_bytes).ok()?;
    }
    drop(IncomingBody::finish(body));
    (body_bytes.len() as u64 <= max).then_some(body_bytes)
}

fn send(out: ResponseOutparam, response: Response) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
        .expect("content-type is an allowed header");
    let outgoing = OutgoingResponse::new(headers);
    // Every status this front answers is a valid one.
    let _ = outgoing.set_status_code(response.status);
    let body = outgoing
        .body()
        .expect("a new response's body is taken once");
    ResponseOutparam::set(out, Ok(outgoing));
    {
        let mut stream = body.write().expect("a new body's stream is taken once");
        // The client may be gone; nothing else to tell it then.
        let _ = stream.write_all(response.body.as_bytes());
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}
