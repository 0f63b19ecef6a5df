//! Wiring one node component: its ABI adapter, its slot, its state and other
//! capability imports; the flows' own state.

use wac_graph::NodeId;
use wac_graph::types::ItemKind;

use super::abi::{NodeAbi, exec_ctx_has_i18n};
use super::composer::{Capabilities, Composer};
use super::names::{
    CURRENT_SCOPE, RUNNER_STATE_IMPORT, STATE_EXPORT, TELEMETRY_EXPORT, is_state_import,
};
use super::options::{ComposeError, StateDecision, StateWiring, TelemetryWiring};
use super::parts::{Adapters, Parts};
use crate::policy::{
    Capability, Grant, Manifest, approve, approve_capability, approve_flow, capability_of,
};

impl Composer<'_> {
    /// Instantiates a node component and gates its state import: approved
    /// components get their own in-memory provider or the composed component's
    /// import; others are refused, or get the refusing provider if asked.
    pub(super) fn add_node(
        &mut self,
        package: &str,
        reference: &str,
        bytes: &[u8],
        manifest: Option<&Manifest>,
        digest_pinned: bool,
        parts: &Parts,
    ) -> Result<(NodeId, StateDecision), ComposeError> {
        let node = self.instantiate(package, bytes, &format!("component `{reference}`"))?;
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

    /// Which node ABI the instance exports: `node@0.6.0` first, then
    /// `component-runtime@0.6.0`, then the legacy ones — for those, the record
    /// shape is read from the component's own `invoke` parameter.
    pub(super) fn node_abi(
        &self,
        instance: NodeId,
        reference: &str,
    ) -> Result<NodeAbi, ComposeError> {
        let package = self.graph[instance]
            .package()
            .expect("an instantiation has a package");
        let types = self.graph.types();
        let world = &types[self.graph[package].ty()];
        NodeAbi::negotiate(
            |export| world.exports.contains_key(export),
            |export| match world.exports.get(export) {
                Some(ItemKind::Instance(interface)) => exec_ctx_has_i18n(types, &types[*interface]),
                _ => None,
            },
        )
        .map_err(|mismatch| ComposeError::NoNodeExport {
            reference: reference.to_string(),
            detail: mismatch.to_string(),
        })
    }

    /// Puts the adapter `abi` needs in front of `node`; returns the instance
    /// that exports `node@0.6.0` (the node itself when no adapter is needed).
    pub(super) fn adapt(
        &mut self,
        node: NodeId,
        abi: NodeAbi,
        adapters: &Adapters,
    ) -> Result<NodeId, ComposeError> {
        let (bytes, what) = match abi {
            NodeAbi::Node06 => return Ok(node),
            NodeAbi::Provider => return Err(ComposeError::ProviderNode),
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

    /// Gates a node's other capability imports with the shared table:
    /// telemetry goes to the stderr logger part (or stays an import of the
    /// app), approved secrets and HTTP imports stay imports of the app for
    /// its host to provide (or, `inside`, go to the `caps-wasi` part, which
    /// serves them over WASI with the grants baked for the bot's provider),
    /// unapproved ones refuse the composition (or, with `deny_unapproved`,
    /// get the refusing `capability-deny` part).
    pub(super) fn add_capabilities(
        &mut self,
        node: NodeId,
        reference: &str,
        manifest: Option<&Manifest>,
        parts: &Parts,
        inside: bool,
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
                        Ok(_) if inside => {
                            let caps = match self.caps_wasi {
                                Some(caps) => caps,
                                None => {
                                    let caps = self.instantiate(
                                        "greentic:caps-wasi",
                                        &parts.caps_wasi,
                                        "the caps-wasi part",
                                    )?;
                                    self.caps_wasi = Some(caps);
                                    caps
                                }
                            };
                            // Exported under the names components import.
                            self.wire(caps, &import, node, &import)?;
                            wired.inside.push(import);
                        }
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
    pub(super) fn add_flow_state(
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
    pub(super) fn scope_state(
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
}
