//! One webhook request through a channel's provider, the app flow and back:
//! `ingest_http` reads it into the channel's answer and its events; each
//! event not seen before (a channel retrying a delivery is answered, not run
//! again) runs the app flow as a turn of its conversation; what the turn
//! says goes back through `render_plan` → `encode` → `send_payload`.
//! Webhook verification happens before this (see [`super::verify`]).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use greentic_state::{StateKey, StateStore};
use greentic_types::ChannelMessageEnvelope;
use greentic_types::messaging::universal_dto::HttpOutV1;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::calls::{Op, ProviderCalls};
use super::replies::{Reply, replies};
use crate::caps::state::scope::RunTenant;
use crate::host::{Failure, Host, RunSettings, SessionSettings, Turn};

/// A webhook request as the channel sent it (already verified).
#[derive(Debug, Clone)]
pub struct Webhook {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Raw query, if any.
    pub query: Option<String>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What to answer the channel.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Headers the provider set.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What happened to one webhook, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events that ran the app flow.
    pub ran: usize,
    /// Events seen before (a channel's retry): not run again.
    pub duplicates: usize,
    /// Events from bots (the channel echoing the bot): not run.
    pub from_bots: usize,
    /// Runs of the app flow that failed.
    pub runs_failed: usize,
    /// Replies delivered.
    pub sent: usize,
    /// Replies the channel did not take, after retries.
    pub send_failed: usize,
    /// Output the replies could not be read from.
    pub unreadable: usize,
}

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
        app: &std::path::Path,
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
        let request = json!({
            "method": webhook.method,
            "path": webhook.path,
            "query": webhook.query,
            "headers": webhook.headers.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "body_b64": B64.encode(&webhook.body),
        });
        let answer = provider.call(host, Op::IngestHttp, &request, settings)?;
        let out: HttpOutV1 = serde_json::from_value(answer).map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "the provider's ingest_http answer is not an HttpOutV1: {e}"
            ))
        })?;
        let mut report = Report::default();
        for mut event in out.events {
            if event.metadata.get("is_bot_message").map(String::as_str) == Some("true") {
                report.from_bots += 1;
                continue;
            }
            // The route's tenant, never the one a provider wrote.
            event.tenant = tenant.ctx().clone();
            let seen = SeenEvent::claim(&self.store, &tenant, provider, &event.id)?;
            let Some(seen) = seen else {
                report.duplicates += 1;
                continue;
            };
            let mut turn_settings = settings.clone();
            turn_settings.session = Some(SessionSettings {
                id: session_id(provider.kind.name(), &event.session_id),
                ..session.clone()
            });
            let input = json!({
                "input": event,
                "tenant": scope.tenant,
                "team": scope.team,
                "correlation_id": event.correlation_id.clone().unwrap_or_else(|| event.id.clone()),
            });
            let turn = host
                .run_file(app, &input.to_string(), &turn_settings, 1)
                .pop()
                .unwrap_or_else(|| {
                    Err(Failure::Internal(anyhow::anyhow!(
                        "the run produced nothing"
                    )))
                });
            let output = match turn {
                Ok(Turn::Completed(text)) | Ok(Turn::Waiting { output: text, .. }) => text,
                Err(failure) => {
                    report.runs_failed += 1;
                    tracing::warn!(channel = provider.kind.name(), event = %event.id, "the app flow failed: {failure:#}");
                    // A host-side failure may not happen again: let the
                    // channel's retry run the event; a flow's own failure would.
                    if matches!(failure, Failure::Internal(_) | Failure::RunTimeout(_)) {
                        seen.forget();
                    }
                    continue;
                }
            };
            report.ran += 1;
            let output: Value = serde_json::from_str(&output).unwrap_or(Value::String(output));
            let mut skipped = Vec::new();
            for (n, reply) in replies(&output, &mut skipped).into_iter().enumerate() {
                let message = reply_envelope(&event, n, reply);
                match send(host, provider, &message, settings) {
                    Ok(()) => report.sent += 1,
                    Err(failure) => {
                        report.send_failed += 1;
                        tracing::warn!(channel = provider.kind.name(), event = %event.id, "a reply was not delivered: {failure:#}");
                    }
                }
            }
            if !skipped.is_empty() {
                report.unreadable += skipped.len();
                let skipped = Value::Array(skipped).to_string();
                tracing::warn!(channel = provider.kind.name(), event = %event.id, "no message in the app flow's output: {skipped}");
            }
        }
        Ok((
            Answer {
                status: out.status,
                headers: out.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body: B64.decode(out.body_b64.as_bytes()).unwrap_or_default(),
            },
            report,
        ))
    }
}

/// The message a reply sends: to where the event came from.
fn reply_envelope(
    event: &ChannelMessageEnvelope,
    n: usize,
    reply: Reply,
) -> ChannelMessageEnvelope {
    let mut message = event.clone();
    message.id = format!("{}:reply:{n}", event.id);
    message.from = None;
    message.attachments.clear();
    message.metadata.clear();
    match reply {
        Reply::Text(text) => message.text = Some(text),
        Reply::Card { card, text } => {
            message.text = text;
            message
                .metadata
                .insert("adaptive_card".into(), card.to_string());
        }
    }
    message
}

/// `render_plan` → `encode` → `send_payload` (retried while retryable), in
/// the shapes greentic-start sends (its `messaging_egress.rs`).
fn send(
    host: &mut Host,
    provider: &ProviderCalls,
    message: &ChannelMessageEnvelope,
    settings: &RunSettings,
) -> Result<(), Failure> {
    let plan_in = json!({"v": 1, "message": message});
    let plan = provider.call(host, Op::RenderPlan, &plan_in, settings)?;
    let encode_in = json!({"v": 1, "message": message, "plan": plan});
    let encoded = provider.call(host, Op::Encode, &encode_in, settings)?;
    let send_in = json!({
        "v": 1,
        "provider_type": provider.kind.provider_type(),
        "payload": encoded["payload"],
        "tenant": {
            "tenant": settings.scope.tenant,
            "team": settings.scope.team,
            "user": null,
            "correlation_id": message.correlation_id,
        },
        "tenant_id": settings.scope.tenant,
        "reply_scope": message.reply_scope,
    });
    let sent = provider.call(host, Op::SendPayload, &send_in, settings)?;
    if sent.get("ok") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err(Failure::Internal(anyhow::anyhow!(
            "send_payload answered {sent}"
        )))
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

/// An event id claimed in the state backend: the first claim runs it.
struct SeenEvent<'a> {
    store: &'a Arc<dyn StateStore>,
    tenant: &'a RunTenant,
    namespace: String,
    key: StateKey,
}

impl<'a> SeenEvent<'a> {
    /// Claims `id` of `provider`'s channel for `tenant`; `None`: seen before.
    fn claim(
        store: &'a Arc<dyn StateStore>,
        tenant: &'a RunTenant,
        provider: &ProviderCalls,
        id: &str,
    ) -> Result<Option<SeenEvent<'a>>, Failure> {
        let namespace = tenant.namespace("runner+messaging-seen");
        let digest = hex::encode(Sha256::digest(format!("{}:{id}", provider.kind.name())));
        let key = StateKey::from(&digest[..40]);
        let ttl = SEEN_TTL.as_secs() as u32;
        let claimed = store
            .set_json_if_absent(
                tenant.ctx(),
                &namespace,
                &key,
                &json!({"id": id}),
                Some(ttl),
            )
            .map_err(|e| Failure::Internal(anyhow::anyhow!("remembering event `{id}`: {e}")))?;
        Ok(claimed.then_some(SeenEvent {
            store,
            tenant,
            namespace,
            key,
        }))
    }

    /// Forgets the claim, so a redelivery runs the event.
    fn forget(self) {
        if let Err(e) = self
            .store
            .del(self.tenant.ctx(), &self.namespace, &self.key)
        {
            tracing::warn!("forgetting a seen event: {e}");
        }
    }
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
