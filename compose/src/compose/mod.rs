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
//!   with a bot (`--provider`): bot-front is the front part, and
//!   provider ──(schema-core-api)──▶ bot-front
//!   caps-wasi ──(http-client, secrets-store over WASI)──▶ provider
//!   baked-flows ──▶ caps-wasi (the provider's grants)
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

mod abi;
mod bot;
mod component;
mod composer;
mod front;
mod names;
mod options;
mod parts;
mod wiring;

pub use abi::{AbiMismatch, NodeAbi};
pub use names::{
    APP_EXPORT, NODE_EXPORT, PROVIDER_EXPORT, RUN_EXPORT, RUN_SCOPE_IMPORT, RUNTIME_EXPORT,
    is_state_import, slot_import,
};
pub use options::{
    BotOptions, ComposeError, ComposeOptions, ComposedNode, ComposedProvider, Composition, PreInit,
    StateDecision, StateWiring, TelemetryWiring,
};
pub use parts::{Adapters, Parts};

use component::ReadComponent;
use composer::{Capabilities, Composer};
use options::graph_error;

use std::path::Path;

use runner_core::Flow;
use wac_graph::EncodeOptions;

use crate::source::{ComponentRef, ComponentResolver, distinct_components, load_flow_set};

/// The flow at `flow_path` and the flows it reaches, planned natively.
fn planned_set(flow_path: &Path) -> Result<crate::FlowSet<runner_core::FlowPlan>, ComposeError> {
    load_flow_set(
        flow_path,
        None,
        |source| {
            Flow::load(source)
                .map(|f| f.plan())
                .map_err(ComposeError::from)
        },
        |plan| plan.calls.clone(),
        |plan| plan.id.clone(),
    )
}

/// Every distinct component reference the flow at `flow_path` (and the
/// flows it reaches) uses, with the flow file and node first using it.
pub fn component_references(
    flow_path: &Path,
) -> Result<Vec<(std::path::PathBuf, runner_core::NodePlan)>, ComposeError> {
    let set = planned_set(flow_path)?;
    Ok(distinct_components(
        set.flows()
            .flat_map(|(path, _, plan)| plan.nodes.iter().map(move |n| (path.as_path(), n))),
        |n| n.component.as_str(),
    )
    .into_iter()
    .map(|(flow, node)| (flow.to_path_buf(), node.clone()))
    .collect())
}

/// Composes the flow at `flow_path` with its components (found by `resolver`)
/// and `parts`, gating state per `options`.
pub fn compose(
    flow_path: &Path,
    resolver: &ComponentResolver,
    parts: &Parts,
    options: &ComposeOptions,
) -> Result<Composition, ComposeError> {
    let set = planned_set(flow_path)?;
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
    let runner_bytes = match &options.preinit {
        // The flows as the front part hands them to the runner (main, then library).
        Some(preinit) => {
            let flows: Vec<&runner_core::FlowSource> = std::iter::once(&set.main.1)
                .chain(set.library.iter().map(|(_, source, _)| source))
                .collect();
            std::borrow::Cow::Owned(preinit.preinit(&parts.runner, &flows).map_err(|source| {
                ComposeError::PreInit {
                    flow: flow_path.display().to_string(),
                    source,
                }
            })?)
        }
        None => std::borrow::Cow::Borrowed(&parts.runner),
    };
    let mut composer = Composer::new(options);
    let runner = composer.instantiate("greentic:runner", &runner_bytes, "the runner component")?;
    let scope =
        composer.instantiate("greentic:run-scope", &parts.run_scope, "the run-scope part")?;
    composer.wire(scope, RUN_SCOPE_IMPORT, runner, RUN_SCOPE_IMPORT)?;
    composer.run_scope = Some(scope);

    let mut nodes = Vec::new();
    for (slot, (flow_file, node)) in components.iter().enumerate() {
        let reference = &node.component;
        let ReadComponent {
            path,
            bytes,
            manifest,
        } = ReadComponent::read(
            resolver,
            flow_file,
            ComponentRef {
                node: &node.id,
                reference,
                component_id: node.component_id.as_deref(),
                digest: node.digest.as_deref(),
            },
        )?;
        let (instance, state) = composer.add_node(
            &format!("flow:node-{slot}"),
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
            inside: _,
        } = composer.add_capabilities(instance, reference, manifest.as_ref(), parts, false)?;
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
    let provider = match &options.bot {
        Some(_) if options.http.is_none() => return Err(ComposeError::BotWithoutHttp),
        Some(bot) => Some(composer.add_provider(flow_path, resolver, bot, parts)?),
        None => None,
    };
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
    composer.add_front(runner, &set, parts, provider.as_ref())?;

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
        provider: provider.map(|p| p.composed),
    })
}
