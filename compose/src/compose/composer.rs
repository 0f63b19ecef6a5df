//! The graph being built: instantiating parts, wiring them, checking what is
//! left as imports.

use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, NodeId};

use super::names::is_state_import;
use super::options::{ComposeError, ComposeOptions, ComposedNode, StateDecision, graph_error};

/// Owns the graph while a composition is built.
pub(super) struct Composer<'a> {
    pub(super) graph: CompositionGraph,
    pub(super) options: &'a ComposeOptions,
    pub(super) packages: usize,
    /// (import name, who imports it), for messages about unexpected imports.
    pub(super) importers: Vec<(String, String)>,
    /// The in-composition stderr logger, once a component needs it.
    pub(super) telemetry: Option<NodeId>,
    /// The refusing secrets/HTTP provider, once a component needs it.
    pub(super) capability_deny: Option<NodeId>,
    /// The run-scope part the runner tells its runs' scope to.
    pub(super) run_scope: Option<NodeId>,
    /// The part serving the bot provider's secrets and HTTP over WASI, once needed.
    pub(super) caps_wasi: Option<NodeId>,
}

/// How a node's capability imports (other than state) were wired.
#[derive(Default)]
pub(super) struct Capabilities {
    pub(super) imported: Vec<String>,
    pub(super) logs_to_stderr: bool,
    pub(super) denied: Vec<String>,
    /// Served inside by the `caps-wasi` part.
    pub(super) inside: Vec<String>,
}

impl<'a> Composer<'a> {
    pub(super) fn new(options: &'a ComposeOptions) -> Self {
        Composer {
            graph: CompositionGraph::new(),
            options,
            packages: 0,
            importers: Vec::new(),
            telemetry: None,
            capability_deny: None,
            run_scope: None,
            caps_wasi: None,
        }
    }
}

impl Composer<'_> {
    /// Registers `bytes` as a new package and instantiates it.
    pub(super) fn instantiate(
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

    /// Plugs `export` of instance `from` into import `import` of instance `to`.
    pub(super) fn wire(
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

    pub(super) fn import_names(&self, instance: NodeId) -> Vec<String> {
        let package = self.graph[instance]
            .package()
            .expect("an instantiation has a package");
        let world = &self.graph.types()[self.graph[package].ty()];
        world.imports.keys().cloned().collect()
    }

    /// The composed component's imports, checked against the allow-list.
    pub(super) fn checked_imports(
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
    pub(super) fn types_only(&self, kind: ItemKind) -> bool {
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
