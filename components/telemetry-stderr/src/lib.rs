//! `telemetry-stderr`: plugged by `compose` into the telemetry import of node
//! components, so a composed flow whose components log needs nothing from its
//! host but WASI: each log line goes to stderr as
//! `[telemetry] <flow>/<node> <level> <message> k=v…` (the span's flow and
//! node, as the component gave them).

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::telemetry::logger_api::{
    Guest, HostError, OpAck, SpanContext, TenantCtx,
};

struct StderrLogger;

impl Guest for StderrLogger {
    fn log(
        span: SpanContext,
        fields: Vec<(String, String)>,
        _ctx: Option<TenantCtx>,
    ) -> Result<OpAck, HostError> {
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let level = get("level").unwrap_or("info");
        let message = get("message").or(get("msg")).unwrap_or("");
        let rest: Vec<String> = fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "level" | "message" | "msg"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "[telemetry] {}/{} {level} {message} {}",
            span.flow_id,
            span.node_id.as_deref().unwrap_or("-"),
            rest.join(" ")
        );
        Ok(OpAck::Ok)
    }
}

bindings::export!(StderrLogger with_types_in bindings);
