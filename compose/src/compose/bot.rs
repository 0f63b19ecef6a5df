//! The composed bot's provider: instantiated beside the runner (not in a
//! node slot), gated like a node (state, secrets, HTTP from its manifest and
//! the profile), its approved secrets and HTTP served inside the app by the
//! `caps-wasi` part, its `schema-core-api` called by the `bot-front` part.

use std::path::Path;

use greentic_baked_doc::BotSettings;
use wac_graph::NodeId;

use super::abi::NodeAbi;
use super::component::ReadComponent;
use super::composer::{Capabilities, Composer};
use super::options::{BotOptions, ComposeError, ComposedProvider};
use super::parts::Parts;
use crate::policy::{Capability, CapabilityGrant, approve_capability};
use crate::source::{ComponentRef, ComponentResolver};

/// The provider in the graph and what the bot's parts are told about it.
pub(super) struct BotProvider {
    /// Its instance.
    pub(super) node: NodeId,
    /// What `caps-wasi` and `bot-front` read from the baked document.
    pub(super) settings: BotSettings,
    /// How it was wired.
    pub(super) composed: ComposedProvider,
}

impl Composer<'_> {
    /// Adds the bot's provider: resolved as a flow's component would be,
    /// checked to be a messaging provider, gated and wired.
    pub(super) fn add_provider(
        &mut self,
        flow_path: &Path,
        resolver: &ComponentResolver,
        bot: &BotOptions,
        parts: &Parts,
    ) -> Result<BotProvider, ComposeError> {
        let reference = bot.provider.as_str();
        let ReadComponent {
            path,
            bytes,
            manifest,
        } = ReadComponent::read(
            resolver,
            flow_path,
            ComponentRef {
                node: "(the bot's provider)",
                reference,
                component_id: None,
                digest: None,
            },
        )?;
        let (node, state) = self.add_node(
            "greentic:provider",
            reference,
            &bytes,
            manifest.as_ref(),
            false,
            parts,
        )?;
        match self.node_abi(node, reference) {
            Ok(NodeAbi::Provider) => {}
            Ok(other) => {
                return Err(ComposeError::NotAProvider {
                    reference: reference.to_string(),
                    detail: format!(
                        "it is a flow node (`{}`), not a messaging provider (`schema-core-api`)",
                        other.export()
                    ),
                });
            }
            Err(e) => {
                return Err(ComposeError::NotAProvider {
                    reference: reference.to_string(),
                    detail: e.to_string(),
                });
            }
        }
        let Capabilities { denied, .. } =
            self.add_capabilities(node, reference, manifest.as_ref(), parts, true)?;
        // What caps-wasi is told: the same grants host-shim gives the
        // provider per call (nothing when not approved: it is then wired to
        // the refusing part or the composition was refused above).
        let profile = &self.options.profile;
        let http_allow = match approve_capability(Capability::Http, manifest.as_ref(), profile) {
            Ok(CapabilityGrant::Http(hosts)) => hosts,
            _ => Vec::new(),
        };
        let secrets = match approve_capability(Capability::Secrets, manifest.as_ref(), profile) {
            Ok(CapabilityGrant::Secrets(keys)) => keys,
            _ => Vec::new(),
        };
        let settings = BotSettings {
            channel: bot.channel.name().to_string(),
            config_json: bot.config.to_string(),
            verify: bot.verify,
            http_allow: http_allow.clone(),
            http_timeout_ms: profile.http_timeout_ms,
            http_max_response: profile.http_max_response_bytes,
            secrets: secrets.clone(),
        };
        Ok(BotProvider {
            node,
            settings,
            composed: ComposedProvider {
                channel: bot.channel,
                path,
                http_allow,
                secrets,
                state,
                denied,
            },
        })
    }
}
