//! A request's body, bounded in size (413) and time (408), read before any
//! run slot is taken: a slow or large upload costs only its own connection.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};

use super::respond::{error_response, linger};
use super::server::Server;

impl Server {
    /// Whether the request's `Content-Length` is over `--max-body`.
    pub(super) fn too_large(&self, request: &Request<Incoming>) -> bool {
        request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > self.options.max_body)
    }

    /// The 413 for a request [`Server::too_large`] found, reading (and
    /// dropping) some of its body so the client sees the answer.
    pub(super) fn refuse_too_large(&self, body: Incoming, label: &str) -> Response<Full<Bytes>> {
        self.metrics.rejected(label, "too_large");
        linger(body, self.options.max_body.saturating_mul(4));
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {} bytes", self.options.max_body),
        )
    }

    /// Reads `body` within `--max-body` and `--body-timeout`.
    pub(super) async fn read_body(
        &self,
        body: Incoming,
        label: &str,
    ) -> Result<Bytes, Response<Full<Bytes>>> {
        let read = Limited::new(body, self.options.max_body).collect();
        match tokio::time::timeout(self.options.body_timeout, read).await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(_)) => {
                self.metrics.rejected(label, "too_large");
                Err(error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the body is larger than {} bytes (or unreadable)",
                        self.options.max_body
                    ),
                ))
            }
            Err(_) => {
                self.metrics.rejected(label, "body_timeout");
                let mut response = error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the body did not arrive within {} ms",
                        self.options.body_timeout.as_millis()
                    ),
                );
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                Err(response)
            }
        }
    }
}
