//! `host-shim serve`.

use super::setup::{Sources, channel_config, host_options, pack_channels, state_backend, target};
use crate::engine::OnMiss;
use crate::{Failure, HostOptions, RunSettings};
use clap::Args;
use std::path::{Path, PathBuf};

use super::args::{ComponentArgs, TenantArgs};

/// `host-shim serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What to serve (FLOW: a flow file, a directory of flows or a pack),
    /// components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Who runs act for (with `--auth none`).
    #[command(flatten)]
    pub scope: TenantArgs,
    /// Who a request acts for: `none` (the --tenant flags, or with
    /// --trust-tenant-headers the x-greentic-* headers), `tokens` (bearer
    /// tokens of --tokens FILE) or `jwt` (signed JWTs: --jwt-key or --jwks).
    #[arg(long, value_enum, default_value = "none")]
    pub auth: AuthMode,
    /// Bearer tokens (YAML/JSON): `tokens: [{name, sha256, tenant, env?, team?,
    /// user?, flows?, max_concurrent?, rps?}]`; `sha256` of the token, never the token.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// JWT key: an HMAC secret (32+ bytes) or a PEM public RSA/EC key.
    #[arg(long, value_name = "FILE")]
    pub jwt_key: Option<PathBuf>,
    /// JWT keys as a JWKS (JSON); the token's `kid` picks one.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Required `iss` of JWTs.
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWTs.
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// With `--auth none`: take the tenant from the `x-greentic-env|tenant|team|user`
    /// headers (any client can then act for any tenant): only on a loopback
    /// address or with --i-am-behind-a-gateway.
    #[arg(long)]
    pub trust_tenant_headers: bool,
    /// Allow `--auth none` (and --trust-tenant-headers) on a non-loopback address.
    #[arg(long)]
    pub i_am_behind_a_gateway: bool,
    /// The SHA-256 (`sha256:<hex>`) of the bearer token `/metrics` needs when
    /// the server is not bound to loopback.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Runs in progress per credential (a token's own `max_concurrent` wins).
    #[arg(long, value_name = "N")]
    pub credential_max_concurrent: Option<usize>,
    /// Requests per second per credential (a token's own `rps` wins).
    #[arg(long, value_name = "N")]
    pub credential_rps: Option<u32>,
    /// Maximum node executions per run.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Runs in progress at most; more wait in the queue.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_concurrent: usize,
    /// Requests waiting for a run slot at most; more get 429 with
    /// `Retry-After` (0: none wait, every request beyond the slots is shed).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_queue: usize,
    /// How long a request waits in the queue for a slot; then 429.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub queue_timeout: std::time::Duration,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// A run still going after this is answered 504.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub run_timeout: std::time::Duration,
    /// On SIGTERM / Ctrl-C: how long to let runs in progress finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// After SIGTERM, keep accepting and serving this long while `/healthz`
    /// answers 503, so a load balancer takes the process out first.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain: std::time::Duration,
    /// How long a waiting run (`x-greentic-session`) is kept after its last turn.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: std::time::Duration,
    /// How long a turn waits for another turn of its session.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub session_wait: std::time::Duration,
    /// Threads serving connections (runs have their own pool, up to --max-concurrent).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub io_threads: usize,
    /// Time a client has to send a request's headers, and how long an idle
    /// keep-alive connection waits for the next request; then it is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Time a client has to send a request's whole body (then 408). No run
    /// slot is held while a body is read.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: std::time::Duration,
    /// Open connections at most; more wait in the listen backlog (lowered
    /// to fit the process's open-file limit).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// A `Host` name (without port) requests may carry besides the loopback
    /// names `localhost`, `127.0.0.1` and `[::1]`; repeatable. Any other Host
    /// is refused (400): a web page cannot reach the server by DNS rebinding.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// A request for a flow id not seen yet rescans the served flows, at
    /// most once per this interval (new files are found within it).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub rescan_interval: std::time::Duration,
    /// A pack served from a registry tag (`oci://…:TAG`) is asked for the
    /// tag's digest this often, and swapped when it moves.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub registry_poll: std::time::Duration,
    /// A channel whose webhooks `POST /v1/messaging/ingress/KIND/{tenant}`
    /// takes, and the messaging provider component that speaks it
    /// (`telegram=bot-telegram`, `slack=providers/slack.wasm`); repeatable.
    #[arg(long = "channel", value_name = "KIND=COMPONENT")]
    pub channels: Vec<crate::messaging::ChannelProvider>,
    /// A provider pack (`.gtpack` or directory) whose messaging providers
    /// (`greentic.provider-extension.v1`, `provider_type`
    /// `messaging.<channel>.*`) are channels; repeatable. A bundle served as
    /// FLOW brings its `providers/messaging/` packs itself.
    #[arg(long = "channel-pack", value_name = "PACK")]
    pub channel_packs: Vec<PathBuf>,
    /// A channel's provider `config` (a JSON object file, greentic's setup
    /// answers such as `bot_token` or `api_base_url`), given to every op.
    #[arg(long = "channel-config", value_name = "KIND=FILE")]
    pub channel_configs: Vec<String>,
    /// The flow (by id) that channel messages run; without it, the one flow
    /// of `type: messaging` (greentic-start's fallback).
    #[arg(long, value_name = "FLOW_ID", default_value = "default")]
    pub messaging_flow: String,
    /// The bindings file whose `timers` (flows on a cron schedule) this
    /// server runs and whose `tenant` they run for; default: `bindings.yaml`
    /// in the served directory or pack, when there is one.
    #[arg(long, value_name = "FILE")]
    pub bindings: Option<PathBuf>,
    /// How long a server holds a scheduled tick it claimed: a server that
    /// dies holding one leaves it to the others after this. Longer than
    /// --run-timeout (default: --run-timeout + 30s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub tick_lease: Option<std::time::Duration>,
    /// Take this channel's webhooks without verifying them (only behind a
    /// gateway that does); repeatable.
    #[arg(long = "unverified-channel", value_name = "KIND", value_parser = parse_channel_kind)]
    pub unverified_channels: Vec<crate::messaging::ChannelKind>,
    /// The Bot Framework's signing keys that Teams webhooks' bearer tokens
    /// are verified with: a JWKS URL (`https://login.botframework.com/v1/.well-known/keys`),
    /// fetched at start and refreshed every 12 h with the HTTP client's CAs
    /// and --connect-to, or a JWKS file.
    #[arg(long, value_name = "URL|FILE")]
    pub bot_framework_jwks: Option<String>,
}

/// `serve --auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No credentials: the `--tenant` flags (or trusted headers).
    None,
    /// Bearer tokens from `--tokens FILE`.
    Tokens,
    /// Signed JWTs (`--jwt-key FILE` or `--jwks FILE`).
    Jwt,
}

pub(super) fn serve(args: ServeArgs) -> Result<(), Failure> {
    let invalid = |message: String| Failure::Invalid(anyhow::anyhow!(message));
    // A greentic bundle: its messaging provider packs are channels, its app
    // pack is what is served.
    let mut channels = args.channels.clone();
    let mut channel_packs = args.channel_packs.clone();
    let sources = Sources::of(&args.common)?;
    let bundle = compose::pack::Bundle::open(&args.common.flow, "messaging")
        .map_err(|e| Failure::Invalid(e.into()))?;
    let mut tenant_apps = Vec::new();
    let served = match bundle {
        Some(bundle) => {
            channel_packs.extend(bundle.providers);
            for app in bundle.tenant_apps {
                let root = match target(&app.pack, &sources)? {
                    compose::pack::Target::Pack(pack, _) => pack.root,
                    compose::pack::Target::Flow(path) => path,
                };
                tenant_apps.push((app.tenant, app.team, root));
            }
            bundle.app
        }
        None => args.common.flow.clone(),
    };
    for path in &channel_packs {
        channels.extend(pack_channels(path, &sources, args.common.quiet)?);
    }
    for entry in &args.channel_configs {
        let (kind, file) = entry
            .split_once('=')
            .ok_or_else(|| invalid(format!("--channel-config `{entry}`: expected KIND=FILE")))?;
        let kind =
            parse_channel_kind(kind).map_err(|e| invalid(format!("--channel-config: {e}")))?;
        let config = channel_config(Path::new(file))?;
        let mut given = false;
        for channel in channels.iter_mut().filter(|c| c.kind == kind) {
            channel.config = config.clone();
            given = true;
        }
        if !given {
            return Err(invalid(format!(
                "--channel-config {}: no such channel is served (--channel, --channel-pack or a bundle)",
                kind.name()
            )));
        }
    }
    // A registry tag is served at the digest it has now (and watched).
    let watched_tag = registry_tag(&served, &sources)?;
    let served = match &watched_tag {
        Some((pinned, _)) => PathBuf::from(pinned.as_str()),
        None => served,
    };
    let target = match target(&served, &sources)? {
        compose::pack::Target::Pack(pack, None) => pack.root,
        compose::pack::Target::Pack(_, Some(_)) => {
            return Err(invalid(
                "serve takes a whole pack (its flows are served by id): drop `#flow`".into(),
            ));
        }
        compose::pack::Target::Flow(path) => path,
    };
    let reload = pack_reload(
        &served,
        watched_tag,
        sources,
        args.rescan_interval,
        args.registry_poll,
    );
    use crate::auth::{Auth, JwtVerifier, Principal};
    let loopback = args.addr.ip().is_loopback();
    if args.trust_tenant_headers && args.auth != AuthMode::None {
        return Err(invalid(
            "--trust-tenant-headers is for --auth none: with credentials, the credential says who"
                .into(),
        ));
    }
    if args.auth == AuthMode::None && !loopback && !args.i_am_behind_a_gateway {
        return Err(invalid(format!(
            "{} on {}: without credentials (--auth none) serving is for loopback only; use --auth tokens|jwt, or --i-am-behind-a-gateway when a gateway authenticates clients",
            if args.trust_tenant_headers {
                "--trust-tenant-headers lets any client act for any tenant"
            } else {
                "every client would act for the --tenant flags"
            },
            args.addr,
        )));
    }
    if args.trust_tenant_headers && !args.common.quiet {
        eprintln!(
            "warning: --trust-tenant-headers: the tenant is whatever x-greentic-tenant says; only a gateway that sets it may reach {}",
            args.addr
        );
    }
    let fixed = Principal {
        credential: "server".into(),
        scope: args.scope.tenant(),
        flows: None,
        max_concurrent: None,
        rps: None,
    };
    let auth = match args.auth {
        AuthMode::None if args.trust_tenant_headers => Auth::TrustHeaders(fixed),
        AuthMode::None => Auth::Fixed(fixed),
        AuthMode::Tokens => {
            let file = args
                .tokens
                .as_deref()
                .ok_or_else(|| invalid("--auth tokens needs --tokens FILE".into()))?;
            Auth::Tokens(crate::auth::read_tokens(file).map_err(Failure::Invalid)?)
        }
        AuthMode::Jwt => Auth::Jwt(
            JwtVerifier::new(
                args.jwt_key.as_deref(),
                args.jwks.as_deref(),
                args.jwt_issuer.clone(),
                args.jwt_audience.clone(),
                args.scope.env.clone(),
            )
            .map_err(Failure::Invalid)?,
        ),
    };
    let metrics_token = match &args.metrics_token_file {
        None => None,
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| invalid(format!("cannot read `{}`: {e}", file.display())))?;
            Some(crate::auth::parse_sha256(&text).map_err(Failure::Invalid)?)
        }
    };
    let state = state_backend(&args.common, false)?;
    if state == crate::caps::state::StateBackend::Memory && !args.common.quiet {
        eprintln!("note: --state memory: state and sessions live as long as this server");
    }
    let schedules = crate::schedules::Schedules::for_target(&target, args.bindings.as_deref())
        .map_err(|e| Failure::Invalid(e.into()))?;
    let tick_lease = args
        .tick_lease
        .unwrap_or(args.run_timeout + std::time::Duration::from_secs(30));
    if tick_lease <= args.run_timeout {
        return Err(invalid(format!(
            "--tick-lease ({} ms) must be longer than --run-timeout ({} ms): a tick still running must not be taken over",
            tick_lease.as_millis(),
            args.run_timeout.as_millis()
        )));
    }
    let settings = RunSettings {
        scope: args.scope.tenant(),
        max_steps: args.max_steps,
        // The run is stopped at --run-timeout, not only no longer waited for.
        time_limit: Some(args.run_timeout),
        ..RunSettings::default()
    };
    // Checked once here so a bad flag fails at start, not per request.
    let checked = host_options(&args.common, state)?;
    let bot_framework_keys = match &args.bot_framework_jwks {
        None => None,
        Some(source) => {
            let http = crate::caps::http::HttpClientConfig {
                timeout: std::time::Duration::from_secs(30),
                max_response_bytes: 1 << 20,
                roots: checked.http_roots.clone(),
                connect_to: checked.http_connect_to.clone(),
            };
            Some(std::sync::Arc::new(
                crate::messaging::bearer::BotFrameworkKeys::load(source, &http)
                    .map_err(Failure::Invalid)?,
            ))
        }
    };
    let secrets = std::sync::Arc::new(checked.secrets.clone());
    let host = HostOptions {
        // A server lives long: its components get optimised code from the start.
        on_miss: OnMiss::Optimize,
        // Every run instantiates its nodes afresh: slots reserved once
        // spare the mmap/munmap (and TLB shootdowns) of each instance.
        pooling_allocator: true,
        ..checked
    };
    crate::serve::serve(crate::serve::ServeOptions {
        target,
        addr: args.addr,
        // A server lives long: its components get optimised code from the start.
        host,
        settings,
        auth,
        metrics_token,
        credential_max_concurrent: args.credential_max_concurrent,
        credential_rps: args.credential_rps,
        max_concurrent: args.max_concurrent,
        max_queue: args.max_queue,
        queue_timeout: args.queue_timeout,
        max_body: args.max_body,
        run_timeout: args.run_timeout,
        shutdown_timeout: args.shutdown_timeout,
        drain: args.drain,
        session_ttl: args.session_ttl,
        session_wait: args.session_wait,
        io_threads: args.io_threads,
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        max_connections: args.max_connections,
        allowed_hosts: args.allowed_hosts,
        rescan_every: args.rescan_interval,
        channels,
        messaging_flow: args.messaging_flow,
        tenant_apps,
        unverified: args.unverified_channels,
        bot_framework_keys,
        secrets,
        schedules,
        tick_lease,
        reload,
    })
    .map_err(Failure::Invalid)
}

fn parse_channel_kind(name: &str) -> Result<crate::messaging::ChannelKind, String> {
    crate::messaging::ChannelKind::parse(name).ok_or_else(|| format!("unknown channel `{name}`"))
}

/// For a pack served from a registry tag: the reference pinned to the digest
/// the tag has now, and the tag.
fn registry_tag(
    served: &Path,
    sources: &Sources,
) -> Result<Option<(greentic_registry::OciRef, greentic_registry::OciRef)>, Failure> {
    use greentic_registry::OciRef;
    let text = served.to_string_lossy();
    if !OciRef::is_oci(&text) {
        return Ok(None);
    }
    let tag = OciRef::parse(&text).map_err(|e| Failure::Invalid(e.into()))?;
    // A digest never moves, a lock file's pin is what is served, and
    // offline nothing can be asked.
    if tag.digest().is_some() || sources.registry.pinned(tag.as_str()) || sources.registry.offline()
    {
        return Ok(None);
    }
    let digest = sources
        .registry
        .current_digest(&tag)
        .map_err(|e| Failure::Invalid(e.into()))?;
    Ok(Some((tag.with_digest(&digest), tag)))
}

/// How a served `.gtpack` or registry tag is watched: its version and how a
/// version is opened, checked as at start.
fn pack_reload(
    served: &Path,
    tag: Option<(greentic_registry::OciRef, greentic_registry::OciRef)>,
    sources: Sources,
    file_every: std::time::Duration,
    tag_every: std::time::Duration,
) -> Option<crate::serve::PackReload> {
    let sources = std::sync::Arc::new(sources);
    let open_as = |sources: std::sync::Arc<Sources>| {
        move |given: &Path| match target(given, &sources).map_err(|e| anyhow::anyhow!("{e}"))? {
            compose::pack::Target::Pack(pack, _) => Ok(pack.root),
            compose::pack::Target::Flow(path) => Ok(path),
        }
    };
    if let Some((_, tag)) = tag {
        let registry = sources.registry.clone();
        let open = open_as(sources);
        let at = tag.clone();
        return Some(crate::serve::PackReload {
            label: tag.to_string(),
            every: tag_every,
            version: std::sync::Arc::new(move || Ok(registry.current_digest(&tag)?)),
            open: std::sync::Arc::new(move |digest: &str| {
                open(Path::new(at.with_digest(digest).as_str()))
            }),
        });
    }
    if served.extension().is_none_or(|e| e != "gtpack") {
        return None;
    }
    let archive = served.to_path_buf();
    let open = open_as(sources);
    let opened = archive.clone();
    Some(crate::serve::PackReload {
        label: archive.display().to_string(),
        every: file_every,
        version: std::sync::Arc::new(move || file_stamp(&archive)),
        open: std::sync::Arc::new(move |_: &str| open(&opened)),
    })
}

/// What tells a file changed without reading it.
fn file_stamp(file: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)?;
    Ok(format!(
        "{}:{:?}:{}",
        meta.len(),
        meta.modified().ok(),
        meta.ino()
    ))
}
