//! One webhook through `greentic_messaging_core::ingest` on a [`Host`]:
//! provider ops are one-node flows ([`ProviderCalls`]), each event a turn of
//! a session named after its conversation, seen events remembered in the
//! state backend (a channel retrying a delivery is answered, not run again).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use greentic_messaging_core::{self as core, BadAnswer, ChannelMessageEnvelope};
use greentic_state::{StateKey, StateStore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use core::{Answer, Report, Webhook};

use super::calls::{Op, ProviderCalls};
use crate::caps::state::scope::RunTenant;
use crate::host::{Failure, Host, RunSettings, SessionSettings, Turn};

/// How long an event id is remembered.
pub const SEEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The messaging host: where seen events are remembered.
pub struct Messaging {
    store: Arc<dyn StateStore>,
}

impl Messaging {
    /// Remembers seen events in `store` (the server's state backend).
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Messaging { store }
    }

    /// Runs `webhook` through `provider` and the flow at `app`, as the
    /// tenant of `settings`, conversations kept with `session`'s TTL and wait.
    pub fn ingest(
        &self,
        host: &mut Host,
        provider: &ProviderCalls,
        app: &Path,
        webhook: &Webhook,
        settings: &RunSettings,
        session: &SessionSettings,
    ) -> Result<(Answer, Report), Failure> {
        let scope = &settings.scope;
        let tenant = RunTenant::new(
            &scope.env,
            &scope.tenant,
            scope.team.as_deref(),
            scope.user.as_deref(),
        )
        .map_err(Failure::Invalid)?;
        let ctx = tenant.ctx().clone();
        let mut turns = Turns {
            host,
            provider,
            app,
            settings,
            session,
            store: &self.store,
            tenant,
        };
        core::ingest(&mut turns, provider.kind, webhook, &ctx)
    }
}

impl From<BadAnswer> for Failure {
    fn from(e: BadAnswer) -> Self {
        Failure::Internal(e.into())
    }
}

/// One webhook's turns on this host.
struct Turns<'a> {
    host: &'a mut Host,
    provider: &'a ProviderCalls,
    app: &'a Path,
    settings: &'a RunSettings,
    session: &'a SessionSettings,
    store: &'a Arc<dyn StateStore>,
    tenant: RunTenant,
}

impl core::Host for Turns<'_> {
    type Failure = Failure;

    fn call(&mut self, op: Op, input: Value) -> Result<Value, Failure> {
        self.provider.call(self.host, op, &input, self.settings)
    }

    fn claim(&mut self, key: &str) -> Result<bool, Failure> {
        let ttl = SEEN_TTL.as_secs() as u32;
        self.store
            .set_json_if_absent(
                self.tenant.ctx(),
                &self.seen_namespace(),
                &self.seen_key(key),
                &json!({"event": key}),
                Some(ttl),
            )
            .map_err(|e| Failure::Internal(anyhow::anyhow!("remembering event `{key}`: {e}")))
    }

    fn run(&mut self, event: &ChannelMessageEnvelope, input: Value) -> Result<Value, Failure> {
        let mut settings = self.settings.clone();
        settings.session = Some(SessionSettings {
            id: session_id(self.provider.kind.name(), &event.session_id),
            ..self.session.clone()
        });
        let turn = self
            .host
            .run_file(self.app, &input.to_string(), &settings, 1)
            .pop()
            .unwrap_or_else(|| {
                Err(Failure::Internal(anyhow::anyhow!(
                    "the run produced nothing"
                )))
            })?;
        let (Turn::Completed(output) | Turn::Waiting { output, .. }) = turn;
        Ok(serde_json::from_str(&output).unwrap_or(Value::String(output)))
    }

    fn run_failed(&mut self, key: &str, failure: &Failure) {
        // A host-side failure may not happen again: let the channel's retry
        // run the event; a flow's own failure would.
        if !matches!(failure, Failure::Internal(_) | Failure::RunTimeout(_)) {
            return;
        }
        if let Err(e) = self.store.del(
            self.tenant.ctx(),
            &self.seen_namespace(),
            &self.seen_key(key),
        ) {
            tracing::warn!("forgetting a seen event: {e}");
        }
    }

    fn warn(&self, event: &str, message: &str) {
        tracing::warn!(channel = self.provider.kind.name(), event, "{message}");
    }
}

impl Turns<'_> {
    fn seen_namespace(&self) -> String {
        self.tenant.namespace("runner+messaging-seen")
    }

    /// The state key of an event of this channel (hashed: fixed length).
    fn seen_key(&self, key: &str) -> StateKey {
        let digest = hex::encode(Sha256::digest(format!(
            "{}:{key}",
            self.provider.kind.name()
        )));
        StateKey::from(&digest[..40])
    }
}

/// This runner's session id for a channel conversation: `<channel>-<id>`,
/// hashed when the channel's id has other characters than session ids allow.
fn session_id(channel: &str, conversation: &str) -> String {
    let plain = format!("{channel}-{conversation}");
    if crate::sessions::check_id(&plain).is_ok() {
        return plain;
    }
    let digest = hex::encode(Sha256::digest(conversation.as_bytes()));
    format!("{channel}-{}", &digest[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_conversations_map_onto_session_ids() {
        assert_eq!(session_id("telegram", "-100123"), "telegram--100123");
        let odd = session_id("slack", "C1/thread 1");
        assert!(
            odd.starts_with("slack-") && odd.len() == "slack-".len() + 32,
            "{odd}"
        );
        assert!(crate::sessions::check_id(&odd).is_ok());
        assert_ne!(odd, session_id("slack", "C1/thread 2"));
    }
}
