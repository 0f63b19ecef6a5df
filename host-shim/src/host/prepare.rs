//! Making a flow ready to run: planning it and the flows it calls, resolving,
//! compiling and linking their components, gating capabilities.

use super::options::RunSettings;
use super::outcome::{CheckReport, Failure};
use super::ready::{FileStamps, ReadyFlow, Stamp};
use super::setup::Host;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use compose::{ComponentRef, FlowSet};
use wasmtime::Engine;

use crate::caps::http::HttpClientConfig;
use crate::caps::state::StateCtx;
use crate::limits::RunDeadline;
use crate::nodes::{Granted, NodeComponent, NodeSlot, RunScope, node_linker};
use crate::runner::{
    FlowPlan, FlowSource, NodePlan, RunnerComponent, RunnerInstance, SLOT_COUNT, SlotBinding,
};
use compose::policy::Grant;
use compose::policy::{
    Capability, CapabilityGrant, Manifest, approve_capability, approve_flow, capability_of,
};

/// A flow set planned by the runner, with slots ready to bind.
pub(super) struct Prepared {
    pub(super) instance: RunnerInstance,
    /// What the run is made of (shared with the host's cache: a run clones
    /// only what its request owns).
    pub(super) ready: Arc<ReadyFlow>,
}

/// A manifest's `world` that names an ABI the binary does not export: the
/// binary wins; the mismatch is worth a warning.
pub(super) fn warn_manifest_mismatch(
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
pub(super) fn assets_dir(flow: &Path) -> Option<PathBuf> {
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

/// The runner's WIT form of a flow source.
pub(super) fn to_wit_source(source: &runner_core::FlowSource) -> FlowSource {
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
pub(super) fn plan_set(
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

impl Host {
    /// The flow at `path` ready to run for `settings`: made ready (or taken
    /// as made for the same files), its slots filled with fresh node slots
    /// for this run, on the host's spare runner instance or a new one.
    pub(super) fn prepare(
        &mut self,
        path: &Path,
        settings: &RunSettings,
    ) -> Result<Prepared, Failure> {
        let deadline = RunDeadline::after(settings.time_limit);
        let ready = match self.ready.current(path) {
            Some(ready) => ready,
            None => {
                let ready = Arc::new(self.make_ready(path, deadline)?);
                self.ready.keep(path, ready.clone());
                ready
            }
        };
        let scope = self.scope(settings, ready.assets.clone(), deadline)?;
        let mut instance = match self.spare_runner.take() {
            Some(instance) => instance,
            None => self
                .runner
                .instantiate(Vec::new(), StateCtx::none())
                .map_err(|e| Failure::Internal(e.into()))?,
        };
        instance.set_deadline(deadline);
        instance.set_slots(
            ready
                .components
                .iter()
                .map(|component| Some(NodeSlot::new(component.clone(), scope.clone())))
                .collect(),
        );
        let grant = if ready.uses_flow_state {
            Grant::ALL
        } else {
            Grant::default()
        };
        instance.set_state(StateCtx::for_flows(scope.store, scope.tenant, grant));
        Ok(Prepared { instance, ready })
    }

    /// Plans the flow at `path` and the flows it calls (on the spare runner
    /// instance, kept for the run), resolves and links every component they
    /// use into slots, and gates the flows' own state; records every file it
    /// read.
    fn make_ready(&mut self, path: &Path, deadline: RunDeadline) -> Result<ReadyFlow, Failure> {
        let spare = self.spare_runner.take();
        let (instance, set) = plan_set(
            &self.runner,
            spare,
            path,
            self.strict_templating,
            StateCtx::none(),
            deadline,
        )?;
        self.spare_runner = Some(instance);
        let mut files = FileStamps::default();
        for (flow_file, _, _) in set.flows() {
            files.add(flow_file);
            files.add(&compose::sidecar_path(flow_file));
            files.add(&compose::summary_sidecar_path(flow_file));
        }
        if !set.missing.is_empty() {
            // A called flow's file may appear: the directory changes then.
            files.add(path.parent().unwrap_or(Path::new(".")));
        }
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
        // A component file rewritten since it was linked is linked anew.
        let stamps: Vec<Stamp> = components
            .iter()
            .map(|(_, _, resolved)| Stamp::of(&resolved.path))
            .collect();
        for ((_, _, resolved), stamp) in components.iter().zip(&stamps) {
            if self
                .nodes
                .get(&resolved.path)
                .is_some_and(|(linked, _)| linked != stamp)
            {
                self.nodes.remove(&resolved.path);
            }
        }
        let mut compiled = self.compile_new(components.iter().map(|(_, _, r)| &r.path));
        let mut linked = Vec::with_capacity(components.len());
        let mut bindings = Vec::with_capacity(components.len());
        for (slot, ((flow_file, node, resolved), stamp)) in
            components.iter().zip(stamps).enumerate()
        {
            files.add_stamped(&resolved.path, stamp.clone());
            if resolved.stub {
                report.stubbed.push(format!(
                    "{}: node `{}`: component `{}`",
                    flow_file.display(),
                    node.id,
                    node.component
                ));
            }
            let component = match self.nodes.get(&resolved.path) {
                Some((_, c)) => c.clone(),
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
                    self.nodes
                        .insert(resolved.path.clone(), (stamp, loaded.clone()));
                    loaded
                }
            };
            linked.push(component);
            bindings.push(SlotBinding {
                component: node.component.clone(),
                slot: slot as u32,
            });
        }
        let uses_flow_state = self.flows_use_state(&set)?;
        let wit = |source: &runner_core::FlowSource| to_wit_source(source);
        Ok(ReadyFlow {
            files,
            flow: wit(&set.main.1),
            library: set.library.iter().map(|(_, s, _)| wit(s)).collect(),
            bindings,
            components: linked,
            uses_flow_state,
            assets: assets_dir(path),
            report,
        })
    }

    /// Whether the flows' own `state.get` / `state.set` nodes are used:
    /// every flow of the set that uses them must be allowed by the profile
    /// (`flow:<id>`), or the run is refused before any node runs.
    pub(super) fn flows_use_state(&self, set: &FlowSet<FlowPlan>) -> Result<bool, Failure> {
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
        Ok(used)
    }

    /// The distinct components of a flow set (keyed by reference, in slot
    /// order) with the flow file and first node using each, resolved to files.
    pub(super) fn resolved_components<'s>(
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
    pub(super) fn declared_secrets(&self, set: &FlowSet<FlowPlan>) -> Result<Vec<String>, Failure> {
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
    pub(super) fn http_client(&self) -> HttpClientConfig {
        HttpClientConfig {
            timeout: std::time::Duration::from_millis(self.profile.http_timeout_ms),
            max_response_bytes: self.profile.http_max_response_bytes,
            roots: self.http_roots.clone(),
            connect_to: self.http_connect_to.clone(),
        }
    }

    /// What the node instances of one run share.
    pub(super) fn scope(
        &self,
        settings: &RunSettings,
        assets: Option<PathBuf>,
        deadline: RunDeadline,
    ) -> Result<RunScope, Failure> {
        let tenant = settings.run_tenant()?;
        Ok(RunScope {
            store: self.state_store.clone(),
            tenant,
            progress: settings.progress,
            observer: settings.observer.clone(),
            secrets: self.secrets.clone(),
            http: self.http_client(),
            assets,
            deadline,
        })
    }

    /// Loads the components of `paths` this host has not linked yet, at once
    /// on threads of their own: on a first run, each may need compiling, and
    /// a compiler does not keep every core busy on one small component.
    pub(super) fn compile_new<'p>(
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
    pub(super) fn link(
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

    /// Checks that the binary at `path` may use the state of `id` (its
    /// manifest's claim): what the operator pinned, then the host's bindings.
    pub(super) fn bind_state_id(
        &self,
        id: &str,
        path: &Path,
        digest_pinned: bool,
    ) -> anyhow::Result<()> {
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
