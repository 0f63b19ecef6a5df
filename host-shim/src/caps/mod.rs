//! Host capabilities for components: one module per capability (its context,
//! what it does, its `add_to_linker`), one field of [`Capabilities`] each,
//! and one line in [`add_to_linker`]. Which component gets which is decided
//! by [`compose::policy::CAPABILITIES`], the gating table shared with the
//! composition; a node store and the runner's store both hold a
//! [`Capabilities`], so each module serves both.

pub mod holds;
pub mod http;
pub mod secrets;
pub mod state;
pub mod telemetry;

use compose::policy::Capability;
use wasmtime::component::Linker;

pub use holds::Holds;

/// What a store holds for the host capabilities, each refusing (or, for
/// telemetry, anonymous) until a grant fills it in.
#[derive(Default)]
pub struct Capabilities {
    /// `greentic:state/state-store`.
    pub state: state::StateCtx,
    /// `greentic:telemetry/logger-api`.
    pub telemetry: telemetry::TelemetryCtx,
    /// `greentic:secrets-store/secrets-store`.
    pub secrets: secrets::SecretsCtx,
    /// `greentic:http/http-client`.
    pub http: http::HttpCtx,
}

/// Store data holding [`Capabilities`].
pub trait HasCapabilities: 'static {
    /// The capabilities.
    fn capabilities(&mut self) -> &mut Capabilities;
}

macro_rules! holds {
    ($($field:ident: $ctx:ty),* $(,)?) => {$(
        impl<T: HasCapabilities> Holds<$ctx> for T {
            fn held(&mut self) -> &mut $ctx {
                &mut self.capabilities().$field
            }
        }
    )*};
}

holds!(
    state: state::StateCtx,
    telemetry: telemetry::TelemetryCtx,
    secrets: secrets::SecretsCtx,
    http: http::HttpCtx,
);

/// Links the imports of each capability `wanted` names: the registry, one
/// line per capability.
pub fn add_to_linker<T: HasCapabilities>(
    linker: &mut Linker<T>,
    wanted: impl Fn(Capability) -> bool,
) -> wasmtime::Result<()> {
    if wanted(Capability::State) {
        state::add_to_linker(linker)?;
    }
    if wanted(Capability::Telemetry) {
        telemetry::add_to_linker(linker)?;
    }
    if wanted(Capability::Secrets) {
        secrets::add_to_linker(linker)?;
    }
    if wanted(Capability::Http) {
        http::add_to_linker(linker)?;
    }
    Ok(())
}
