//! What serve holds for the channels it takes webhooks of: their providers'
//! op flows (in a private directory removed with the server) and where seen
//! events are remembered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::catalog::Catalog;
use crate::messaging::{ChannelKind, Messaging, ProviderCalls};

/// What serve holds for messaging.
pub(super) struct MessagingHost {
    pub(super) messaging: Messaging,
    pub(super) providers: HashMap<ChannelKind, ProviderCalls>,
    /// Per-tenant (and per-team) app packs' flows.
    apps: HashMap<(String, Option<String>), Catalog>,
    /// Where the providers' op flows are written; removed with the server.
    dir: PathBuf,
}

impl Drop for MessagingHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MessagingHost {
    /// Writes the op flows of the configured channels; `None` without channels.
    pub(super) fn new(
        options: &super::ServeOptions,
        store: Arc<dyn greentic_state::StateStore>,
    ) -> anyhow::Result<Option<MessagingHost>> {
        if options.channels.is_empty() {
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("greentic-messaging-{}", std::process::id()));
        let mut providers = HashMap::new();
        for channel in &options.channels {
            if providers.contains_key(&channel.kind) {
                anyhow::bail!("--channel {} is given twice", channel.kind.name());
            }
            let unverified = options.unverified.contains(&channel.kind);
            if channel.kind == ChannelKind::Teams
                && options.bot_framework_keys.is_none()
                && !unverified
            {
                anyhow::bail!(
                    "--channel teams: Teams webhooks are verified with the Bot Framework's keys; give them with --bot-framework-jwks URL|FILE"
                );
            }
            if greentic_messaging_core::secret_key(channel.kind).is_none() && !unverified {
                anyhow::bail!(
                    "--channel {0}: this host cannot verify {0} webhooks yet; add --unverified-channel {0} only if something in front of it verifies them",
                    channel.kind.name()
                );
            }
            providers.insert(channel.kind, ProviderCalls::new(&dir, channel)?);
        }
        let mut apps = HashMap::new();
        for (tenant, team, root) in &options.tenant_apps {
            apps.insert(
                (tenant.clone(), team.clone()),
                Catalog::new(root, options.rescan_every)?,
            );
        }
        Ok(Some(MessagingHost {
            messaging: Messaging::new(store),
            providers,
            apps,
            dir,
        }))
    }
}

impl MessagingHost {
    /// The flows a message of `tenant` (and `team`) runs from: its team's app
    /// pack, else its own, else none (the served target's), as greentic-start
    /// looks them up.
    pub(super) fn app_for(&self, tenant: &str, team: Option<&str>) -> Option<&Catalog> {
        team.and_then(|team| self.apps.get(&(tenant.to_string(), Some(team.to_string()))))
            .or_else(|| self.apps.get(&(tenant.to_string(), None)))
    }
}
