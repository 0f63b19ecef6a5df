//! How a host is set up and how a run is made: [`HostOptions`], [`RunSettings`].

use super::outcome::Failure;
use std::path::PathBuf;

use crate::caps::http::{ConnectTo, TrustedRoots};
use crate::caps::secrets::SecretSource;
use crate::caps::state::StateBackend;
use crate::caps::state::bindings::StateBindings;
use crate::caps::state::scope::RunTenant;
use crate::limits::NodeLimits;
use compose::policy::Profile;

/// How to set up a [`Host`].
#[derive(Clone)]
pub struct HostOptions {
    /// Where component state lives.
    pub state: StateBackend,
    /// Which components may use state.
    pub profile: Profile,
    /// Directories for bare component names, searched before the built-in one.
    pub component_dirs: Vec<PathBuf>,
    /// Where `oci://` components no local file provides are fetched from.
    pub registry: Option<std::sync::Arc<greentic_registry::Registry>>,
    /// Runner component to use instead of the built one.
    pub runner: Option<PathBuf>,
    /// Use the on-disk cache of compiled components.
    pub cache: bool,
    /// How a component missing from the cache is compiled.
    pub on_miss: crate::engine::OnMiss,
    /// No progress messages.
    pub quiet: bool,
    /// Limits for node components whose manifest sets none.
    pub node_limits: NodeLimits,
    /// Stand the echo component in for components that cannot be found
    /// (format and routing checks of a flow without its components).
    pub stub_missing: bool,
    /// Overrides every flow's `templating:` (true = strict).
    pub strict_templating: Option<bool>,
    /// Secret values for components approved for secrets.
    pub secrets: SecretSource,
    /// A state store already open, used instead of opening `state` (hosts of
    /// one server share it).
    pub shared_state: Option<std::sync::Arc<dyn greentic_state::StateStore>>,
    /// Instances from Wasmtime's pooling allocator
    /// ([`crate::engine::new_pooling_engine`]) instead of fresh mappings.
    pub pooling_allocator: bool,
    /// Runs at once on this host and its [`Host::sibling`]s (they share its
    /// engine): what the pooling allocator is sized for.
    ///
    /// [`Host::sibling`]: super::Host::sibling
    pub concurrent_runs: usize,
    /// A new runner instance for every run. Off by default: node instances
    /// are always new per run, but the runner (our code, no tenant data kept
    /// between runs: [`crate::runner::RunnerInstance::clear_run`]) is kept
    /// with the flows it planned, so a run of the same flow skips instantiating
    /// it and planning the flow again.
    pub fresh_runner_per_run: bool,
    /// Memory cap of the runner's store, bytes (a composed app's whole store).
    pub runner_memory_bytes: usize,
    /// Which binary holds each component state id (hosts of one server share it).
    pub state_bindings: std::sync::Arc<StateBindings>,
    /// CAs outbound HTTPS is verified against instead of the built-in roots.
    pub http_roots: TrustedRoots,
    /// Where outbound requests for some hosts connect instead (`--connect-to`).
    pub http_connect_to: ConnectTo,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            state: StateBackend::Memory,
            profile: Profile::default_profile(),
            component_dirs: Vec::new(),
            registry: None,
            runner: None,
            cache: true,
            on_miss: crate::engine::OnMiss::Optimize,
            quiet: false,
            node_limits: NodeLimits::default(),
            stub_missing: false,
            strict_templating: None,
            secrets: SecretSource::default(),
            shared_state: None,
            pooling_allocator: false,
            concurrent_runs: 1,
            fresh_runner_per_run: false,
            runner_memory_bytes: crate::limits::RUNNER_MEMORY_BYTES,
            state_bindings: Default::default(),
            http_roots: Default::default(),
            http_connect_to: Default::default(),
        }
    }
}

/// The env of a run nothing names one for.
pub const DEFAULT_ENV: &str = "local";
/// The tenant of a run nothing names one for.
pub const DEFAULT_TENANT: &str = "default";

/// Per-run settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Who the run acts for.
    pub scope: runner_core::Tenant,
    /// Overrides the flow's `max_steps`.
    pub max_steps: Option<u32>,
    /// Use `invoke-stream` where components have it, and report progress.
    pub progress: bool,
    /// Sees each node call (`--trace` prints them; `serve` counts them).
    pub observer: Option<std::sync::Arc<dyn crate::nodes::NodeObserver>>,
    /// Run as a turn of this conversation (`--session`).
    pub session: Option<SessionSettings>,
    /// Flow variables (`--var`), over `parameters.vars_init` defaults.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// The whole run's time limit (`serve --run-timeout`): past it the
    /// runner and its nodes are stopped ([`Failure::RunTimeout`]).
    pub time_limit: Option<std::time::Duration>,
}

impl RunSettings {
    /// The run's tenant context, its ids checked.
    pub(super) fn run_tenant(&self) -> Result<RunTenant, Failure> {
        RunTenant::new(
            &self.scope.env,
            &self.scope.tenant,
            self.scope.team.as_deref(),
            self.scope.user.as_deref(),
        )
        .map_err(Failure::Invalid)
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            scope: runner_core::Tenant {
                env: DEFAULT_ENV.into(),
                tenant: DEFAULT_TENANT.into(),
                team: None,
                user: None,
            },
            max_steps: None,
            progress: false,
            observer: None,
            session: None,
            vars: Default::default(),
            time_limit: None,
        }
    }
}

/// A conversation a run belongs to.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The session id.
    pub id: String,
    /// How long a waiting run is kept after its last turn.
    pub ttl: std::time::Duration,
    /// How long a turn waits for another turn of the session to finish.
    pub wait: std::time::Duration,
    /// Forget a waiting run first and start the flow anew.
    pub restart: bool,
    /// Fire this deadline (Unix ms) of the waiting run: resume it on its
    /// timeout route, if it still waits on exactly that deadline.
    pub fire_deadline: Option<u64>,
}
