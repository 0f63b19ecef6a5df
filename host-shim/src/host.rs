//! The host: one engine, one linked runner and the node components a flow
//! uses, compiled once per process and instantiated per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use compose::{ComponentResolver, load_flow};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::engine::{ComponentCache, new_engine};
use crate::nodes::{NodeComponent, NodeSlot, NodeState, RunScope, node_linker};
use crate::policy::{Manifest, Profile, approve};
use crate::runner::{
    ErrorKind, FlowPlan, FlowSource, RunError, RunRequest, RunnerComponent, RunnerInstance,
    SLOT_COUNT, SlotBinding, Tenant,
};
use crate::state_store::scope::RunTenant;
use crate::state_store::{StateBackend, is_state_import};

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
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            env: "local".into(),
            tenant: "default".into(),
            team: None,
            user: None,
            max_steps: None,
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
            .and_then(|c| RunnerComponent::new(&engine, &c))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading the runner component `{}`", runner_path.display()))?;
        let mut dirs = options.component_dirs;
        dirs.push(PathBuf::from(crate::BUILT_COMPONENTS_DIR));
        Ok(Host {
            cache,
            runner,
            plain_linker: node_linker(&engine, false)?,
            state_linker: node_linker(&engine, true)?,
            state_store: options.state.open()?,
            profile: options.profile,
            resolver: ComponentResolver::new(dirs),
            nodes: HashMap::new(),
        })
    }

    /// Validates the flow at `path` and that every component it uses loads;
    /// returns its plan.
    pub fn check_file(&mut self, path: &Path) -> Result<FlowPlan, Failure> {
        let (_, _, plan) = self.plan(path)?;
        self.slots(path, &plan, &self.scope(&RunSettings::default())?)?;
        Ok(plan)
    }

    /// Runs the flow at `path` with the entry payload `entry_json` and returns
    /// the last node's output as JSON text.
    pub fn run_file(
        &mut self,
        path: &Path,
        entry_json: &str,
        settings: &RunSettings,
    ) -> Result<String, Failure> {
        let scope = self.scope(settings)?;
        let (mut instance, source, plan) = self.plan(path)?;
        instance.set_slots(self.slots(path, &plan, &scope)?);
        let request = RunRequest {
            flow: source,
            entry_json: entry_json.to_string(),
            bindings: plan
                .components
                .iter()
                .enumerate()
                .map(|(slot, component)| SlotBinding {
                    component: component.clone(),
                    slot: slot as u32,
                })
                .collect(),
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

    fn plan(&mut self, path: &Path) -> Result<(RunnerInstance, FlowSource, FlowPlan), Failure> {
        let source = load_flow(path).map_err(|e| Failure::Invalid(e.into()))?;
        let source = FlowSource {
            name: source.name,
            yaml: source.yaml,
            resolve_json: source.resolve_json,
        };
        let mut instance = self
            .runner
            .instantiate(Vec::new())
            .map_err(|e| Failure::Internal(e.into()))?;
        let plan = instance
            .plan(&source)
            .map_err(|trap| {
                Failure::Internal(anyhow::Error::from(trap).context("the runner component trapped"))
            })?
            .map_err(Failure::InvalidFlow)?;
        Ok((instance, source, plan))
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
    /// Compiles and links a node component, deciding its state capability:
    /// the state-store import is linked only for approved components.
    fn link(&self, path: &Path, reference: &str) -> anyhow::Result<NodeComponent> {
        let component = self.cache.load(path)?;
        let engine = self.cache.engine();
        let state_import = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .find(|name| is_state_import(name));
        let Some(interface) = state_import else {
            return Ok(NodeComponent::new(
                reference,
                &component,
                &self.plain_linker,
                None,
            )?);
        };
        let manifest = Manifest::find(path)?;
        match approve(manifest.as_ref(), &self.profile) {
            Ok(approval) => Ok(NodeComponent::new(
                reference,
                &component,
                &self.state_linker,
                Some(approval),
            )?),
            Err(denial) => anyhow::bail!("imports `{interface}` but may not use state: {denial}"),
        }
    }
}

/// A run id for the envelope's `trace-id`: time and process, no randomness needed.
fn trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{:x}", std::process::id())
}
