//! The [`Host`]: one engine, the linked runner, the compiled node components.

use super::options::HostOptions;
use super::ready::{ReadyFlows, Stamp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use compose::ComponentResolver;
use wasmtime::Engine;

use crate::caps::http::{ConnectTo, TrustedRoots};
use crate::caps::secrets::SecretSource;
use crate::caps::state::bindings::StateBindings;
use crate::engine::{ComponentCache, EngineFor, Precompiled, new_engine, new_pooling_engine};
use crate::limits::NodeLimits;
use crate::nodes::NodeComponent;
use crate::runner::{Linking, RunnerComponent, RunnerInstance};
use compose::policy::Profile;

/// Runs flows from files.
pub struct Host {
    pub(super) cache: std::sync::Arc<ComponentCache>,
    pub(super) runner: std::sync::Arc<RunnerComponent>,
    /// The runner's engine's compiled-component cache.
    pub(super) runner_cache: std::sync::Arc<ComponentCache>,
    pub(super) secrets: std::sync::Arc<SecretSource>,
    pub(super) state_store: std::sync::Arc<dyn greentic_state::StateStore>,
    pub(super) profile: Profile,
    pub(super) node_limits: NodeLimits,
    pub(super) resolver: ComponentResolver,
    /// Linked node components by file, with the file as it was linked.
    pub(super) nodes: HashMap<PathBuf, (Stamp, NodeComponent)>,
    /// Flows made ready, by file.
    pub(super) ready: ReadyFlows,
    pub(super) strict_templating: Option<bool>,
    pub(super) quiet: bool,
    /// The runner instance of the last run, cleared, for the next
    /// (`None` with [`HostOptions::fresh_runner_per_run`]).
    pub(super) spare_runner: Option<RunnerInstance>,
    /// Not [`HostOptions::fresh_runner_per_run`].
    pub(super) reuse_runner: bool,
    /// [`HostOptions::runner_memory_bytes`].
    pub(super) runner_memory_bytes: usize,
    /// [`HostOptions::state_bindings`].
    pub(super) state_bindings: std::sync::Arc<StateBindings>,
    /// [`HostOptions::http_roots`].
    pub(super) http_roots: TrustedRoots,
    /// [`HostOptions::http_connect_to`].
    pub(super) http_connect_to: ConnectTo,
}

impl Host {
    /// Creates the engines (one for node components, one for the runner) and
    /// compiles (or loads from cache) and links the runner.
    pub fn new(options: HostOptions) -> anyhow::Result<Host> {
        let engine = |kind| -> anyhow::Result<Engine> {
            Ok(if options.pooling_allocator {
                new_pooling_engine(kind, options.concurrent_runs)?
            } else {
                new_engine(kind)?
            })
        };
        let cache_dir = if options.cache {
            ComponentCache::default_dir()
        } else {
            None
        };
        let cache =
            ComponentCache::new(engine(EngineFor::Nodes)?, cache_dir.clone(), options.quiet)
                .on_miss(options.on_miss);
        // The runner on an engine of its own (no fuel), from the build's artifact.
        let runner_cache =
            ComponentCache::new(engine(EngineFor::Runner)?, cache_dir, options.quiet)
                .with_precompiled(Precompiled::built_runner())
                .on_miss(options.on_miss);
        let runner_path = options
            .runner
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::BUILT_RUNNER));
        let runner_memory = options.runner_memory_bytes;
        let runner = runner_cache
            .load(&runner_path)
            .and_then(|c| RunnerComponent::new(&c, Linking::Slots, runner_memory))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading the runner component `{}`", runner_path.display()))?;
        let dirs = component_search_dirs(options.component_dirs);
        let stub = options
            .stub_missing
            .then(|| Path::new(crate::BUILT_COMPONENTS_DIR).join("echo.wasm"));
        Ok(Host {
            cache: std::sync::Arc::new(cache),
            runner: std::sync::Arc::new(runner),
            runner_cache: std::sync::Arc::new(runner_cache),
            secrets: std::sync::Arc::new(options.secrets),
            state_store: match options.shared_state {
                Some(store) => store,
                None => options.state.open()?,
            },
            profile: options.profile,
            node_limits: options.node_limits,
            resolver: ComponentResolver::new(dirs)
                .with_stub(stub)
                .with_registry(options.registry),
            nodes: HashMap::new(),
            ready: ReadyFlows::default(),
            strict_templating: options.strict_templating,
            quiet: options.quiet,
            spare_runner: None,
            reuse_runner: !options.fresh_runner_per_run,
            runner_memory_bytes: runner_memory,
            state_bindings: options.state_bindings,
            http_roots: options.http_roots,
            http_connect_to: options.http_connect_to,
        })
    }

    /// Another host on the same engine, runner, store and settings, with
    /// nothing linked or made ready yet: a server runs one per run slot
    /// (each keeps its own runner instance) on one engine, one allocator pool.
    pub fn sibling(&self) -> Host {
        Host {
            cache: self.cache.clone(),
            runner: self.runner.clone(),
            runner_cache: self.runner_cache.clone(),
            secrets: self.secrets.clone(),
            state_store: self.state_store.clone(),
            profile: self.profile.clone(),
            node_limits: self.node_limits,
            resolver: self.resolver.clone(),
            nodes: HashMap::new(),
            ready: ReadyFlows::default(),
            strict_templating: self.strict_templating,
            quiet: self.quiet,
            spare_runner: None,
            reuse_runner: self.reuse_runner,
            runner_memory_bytes: self.runner_memory_bytes,
            state_bindings: self.state_bindings.clone(),
            http_roots: self.http_roots.clone(),
            http_connect_to: self.http_connect_to.clone(),
        }
    }

    /// The cache the runner is loaded through (its engine has no fuel).
    pub fn runner_cache(&self) -> &ComponentCache {
        &self.runner_cache
    }

    /// The compiled-component cache this host loads components through.
    pub fn component_cache(&self) -> &ComponentCache {
        &self.cache
    }
}

/// The `--components` directories, then the built-in one.
pub(super) fn component_search_dirs(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.push(PathBuf::from(crate::BUILT_COMPONENTS_DIR));
    dirs
}
