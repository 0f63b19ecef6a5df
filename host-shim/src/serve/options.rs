//! How a server is set up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Auth;
use crate::host::{HostOptions, RunSettings};
use crate::messaging::{ChannelKind, ChannelProvider};

/// How to serve.
pub struct ServeOptions {
    /// What to serve: a flow file, a directory of flows, or a pack directory.
    pub target: PathBuf,
    /// Where to listen.
    pub addr: SocketAddr,
    /// How the hosts runs are made on are set up (they share one engine and
    /// one state store).
    pub host: HostOptions,
    /// Limits of runs (tenant, `session` and `observer` are per request).
    pub settings: RunSettings,
    /// Who a request acts for.
    pub auth: Auth,
    /// SHA-256 of the token `/metrics` needs when not bound to loopback.
    pub metrics_token: Option<[u8; 32]>,
    /// Runs in progress per credential, unless its own entry says otherwise.
    pub credential_max_concurrent: Option<usize>,
    /// Requests per second per credential, unless its own entry says otherwise.
    pub credential_rps: Option<u32>,
    /// Runs in progress at most; beyond, requests wait in the queue.
    pub max_concurrent: usize,
    /// Requests waiting for a run slot at most; beyond: 429.
    pub max_queue: usize,
    /// How long a request waits in the queue; then 429.
    pub queue_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// A run still going after this gets 504.
    pub run_timeout: Duration,
    /// How long shutdown waits for runs in progress.
    pub shutdown_timeout: Duration,
    /// How long a stopping server still accepts (answering `/healthz` 503).
    pub drain: Duration,
    /// Session TTL and how long a turn waits for its session.
    pub session_ttl: Duration,
    /// See [`SessionSettings::wait`].
    pub session_wait: Duration,
    /// Threads serving connections (runs use the blocking pool).
    pub io_threads: usize,
    /// Time to send a request's headers; also a keep-alive connection's idle time.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// `Host` names allowed besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// An unknown flow id rescans the served flows at most this often.
    pub rescan_every: Duration,
    /// Channels whose webhooks `POST /v1/messaging/ingress/…` takes.
    pub channels: Vec<ChannelProvider>,
    /// The flow (by id) channel messages run.
    pub messaging_flow: String,
    /// App packs (unpacked roots) of one tenant `(tenant, team)`, whose
    /// channel messages they take instead of the served target's.
    pub tenant_apps: Vec<(String, Option<String>, PathBuf)>,
    /// Channels whose webhooks are taken without verification (the
    /// operator's explicit choice, e.g. behind a gateway that verifies).
    pub unverified: Vec<ChannelKind>,
    /// The Bot Framework's signing keys (a JWKS), for Teams webhooks.
    pub bot_framework_keys: Option<std::sync::Arc<crate::messaging::bearer::BotFrameworkKeys>>,
    /// Where webhook verification secrets come from (the hosts' secrets).
    pub secrets: std::sync::Arc<crate::caps::secrets::SecretSource>,
    /// Flows run on a clock (a bindings file's `timers`) and their tenant.
    pub schedules: crate::schedules::Schedules,
    /// How long a claimed tick is held (see `TickClaims`).
    pub tick_lease: Duration,
    /// A served `.gtpack` or registry tag to reload when it changes.
    pub reload: Option<PackReload>,
}

/// The version a served pack has now: a file's stamp, a registry tag's
/// manifest digest.
pub type PackVersion = std::sync::Arc<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

/// How a version of a served pack is opened (fetched, unpacked, verified):
/// its unpacked root, or why not.
pub type OpenPack = std::sync::Arc<dyn Fn(&str) -> anyhow::Result<PathBuf> + Send + Sync>;

/// A served pack to watch (`reload.rs`): a `.gtpack` file or an `oci://` tag.
#[derive(Clone)]
pub struct PackReload {
    /// What is served, for messages.
    pub label: String,
    /// How often it is looked at.
    pub every: Duration,
    /// Its version now.
    pub version: PackVersion,
    /// Opens a version of it.
    pub open: OpenPack,
}
