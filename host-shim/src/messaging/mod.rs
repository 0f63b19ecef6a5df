//! The messaging host: channel webhooks in, the app flow, replies out — with
//! greentic's messaging provider components (`schema-core-api`) doing the
//! channel's formats, and this host doing what must not be left to them:
//! webhook verification (`greentic_messaging_core::verify`, Teams tokens in
//! [`bearer`]), the tenant (from the route, never from a provider),
//! deduplication of redelivered events, conversations as sessions, and
//! retried sends ([`ingest`], [`calls`]). The pipeline itself is
//! `greentic_messaging_core::ingest`, shared with the composed bot.

pub mod bearer;
pub mod calls;
pub mod channel;
pub mod ingest;

pub use calls::ProviderCalls;
pub use channel::ChannelProvider;
pub use greentic_messaging_core::{BearerCheck, ChannelKind, verify};
pub use ingest::{Messaging, Webhook};
