//! Composition: the runner and a flow's node components, wired with wac-graph
//! into one component that any component host can run.
//!
//! ```text
//!   node component i ──(greentic:component/node@0.6.0 export)──▶ runner slot i
//!   empty-slot       ──────────────────────────────────────────▶ unused slots
//!   state-memory (one per approved component) ─▶ that component's state import
//!   state-deny   (with `deny_unapproved`)     ─▶ an unapproved component's state import
//!   capability-deny (with `deny_unapproved`)  ─▶ its secrets / HTTP imports
//!   runner's `greentic:runner/run@0.1.0`      ─▶ the composed component's export
//!                                             └▶ front part ─▶ `greentic:runner/app@0.1.0`
//!   baked-flows (generated: the flow set)     ─▶ front part     (+ `wasi:http/incoming-handler`
//!                                                                 with `http-front`)
//!
//!   node on another ABI ──▶ adapter part ──(node@0.6.0)──▶ runner slot i
//!     (component-runtime@0.6.0 → adapt-runtime; node@0.4.0/0.5.0 → adapt-v0x,
//!      in the record shape the component's own `invoke` takes)
//! ```
//!
//! What is left unsatisfied becomes an import of the composed component; wac
//! merges same-named imports of different instances into one. So the import
//! list is checked against an allow-list before the bytes are returned: WASI,
//! interfaces that only carry types, and — when approved components' state is
//! left to the embedding host — the state store.

use std::path::{Path, PathBuf};

use runner_core::{Flow, FlowPlan};
use thiserror::Error;
use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

use crate::baked::{self, HttpSettings};
use crate::policy::{
    Capability, Denial, Grant, Manifest, PolicyError, Profile, approve, approve_capability,
    approve_flow, capability_of,
};
use crate::source::{
    ComponentRef, ComponentResolver, FlowSet, SourceError, distinct_components, load_flow_set,
};

/// The runner's import for node slot `index` (see `wit/runner.wit`).
pub fn slot_import(index: usize) -> String {
    format!(
        "greentic:runner/{}@0.1.0",
        greentic_runner_wit::slot_name(index)
    )
}

/// The runner's own state-store import (flow-level `state.get` / `state.set`).
const RUNNER_STATE_IMPORT: &str = "greentic:state/state-store@1.0.0";

/// The export a composed flow offers: the runner's API.
pub const RUN_EXPORT: &str = "greentic:runner/run@0.1.0";

/// The export of a composed flow that runs its baked flow.
pub const APP_EXPORT: &str = "greentic:runner/app@0.1.0";

/// What the generated part exports and the front parts import.
const BAKED_EXPORT: &str = "greentic:runner/baked-flows@0.1.0";

/// The `wasi:http` export of `http-front`, any 0.2 version.
const HTTP_HANDLER_EXPORT: &str = "wasi:http/incoming-handler@";

const NODE_EXPORT: &str = "greentic:component/node@0.6.0";
const STATE_EXPORT: &str = "greentic:state/state-store@1.1.0";

/// The runner's import telling whose run it makes (`wit/run-scope.wit`).
pub const RUN_SCOPE_IMPORT: &str = "greentic:runner/run-scope@0.1.0";

/// What the state-memory part reads that scope through.
const CURRENT_SCOPE: &str = "greentic:runner/current-scope@0.1.0";
const TELEMETRY_EXPORT: &str = "greentic:telemetry/logger-api@1.0.0";
const RUNTIME_EXPORT: &str = "greentic:component/component-runtime@0.6.0";
const LEGACY_VERSIONS: [&str; 2] = ["0.5.0", "0.4.0"];

/// Import names of the state-store interface, any version.
pub fn is_state_import(name: &str) -> bool {
    name.starts_with("greentic:state/state-store@")
}

/// The components a composition is built from besides the flow's own.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The runner component.
    pub runner: Vec<u8>,
    /// Fills unused node slots.
    pub empty_slot: Vec<u8>,
    /// In-memory state-store provider.
    pub state_memory: Vec<u8>,
    /// State-store provider that refuses every call.
    pub state_deny: Vec<u8>,
    /// Holds the scope of the run in progress for the state-memory parts.
    pub run_scope: Vec<u8>,
    /// Telemetry logger that writes to stderr (WASI).
    pub telemetry_stderr: Vec<u8>,
    /// Secrets store and HTTP clients that refuse every call.
    pub capability_deny: Vec<u8>,
    /// Adapters from the other node ABIs to `node@0.6.0`.
    pub adapters: Adapters,
    /// Front part exporting `greentic:runner/app` (runs the baked flow).
    pub app_front: Vec<u8>,
    /// Front part exporting that and `wasi:http/incoming-handler`.
    pub http_front: Vec<u8>,
}

/// Parts that turn a node component on another ABI into `node@0.6.0`.
#[derive(Debug, Clone)]
pub struct Adapters {
    /// `component-runtime@0.6.0`.
    pub runtime: Vec<u8>,
    /// `node@0.4.0`, with `i18n-id` in its records.
    pub v04: Vec<u8>,
    /// `node@0.5.0`, with `i18n-id` in its records.
    pub v05: Vec<u8>,
    /// `node@0.4.0`, the older shape without `i18n-id`.
    pub v04_pre_i18n: Vec<u8>,
    /// `node@0.5.0`, the older shape without `i18n-id`.
    pub v05_pre_i18n: Vec<u8>,
}

/// The node ABI a component exports, as composition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAbi {
    /// `greentic:component/node@0.6.0`, wired to its slot directly.
    Node06,
    /// `greentic:component/component-runtime@0.6.0`, through `adapt-runtime`.
    Runtime,
    /// A legacy JSON ABI (`node@0.4.0` or `@0.5.0`), through `adapt-v0x`.
    Legacy {
        /// `0.4.0` or `0.5.0`.
        version: &'static str,
        /// The record shape has `i18n-id`.
        i18n: bool,
    },
}

impl NodeAbi {
    /// The interface the component exports.
    pub fn export(self) -> String {
        match self {
            NodeAbi::Node06 => NODE_EXPORT.to_string(),
            NodeAbi::Runtime => RUNTIME_EXPORT.to_string(),
            NodeAbi::Legacy { version, .. } => format!("greentic:component/node@{version}"),
        }
    }
}

impl Parts {
    /// Reads the runner from `runner` and the other parts from `dir`
    /// (`empty-slot.wasm`, `state-memory.wasm`, `state-deny.wasm`, `run-scope.wasm`,
    /// `telemetry-stderr.wasm`, `capability-deny.wasm`, `adapt-*.wasm`,
    /// `app-front.wasm`, `http-front.wasm`).
    pub fn read(runner: &Path, dir: &Path) -> Result<Parts, ComposeError> {
        let read = |path: PathBuf| {
            std::fs::read(&path).map_err(|source| ComposeError::Read { path, source })
        };
        Ok(Parts {
            runner: read(runner.to_path_buf())?,
            empty_slot: read(dir.join("empty-slot.wasm"))?,
            state_memory: read(dir.join("state-memory.wasm"))?,
            state_deny: read(dir.join("state-deny.wasm"))?,
            run_scope: read(dir.join("run-scope.wasm"))?,
            telemetry_stderr: read(dir.join("telemetry-stderr.wasm"))?,
            capability_deny: read(dir.join("capability-deny.wasm"))?,
            adapters: Adapters {
                runtime: read(dir.join("adapt-runtime.wasm"))?,
                v04: read(dir.join("adapt-v04.wasm"))?,
                v05: read(dir.join("adapt-v05.wasm"))?,
                v04_pre_i18n: read(dir.join("adapt-v04-pre-i18n.wasm"))?,
                v05_pre_i18n: read(dir.join("adapt-v05-pre-i18n.wasm"))?,
            },
            app_front: read(dir.join("app-front.wasm"))?,
            http_front: read(dir.join("http-front.wasm"))?,
        })
    }
}

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

fn graph_error<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> ComposeError {
    let what = what.into();
    move |e| ComposeError::Graph {
        what,
        source: e.into(),
    }
}

/// Composes the flow at `flow_path` with its components (found by `resolver`)
/// and `parts`, gating state per `options`.
pub fn compose(
    flow_path: &Path,
    resolver: &ComponentResolver,
    parts: &Parts,
    options: &ComposeOptions,
) -> Result<Composition, ComposeError> {
    let set = load_flow_set(
        flow_path,
        None,
        |source| {
            Flow::load(source)
                .map(|f| f.plan())
                .map_err(ComposeError::from)
        },
        |plan| plan.calls.clone(),
        |plan| plan.id.clone(),
    )?;
    let components = distinct_components(
        set.flows()
            .flat_map(|(path, _, plan)| plan.nodes.iter().map(move |n| (path.as_path(), n))),
        |n| n.component.as_str(),
    );
    if components.len() > greentic_runner_wit::SLOT_COUNT {
        return Err(ComposeError::TooManyComponents {
            flow: flow_path.display().to_string(),
            count: components.len(),
        });
    }
    let mut composer = Composer::new(options);
    let runner = composer.instantiate("greentic:runner", &parts.runner, "the runner component")?;
    let scope =
        composer.instantiate("greentic:run-scope", &parts.run_scope, "the run-scope part")?;
    composer.wire(scope, RUN_SCOPE_IMPORT, runner, RUN_SCOPE_IMPORT)?;
    composer.run_scope = Some(scope);

    let mut nodes = Vec::new();
    for (slot, (flow_file, node)) in components.iter().enumerate() {
        let reference = &node.component;
        let resolved = resolver.resolve(
            flow_file,
            ComponentRef {
                node: &node.id,
                reference,
                component_id: node.component_id.as_deref(),
                digest: node.digest.as_deref(),
            },
        )?;
        let path = resolved.path;
        let bytes = std::fs::read(&path).map_err(|source| ComposeError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest = Manifest::find(&path).map_err(|source| ComposeError::Manifest {
            reference: reference.clone(),
            source,
        })?;
        let (instance, state) = composer.add_node(
            slot,
            reference,
            &bytes,
            manifest.as_ref(),
            node.digest.is_some(),
            parts,
        )?;
        let Capabilities {
            imported,
            logs_to_stderr,
            denied,
        } = composer.add_capabilities(instance, reference, manifest.as_ref(), parts)?;
        let abi = composer.node_abi(instance, reference)?;
        let exporter = composer.adapt(instance, abi, &parts.adapters)?;
        composer.wire(exporter, NODE_EXPORT, runner, &slot_import(slot))?;
        nodes.push(ComposedNode {
            reference: reference.clone(),
            path,
            slot,
            abi,
            state,
            imported,
            logs_to_stderr,
            denied,
        });
    }
    if nodes.len() < greentic_runner_wit::SLOT_COUNT {
        let empty = composer.instantiate(
            "greentic:empty-slot",
            &parts.empty_slot,
            "the empty-slot part",
        )?;
        for slot in nodes.len()..greentic_runner_wit::SLOT_COUNT {
            composer.wire(empty, NODE_EXPORT, runner, &slot_import(slot))?;
        }
    }
    let flow_state = composer.add_flow_state(&set, runner, parts)?;
    let run = composer
        .graph
        .alias_instance_export(runner, RUN_EXPORT)
        .map_err(graph_error(format!(
            "the runner component does not export `{RUN_EXPORT}`"
        )))?;
    composer
        .graph
        .export(run, RUN_EXPORT)
        .map_err(graph_error("exporting the runner API"))?;
    composer.add_front(runner, &set, parts)?;

    let imports = composer.checked_imports(&nodes, &flow_state)?;
    let bytes = composer
        .graph
        .encode(EncodeOptions::default())
        .map_err(graph_error("encoding the composition"))?;
    Ok(Composition {
        bytes,
        imports,
        nodes,
        flow_state,
    })
}

/// Owns the graph while a composition is built.
struct Composer<'a> {
    graph: CompositionGraph,
    options: &'a ComposeOptions,
    packages: usize,
    /// (import name, who imports it), for messages about unexpected imports.
    importers: Vec<(String, String)>,
    /// The in-composition stderr logger, once a component needs it.
    telemetry: Option<NodeId>,
    /// The refusing secrets/HTTP provider, once a component needs it.
    capability_deny: Option<NodeId>,
    /// The run-scope part the runner tells its runs' scope to.
    run_scope: Option<NodeId>,
}

/// How a node's capability imports (other than state) were wired.
#[derive(Default)]
struct Capabilities {
    imported: Vec<String>,
    logs_to_stderr: bool,
    denied: Vec<String>,
}

impl<'a> Composer<'a> {
    fn new(options: &'a ComposeOptions) -> Self {
        Composer {
            graph: CompositionGraph::new(),
            options,
            packages: 0,
            importers: Vec::new(),
            telemetry: None,
            capability_deny: None,
            run_scope: None,
        }
    }

    /// Registers `bytes` as a new package and instantiates it.
    fn instantiate(
        &mut self,
        name: &str,
        bytes: &[u8],
        what: &str,
    ) -> Result<NodeId, ComposeError> {
        // Package names only need to be unique within the graph.
        self.packages += 1;
        let name = format!("{name}-{}", self.packages);
        let package = Package::from_bytes(&name, None, bytes.to_vec(), self.graph.types_mut())
            .map_err(|e| ComposeError::Graph {
                what: format!("{what} is not a usable component"),
                source: e.into(),
            })?;
        let package = self
            .graph
            .register_package(package)
            .map_err(graph_error(format!("registering {what}")))?;
        let instance = self.graph.instantiate(package);
        for name in self.import_names(instance) {
            self.importers.push((name, what.to_string()));
        }
        Ok(instance)
    }

    /// Bakes the flow set into a generated part and puts the front part
    /// (`app-front`, or `http-front` with `--http`) in front of the runner;
    /// exports what the front exports.
    fn add_front(
        &mut self,
        runner: NodeId,
        set: &FlowSet<FlowPlan>,
        parts: &Parts,
    ) -> Result<(), ComposeError> {
        let http = self.options.http.clone();
        let document = baked::document(
            &set.main.2.id,
            &set.main.1,
            &set.library.iter().map(|(_, s, _)| s).collect::<Vec<_>>(),
            http.as_ref().unwrap_or(&HttpSettings::default()),
        );
        let bytes = baked::component(&document).map_err(|e| ComposeError::Graph {
            what: "generating the baked-flows part".into(),
            source: e.into(),
        })?;
        let flows = self.instantiate("greentic:baked-flows", &bytes, "the baked-flows part")?;
        let (front_bytes, what) = match http {
            Some(_) => (&parts.http_front, "the http-front part"),
            None => (&parts.app_front, "the app-front part"),
        };
        let front = self.instantiate("greentic:front", front_bytes, what)?;
        self.wire(runner, RUN_EXPORT, front, RUN_EXPORT)?;
        self.wire(flows, BAKED_EXPORT, front, BAKED_EXPORT)?;
        let mut exports = vec![APP_EXPORT.to_string()];
        if self.options.http.is_some() {
            let package = self.graph[front]
                .package()
                .expect("an instantiation has a package");
            let world = &self.graph.types()[self.graph[package].ty()];
            let handler = world
                .exports
                .keys()
                .find(|name| name.starts_with(HTTP_HANDLER_EXPORT))
                .cloned()
                .ok_or_else(|| ComposeError::Graph {
                    what: format!("{what} exports no `{HTTP_HANDLER_EXPORT}*`"),
                    source: "wrong part".into(),
                })?;
            exports.push(handler);
        }
        for name in exports {
            let alias = self
                .graph
                .alias_instance_export(front, &name)
                .map_err(graph_error(format!("{what} does not export `{name}`")))?;
            self.graph
                .export(alias, &name)
                .map_err(graph_error(format!("exporting `{name}`")))?;
        }
        Ok(())
    }

    /// Plugs `export` of instance `from` into import `import` of instance `to`.
    fn wire(
        &mut self,
        from: NodeId,
        export: &str,
        to: NodeId,
        import: &str,
    ) -> Result<(), ComposeError> {
        let alias = self
            .graph
            .alias_instance_export(from, export)
            .map_err(graph_error(format!(
                "a component plugged into `{import}` does not export `{export}`"
            )))?;
        self.graph
            .set_instantiation_argument(to, import, alias)
            .map_err(graph_error(format!("`{export}` does not fit `{import}`")))
    }

    /// Which node ABI the instance exports: `node@0.6.0` first, then
    /// `component-runtime@0.6.0`, then the legacy ones — for those, the record
    /// shape is read from the component's own `invoke` parameter.
    fn node_abi(&self, instance: NodeId, reference: &str) -> Result<NodeAbi, ComposeError> {
        let package = self.graph[instance]
            .package()
            .expect("an instantiation has a package");
        let types = self.graph.types();
        let world = &types[self.graph[package].ty()];
        if world.exports.contains_key(NODE_EXPORT) {
            return Ok(NodeAbi::Node06);
        }
        if world.exports.contains_key(RUNTIME_EXPORT) {
            return Ok(NodeAbi::Runtime);
        }
        for version in LEGACY_VERSIONS {
            let export = format!("greentic:component/node@{version}");
            if let Some(ItemKind::Instance(interface)) = world.exports.get(&export) {
                let i18n = exec_ctx_has_i18n(types, &types[*interface]).ok_or_else(|| {
                    ComposeError::NoNodeExport {
                        reference: reference.to_string(),
                        detail: format!("its `{export}` has no `invoke(exec-ctx, …)`"),
                    }
                })?;
                return Ok(NodeAbi::Legacy { version, i18n });
            }
        }
        Err(ComposeError::NoNodeExport {
            reference: reference.to_string(),
            detail: format!(
                "it exports none of `{NODE_EXPORT}`, `{RUNTIME_EXPORT}`, `greentic:component/node@0.5.0`, `greentic:component/node@0.4.0`"
            ),
        })
    }

    /// Puts the adapter `abi` needs in front of `node`; returns the instance
    /// that exports `node@0.6.0` (the node itself when no adapter is needed).
    fn adapt(
        &mut self,
        node: NodeId,
        abi: NodeAbi,
        adapters: &Adapters,
    ) -> Result<NodeId, ComposeError> {
        let (bytes, what) = match abi {
            NodeAbi::Node06 => return Ok(node),
            NodeAbi::Runtime => (&adapters.runtime, "the adapt-runtime part"),
            NodeAbi::Legacy {
                version: "0.4.0",
                i18n: true,
            } => (&adapters.v04, "the adapt-v04 part"),
            NodeAbi::Legacy {
                version: "0.4.0",
                i18n: false,
            } => (&adapters.v04_pre_i18n, "the adapt-v04-pre-i18n part"),
            NodeAbi::Legacy { i18n: true, .. } => (&adapters.v05, "the adapt-v05 part"),
            NodeAbi::Legacy { i18n: false, .. } => {
                (&adapters.v05_pre_i18n, "the adapt-v05-pre-i18n part")
            }
        };
        let adapter = self.instantiate("greentic:node-adapter", bytes, what)?;
        let export = abi.export();
        self.wire(node, &export, adapter, &export)?;
        Ok(adapter)
    }

    /// Instantiates a node component and gates its state import: approved
    /// components get their own in-memory provider or the composed component's
    /// import; others are refused, or get the refusing provider if asked.
    fn add_node(
        &mut self,
        slot: usize,
        reference: &str,
        bytes: &[u8],
        manifest: Option<&Manifest>,
        digest_pinned: bool,
        parts: &Parts,
    ) -> Result<(NodeId, StateDecision), ComposeError> {
        let node = self.instantiate(
            &format!("flow:node-{slot}"),
            bytes,
            &format!("component `{reference}`"),
        )?;
        let state_imports: Vec<String> = self
            .import_names(node)
            .into_iter()
            .filter(|n| is_state_import(n))
            .collect();
        let Some(interface) = state_imports.first().cloned() else {
            return Ok((node, StateDecision::None));
        };
        let decision = match approve(manifest, &self.options.profile) {
            Ok(approval) if approval.grant != Grant::ALL => {
                return Err(ComposeError::PartialGrant {
                    reference: reference.to_string(),
                    grant: approval.grant,
                });
            }
            Ok(approval) => {
                use sha2::Digest;
                let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
                crate::policy::bind_state_id(
                    &approval.id,
                    &digest,
                    digest_pinned,
                    &self.options.profile,
                )
                .map_err(|reason| ComposeError::StatePin {
                    reference: reference.to_string(),
                    reason,
                })?;
                match self.options.state {
                    StateWiring::Import => StateDecision::Imported,
                    StateWiring::Memory => StateDecision::Memory,
                }
            }
            Err(reason) if self.options.deny_unapproved => StateDecision::Denied(reason),
            Err(reason) => {
                return Err(ComposeError::StateNotAllowed {
                    reference: reference.to_string(),
                    interface,
                    reason: Box::new(reason),
                });
            }
        };
        let provider = match &decision {
            StateDecision::Memory => Some((&parts.state_memory, "the state-memory part")),
            StateDecision::Denied(_) => Some((&parts.state_deny, "the state-deny part")),
            _ => None,
        };
        if let Some((bytes, what)) = provider {
            // One provider per component: no two components share keys.
            let provider = self.instantiate("greentic:state-provider", bytes, what)?;
            self.scope_state(provider, &decision)?;
            for import in &state_imports {
                self.wire(provider, STATE_EXPORT, node, import)?;
            }
        }
        Ok((node, decision))
    }

    /// Gates a node's other capability imports with the shared table:
    /// telemetry goes to the stderr logger part (or stays an import of the
    /// app), approved secrets and HTTP imports stay imports of the app for
    /// its host to provide, unapproved ones refuse the composition (or, with
    /// `deny_unapproved`, get the refusing `capability-deny` part).
    fn add_capabilities(
        &mut self,
        node: NodeId,
        reference: &str,
        manifest: Option<&Manifest>,
        parts: &Parts,
    ) -> Result<Capabilities, ComposeError> {
        let mut wired = Capabilities::default();
        for import in self.import_names(node) {
            let Some(row) = capability_of(&import) else {
                continue;
            };
            match row.capability {
                Capability::State => {}
                Capability::Telemetry => match self.options.telemetry {
                    TelemetryWiring::Import => wired.imported.push(import),
                    TelemetryWiring::Stderr => {
                        let logger = match self.telemetry {
                            Some(logger) => logger,
                            None => {
                                let logger = self.instantiate(
                                    "greentic:telemetry-stderr",
                                    &parts.telemetry_stderr,
                                    "the telemetry-stderr part",
                                )?;
                                self.telemetry = Some(logger);
                                logger
                            }
                        };
                        self.wire(logger, TELEMETRY_EXPORT, node, &import)?;
                        wired.logs_to_stderr = true;
                    }
                },
                Capability::Secrets | Capability::Http => {
                    match approve_capability(row.capability, manifest, &self.options.profile) {
                        Ok(_) => wired.imported.push(import),
                        Err(_) if self.options.deny_unapproved => {
                            let deny = match self.capability_deny {
                                Some(deny) => deny,
                                None => {
                                    let deny = self.instantiate(
                                        "greentic:capability-deny",
                                        &parts.capability_deny,
                                        "the capability-deny part",
                                    )?;
                                    self.capability_deny = Some(deny);
                                    deny
                                }
                            };
                            // The part exports each interface under the name
                            // components import it by.
                            self.wire(deny, &import, node, &import)?;
                            wired.denied.push(import);
                        }
                        Err(reason) => {
                            return Err(ComposeError::CapabilityNotAllowed {
                                reference: reference.to_string(),
                                interface: import,
                                capability: row.capability.noun(),
                                reason: Box::new(reason),
                            });
                        }
                    }
                }
            }
        }
        Ok(wired)
    }

    /// Gates the runner's own state import (flow-level `state.get`/`state.set`):
    /// flows that use it and that the profile allows get the composition's
    /// state choice; flows that do not use it get the refusing provider, so the
    /// runner never adds a state import of its own.
    fn add_flow_state(
        &mut self,
        set: &crate::source::FlowSet<runner_core::FlowPlan>,
        runner: NodeId,
        parts: &Parts,
    ) -> Result<StateDecision, ComposeError> {
        let users: Vec<&str> = set
            .flows()
            .filter(|(_, _, plan)| {
                plan.nodes
                    .iter()
                    .any(|n| n.operation == "state.get" || n.operation == "state.set")
            })
            .map(|(_, _, plan)| plan.id.as_str())
            .collect();
        let mut decision = StateDecision::None;
        for flow in &users {
            match approve_flow(flow, &self.options.profile) {
                Ok(()) => {
                    decision = match self.options.state {
                        StateWiring::Import => StateDecision::Imported,
                        StateWiring::Memory => StateDecision::Memory,
                    }
                }
                Err(reason) if self.options.deny_unapproved => {
                    decision = StateDecision::Denied(reason);
                    break;
                }
                Err(reason) => {
                    return Err(ComposeError::StateNotAllowed {
                        reference: format!("flow:{flow}"),
                        interface: RUNNER_STATE_IMPORT.into(),
                        reason: Box::new(reason),
                    });
                }
            }
        }
        let provider = match &decision {
            StateDecision::Imported => None,
            StateDecision::Memory => Some((&parts.state_memory, "the state-memory part")),
            StateDecision::None | StateDecision::Denied(_) => {
                Some((&parts.state_deny, "the state-deny part"))
            }
        };
        if let Some((bytes, what)) = provider {
            let provider = self.instantiate("greentic:flow-state", bytes, what)?;
            self.scope_state(provider, &decision)?;
            self.wire(provider, STATE_EXPORT, runner, RUNNER_STATE_IMPORT)?;
        }
        Ok(decision)
    }

    /// Gives an in-memory state provider the run's scope to key entries by.
    fn scope_state(
        &mut self,
        provider: NodeId,
        decision: &StateDecision,
    ) -> Result<(), ComposeError> {
        if *decision != StateDecision::Memory {
            return Ok(());
        }
        let scope = self
            .run_scope
            .expect("the run-scope part is in before any provider");
        self.wire(scope, CURRENT_SCOPE, provider, CURRENT_SCOPE)
    }

    fn import_names(&self, instance: NodeId) -> Vec<String> {
        let package = self.graph[instance]
            .package()
            .expect("an instantiation has a package");
        let world = &self.graph.types()[self.graph[package].ty()];
        world.imports.keys().cloned().collect()
    }

    /// The composed component's imports, checked against the allow-list.
    fn checked_imports(
        &self,
        nodes: &[ComposedNode],
        flow_state: &StateDecision,
    ) -> Result<Vec<String>, ComposeError> {
        let state_imported = nodes.iter().any(|n| n.state == StateDecision::Imported)
            || *flow_state == StateDecision::Imported;
        let approved = |name: &str| nodes.iter().any(|n| n.imported.iter().any(|i| i == name));
        let mut names = Vec::new();
        for (name, kind, _) in self.graph.imports() {
            let allowed = name.starts_with("wasi:")
                || self.types_only(kind)
                || (state_imported && is_state_import(name))
                || approved(name);
            if !allowed {
                let from = self
                    .importers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, who)| who.clone());
                return Err(ComposeError::UnexpectedImport {
                    name: name.to_string(),
                    from,
                });
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// An instance import that carries only types needs nothing from a host.
    fn types_only(&self, kind: ItemKind) -> bool {
        match kind {
            ItemKind::Instance(id) => self.graph.types()[id]
                .exports
                .values()
                .all(|item| matches!(item, ItemKind::Type(_))),
            ItemKind::Type(_) => true,
            _ => false,
        }
    }
}

/// Whether the `exec-ctx` record a legacy `node` interface's `invoke` takes
/// first has an `i18n-id` field; `None` when there is no such `invoke`.
fn exec_ctx_has_i18n(
    types: &wac_graph::types::Types,
    interface: &wac_graph::types::Interface,
) -> Option<bool> {
    use wac_graph::types::{DefinedType, ValueType};
    let Some(ItemKind::Func(invoke)) = interface.exports.get("invoke") else {
        return None;
    };
    let mut ty = *types[*invoke].params.values().next()?;
    loop {
        let ValueType::Defined(id) = ty else {
            return None;
        };
        match &types[id] {
            DefinedType::Alias(inner) => ty = *inner,
            DefinedType::Record(record) => return Some(record.fields.contains_key("i18n-id")),
            _ => return None,
        }
    }
}
