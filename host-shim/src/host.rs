//! The host: one engine, one linked runner and the node components a flow
//! uses, compiled once per process and instantiated per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use compose::{ComponentResolver, load_flow};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::engine::{ComponentCache, new_engine};
use crate::limits::NodeLimits;
use crate::nodes::{NodeComponent, NodeSlot, NodeState, RunScope, node_linker};
use crate::runner::{
    ErrorKind, FlowPlan, FlowSource, Linking, RunError, RunRequest, RunnerComponent,
    RunnerInstance, SLOT_COUNT, SlotBinding, Tenant,
};
use crate::state_store::scope::RunTenant;
use crate::state_store::{StateBackend, StateCtx};
use compose::is_state_import;
use compose::policy::Grant;
use compose::policy::{Manifest, Profile, approve};

/// How to set up a [`Host`].
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where component state lives.
    pub state: StateBackend,
    /// Which components may use state.
    pub profile: Profile,
    /// Directories for bare component names, searched before the built-in one.
    pub component_dirs: Vec<PathBuf>,
    /// Runner component to use instead of the built one.
    pub runner: Option<PathBuf>,
    /// Use the on-disk cache of compiled components.
    pub cache: bool,
    /// No progress messages.
    pub quiet: bool,
    /// Limits for node components whose manifest sets none.
    pub node_limits: NodeLimits,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            state: StateBackend::Memory,
            profile: Profile::default_profile(),
            component_dirs: Vec::new(),
            runner: None,
            cache: true,
            quiet: false,
            node_limits: NodeLimits::default(),
        }
    }
}

/// Per-run settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Environment id.
    pub env: String,
    /// Tenant id.
    pub tenant: String,
    /// Team id.
    pub team: Option<String>,
    /// User id.
    pub user: Option<String>,
    /// Overrides the flow's `max_steps`.
    pub max_steps: Option<u32>,
    /// Use `invoke-stream` where components have it, and report progress.
    pub progress: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            env: "local".into(),
            tenant: "default".into(),
            team: None,
            user: None,
            max_steps: None,
            progress: false,
        }
    }
}

/// Why a run did not produce an output.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The inputs are wrong: flow file, `--input`, components.
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    /// The runner refused the flow when planning it (invalid YAML, flow or template).
    #[error("{}", .0.message)]
    InvalidFlow(RunError),
    /// The runner reported an error while running (failed node, routing, ...).
    #[error("{}", .0.message)]
    Flow(RunError),
    /// The runner itself failed (a trap in the runner is a bug).
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure (see `host-shim --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) | Failure::InvalidFlow(_) => 2,
            Failure::Flow(e) => match e.kind {
                ErrorKind::InvalidFlow | ErrorKind::InvalidInput | ErrorKind::Binding => 2,
                ErrorKind::Template | ErrorKind::Routing | ErrorKind::Node => 1,
            },
            Failure::Internal(_) => 1,
        }
    }

    /// `{"error": {...}}`: the runner's error record (`kind` as in WIT), or for
    /// host failures `kind` `host` and the message. Compact, fields in WIT order,
    /// so every engine's harness prints the same bytes.
    pub fn to_json(&self) -> String {
        let record = match self.run_error() {
            Some(e) => serde_json::json!({
                "kind": error_kind_name(e.kind),
                "message": e.message,
                "node": e.node,
                "code": e.code,
                "line": e.line,
                "column": e.column,
            }),
            None => serde_json::json!({
                "kind": "host", "message": self.to_string(), "node": null, "code": null, "line": null, "column": null,
            }),
        };
        serde_json::json!({ "error": record }).to_string()
    }

    /// The runner's error record, for `Flow` failures.
    pub fn run_error(&self) -> Option<&RunError> {
        match self {
            Failure::Flow(e) | Failure::InvalidFlow(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs flows from files.
pub struct Host {
    cache: ComponentCache,
    runner: RunnerComponent,
    plain_linker: Linker<NodeState>,
    state_linker: Linker<NodeState>,
    state_store: std::sync::Arc<dyn greentic_state::StateStore>,
    profile: Profile,
    node_limits: NodeLimits,
    resolver: ComponentResolver,
    nodes: HashMap<PathBuf, NodeComponent>,
}

impl Host {
    /// Creates the engine and compiles (or loads from cache) and links the runner.
    pub fn new(options: HostOptions) -> anyhow::Result<Host> {
        let engine: Engine = new_engine()?;
        let cache_dir = if options.cache {
            ComponentCache::default_dir()
        } else {
            None
        };
        let cache = ComponentCache::new(engine.clone(), cache_dir, options.quiet);
        let runner_path = options
            .runner
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::BUILT_RUNNER));
        let runner = cache
            .load(&runner_path)
            .and_then(|c| RunnerComponent::new(&engine, &c, Linking::Slots))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading the runner component `{}`", runner_path.display()))?;
        let dirs = component_search_dirs(options.component_dirs);
        Ok(Host {
            cache,
            runner,
            plain_linker: node_linker(&engine, false)?,
            state_linker: node_linker(&engine, true)?,
            state_store: options.state.open()?,
            profile: options.profile,
            node_limits: options.node_limits,
            resolver: ComponentResolver::new(dirs),
            nodes: HashMap::new(),
        })
    }

    /// Validates the flow at `path` and that every component it uses loads;
    /// returns its plan.
    pub fn check_file(&mut self, path: &Path) -> Result<FlowPlan, Failure> {
        let (_, _, plan) = plan(&self.runner, path, StateCtx::none())?;
        self.slots(path, &plan, &self.scope(&RunSettings::default())?)?;
        Ok(plan)
    }

    /// Runs the flow at `path` with the entry payload `entry_json`, `repeat`
    /// times on one instance, and returns each run's output (the last node's
    /// output as JSON text); it stops at the first failure.
    pub fn run_file(
        &mut self,
        path: &Path,
        entry_json: &str,
        settings: &RunSettings,
        repeat: u32,
    ) -> Vec<Result<String, Failure>> {
        let prepared = (|| {
            let scope = self.scope(settings)?;
            let (mut instance, source, plan) = plan(&self.runner, path, StateCtx::none())?;
            instance.set_slots(self.slots(path, &plan, &scope)?);
            let bindings = plan
                .components
                .iter()
                .enumerate()
                .map(|(slot, component)| SlotBinding {
                    component: component.clone(),
                    slot: slot as u32,
                })
                .collect();
            Ok((instance, source, bindings))
        })();
        match prepared {
            Ok((mut instance, source, bindings)) => run_repeatedly(
                &mut instance,
                source,
                entry_json,
                bindings,
                settings,
                repeat,
            ),
            Err(failure) => vec![Err(failure)],
        }
    }

    /// Runs the flow at `flow` inside the composed component `app` (made by
    /// `host-shim compose` from that flow), providing WASI and, if the
    /// composition imports it, the state store; like [`Host::run_file`] otherwise.
    pub fn run_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        entry_json: &str,
        settings: &RunSettings,
        repeat: u32,
    ) -> Vec<Result<String, Failure>> {
        match self.instantiate_composed(app, flow, settings) {
            Ok((mut instance, source)) => run_repeatedly(
                &mut instance,
                source,
                entry_json,
                Vec::new(),
                settings,
                repeat,
            ),
            Err(failure) => vec![Err(failure)],
        }
    }

    fn instantiate_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        settings: &RunSettings,
    ) -> Result<(RunnerInstance, FlowSource), Failure> {
        let invalid = |e: wasmtime::Error, what: String| {
            Failure::Invalid(anyhow::Error::from(e).context(what))
        };
        let component = self
            .cache
            .load(app)
            .map_err(|e| invalid(e, format!("loading `{}`", app.display())))?;
        let engine = self.cache.engine().clone();
        let imports_state = component
            .component_type()
            .imports(&engine)
            .any(|(name, _)| is_state_import(name));
        let runner = RunnerComponent::new(
            &engine,
            &component,
            Linking::Composed {
                state: imports_state,
            },
        )
        .map_err(|e| invalid(e, format!("`{}` is not a composed flow", app.display())))?;
        // The composition was approved when it was made; the components that
        // use the app's state import share one namespace, named after the app file.
        let scope = self.scope(settings)?;
        let stem = app.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
        let id: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let state = StateCtx::new(
            scope.store,
            scope.tenant,
            &format!("composed.{id}"),
            Grant::ALL,
        );
        let (instance, source, _) = plan(&runner, flow, state)?;
        Ok((instance, source))
    }

    fn scope(&self, settings: &RunSettings) -> Result<RunScope, Failure> {
        let tenant = RunTenant::new(
            &settings.env,
            &settings.tenant,
            settings.team.as_deref(),
            settings.user.as_deref(),
        )
        .map_err(Failure::Invalid)?;
        Ok(RunScope {
            store: self.state_store.clone(),
            tenant,
            progress: settings.progress,
        })
    }

    /// Resolves, compiles and links every component of `plan`, one per slot.
    fn slots(
        &mut self,
        flow: &Path,
        plan: &FlowPlan,
        scope: &RunScope,
    ) -> Result<Vec<Option<NodeSlot>>, Failure> {
        if plan.components.len() > SLOT_COUNT {
            return Err(Failure::Invalid(anyhow!(
                "{}: the flow uses {} distinct components; the runner has {SLOT_COUNT} node slots",
                flow.display(),
                plan.components.len()
            )));
        }
        let mut slots = Vec::with_capacity(plan.components.len());
        for reference in &plan.components {
            let node = plan
                .nodes
                .iter()
                .find(|n| &n.component == reference)
                .map(|n| n.id.as_str())
                .unwrap_or_default();
            let path = self
                .resolver
                .resolve(flow, node, reference)
                .map_err(|e| Failure::Invalid(e.into()))?;
            let component = match self.nodes.get(&path) {
                Some(c) => c.clone(),
                None => {
                    let loaded = self.link(&path, reference).map_err(|e| {
                        Failure::Invalid(e.context(format!(
                            "{}: node `{node}`: component `{reference}`",
                            flow.display()
                        )))
                    })?;
                    self.nodes.insert(path, loaded.clone());
                    loaded
                }
            };
            slots.push(Some(NodeSlot::new(component, scope.clone())));
        }
        Ok(slots)
    }
}

impl Host {
    /// Compiles and links a node component: its limits come from its manifest
    /// (else the host defaults), and the state-store import is linked only for
    /// approved components.
    fn link(&self, path: &Path, reference: &str) -> anyhow::Result<NodeComponent> {
        let component = self.cache.load(path)?;
        let manifest = Manifest::find(path)?;
        let limits = match &manifest {
            Some(m) => self.node_limits.with_manifest(&m.limits),
            None => self.node_limits,
        };
        let state_import = component
            .component_type()
            .imports(self.cache.engine())
            .map(|(name, _)| name.to_string())
            .find(|name| is_state_import(name));
        let Some(interface) = state_import else {
            return Ok(NodeComponent::new(
                reference,
                &component,
                &self.plain_linker,
                None,
                limits,
            )?);
        };
        match approve(manifest.as_ref(), &self.profile) {
            Ok(approval) => Ok(NodeComponent::new(
                reference,
                &component,
                &self.state_linker,
                Some(approval),
                limits,
            )?),
            Err(denial) => anyhow::bail!("imports `{interface}` but may not use state: {denial}"),
        }
    }
}

fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidFlow => "invalid-flow",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Template => "template",
        ErrorKind::Routing => "routing",
        ErrorKind::Node => "node",
        ErrorKind::Binding => "binding",
    }
}

/// The `--components` directories, then the built-in one.
fn component_search_dirs(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.push(PathBuf::from(crate::BUILT_COMPONENTS_DIR));
    dirs
}

/// Composes the flow at `flow` into one component, with the runner and parts
/// built with host-shim; no engine is needed for that.
pub fn compose_file(
    flow: &Path,
    component_dirs: Vec<PathBuf>,
    profile: Profile,
    state: compose::StateWiring,
    deny_unapproved: bool,
) -> Result<compose::Composition, Failure> {
    let parts = compose::Parts::read(
        Path::new(crate::BUILT_RUNNER),
        Path::new(crate::BUILT_COMPOSE_PARTS_DIR),
    )
    .map_err(|e| Failure::Invalid(e.into()))?;
    let resolver = ComponentResolver::new(component_search_dirs(component_dirs));
    let options = compose::ComposeOptions {
        profile,
        state,
        deny_unapproved,
    };
    compose::compose(flow, &resolver, &parts, &options).map_err(|e| Failure::Invalid(e.into()))
}

/// Loads the flow at `path` into a fresh instance of `runner` and plans it.
fn plan(
    runner: &RunnerComponent,
    path: &Path,
    state: StateCtx,
) -> Result<(RunnerInstance, FlowSource, FlowPlan), Failure> {
    let source = load_flow(path).map_err(|e| Failure::Invalid(e.into()))?;
    let source = FlowSource {
        name: source.name,
        yaml: source.yaml,
        resolve_json: source.resolve_json,
    };
    let mut instance = runner
        .instantiate(Vec::new(), state)
        .map_err(|e| Failure::Internal(e.into()))?;
    let plan = instance
        .plan(&source)
        .map_err(|trap| {
            Failure::Internal(anyhow::Error::from(trap).context("the runner component trapped"))
        })?
        .map_err(Failure::InvalidFlow)?;
    Ok((instance, source, plan))
}

/// Runs a planned flow `repeat` times on one instance, stopping at a failure.
fn run_repeatedly(
    instance: &mut RunnerInstance,
    flow: FlowSource,
    entry_json: &str,
    bindings: Vec<SlotBinding>,
    settings: &RunSettings,
    repeat: u32,
) -> Vec<Result<String, Failure>> {
    let mut outputs = Vec::new();
    for _ in 0..repeat {
        let output = run(
            instance,
            flow.clone(),
            entry_json,
            bindings.clone(),
            settings,
        );
        let failed = output.is_err();
        outputs.push(output);
        if failed {
            break;
        }
    }
    outputs
}

/// Runs a planned flow on `instance`.
fn run(
    instance: &mut RunnerInstance,
    flow: FlowSource,
    entry_json: &str,
    bindings: Vec<SlotBinding>,
    settings: &RunSettings,
) -> Result<String, Failure> {
    let request = RunRequest {
        flow,
        entry_json: entry_json.to_string(),
        bindings,
        tenant: Tenant {
            env: settings.env.clone(),
            tenant: settings.tenant.clone(),
            team: settings.team.clone(),
            user: settings.user.clone(),
        },
        max_steps: settings.max_steps,
        trace_id: trace_id(),
    };
    instance
        .run(&request)
        .map_err(|trap| {
            Failure::Internal(anyhow::Error::from(trap).context("the runner component trapped"))
        })?
        .map_err(Failure::Flow)
}

/// A run id for the envelope's `trace-id`: time and process, no randomness needed.
fn trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{:x}", std::process::id())
}
