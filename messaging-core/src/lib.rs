//! The messaging host's logic, free of any host: which channel a provider
//! serves ([`ChannelKind`]), checking a channel's webhook signature before
//! anything runs ([`verify()`]), reading the messages a flow answers
//! ([`replies()`]), and one webhook through the provider, the app flow and
//! back ([`ingest()`]) over what a host provides ([`Host`]).
//!
//! `host-shim serve` (native, sessions, dedupe in the state store) and the
//! composed bot's `bot-front` part (a `wasi:http` component) are its two
//! hosts; neither writes this logic again.

mod answer;
mod channel;
mod pipeline;
mod replies;
mod verify;

pub use answer::{OpFailed, SEND_ATTEMPTS, SEND_FIRST_DELAY_MS, read_answer};
pub use channel::ChannelKind;
pub use pipeline::{Answer, BadAnswer, Failed, Host, Op, Report, Webhook, ingest};
pub use replies::{Reply, replies};
pub use verify::{
    BOT_FRAMEWORK_ISSUER, BearerCheck, SLACK_WINDOW_SECS, Unverified, secret_key, verify,
};

pub use greentic_types::{ChannelMessageEnvelope, TenantCtx};
