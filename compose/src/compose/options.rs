//! What a composition is asked for and what it gives back (or why not).

use std::path::PathBuf;

use thiserror::Error;

use greentic_messaging_core::ChannelKind;

use super::abi::NodeAbi;
use crate::baked::HttpSettings;
use crate::policy::{Denial, Grant, PolicyError, Profile};
use crate::source::SourceError;

/// Where approved components' state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateWiring {
    /// To one import of the composed component, for the embedding host to provide.
    #[default]
    Import,
    /// To an in-memory provider inside the composition, one per component.
    Memory,
}

/// Where node components' log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TelemetryWiring {
    /// To a logger inside the composition that writes to stderr (the app then
    /// needs nothing but WASI for it).
    #[default]
    Stderr,
    /// To one `greentic:telemetry/logger-api` import of the composed component.
    Import,
}

/// How to compose.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Where components' log lines go.
    pub telemetry: TelemetryWiring,
    /// Which components may use state.
    pub profile: Profile,
    /// Where approved components' state goes.
    pub state: StateWiring,
    /// Plug refusing providers (state, secrets, HTTP) into unapproved
    /// components that import them, instead of refusing to compose.
    pub deny_unapproved: bool,
    /// Also export `wasi:http/incoming-handler` (host-shim serve's contract),
    /// with these settings; `None`: only `greentic:runner/app` and `run`.
    pub http: Option<HttpSettings>,
    /// Make the app a bot: channel webhooks through this provider (needs `http`).
    pub bot: Option<BotOptions>,
    /// Pre-initialises the runner with the baked flows planned, so an
    /// instance of the app starts with them parsed and its templates
    /// compiled (a host that instantiates the app per request pays that
    /// once, here); `None`: the runner as built.
    pub preinit: Option<std::sync::Arc<dyn PreInit>>,
}

/// Snapshots the runner component after it has planned `flows` (the flows a
/// composition bakes, exactly as its front part hands them to the runner).
/// Composition has no Wasm engine of its own; host-shim implements this with
/// Wasmtime and Wizer.
pub trait PreInit: std::fmt::Debug + Send + Sync {
    /// The runner's bytes with `flows` planned in its memory.
    fn preinit(
        &self,
        runner: &[u8],
        flows: &[&runner_core::FlowSource],
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The composed bot's channel and provider.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// The channel.
    pub channel: ChannelKind,
    /// The provider component: a path, or a name resolved as a flow's
    /// component references are.
    pub provider: String,
    /// The provider's `config` (greentic's setup answers), given to every op.
    pub config: serde_json::Value,
    /// Check webhook signatures (`false` only behind a gateway that does).
    pub verify: bool,
}

/// How the composed bot's provider was wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedProvider {
    /// The channel.
    pub channel: ChannelKind,
    /// The component file.
    pub path: PathBuf,
    /// Hosts it may call through the `caps-wasi` part (empty: none).
    pub http_allow: Vec<String>,
    /// Secrets it may read from the app's environment.
    pub secrets: Vec<String>,
    /// Its state wiring.
    pub state: StateDecision,
    /// Capability imports wired to the refusing `capability-deny` part.
    pub denied: Vec<String>,
}

/// What happened to a component's state import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDecision {
    /// It imports no state.
    None,
    /// Wired to the composed component's state-store import.
    Imported,
    /// Wired to its own in-memory provider.
    Memory,
    /// Wired to the refusing provider.
    Denied(Denial),
}

/// One node component in a composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedNode {
    /// The reference as the flow writes it.
    pub reference: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Its slot number.
    pub slot: usize,
    /// The node ABI it exports (adapted to `node@0.6.0` unless it is that).
    pub abi: NodeAbi,
    /// Its state wiring.
    pub state: StateDecision,
    /// Approved capability imports (secrets, HTTP, telemetry when imported)
    /// left to the composed component's host.
    pub imported: Vec<String>,
    /// Whether its log lines go to the in-composition stderr logger.
    pub logs_to_stderr: bool,
    /// Capability imports wired to the refusing `capability-deny` part.
    pub denied: Vec<String>,
}

/// A composed flow.
#[derive(Debug, Clone)]
pub struct Composition {
    /// The component bytes (validated).
    pub bytes: Vec<u8>,
    /// The composed component's imports.
    pub imports: Vec<String>,
    /// The node components, in slot order.
    pub nodes: Vec<ComposedNode>,
    /// What the flows' own `state.get` / `state.set` nodes get.
    pub flow_state: StateDecision,
    /// The bot's provider, with `ComposeOptions::bot`.
    pub provider: Option<ComposedProvider>,
}

/// Composing failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The flow or a component could not be found or read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The flow does not load.
    #[error(transparent)]
    Flow(#[from] runner_core::FlowError),
    /// More distinct components than node slots.
    #[error(
        "{flow}: the flow uses {count} distinct components; the runner has {} node slots",
        greentic_runner_wit::SLOT_COUNT
    )]
    TooManyComponents {
        /// The flow file.
        flow: String,
        /// How many it uses.
        count: usize,
    },
    /// A manifest next to a component is unusable.
    #[error("component `{reference}`: {source}")]
    Manifest {
        /// The component.
        reference: String,
        /// What is wrong.
        #[source]
        source: PolicyError,
    },
    /// A component imports state but is not approved, and denial was not asked for.
    #[error(
        "component `{reference}` imports `{interface}` but may not use state: {reason} (compose with the deny option to plug a refusing state store instead)"
    )]
    StateNotAllowed {
        /// The component.
        reference: String,
        /// The state import.
        interface: String,
        /// Why not.
        reason: Box<Denial>,
    },
    /// A component imports secrets or HTTP but is not approved for them.
    #[error("component `{reference}` imports `{interface}` but may not use {capability}: {reason}")]
    CapabilityNotAllowed {
        /// The component.
        reference: String,
        /// The import.
        interface: String,
        /// What it would give (`secrets`, `outbound HTTP`).
        capability: &'static str,
        /// Why not.
        reason: Box<Denial>,
    },
    /// The binary is not the one the operator pinned for its state id.
    #[error("component `{reference}` may not use state: {reason}")]
    StatePin {
        /// The component.
        reference: String,
        /// Why not.
        reason: crate::policy::PinDenial,
    },
    /// A composition can only give a component all of the state store or none.
    #[error(
        "component `{reference}` is granted only part of the state store ({grant:?}); a composition can wire all of it or deny it, so grant read, write and delete, or run it under host-shim"
    )]
    PartialGrant {
        /// The component.
        reference: String,
        /// What it would get.
        grant: Grant,
    },
    /// A component exports no node ABI the runner can call.
    #[error("component `{reference}` cannot be a flow node: {detail}")]
    NoNodeExport {
        /// The component.
        reference: String,
        /// What it exports instead.
        detail: String,
    },
    /// A messaging provider as a flow node: run by host-shim, not composed yet.
    #[error(
        "a messaging provider component (`schema-core-api`) cannot be a node of a composition yet; run the flow with host-shim"
    )]
    ProviderNode,
    /// A bot answers channel webhooks over HTTP.
    #[error("a bot (--provider) is an HTTP app: compose it with --http")]
    BotWithoutHttp,
    /// The bot's provider is not a messaging provider of its channel.
    #[error("the bot's provider `{reference}`: {detail}")]
    NotAProvider {
        /// The provider as given.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// The runner could not be pre-initialised with the flows planned.
    #[error("pre-initialising the runner with `{flow}` planned: {source}")]
    PreInit {
        /// The main flow's file.
        flow: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// wac-graph refused a package or a wire.
    #[error("{what}: {source}")]
    Graph {
        /// What was being done.
        what: String,
        /// wac-graph's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The composed component would import something not on the allow-list.
    #[error("the composed component would import `{name}`{}, which no host is expected to provide; only WASI, type-only interfaces and (when chosen or approved) the state store, secrets, HTTP and telemetry may remain", from.as_ref().map(|f| format!(" (needed by {f})")).unwrap_or_default())]
    UnexpectedImport {
        /// The import.
        name: String,
        /// Who imports it, when known.
        from: Option<String>,
    },
}

pub(super) fn graph_error<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> ComposeError {
    let what = what.into();
    move |e| ComposeError::Graph {
        what,
        source: e.into(),
    }
}
