//! One webhook request through a channel's provider, the app flow and back,
//! in the shapes greentic-start uses (its `ingress_dispatch.rs`,
//! `messaging_app.rs`, `messaging_egress.rs`): `ingest_http` reads the
//! request into the channel's answer and its events; each event not from a
//! bot and not seen before runs the app flow as a turn of its conversation;
//! what the turn says goes back through `render_plan` → `encode` →
//! `send_payload`. Events are told apart by the delivery (a hash of the
//! webhook body, which a channel's retry repeats byte for byte) and their
//! place in it, not by the envelope id a provider writes: greentic's own
//! Telegram provider gives every message the same id. Verification happens
//! before this (see [`crate::verify()`]);
//! how a provider is called, a flow is run and events are remembered is the
//! [`Host`]'s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use greentic_types::messaging::universal_dto::HttpOutV1;
use greentic_types::{ChannelMessageEnvelope, TenantCtx};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ChannelKind;
use crate::replies::{Reply, replies};

/// The provider ops the pipeline calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A webhook request → the channel's answer and its events.
    IngestHttp,
    /// A message → a render plan.
    RenderPlan,
    /// A message and plan → the channel's payload.
    Encode,
    /// A payload → sent.
    SendPayload,
}

impl Op {
    /// Every op, in pipeline order.
    pub const ALL: [Op; 4] = [Op::IngestHttp, Op::RenderPlan, Op::Encode, Op::SendPayload];

    /// greentic's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            Op::IngestHttp => "ingest_http",
            Op::RenderPlan => "render_plan",
            Op::Encode => "encode",
            Op::SendPayload => "send_payload",
        }
    }
}

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

/// A provider answered something that is not the op's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAnswer {
    /// `ingest_http` did not answer an `HttpOutV1`.
    #[error("the provider's ingest_http answer is not an HttpOutV1: {0}")]
    Ingest(String),
    /// `send_payload` did not say `ok: true`.
    #[error("send_payload answered {0}")]
    NotSent(String),
}

/// A failure told in words, for a host whose failures are text (the
/// composed bot's front).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl From<BadAnswer> for Failed {
    fn from(e: BadAnswer) -> Self {
        Failed(e.to_string())
    }
}

/// What the pipeline needs from its host.
pub trait Host {
    /// Why a call or a run failed.
    type Failure: std::fmt::Display + From<BadAnswer>;

    /// Calls the provider's `op` with `input` (the host adds the provider's
    /// `config`); the op's answer. A host retries a retryable `send_payload`.
    fn call(&mut self, op: Op, input: Value) -> Result<Value, Self::Failure>;

    /// Claims the event `key` (its delivery and place in it); `false`: seen
    /// before (a channel's redelivery). A host that keeps nothing claims
    /// every event.
    fn claim(&mut self, key: &str) -> Result<bool, Self::Failure>;

    /// Runs the app flow with `input` as a turn of `event`'s conversation;
    /// the turn's output.
    fn run(&mut self, event: &ChannelMessageEnvelope, input: Value)
    -> Result<Value, Self::Failure>;

    /// The run of the event claimed as `key` failed: a host forgets its
    /// claim when the failure may not happen again, so the channel's retry
    /// runs the event.
    fn run_failed(&mut self, key: &str, failure: &Self::Failure);

    /// Logs a warning about `event`.
    fn warn(&self, event: &str, message: &str);
}

/// Runs `webhook` through `kind`'s provider and the app flow as `tenant`
/// (the route's tenant, never the one a provider wrote): the channel's
/// answer and what happened. `Err` only when `ingest_http` fails: what fails
/// after it is counted in the report and logged, not answered to the channel.
pub fn ingest<H: Host>(
    host: &mut H,
    kind: ChannelKind,
    webhook: &Webhook,
    tenant: &TenantCtx,
) -> Result<(Answer, Report), H::Failure> {
    let request = json!({
        "method": webhook.method,
        "path": webhook.path,
        "query": webhook.query,
        "headers": webhook.headers.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "body_b64": B64.encode(&webhook.body),
    });
    let answer = host.call(Op::IngestHttp, request)?;
    let out: HttpOutV1 =
        serde_json::from_value(answer).map_err(|e| BadAnswer::Ingest(e.to_string()))?;
    let tenant_id = tenant.tenant.as_str();
    let team = tenant.team.as_ref().map(|t| t.as_str());
    let delivery = hex::encode(Sha256::digest(&webhook.body));
    let mut report = Report::default();
    for (place, mut event) in out.events.into_iter().enumerate() {
        if event.metadata.get("is_bot_message").map(String::as_str) == Some("true") {
            report.from_bots += 1;
            continue;
        }
        event.tenant = tenant.clone();
        let key = format!("{delivery}:{place}");
        if !host.claim(&key)? {
            report.duplicates += 1;
            continue;
        }
        let input = json!({
            "input": event,
            "tenant": tenant_id,
            "team": team,
            "correlation_id": event.correlation_id.clone().unwrap_or_else(|| event.id.clone()),
        });
        let output = match host.run(&event, input) {
            Ok(output) => output,
            Err(failure) => {
                report.runs_failed += 1;
                host.warn(&event.id, &format!("the app flow failed: {failure}"));
                host.run_failed(&key, &failure);
                continue;
            }
        };
        report.ran += 1;
        let mut skipped = Vec::new();
        for (n, reply) in replies(&output, &mut skipped).into_iter().enumerate() {
            let message = reply_envelope(&event, n, reply);
            match send(host, kind, &message, tenant_id, team) {
                Ok(()) => report.sent += 1,
                Err(failure) => {
                    report.send_failed += 1;
                    host.warn(&event.id, &format!("a reply was not delivered: {failure}"));
                }
            }
        }
        if !skipped.is_empty() {
            report.unreadable += skipped.len();
            let skipped = Value::Array(skipped).to_string();
            host.warn(
                &event.id,
                &format!("no message in the app flow's output: {skipped}"),
            );
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

/// `render_plan` → `encode` → `send_payload`, in the shapes greentic-start
/// sends (its `messaging_egress.rs`).
fn send<H: Host>(
    host: &mut H,
    kind: ChannelKind,
    message: &ChannelMessageEnvelope,
    tenant_id: &str,
    team: Option<&str>,
) -> Result<(), H::Failure> {
    let plan = host.call(Op::RenderPlan, json!({"v": 1, "message": message}))?;
    let encoded = host.call(
        Op::Encode,
        json!({"v": 1, "message": message, "plan": plan}),
    )?;
    let send_in = json!({
        "v": 1,
        "provider_type": kind.provider_type(),
        "payload": encoded["payload"],
        "tenant": {
            "tenant": tenant_id,
            "team": team,
            "user": null,
            "correlation_id": message.correlation_id,
        },
        "tenant_id": tenant_id,
        "reply_scope": message.reply_scope,
    });
    let sent = host.call(Op::SendPayload, send_in)?;
    if sent.get("ok") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err(BadAnswer::NotSent(sent.to_string()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A host whose provider turns a body `{"events": [...]}` into those
    /// events and whose "flow" echoes the event's text.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<(Op, Value)>,
        seen: HashSet<String>,
        fail_runs: bool,
        forgotten: Vec<String>,
    }

    fn event(id: &str, text: &str, bot: bool) -> Value {
        let mut e = json!({
            "id": id,
            "tenant": TenantCtx::new("x".parse().unwrap(), "provider-said".parse().unwrap()),
            "channel": "telegram",
            "session_id": "chat-1",
            "text": text,
            "attachments": [],
            "metadata": {},
        });
        if bot {
            e["metadata"]["is_bot_message"] = json!("true");
        }
        e
    }

    impl Host for Recorder {
        type Failure = Failed;

        fn call(&mut self, op: Op, input: Value) -> Result<Value, Failed> {
            self.calls.push((op, input.clone()));
            Ok(match op {
                Op::IngestHttp => {
                    let body = B64.decode(input["body_b64"].as_str().unwrap()).unwrap();
                    let events: Value = serde_json::from_slice(&body).unwrap();
                    json!({"status": 202, "headers": [], "body_b64": B64.encode("ack"), "events": events["events"]})
                }
                Op::RenderPlan => json!({"plan": "text"}),
                Op::Encode => json!({"payload": {"text": input["message"]["text"]}}),
                Op::SendPayload => json!({"ok": input["payload"]["text"] != "refused"}),
            })
        }

        fn claim(&mut self, key: &str) -> Result<bool, Failed> {
            Ok(self.seen.insert(key.to_string()))
        }

        fn run(&mut self, event: &ChannelMessageEnvelope, input: Value) -> Result<Value, Failed> {
            if self.fail_runs {
                return Err(Failed("boom".into()));
            }
            assert_eq!(input["tenant"], "acme");
            assert_eq!(input["input"]["tenant"]["tenant"], "acme");
            Ok(json!({"type": "text", "text": event.text}))
        }

        fn run_failed(&mut self, key: &str, _: &Failed) {
            self.forgotten.push(key.to_string());
        }

        fn warn(&self, _: &str, _: &str) {}
    }

    fn webhook(events: Value) -> Webhook {
        Webhook {
            method: "POST".into(),
            path: "/hook".into(),
            query: None,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "events": events }).to_string().into_bytes(),
        }
    }

    fn tenant() -> TenantCtx {
        TenantCtx::new("dev".parse().unwrap(), "acme".parse().unwrap())
    }

    #[test]
    fn each_new_event_runs_and_its_reply_is_sent_as_the_routes_tenant() {
        let mut host = Recorder::default();
        // Envelope ids as greentic's Telegram provider writes them: all alike.
        let events = json!([
            event("telegram-telegram", "hi", false),
            event("telegram-telegram", "again", false),
            event("telegram-telegram", "echo", true),
            event("telegram-telegram", "refused", false)
        ]);
        let (answer, report) = ingest(
            &mut host,
            ChannelKind::Telegram,
            &webhook(events.clone()),
            &tenant(),
        )
        .unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (202, &b"ack"[..]));
        assert_eq!(
            report,
            Report {
                ran: 3,
                from_bots: 1,
                sent: 2,
                send_failed: 1,
                ..Report::default()
            }
        );
        let sends: Vec<&Value> = host
            .calls
            .iter()
            .filter(|(op, _)| *op == Op::SendPayload)
            .map(|(_, input)| input)
            .collect();
        assert_eq!(sends.len(), 3);
        assert_eq!(sends[0]["provider_type"], "messaging.telegram.bot");
        assert_eq!(sends[0]["tenant_id"], "acme");
        assert_eq!(sends[0]["payload"], json!({"text": "hi"}));

        // The channel delivers the same body again: nothing runs.
        let (_, again) = ingest(
            &mut host,
            ChannelKind::Telegram,
            &webhook(events),
            &tenant(),
        )
        .unwrap();
        assert_eq!((again.ran, again.duplicates, again.from_bots), (0, 3, 1));
        // Another delivery with the same envelope ids is new.
        let other = json!([event("telegram-telegram", "later", false)]);
        let (_, later) =
            ingest(&mut host, ChannelKind::Telegram, &webhook(other), &tenant()).unwrap();
        assert_eq!((later.ran, later.duplicates), (1, 0));
    }

    #[test]
    fn a_failed_run_is_reported_and_handed_back_to_the_host() {
        let mut host = Recorder {
            fail_runs: true,
            ..Recorder::default()
        };
        let (_, report) = ingest(
            &mut host,
            ChannelKind::Telegram,
            &webhook(json!([event("7", "x", false)])),
            &tenant(),
        )
        .unwrap();
        assert_eq!(report.runs_failed, 1);
        assert_eq!(report.ran, 0);
        assert_eq!(host.forgotten.len(), 1);
        assert!(host.forgotten[0].ends_with(":0"), "{:?}", host.forgotten);
    }
}
