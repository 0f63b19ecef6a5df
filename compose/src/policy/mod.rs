//! Capability gating: which node components may use which host interfaces.
//!
//! [`CAPABILITIES`] is the one gating table (interface -> manifest field ->
//! profile field), shared by host-shim and the composition. A component gets a
//! gated interface only when (a) its manifest declares it and (b) the selected
//! profile allows it; for state, the operations it gets are those both grant.
//! Anything else — no manifest, a manifest without the field, a profile that
//! does not list it — means no such import (fail closed). Telemetry is not
//! gated: every component may log.

macro_rules! bail {
    ($($arg:tt)*) => { return Err(PolicyError(format!($($arg)*))) };
}

mod gate;
mod manifest;
mod profile;

pub use gate::{
    Approval, CAPABILITIES, Capability, CapabilityGrant, CapabilityRow, Denial, PinDenial,
    StateBinding, approve, approve_capability, approve_flow, bind_state_id, capability_of,
};
/// Defined with the baked document: the composed bot's HTTP part checks it too.
pub use greentic_baked_doc::host_allowed;
pub use manifest::{Grant, Limits, Manifest, PolicyError, valid_id};
pub use profile::{DEFAULT_HTTP_MAX_RESPONSE_BYTES, DEFAULT_HTTP_TIMEOUT_MS, Profile};
