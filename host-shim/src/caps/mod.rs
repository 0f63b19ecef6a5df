//! Host capabilities for components: one module per capability (its context,
//! what it does, its `add_to_linker`) and one line in the `registry!` below,
//! which gives it its field of [`Capabilities`] and its place in
//! [`add_to_linker`]. Which component gets which is decided
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

/// Store data holding [`Capabilities`].
pub trait HasCapabilities: 'static {
    /// The capabilities.
    fn capabilities(&mut self) -> &mut Capabilities;
}

/// The registry: for each capability, the [`Capabilities`] field holding its
/// context, a [`Holds`] impl reaching it, and its line in [`add_to_linker`].
macro_rules! registry {
    ($($(#[$doc:meta])* $field:ident: $module:ident::$ctx:ident if $kind:ident,)*) => {
        /// What a store holds for the host capabilities, each refusing (or,
        /// for telemetry, anonymous) until a grant fills it in.
        #[derive(Default)]
        pub struct Capabilities {
            $($(#[$doc])* pub $field: $module::$ctx,)*
        }

        $(impl<T: HasCapabilities> Holds<$module::$ctx> for T {
            fn held(&mut self) -> &mut $module::$ctx {
                &mut self.capabilities().$field
            }
        })*

        /// Links the imports of each capability `wanted` names.
        pub fn add_to_linker<T: HasCapabilities>(
            linker: &mut Linker<T>,
            wanted: impl Fn(Capability) -> bool,
        ) -> wasmtime::Result<()> {
            $(if wanted(Capability::$kind) {
                $module::add_to_linker(linker)?;
            })*
            Ok(())
        }
    };
}

registry! {
    /// `greentic:state/state-store`.
    state: state::StateCtx if State,
    /// `greentic:telemetry/logger-api`.
    telemetry: telemetry::TelemetryCtx if Telemetry,
    /// `greentic:secrets-store/secrets-store`.
    secrets: secrets::SecretsCtx if Secrets,
    /// `greentic:http/http-client`.
    http: http::HttpCtx if Http,
}
