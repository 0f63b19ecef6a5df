//! The interface names a composition wires: runner slots, exports, parts' interfaces.

/// The runner's import for node slot `index` (see `wit/runner.wit`).
pub fn slot_import(index: usize) -> String {
    format!(
        "greentic:runner/{}@0.1.0",
        greentic_runner_wit::slot_name(index)
    )
}

/// The runner's own state-store import (flow-level `state.get` / `state.set`).
pub(super) const RUNNER_STATE_IMPORT: &str = "greentic:state/state-store@1.0.0";

/// The export a composed flow offers: the runner's API.
pub const RUN_EXPORT: &str = "greentic:runner/run@0.1.0";

/// The export of a composed flow that runs its baked flow.
pub const APP_EXPORT: &str = "greentic:runner/app@0.1.0";

/// What the generated part exports and the front parts import.
pub(super) const BAKED_EXPORT: &str = "greentic:runner/baked-flows@0.1.0";

/// The `wasi:http` export of `http-front`, any 0.2 version.
pub(super) const HTTP_HANDLER_EXPORT: &str = "wasi:http/incoming-handler@";

/// The node interface a runner slot takes.
pub const NODE_EXPORT: &str = "greentic:component/node@0.6.0";
pub(super) const STATE_EXPORT: &str = "greentic:state/state-store@1.1.0";

/// The runner's import telling whose run it makes (`wit/run-scope.wit`).
pub const RUN_SCOPE_IMPORT: &str = "greentic:runner/run-scope@0.1.0";

/// What the state-memory part reads that scope through.
pub(super) const CURRENT_SCOPE: &str = "greentic:runner/current-scope@0.1.0";
pub(super) const TELEMETRY_EXPORT: &str = "greentic:telemetry/logger-api@1.0.0";
/// The messaging-provider ABI (greentic's provider packs): JSON ops through `invoke`.
pub const PROVIDER_EXPORT: &str = "greentic:provider-schema-core/schema-core-api@1.0.0";

/// The `component-runtime` node ABI (greentic-runner's 0.6 guests).
pub const RUNTIME_EXPORT: &str = "greentic:component/component-runtime@0.6.0";

/// Import names of the state-store interface, any version.
pub fn is_state_import(name: &str) -> bool {
    name.starts_with("greentic:state/state-store@")
}
