//! Moving a request and a response over `wasi:http`, for the HTTP fronts
//! (`http-front`, `bot-front`): what they say is decided elsewhere.

use std::io::{Read as _, Write as _};

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::http::Response;

/// The method's name (`POST`).
pub fn method_name(method: &Method) -> String {
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

/// The request's headers as text, in order (values that are not UTF-8 are
/// left out: no channel signs such a header).
pub fn headers(request: &IncomingRequest) -> Vec<(String, String)> {
    request
        .headers()
        .entries()
        .into_iter()
        .filter_map(|(name, value)| String::from_utf8(value).ok().map(|v| (name, v)))
        .collect()
}

/// The request body, or `None` when it is longer than `max` bytes (or
/// unreadable). Reads at most `max + 1` bytes: a client cannot make the
/// instance buffer more.
pub fn read_body(request: IncomingRequest, max: u64) -> Option<Vec<u8>> {
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

/// Sends `response`; a header the host refuses (a forbidden or malformed
/// one a provider set) is left out.
pub fn send(out: ResponseOutparam, response: Response) {
    let headers = Fields::new();
    for (name, value) in &response.headers {
        let _ = headers.append(name, value.as_bytes());
    }
    let outgoing = OutgoingResponse::new(headers);
    // A status the host refuses (outside 100–599) is answered as 502.
    if outgoing.set_status_code(response.status).is_err() {
        let _ = outgoing.set_status_code(502);
    }
    let body = outgoing
        .body()
        .expect("a new response's body is taken once");
    ResponseOutparam::set(out, Ok(outgoing));
    {
        let mut stream = body.write().expect("a new body's stream is taken once");
        // The client may be gone; nothing else to tell it then.
        let _ = stream.write_all(&response.body);
        let _ = std::io::Write::flush(&mut stream);
    }
    let _ = OutgoingBody::finish(body, None);
}
