//! The messaging host: channel webhooks in, the app flow, replies out — with
//! greentic's messaging provider components (`schema-core-api`) doing the
//! channel's formats, and this host doing what must not be left to them:
//! webhook verification ([`verify`]), the tenant (from the route, never from
//! a provider), deduplication of redelivered events, conversations as
//! sessions, and retried sends ([`ingest`]).

pub mod calls;
pub mod channel;
pub mod ingest;
pub mod replies;
pub mod verify;

pub use calls::ProviderCalls;
pub use channel::{ChannelKind, ChannelProvider};
pub use ingest::{Messaging, Webhook};
pub use verify::verify;
