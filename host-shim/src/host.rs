//! The host: one engine, one linked runner and the node components a flow
//! uses, compiled once per process and instantiated per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use compose::{ComponentRef, ComponentResolver, FlowSet, SourceError};
use wasmtime::Engine;

use crate::caps::http::{HttpClientConfig, HttpCtx, TrustedRoots};
use crate::caps::secrets::{SecretSource, SecretsCtx};
use crate::caps::state::bindings::StateBindings;
use crate::caps::state::scope::RunTenant;
use crate::caps::state::{StateBackend, StateCtx};
use crate::caps::telemetry::TelemetryCtx;
use crate::engine::{ComponentCache, Precompiled, new_engine, new_pooling_engine};
use crate::limits::{NodeLimits, RunDeadline};
use crate::nodes::{Granted, NodeComponent, NodeSlot, RunScope, node_linker};
use crate::runner::{
    ErrorKind, FlowPlan, FlowSource, Linking, NodePlan, RunError, RunOutcome, RunRequest,
    RunnerComponent, RunnerInstance, SLOT_COUNT, SlotBinding, Tenant,
};
use crate::sessions::Sessions;
use compose::policy::Grant;
use compose::policy::{
    Capability, CapabilityGrant, Manifest, Profile, approve_capability, approve_flow, capability_of,
};

/// How to set up a [`Host`].
#[derive(Clone)]
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
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            state: StateBackend::Memory,
            profile: Profile::default_profile(),
            component_dirs: Vec::new(),
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
            fresh_runner_per_run: false,
            runner_memory_bytes: crate::limits::RUNNER_MEMORY_BYTES,
            state_bindings: Default::default(),
            http_roots: Default::default(),
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
    fn run_tenant(&self) -> Result<RunTenant, Failure> {
        RunTenant::new(
            &self.env,
            &self.tenant,
            self.team.as_deref(),
            self.user.as_deref(),
        )
        .map_err(Failure::Invalid)
    }
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
}

/// How one run (or turn) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The flow ended: its output (JSON text).
    Completed(String),
    /// The run waits for the next message.
    Waiting {
        /// The session keeping it, if any.
        session: Option<String>,
        /// The node it resumes at.
        node: String,
        /// The `session.wait` reason, if any.
        reason: Option<String>,
        /// What this turn answers (JSON text).
        output: String,
    },
}

impl Turn {
    /// What `run` prints: the output, or for a waiting run
    /// `{"status": "waiting", "session", "node", "reason", "output"}`.
    pub fn to_json(&self) -> Result<serde_json::Value, Failure> {
        let parse = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| Failure::Internal(anyhow!("the runner's output is not JSON: {e}")))
        };
        Ok(match self {
            Turn::Completed(output) => parse(output)?,
            Turn::Waiting {
                session,
                node,
                reason,
                output,
            } => {
                let mut record = serde_json::Map::new();
                record.insert("status".into(), "waiting".into());
                if let Some(session) = session {
                    record.insert("session".into(), session.clone().into());
                }
                record.insert("node".into(), node.clone().into());
                if let Some(reason) = reason {
                    record.insert("reason".into(), reason.clone().into());
                }
                record.insert("output".into(), parse(output)?);
                serde_json::Value::Object(record)
            }
        })
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
    /// The run overstayed [`RunSettings::time_limit`] and was stopped.
    #[error("the run exceeded its time limit of {} ms and was stopped", .0.as_millis())]
    RunTimeout(std::time::Duration),
}

impl Failure {
    /// A trap of the runner: its run's deadline, else an internal failure.
    fn runner_trap(trap: wasmtime::Error) -> Failure {
        if let Some(crate::limits::LimitError::RunTime { limit }) =
            trap.downcast_ref::<crate::limits::LimitError>()
        {
            return Failure::RunTimeout(*limit);
        }
        Failure::Internal(anyhow::Error::from(trap).context("the runner component trapped"))
    }

    /// A run error: a node stopped by the run's deadline makes the run's
    /// failure a [`Failure::RunTimeout`], whatever the flow did after.
    fn of_run(error: RunError, deadline: crate::limits::RunDeadline) -> Failure {
        match deadline.passed() {
            Some(crate::limits::LimitError::RunTime { limit })
                if error.code.as_deref() == Some(crate::limits::RUN_TIMEOUT_CODE) =>
            {
                Failure::RunTimeout(limit)
            }
            _ => Failure::Flow(error),
        }
    }
}

impl Failure {
    /// The process exit code for this failure (see `host-shim --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) | Failure::InvalidFlow(_) => 2,
            Failure::Flow(e) => match e.kind {
                ErrorKind::InvalidFlow
                | ErrorKind::InvalidInput
                | ErrorKind::Binding
                | ErrorKind::Session => 2,
                ErrorKind::Template | ErrorKind::Routing | ErrorKind::Node => 1,
            },
            Failure::Internal(_) | Failure::RunTimeout(_) => 1,
        }
    }

    /// `{"error": {...}}`: the runner's error record (`kind` as in WIT), or for
    /// host failures `kind` `host` and the message. Compact, fields in WIT order,
    /// so every engine's harness prints the same bytes.
    pub fn to_json(&self) -> String {
        self.to_json_with(|message| message.to_string())
    }

    /// [`Failure::to_json`] with the message passed through `message` (a
    /// server takes its paths out, see [`crate::redact`]).
    pub fn to_json_with(&self, message: impl Fn(&str) -> String) -> String {
        let record = match self.run_error() {
            Some(e) => serde_json::json!({
                "kind": error_kind_name(e.kind),
                "message": message(&e.message),
                "node": e.node,
                "code": e.code,
                "line": e.line,
                "column": e.column,
            }),
            None => serde_json::json!({
                "kind": "host", "message": message(&self.to_string()), "node": null, "code": null, "line": null, "column": null,
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

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Invalid(e.into())
    }
}

/// What `check` found out about one flow.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The flow's plan.
    pub plan: FlowPlan,
    /// Flows it reaches with `flow.call` / `flow.goto`, by file.
    pub calls: Vec<PathBuf>,
    /// Notes from the runner about every flow of the set (`file: note`).
    pub notes: Vec<String>,
    /// Components the echo stand-in replaced (`--stub-missing`): `node: reference`.
    pub stubbed: Vec<String>,
    /// Called flow ids that no file provides.
    pub missing_flows: Vec<String>,
}

/// A flow set planned by the runner, with slots ready to bind.
struct Prepared {
    instance: RunnerInstance,
    flow: FlowSource,
    library: Vec<FlowSource>,
    bindings: Vec<SlotBinding>,
    report: CheckReport,
}

/// A planned and linked flow on live instances: each [`WarmRun::run`] is one
/// more run on them (no planning, linking or instantiation).
pub struct WarmRun {
    instance: RunnerInstance,
    request: RunRequest,
}

impl WarmRun {
    /// Runs the flow once more.
    pub fn run(&mut self) -> Result<Turn, Failure> {
        self.request.trace_id = trace_id();
        run_once(&mut self.instance, &self.request).map(|(turn, _)| turn)
    }
}

/// Runs flows from files.
pub struct Host {
    cache: ComponentCache,
    runner: RunnerComponent,
    secrets: std::sync::Arc<SecretSource>,
    state_store: std::sync::Arc<dyn greentic_state::StateStore>,
    profile: Profile,
    node_limits: NodeLimits,
    resolver: ComponentResolver,
    nodes: HashMap<PathBuf, NodeComponent>,
    strict_templating: Option<bool>,
    quiet: bool,
    /// The runner instance of the last run, cleared, for the next
    /// (`None` with [`HostOptions::fresh_runner_per_run`]).
    spare_runner: Option<RunnerInstance>,
    /// Not [`HostOptions::fresh_runner_per_run`].
    reuse_runner: bool,
    /// [`HostOptions::runner_memory_bytes`].
    runner_memory_bytes: usize,
    /// [`HostOptions::state_bindings`].
    state_bindings: std::sync::Arc<StateBindings>,
    /// [`HostOptions::http_roots`].
    http_roots: TrustedRoots,
}

impl Host {
    /// Creates the engine and compiles (or loads from cache) and links the runner.
    pub fn new(options: HostOptions) -> anyhow::Result<Host> {
        let engine: Engine = if options.pooling_allocator {
            new_pooling_engine()?
        } else {
            new_engine()?
        };
        let cache_dir = if options.cache {
            ComponentCache::default_dir()
        } else {
            None
        };
        let cache = ComponentCache::new(engine.clone(), cache_dir, options.quiet)
            .with_precompiled(Precompiled::built_runner())
            .on_miss(options.on_miss);
        let runner_path = options
            .runner
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::BUILT_RUNNER));
        let runner_memory = options.runner_memory_bytes;
        let runner = cache
            .load(&runner_path)
            .and_then(|c| RunnerComponent::new(&c, Linking::Slots, runner_memory))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading the runner component `{}`", runner_path.display()))?;
        let dirs = component_search_dirs(options.component_dirs);
        let stub = options
            .stub_missing
            .then(|| Path::new(crate::BUILT_COMPONENTS_DIR).join("echo.wasm"));
        Ok(Host {
            cache,
            runner,
            secrets: std::sync::Arc::new(options.secrets),
            state_store: match options.shared_state {
                Some(store) => store,
                None => options.state.open()?,
            },
            profile: options.profile,
            node_limits: options.node_limits,
            resolver: ComponentResolver::new(dirs).with_stub(stub),
            nodes: HashMap::new(),
            strict_templating: options.strict_templating,
            quiet: options.quiet,
            spare_runner: None,
            reuse_runner: !options.fresh_runner_per_run,
            runner_memory_bytes: runner_memory,
            state_bindings: options.state_bindings,
            http_roots: options.http_roots,
        })
    }

    /// The compiled-component cache this host loads components through.
    pub fn component_cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// The component files the flow at `path` and the flows it calls use,
    /// resolved as a run would resolve them (nothing is compiled or linked).
    pub fn flow_components(&self, path: &Path) -> Result<Vec<PathBuf>, Failure> {
        let (_, set) = plan_set(
            &self.runner,
            None,
            path,
            self.strict_templating,
            StateCtx::none(),
            RunDeadline::none(),
        )?;
        Ok(self
            .resolved_components(&set)?
            .into_iter()
            .map(|(_, _, resolved)| resolved.path)
            .collect())
    }

    /// Validates the flow at `path`, the flows it calls and that every
    /// component they use loads; returns what it found.
    pub fn check_file(&mut self, path: &Path) -> Result<CheckReport, Failure> {
        let prepared = self.prepare(path, &RunSettings::default())?;
        self.keep_runner(prepared.instance, &[]);
        Ok(prepared.report)
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
    ) -> Vec<Result<Turn, Failure>> {
        match self.warm_run(path, entry_json, settings) {
            Ok(mut warm) => {
                let turns = self.run_turns(&mut warm.instance, warm.request, settings, repeat);
                self.keep_runner(warm.instance, &turns);
                turns
            }
            Err(failure) => vec![Err(failure)],
        }
    }

    /// Plans and links the flow at `path` once and returns it ready to run
    /// again and again with `entry_json` on the same instances (what
    /// `run --repeat` does, one run at a time; benchmarks time it).
    pub fn warm_run(
        &mut self,
        path: &Path,
        entry_json: &str,
        settings: &RunSettings,
    ) -> Result<WarmRun, Failure> {
        let prepared = self.prepare(path, settings)?;
        self.print_notes(&prepared.report);
        Ok(WarmRun {
            request: request(
                prepared.flow,
                prepared.library,
                entry_json,
                prepared.bindings,
                settings,
            ),
            instance: prepared.instance,
        })
    }

    /// [`Host::warm_run`] for the flow `flow` inside the composed component `app`.
    pub fn warm_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        entry_json: &str,
        settings: &RunSettings,
    ) -> Result<WarmRun, Failure> {
        let (instance, source, library) = self.instantiate_composed(app, flow, settings)?;
        Ok(WarmRun {
            request: request(source, library, entry_json, Vec::new(), settings),
            instance,
        })
    }

    /// Keeps the runner instance of a finished run for the next one, cleared,
    /// unless it trapped or failed inside the host (an instance that trapped
    /// cannot be entered again) or the host makes a new one per run.
    fn keep_runner(&mut self, mut instance: RunnerInstance, turns: &[Result<Turn, Failure>]) {
        let healthy = !turns
            .iter()
            .any(|t| matches!(t, Err(Failure::Internal(_) | Failure::RunTimeout(_))));
        if self.reuse_runner && healthy && instance.clear_run().is_ok() {
            self.spare_runner = Some(instance);
        }
    }

    /// Runs `request` `repeat` times, or once as a turn of the settings' session.
    fn run_turns(
        &self,
        instance: &mut RunnerInstance,
        request: RunRequest,
        settings: &RunSettings,
        repeat: u32,
    ) -> Vec<Result<Turn, Failure>> {
        let Some(session) = &settings.session else {
            return run_repeatedly(instance, request, repeat);
        };
        if repeat != 1 {
            return vec![Err(Failure::Invalid(anyhow!(
                "--session runs one turn per invocation; drop --repeat"
            )))];
        }
        vec![self.run_session_turn(instance, request, settings, session)]
    }

    /// One turn of a conversation: claims the session, resumes its waiting
    /// run (or starts one), and keeps the snapshot if the run waits again.
    /// A failed turn leaves the session as it was.
    fn run_session_turn(
        &self,
        instance: &mut RunnerInstance,
        mut request: RunRequest,
        settings: &RunSettings,
        session: &SessionSettings,
    ) -> Result<Turn, Failure> {
        let tenant = settings.run_tenant()?;
        crate::sessions::check_id(&session.id).map_err(Failure::Invalid)?;
        let sessions = Sessions::new(self.state_store.clone(), tenant, session.ttl);
        let lease = sessions
            .claim(&session.id, session.wait)
            .map_err(Failure::Internal)?;
        if session.restart {
            lease.clear().map_err(Failure::Internal)?;
        } else if let Some(snapshot) = lease.snapshot().map_err(Failure::Internal)? {
            request.resume_snapshot = snapshot;
        }
        request.trace_id = trace_id();
        let (turn, snapshot) = run_once(instance, &request).map_err(|failure| match failure {
            Failure::Flow(mut e) if e.kind == ErrorKind::Session => {
                e.message.push_str(
                    "; the session keeps it (run the flow it started with, or --new-session to start over)",
                );
                Failure::Flow(e)
            }
            other => other,
        })?;
        match &snapshot {
            Some(snapshot) => lease.save(snapshot),
            None => lease.clear(),
        }
        .map_err(Failure::Internal)?;
        Ok(match turn {
            Turn::Waiting {
                node,
                reason,
                output,
                ..
            } => Turn::Waiting {
                session: Some(session.id.clone()),
                node,
                reason,
                output,
            },
            completed => completed,
        })
    }

    fn print_notes(&self, report: &CheckReport) {
        if self.quiet {
            return;
        }
        for note in &report.notes {
            eprintln!("warning: {note}");
        }
        for stub in &report.stubbed {
            eprintln!("warning: {stub}: not found; the echo component stands in (--stub-missing)");
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
    ) -> Vec<Result<Turn, Failure>> {
        match self.warm_composed(app, flow, entry_json, settings) {
            Ok(mut warm) => self.run_turns(&mut warm.instance, warm.request, settings, repeat),
            Err(failure) => vec![Err(failure)],
        }
    }

    /// Plans the flow at `path` and the flows it calls on a fresh runner
    /// instance, resolves and links every component they use into slots, and
    /// gates the flows' own state.
    fn prepare(&mut self, path: &Path, settings: &RunSettings) -> Result<Prepared, Failure> {
        let scope = self.scope(settings, path)?;
        let spare = self.spare_runner.take();
        let (mut instance, set) = plan_set(
            &self.runner,
            spare,
            path,
            self.strict_templating,
            StateCtx::none(),
            scope.deadline,
        )?;
        let mut report = CheckReport {
            plan: set.main.2.clone(),
            calls: set.library.iter().map(|(p, _, _)| p.clone()).collect(),
            notes: set
                .flows()
                .flat_map(|(_, source, plan)| {
                    plan.notes
                        .iter()
                        .map(move |n| format!("{}: {n}", source.name))
                })
                .collect(),
            stubbed: Vec::new(),
            missing_flows: set.missing.clone(),
        };
        let components = self.resolved_components(&set)?;
        if components.len() > SLOT_COUNT {
            return Err(Failure::Invalid(anyhow!(
                "{}: the flow and the flows it calls use {} distinct components; the runner has {SLOT_COUNT} node slots",
                path.display(),
                components.len()
            )));
        }
        let mut compiled = self.compile_new(components.iter().map(|(_, _, r)| &r.path));
        let mut slots = Vec::with_capacity(components.len());
        let mut bindings = Vec::with_capacity(components.len());
        for (slot, (flow_file, node, resolved)) in components.iter().enumerate() {
            if resolved.stub {
                report.stubbed.push(format!(
                    "{}: node `{}`: component `{}`",
                    flow_file.display(),
                    node.id,
                    node.component
                ));
            }
            let component = match self.nodes.get(&resolved.path) {
                Some(c) => c.clone(),
                None => {
                    let component = compiled
                        .remove(&resolved.path)
                        .unwrap_or_else(|| self.cache.load(&resolved.path));
                    let loaded = self
                        .link(
                            &resolved.path,
                            component,
                            &node.component,
                            node.digest.is_some(),
                        )
                        .map_err(|e| {
                            Failure::Invalid(e.context(format!(
                                "{}: node `{}`: component `{}`",
                                flow_file.display(),
                                node.id,
                                node.component
                            )))
                        })?;
                    self.nodes.insert(resolved.path.clone(), loaded.clone());
                    loaded
                }
            };
            slots.push(Some(NodeSlot::new(component, scope.clone())));
            bindings.push(SlotBinding {
                component: node.component.clone(),
                slot: slot as u32,
            });
        }
        instance.set_slots(slots);
        instance.set_state(self.flow_state(&set, &scope)?);
        let wit = |source: &runner_core::FlowSource| to_wit_source(source);
        Ok(Prepared {
            instance,
            flow: wit(&set.main.1),
            library: set.library.iter().map(|(_, s, _)| wit(s)).collect(),
            bindings,
            report,
        })
    }

    /// The state context of the flows' own `state.get` / `state.set` nodes:
    /// every flow of the set that uses them must be allowed by the profile
    /// (`flow:<id>`), or the run is refused before any node runs.
    fn flow_state(&self, set: &FlowSet<FlowPlan>, scope: &RunScope) -> Result<StateCtx, Failure> {
        let mut used = false;
        for (path, _, plan) in set.flows() {
            if !plan
                .nodes
                .iter()
                .any(|n| n.operation == "state.get" || n.operation == "state.set")
            {
                continue;
            }
            used = true;
            approve_flow(&plan.id, &self.profile).map_err(|denial| {
                Failure::Invalid(anyhow!(
                    "{}: flow `{}` uses `state.get`/`state.set` but may not use state: {denial}",
                    path.display(),
                    plan.id
                ))
            })?;
        }
        let grant = if used { Grant::ALL } else { Grant::default() };
        Ok(StateCtx::for_flows(
            scope.store.clone(),
            scope.tenant.clone(),
            grant,
        ))
    }

    fn instantiate_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        settings: &RunSettings,
    ) -> Result<(RunnerInstance, FlowSource, Vec<FlowSource>), Failure> {
        let invalid = |e: wasmtime::Error, what: String| {
            Failure::Invalid(anyhow::Error::from(e).context(what))
        };
        let component = self
            .cache
            .load(app)
            .map_err(|e| invalid(e, format!("loading `{}`", app.display())))?;
        let imports: Vec<String> = component
            .component_type()
            .imports(component.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let capabilities: Vec<Capability> = imports
            .iter()
            .filter_map(|i| capability_of(i).map(|row| row.capability))
            .collect();
        let runner = RunnerComponent::new(
            &component,
            Linking::Composed {
                imports: capabilities,
            },
            self.runner_memory_bytes,
        )
        .map_err(|e| invalid(e, format!("`{}` is not a composed flow", app.display())))?;
        // The composition was approved when it was made; the components that
        // use the app's state import share one namespace, named after the app file.
        let scope = self.scope(settings, flow)?;
        let scope_deadline = scope.deadline;
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
        let (mut instance, set) = plan_set(
            &runner,
            None,
            flow,
            self.strict_templating,
            state,
            scope_deadline,
        )?;
        // The composition merged its components' secrets and HTTP imports into
        // one each: the app may read the secrets its approved components
        // declare and reach the hosts the profile allows.
        let tenant = settings.tenant.clone();
        let secret_keys = self.declared_secrets(&set)?;
        let caps = instance.capabilities();
        caps.telemetry = TelemetryCtx::new(&format!("composed {}", app.display()), &tenant);
        caps.secrets = SecretsCtx::new(self.secrets.clone(), &tenant, "composed app", secret_keys);
        caps.http = HttpCtx::new(
            "composed app",
            self.profile.http_allow.clone(),
            &self.http_client(),
        );
        let library = set
            .library
            .iter()
            .map(|(_, s, _)| to_wit_source(s))
            .collect();
        Ok((instance, to_wit_source(&set.main.1), library))
    }

    /// The distinct components of a flow set (keyed by reference, in slot
    /// order) with the flow file and first node using each, resolved to files.
    fn resolved_components<'s>(
        &self,
        set: &'s FlowSet<FlowPlan>,
    ) -> Result<Vec<(&'s Path, &'s NodePlan, compose::Resolved)>, Failure> {
        compose::distinct_components(
            set.flows()
                .flat_map(|(path, _, plan)| plan.nodes.iter().map(move |n| (path.as_path(), n))),
            |n| n.component.as_str(),
        )
        .into_iter()
        .map(|(flow_file, node)| {
            let resolved = self.resolver.resolve(
                flow_file,
                ComponentRef {
                    node: &node.id,
                    reference: &node.component,
                    component_id: node.component_id.as_deref(),
                    digest: node.digest.as_deref(),
                },
            )?;
            Ok((flow_file, node, resolved))
        })
        .collect()
    }

    /// Secret keys declared by the components of `set` that the profile lets
    /// read secrets.
    fn declared_secrets(&self, set: &FlowSet<FlowPlan>) -> Result<Vec<String>, Failure> {
        let mut keys = Vec::new();
        for (_, _, resolved) in self.resolved_components(set)? {
            let manifest =
                Manifest::find(&resolved.path).map_err(|e| Failure::Invalid(e.into()))?;
            if let Ok(CapabilityGrant::Secrets(declared)) =
                approve_capability(Capability::Secrets, manifest.as_ref(), &self.profile)
            {
                keys.extend(declared);
            }
        }
        Ok(keys)
    }

    /// How outbound HTTP is made: the profile's limits, the trusted CAs.
    fn http_client(&self) -> HttpClientConfig {
        HttpClientConfig {
            timeout: std::time::Duration::from_millis(self.profile.http_timeout_ms),
            max_response_bytes: self.profile.http_max_response_bytes,
            roots: self.http_roots.clone(),
        }
    }

    /// What the node instances of one run of the flow at `flow` share.
    fn scope(&self, settings: &RunSettings, flow: &Path) -> Result<RunScope, Failure> {
        let tenant = settings.run_tenant()?;
        Ok(RunScope {
            store: self.state_store.clone(),
            tenant,
            progress: settings.progress,
            observer: settings.observer.clone(),
            secrets: self.secrets.clone(),
            http: self.http_client(),
            assets: assets_dir(flow),
            deadline: RunDeadline::after(settings.time_limit),
        })
    }
}

impl Host {
    /// Loads the components of `paths` this host has not linked yet, at once
    /// on threads of their own: on a first run, each may need compiling, and
    /// a compiler does not keep every core busy on one small component.
    fn compile_new<'p>(
        &self,
        paths: impl Iterator<Item = &'p PathBuf>,
    ) -> HashMap<PathBuf, wasmtime::Result<wasmtime::component::Component>> {
        let mut new: Vec<&PathBuf> = paths.filter(|p| !self.nodes.contains_key(*p)).collect();
        new.sort();
        new.dedup();
        if new.len() < 2 {
            return HashMap::new();
        }
        // The cache alone crosses threads (the host's spare runner cannot).
        let cache = &self.cache;
        std::thread::scope(|scope| {
            let loading: Vec<_> = new
                .into_iter()
                .map(|path| (path.clone(), scope.spawn(|| cache.load(path))))
                .collect();
            loading
                .into_iter()
                .map(|(path, handle)| {
                    let loaded = handle.join().unwrap_or_else(|_| {
                        Err(wasmtime::format_err!(
                            "compiling `{}` panicked",
                            path.display()
                        ))
                    });
                    (path, loaded)
                })
                .collect()
        })
    }

    /// Compiles and links a node component: its limits come from its manifest
    /// (else the host defaults), and each gated host interface it imports is
    /// linked only if the gating table approves it; an import it may not have
    /// refuses the component before anything runs.
    fn link(
        &self,
        path: &Path,
        component: wasmtime::Result<wasmtime::component::Component>,
        reference: &str,
        digest_pinned: bool,
    ) -> anyhow::Result<NodeComponent> {
        let component = component?;
        let manifest = Manifest::find(path)?;
        let limits = match &manifest {
            Some(m) => self.node_limits.with_manifest(&m.limits),
            None => self.node_limits,
        };
        let mut granted = Granted {
            asset_mounts: manifest
                .as_ref()
                .map(|m| m.asset_mounts.clone())
                .unwrap_or_default(),
            ..Granted::default()
        };
        // The component's own engine: Winch-compiled components live on another.
        let engine = component.engine();
        for (import, _) in component.component_type().imports(engine) {
            let Some(row) = capability_of(import) else {
                continue;
            };
            let grant = approve_capability(row.capability, manifest.as_ref(), &self.profile)
                .map_err(|denial| {
                    anyhow!(
                        "imports `{import}` but may not use {}: {denial}",
                        row.capability.noun()
                    )
                })?;
            match grant {
                CapabilityGrant::State(approval) => {
                    self.bind_state_id(&approval.id, path, digest_pinned)?;
                    granted.state = Some(approval)
                }
                CapabilityGrant::Secrets(keys) => granted.secrets = Some(keys),
                CapabilityGrant::Http(hosts) => granted.http = Some(hosts),
                CapabilityGrant::Telemetry => {}
            }
        }
        if let Some(m) = &manifest {
            warn_manifest_mismatch(m, &component, engine);
        }
        let linker = node_linker(engine, &granted)?;
        Ok(NodeComponent::new(
            reference, &component, &linker, granted, limits,
        )?)
    }
}

impl Host {
    /// Checks that the binary at `path` may use the state of `id` (its
    /// manifest's claim): what the operator pinned, then the host's bindings.
    fn bind_state_id(&self, id: &str, path: &Path, digest_pinned: bool) -> anyhow::Result<()> {
        use sha2::Digest;
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
        compose::policy::bind_state_id(id, &digest, digest_pinned, &self.profile)
            .map_err(|denial| anyhow!("may not use the state of `{id}`: {denial}"))?;
        self.state_bindings.claim(id, &digest, path)?;
        Ok(())
    }
}

/// A manifest's `world` that names an ABI the binary does not export: the
/// binary wins; the mismatch is worth a warning.
fn warn_manifest_mismatch(
    manifest: &Manifest,
    component: &wasmtime::component::Component,
    engine: &Engine,
) {
    let Ok(text) = std::fs::read_to_string(&manifest.path) else {
        return;
    };
    let Some(world) = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|d| d.get("world").and_then(|w| w.as_str()).map(str::to_string))
    else {
        return;
    };
    let Some((package, version)) = world.split_once('@') else {
        return;
    };
    let package = package.split('/').next().unwrap_or(package);
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let matches = exports
        .iter()
        .any(|e| e.starts_with(&format!("{package}/")) && e.ends_with(&format!("@{version}")));
    if !matches {
        tracing::warn!(
            manifest = %manifest.path.display(),
            "the manifest's world `{world}` is not what the component exports ({}); using the binary's",
            exports.join(", ")
        );
    }
}

/// The `assets/` directory of the flow at `flow`: next to it, or one or two
/// levels up (a pack's `flows/<id>/flow.ygtc`).
fn assets_dir(flow: &Path) -> Option<PathBuf> {
    if let Some(pack) = compose::pack::Pack::enclosing(flow) {
        let assets = pack.root.join("assets");
        return assets.is_dir().then_some(assets);
    }
    let dir = flow.parent().unwrap_or(Path::new("."));
    [dir.to_path_buf(), dir.join(".."), dir.join("../..")]
        .into_iter()
        .map(|d| d.join("assets"))
        .find(|d| d.is_dir())
}

fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidFlow => "invalid-flow",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Template => "template",
        ErrorKind::Routing => "routing",
        ErrorKind::Node => "node",
        ErrorKind::Binding => "binding",
        ErrorKind::Session => "session",
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
    options: &compose::ComposeOptions,
) -> Result<compose::Composition, Failure> {
    let parts = compose::Parts::read(
        Path::new(crate::BUILT_RUNNER),
        Path::new(crate::BUILT_COMPOSE_PARTS_DIR),
    )
    .map_err(|e| Failure::Invalid(e.into()))?;
    let resolver = ComponentResolver::new(component_search_dirs(component_dirs));
    compose::compose(flow, &resolver, &parts, options).map_err(|e| Failure::Invalid(e.into()))
}

/// The runner's WIT form of a flow source.
fn to_wit_source(source: &runner_core::FlowSource) -> FlowSource {
    FlowSource {
        name: source.name.clone(),
        yaml: source.yaml.clone(),
        resolve_json: source.resolve_json.clone(),
        resolve_summary_json: source.resolve_summary_json.clone(),
        strict_templating: source.strict_templating,
    }
}

/// Loads the flow at `path` and the flows it calls, planning each on one
/// instance of `runner` (which keeps them loaded for the run): `spare`, a
/// cleared instance of an earlier run (planning a flow it planned before
/// costs a comparison of its text), or a new one.
fn plan_set(
    runner: &RunnerComponent,
    spare: Option<RunnerInstance>,
    path: &Path,
    strict_templating: Option<bool>,
    state: StateCtx,
    deadline: RunDeadline,
) -> Result<(RunnerInstance, FlowSet<FlowPlan>), Failure> {
    let mut instance = match spare {
        Some(mut instance) => {
            instance.set_state(state);
            instance
        }
        None => runner
            .instantiate(Vec::new(), state)
            .map_err(|e| Failure::Internal(e.into()))?,
    };
    instance.set_deadline(deadline);
    let set = compose::load_flow_set(
        path,
        strict_templating,
        |source| {
            instance
                .plan(&to_wit_source(source))
                .map_err(Failure::runner_trap)?
                .map_err(Failure::InvalidFlow)
        },
        |plan| plan.calls.clone(),
        |plan| plan.id.clone(),
    )?;
    Ok((instance, set))
}

/// A run request for a planned flow.
fn request(
    flow: FlowSource,
    library: Vec<FlowSource>,
    entry_json: &str,
    bindings: Vec<SlotBinding>,
    settings: &RunSettings,
) -> RunRequest {
    RunRequest {
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
        trace_id: String::new(),
        vars_json: if settings.vars.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(settings.vars.clone()).to_string()
        },
        library,
        resume_snapshot: String::new(),
    }
}

/// Runs one turn; with the snapshot to keep when the run waits.
fn run_once(
    instance: &mut RunnerInstance,
    request: &RunRequest,
) -> Result<(Turn, Option<String>), Failure> {
    let outcome = instance
        .run(request)
        .map_err(Failure::runner_trap)?
        .map_err(|e| Failure::of_run(e, instance.deadline()))?;
    Ok(match outcome {
        RunOutcome::Completed(output) => (Turn::Completed(output), None),
        RunOutcome::Waiting(waiting) => (
            Turn::Waiting {
                session: None,
                node: waiting.node,
                reason: waiting.reason,
                output: waiting.output_json,
            },
            Some(waiting.snapshot_json),
        ),
    })
}

/// Runs a planned flow `repeat` times on one instance, stopping at a failure.
fn run_repeatedly(
    instance: &mut RunnerInstance,
    mut request: RunRequest,
    repeat: u32,
) -> Vec<Result<Turn, Failure>> {
    let mut outputs = Vec::new();
    for _ in 0..repeat {
        request.trace_id = trace_id();
        let output = run_once(instance, &request).map(|(turn, _)| turn);
        let failed = output.is_err();
        outputs.push(output);
        if failed {
            break;
        }
    }
    outputs
}

/// A run id for the envelope's `trace-id`: time and process, no randomness needed.
fn trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{:x}", std::process::id())
}
