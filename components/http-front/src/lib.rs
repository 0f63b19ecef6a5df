//! `http-front`: put by `host-shim compose --http` in front of the runner, so
//! the composed component is a `wasi:http/proxy` app — `wasmtime serve`,
//! `jco serve`, Spin run it unchanged — and still exports
//! `greentic:runner/app@0.1.0`. What requests mean is `front_kit::http`;
//! `front_kit::wire` moves the bytes.

use front_kit::AppFront;
use front_kit::http::{self, Route};
use front_kit::wire;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

front_kit::bindings::export_app_front!(AppFront);
wasip2::http::proxy::export!(HttpFront);

struct HttpFront;

impl wasip2::exports::http::incoming_handler::Guest for HttpFront {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let baked = front_kit::baked();
        let method = wire::method_name(&request.method());
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
                match wire::read_body(request, baked.http.max_body) {
                    Some(body) => http::run(baked, header, &body),
                    None => http::too_large(baked),
                }
            }
        };
        wire::send(response_out, response);
    }
}
