//! `state-probe`: exposes the state store to tests, reporting host errors as
//! data instead of failing, so a test can see exactly what the host answered.
//!
//! Input `{op, key, bytes?, ctx?}` where `bytes` is an array of 0..=255 and
//! `ctx` an optional `{env, tenant, team?, user?}` passed to the host as the
//! guest-supplied tenant context. Operations (the invoke `op`): `read`,
//! `write`, `delete`, `write-if-absent` (state-store@1.1.0).
//! Output: `{ok: true, bytes?, created?}` or `{ok: false, code, message}`.

use greentic_interfaces_guest::state_store as v1;
use greentic_interfaces_guest::state_store_v1_1 as v11;
use node_kit::node;
use serde_json::{Value, json};

struct Probe;

fn bytes(input: &Value) -> Result<Vec<u8>, node::NodeError> {
    input
        .get("bytes")
        .and_then(Value::as_array)
        .ok_or_else(|| node_kit::error("invalid-input", "`bytes` must be an array"))?
        .iter()
        .map(|b| b.as_u64().filter(|b| *b < 256).map(|b| b as u8))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| node_kit::error("invalid-input", "`bytes` must hold numbers 0..=255"))
}

macro_rules! ctx_for {
    ($module:ident, $input:expr) => {
        $input.get("ctx").map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            let env = s("env").unwrap_or_default();
            let tenant = s("tenant").unwrap_or_default();
            $module::TenantCtx {
                env,
                tenant: tenant.clone(),
                tenant_id: tenant,
                team: s("team"),
                team_id: s("team"),
                user: s("user"),
                user_id: s("user"),
                trace_id: None,
                i18n_id: None,
                correlation_id: None,
                attributes: vec![],
                session_id: None,
                flow_id: None,
                node_id: None,
                provider_id: None,
                deadline_ms: None,
                attempt: 0,
                idempotency_key: None,
                impersonation: None,
            }
        })
    };
}

fn report<T>(result: Result<T, (String, String)>, ok: impl FnOnce(T) -> Value) -> Value {
    match result {
        Ok(v) => ok(v),
        Err((code, message)) => json!({ "ok": false, "code": code, "message": message }),
    }
}

impl node::Guest for Probe {
    fn describe() -> node::ComponentDescriptor {
        node_kit::descriptor(
            "state-probe",
            env!("CARGO_PKG_VERSION"),
            "Exercises the state store for tests.",
        )
    }

    fn invoke(
        op: String,
        envelope: node::InvocationEnvelope,
    ) -> Result<node::InvocationResult, node::NodeError> {
        let input = node_kit::input(&envelope)?;
        let key = input
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("probe")
            .to_string();
        let out = match op.as_str() {
            "read" => {
                let ctx = ctx_for!(v1, input);
                report(
                    v1::read(&key, ctx.as_ref()).map_err(|e| (e.code, e.message)),
                    |b| json!({"ok": true, "bytes": b}),
                )
            }
            "write" => {
                let ctx = ctx_for!(v1, input);
                let data = bytes(&input)?;
                report(
                    v1::write(&key, &data, ctx.as_ref()).map_err(|e| (e.code, e.message)),
                    |_| json!({"ok": true}),
                )
            }
            // The write, then a trap: for the fault tests (what a node that
            // dies after writing leaves behind).
            "write-then-trap" => {
                let ctx = ctx_for!(v1, input);
                let data = bytes(&input)?;
                if let Err(e) = v1::write(&key, &data, ctx.as_ref()) {
                    return Err(node_kit::error(&e.code, &e.message));
                }
                core::arch::wasm32::unreachable()
            }
            "delete" => {
                let ctx = ctx_for!(v1, input);
                report(
                    v1::delete(&key, ctx.as_ref()).map_err(|e| (e.code, e.message)),
                    |_| json!({"ok": true}),
                )
            }
            "write-if-absent" => {
                let ctx = ctx_for!(v11, input);
                let data = bytes(&input)?;
                report(
                    v11::write_if_absent(&key, &data, ctx.as_ref())
                        .map_err(|e| (e.code, e.message)),
                    |created| json!({"ok": true, "created": created}),
                )
            }
            other => {
                return Err(node_kit::error(
                    "unknown-op",
                    &format!("state-probe has no operation `{other}`"),
                ));
            }
        };
        node_kit::output(&out)
    }
}

node_kit::export_node!(Probe);
