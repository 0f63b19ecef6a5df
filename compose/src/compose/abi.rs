//! Which node ABI a component exports, as composition sees it.

use wac_graph::types::ItemKind;

use super::names::{NODE_EXPORT, RUNTIME_EXPORT};

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
