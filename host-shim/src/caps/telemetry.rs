//! `greentic:telemetry/logger-api@1.0.0`: a component's log lines become
//! `tracing` events (target `component`), tagged with flow, node, component
//! and tenant. Every component may log (no gate). Shown on stderr with
//! `host-shim -v` or `RUST_LOG=component=info`.

use greentic_interfaces_wasmtime::host_helpers::v1::telemetry_logger::{
    OpAck, SpanContext, TelemetryLoggerError, TelemetryLoggerHost, TenantCtx,
    add_telemetry_logger_to_linker,
};
use wasmtime::component::Linker;

/// Per-instance telemetry context: who is logging.
#[derive(Debug, Clone, Default)]
pub struct TelemetryCtx {
    component: String,
    tenant: String,
    flow: String,
    node: String,
    /// Log lines received in this instance.
    pub lines: u64,
}

impl TelemetryCtx {
    /// A context for `component`, acting for `tenant`.
    pub fn new(component: &str, tenant: &str) -> Self {
        TelemetryCtx {
            component: component.to_string(),
            tenant: tenant.to_string(),
            ..Default::default()
        }
    }

    /// The invocation being served (from its envelope).
    pub fn at(&mut self, flow: &str, node: &str) {
        flow.clone_into(&mut self.flow);
        node.clone_into(&mut self.node);
    }
}

impl TelemetryLoggerHost for TelemetryCtx {
    fn log(
        &mut self,
        span: SpanContext,
        fields: Vec<(String, String)>,
        _ctx: Option<TenantCtx>,
    ) -> Result<OpAck, TelemetryLoggerError> {
        // Tags come from the host; only a composed app (where the host does not
        // see node calls) falls back to the span's flow and node.
        self.lines += 1;
        if self.flow.is_empty() {
            self.flow = span.flow_id;
            self.node = span.node_id.unwrap_or_default();
        }
        let level = fields
            .iter()
            .find(|(k, _)| k == "level")
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let message = fields
            .iter()
            .find(|(k, _)| k == "message" || k == "msg")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let rest: Vec<String> = fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "level" | "message" | "msg"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let rest = rest.join(" ");
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(target: "component", flow = %self.flow, node = %self.node,
                    component = %self.component, tenant = %self.tenant, "{message} {rest}")
            };
        }
        match level.as_str() {
            "error" => emit!(error),
            "warn" | "warning" => emit!(warn),
            "debug" => emit!(debug),
            "trace" => emit!(trace),
            _ => emit!(info),
        }
        Ok(OpAck::Ok)
    }
}

/// Adds `greentic:telemetry/logger-api@1.0.0` to `linker`.
pub fn add_to_linker<T: crate::caps::holds::Holds<TelemetryCtx>>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    add_telemetry_logger_to_linker(linker, |state: &mut T| state.held())
}
