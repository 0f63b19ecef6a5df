//! The node ABIs a component may export and how one is chosen — one
//! vocabulary for the native host (over Wasmtime's component types) and for
//! composition (over wac's): each side only answers "is this exported?" and
//! "does this legacy `invoke` take an `exec-ctx` with `i18n-id`?".

use wac_graph::types::ItemKind;

use super::names::{NODE_EXPORT, PROVIDER_EXPORT, RUNTIME_EXPORT};

/// The legacy JSON ABI versions, newest first.
const LEGACY_VERSIONS: [&str; 2] = ["0.5.0", "0.4.0"];

/// The node ABI a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAbi {
    /// `greentic:component/node@0.6.0`: a runner slot as it is.
    Node06,
    /// `greentic:component/component-runtime@0.6.0` (composed through `adapt-runtime`).
    Runtime,
    /// `greentic:provider-schema-core/schema-core-api@1.0.0`: a messaging
    /// provider, each op `invoke(op, input-json)` (not composable yet).
    Provider,
    /// A legacy JSON ABI, `node@0.5.0` or `node@0.4.0` (composed through `adapt-v0x`).
    Legacy {
        /// `0.4.0` or `0.5.0`.
        version: &'static str,
        /// The `exec-ctx` record has `i18n-id`.
        i18n: bool,
    },
}

/// Why no node ABI could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbiMismatch {
    /// The component exports none of the node interfaces.
    NoNodeExport,
    /// Its legacy export (named) has no `invoke(exec-ctx, …)` to read.
    NoLegacyInvoke(String),
}

impl std::fmt::Display for AbiMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbiMismatch::NoNodeExport => {
                let names: Vec<String> = NodeAbi::candidates()
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect();
                write!(f, "it exports none of {}", names.join(", "))
            }
            AbiMismatch::NoLegacyInvoke(export) => {
                write!(f, "its `{export}` has no `invoke(exec-ctx, …)`")
            }
        }
    }
}

impl NodeAbi {
    /// Chooses the ABI: `node@0.6.0` first, then `component-runtime@0.6.0`,
    /// then `schema-core-api@1.0.0`, then the legacy versions newest first. `exports` tells whether the
    /// component exports an interface; `legacy_i18n` reads, for a legacy
    /// export, whether its `invoke`'s `exec-ctx` has `i18n-id` (`None`: there
    /// is no such `invoke`).
    pub fn negotiate(
        exports: impl Fn(&str) -> bool,
        legacy_i18n: impl FnOnce(&str) -> Option<bool>,
    ) -> Result<NodeAbi, AbiMismatch> {
        if exports(NODE_EXPORT) {
            return Ok(NodeAbi::Node06);
        }
        if exports(RUNTIME_EXPORT) {
            return Ok(NodeAbi::Runtime);
        }
        if exports(PROVIDER_EXPORT) {
            return Ok(NodeAbi::Provider);
        }
        let Some(version) = LEGACY_VERSIONS
            .into_iter()
            .find(|v| exports(&legacy_export(v)))
        else {
            return Err(AbiMismatch::NoNodeExport);
        };
        let export = legacy_export(version);
        match legacy_i18n(&export) {
            Some(i18n) => Ok(NodeAbi::Legacy { version, i18n }),
            None => Err(AbiMismatch::NoLegacyInvoke(export)),
        }
    }

    /// The interface the component exports.
    pub fn export(self) -> String {
        match self {
            NodeAbi::Node06 => NODE_EXPORT.to_string(),
            NodeAbi::Runtime => RUNTIME_EXPORT.to_string(),
            NodeAbi::Provider => PROVIDER_EXPORT.to_string(),
            NodeAbi::Legacy { version, .. } => legacy_export(version),
        }
    }

    /// Every interface a node may export, in negotiation order.
    pub fn candidates() -> Vec<String> {
        [NODE_EXPORT, RUNTIME_EXPORT, PROVIDER_EXPORT]
            .map(str::to_string)
            .into_iter()
            .chain(LEGACY_VERSIONS.iter().map(|v| legacy_export(v)))
            .collect()
    }
}

fn legacy_export(version: &str) -> String {
    format!("greentic:component/node@{version}")
}

/// Whether the `exec-ctx` record a legacy `node` interface's `invoke` takes
/// first has an `i18n-id` field; `None` when there is no such `invoke`.
pub(super) fn exec_ctx_has_i18n(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_abi_a_component_exports_wins() {
        let only = |names: &'static [&'static str]| move |e: &str| names.contains(&e);
        let both = only(&[
            "greentic:component/node@0.4.0",
            "greentic:component/node@0.6.0",
        ]);
        assert_eq!(NodeAbi::negotiate(both, |_| None), Ok(NodeAbi::Node06));
        let runtime = only(&["greentic:component/component-runtime@0.6.0"]);
        assert_eq!(NodeAbi::negotiate(runtime, |_| None), Ok(NodeAbi::Runtime));
        let legacy = only(&[
            "greentic:component/node@0.4.0",
            "greentic:component/node@0.5.0",
        ]);
        assert_eq!(
            NodeAbi::negotiate(legacy, |e| Some(e.ends_with("0.5.0"))),
            Ok(NodeAbi::Legacy {
                version: "0.5.0",
                i18n: true
            })
        );
    }

    #[test]
    fn no_node_export_or_no_legacy_invoke_is_a_mismatch() {
        assert_eq!(
            NodeAbi::negotiate(|_| false, |_| Some(true)),
            Err(AbiMismatch::NoNodeExport)
        );
        let legacy = |e: &str| e == "greentic:component/node@0.4.0";
        assert_eq!(
            NodeAbi::negotiate(legacy, |_| None),
            Err(AbiMismatch::NoLegacyInvoke(
                "greentic:component/node@0.4.0".into()
            ))
        );
        assert!(
            AbiMismatch::NoNodeExport
                .to_string()
                .contains("greentic:component/component-runtime@0.6.0")
        );
    }
}
