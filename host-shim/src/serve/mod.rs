//! `host-shim serve`: flows over HTTP.
//!
//! hyper (HTTP/1.1) on a tokio runtime accepts requests; a run is synchronous
//! Wasmtime work, so it goes to tokio's blocking pool on a [`Host`] taken
//! from a pool of them (each host keeps its compiled components and linked
//! runner; they share one state store). A semaphore bounds the runs in
//! progress: a request beyond it gets 429 at once instead of queueing, so a
//! client cannot take the server down by sending more.
//!
//! Routes: `POST /flows/{flow_id}` (the entry JSON as body) runs a flow — or,
//! with `x-greentic-session`, the next turn of a conversation; `GET /healthz`;
//! `GET /metrics` (Prometheus text). Flows are found by id in the served
//! file, directory or pack and read from disk for each run, so an edited flow
//! is served as edited.

mod catalog;
mod metrics;
mod respond;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde_json::json;
use sha2::Digest;

use crate::auth::{Auth, Denied, Principal, TenantHeaders};
use crate::host::{Failure, Host, HostOptions, RunSettings, SessionSettings, Turn};
use crate::nodes::NodeObserver;
use catalog::Catalog;
use metrics::Metrics;
use respond::{
    error_response, host_name, invalid_input_record, is_json, json_response, linger, single_header,
    status_of,
};

/// How to serve.
pub struct ServeOptions {
    /// What to serve: a flow file, a directory of flows, or a pack directory.
    pub target: PathBuf,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Makes the hosts runs are made on (all share one state store).
    pub host: Box<dyn Fn() -> anyhow::Result<HostOptions> + Send + Sync>,
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
    /// Runs in progress at most; beyond: 429.
    pub max_concurrent: usize,
    /// Largest request body.
    pub max_body: usize,
    /// A run still going after this gets 504.
    pub run_timeout: Duration,
    /// How long shutdown waits for runs in progress.
    pub shutdown_timeout: Duration,
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
}

/// How much longer than `--run-timeout` serve waits for a run that was
/// stopped at its deadline but is inside a host call (a state write, an
/// outbound request) that epoch interruption cannot cut short.
const RUN_TIMEOUT_BACKSTOP: Duration = Duration::from_secs(5);

/// File descriptors kept free of connections: the state store, compiled
/// components, the listener itself.
const SPARE_FDS: usize = 64;

/// The connection cap: `wanted`, lowered to fit the open-file limit so that
/// `accept` never fails for lack of descriptors.
fn connection_cap(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    wanted.min(fds.saturating_sub(SPARE_FDS)).max(1)
}

/// Serves until SIGTERM or Ctrl-C, then stops accepting, lets the runs in
/// progress finish (up to the shutdown timeout) and returns.
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.io_threads.max(1))
        .max_blocking_threads(options.max_concurrent.max(1) + 1)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(run_server(options))
}

async fn run_server(options: ServeOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.addr))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Server::new(options)?);
    eprintln!(
        "host-shim: serving {} on http://{addr} (POST /flows/{{flow_id}}, GET /healthz, GET /metrics)",
        state.catalog.describe()
    );
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    let cap = connection_cap(state.options.max_connections);
    if cap < state.options.max_connections {
        eprintln!(
            "host-shim: at most {cap} connections (--max-connections {} does not fit the open-file limit)",
            state.options.max_connections
        );
    }
    let connections = Arc::new(tokio::sync::Semaphore::new(cap));
    let mut http = hyper::server::conn::http1::Builder::new();
    // The header timeout also closes keep-alive connections idle that long:
    // hyper starts it whenever it waits for a request head.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.options.header_timeout);
    let mut backoff = AcceptBackoff::default();
    loop {
        // At the cap, stop accepting: new clients wait in the backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            _ = &mut stop => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        backoff.reset();
                        stream
                    }
                    Err(e) => {
                        // EMFILE, ENOBUFS, ...: wait instead of spinning on it.
                        let pause = backoff.next();
                        tracing::warn!(target: "serve", "accept failed: {e}; pausing {} ms", pause.as_millis());
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
                let state = state.clone();
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(state.handle(request).await) }
                });
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    state.stopping.store(true, Ordering::SeqCst);
    eprintln!("host-shim: shutting down: no new connections; finishing the runs in progress");
    let deadline = state.options.shutdown_timeout;
    tokio::select! {
        _ = graceful.shutdown() => eprintln!("host-shim: stopped"),
        _ = tokio::time::sleep(deadline) => {
            eprintln!("host-shim: stopped after {} ms with runs still in progress", deadline.as_millis());
        }
    }
    Ok(())
}

/// Pauses after failed accepts: 5 ms doubling to 1 s, back to none after a success.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(5u64 << self.failures.min(8)).min(Duration::from_secs(1))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// What the server holds for every request.
struct Server {
    options: ServeOptions,
    catalog: Catalog,
    hosts: Mutex<Vec<Host>>,
    shared_store: Arc<dyn greentic_state::StateStore>,
    /// One binding of state ids to binaries for all the hosts.
    state_bindings: Arc<crate::caps::state::bindings::StateBindings>,
    slots: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
    registry: Registry,
    stopping: AtomicBool,
    /// Per credential: runs in progress, and requests per second.
    credentials: Mutex<HashMap<String, CredentialLimits>>,
}

/// What one credential may still do.
struct CredentialLimits {
    slots: Option<Arc<tokio::sync::Semaphore>>,
    rate: Option<governor::DefaultDirectRateLimiter>,
}

impl Server {
    fn new(options: ServeOptions) -> anyhow::Result<Server> {
        let catalog = Catalog::new(&options.target, options.rescan_every)?;
        let first = (options.host)()?;
        let shared_store = first.state.open()?;
        let state_bindings = first.state_bindings.clone();
        // One host made at start: a broken runner or engine fails here.
        let host = Host::new(HostOptions {
            shared_state: Some(shared_store.clone()),
            ..first
        })?;
        let mut registry = Registry::with_prefix("greentic");
        let metrics = Arc::new(Metrics::register(&mut registry));
        registry.register(
            "catalog_scans",
            "Rescans of the served flows (at start, and for an unknown id at most once per --rescan-interval)",
            catalog.scans.clone(),
        );
        Ok(Server {
            slots: Arc::new(tokio::sync::Semaphore::new(options.max_concurrent.max(1))),
            catalog,
            hosts: Mutex::new(vec![host]),
            shared_store,
            state_bindings,
            metrics,
            registry,
            stopping: AtomicBool::new(false),
            credentials: Mutex::new(HashMap::new()),
            options,
        })
    }

    async fn handle(self: &Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Err(denied) = self.origin_allowed(&request) {
            return self.refuse(denied, "a request");
        }
        let path = request.uri().path().to_string();
        match (request.method().clone(), path.as_str()) {
            (Method::GET, "/healthz") => {
                if self.stopping.load(Ordering::SeqCst) {
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"status": "stopping"}).to_string(),
                    )
                } else {
                    json_response(StatusCode::OK, json!({"status": "ok"}).to_string())
                }
            }
            (Method::GET, "/metrics") => {
                if let Err(denied) = self.metrics_allowed(&request) {
                    return self.refuse(denied, "/metrics");
                }
                let mut text = String::new();
                prometheus_client::encoding::text::encode(&mut text, &self.registry)
                    .expect("writing metrics to a String cannot fail");
                let mut response = Response::new(Full::new(Bytes::from(text)));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            (Method::POST, p) if p.starts_with("/flows/") => {
                let id = p["/flows/".len()..].to_string();
                self.run(id, request).await
            }
            (_, "/healthz" | "/metrics") => {
                error_response(StatusCode::METHOD_NOT_ALLOWED, "use GET")
            }
            (_, p) if p.starts_with("/flows/") => error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST with the entry JSON as body",
            ),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "no such route: POST /flows/{flow_id}, GET /healthz, GET /metrics",
            ),
        }
    }

    /// Whether `name` (a `Host` without its port) may be asked for: a loopback
    /// name, or one of `--allowed-host`. A server bound elsewhere with no
    /// `--allowed-host` takes any (its clients authenticate).
    fn host_name_allowed(&self, name: &str) -> bool {
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback
            || self
                .options
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            || (!self.options.addr.ip().is_loopback() && self.options.allowed_hosts.is_empty())
    }

    /// Refuses a request whose `Host` this server does not answer to (DNS
    /// rebinding: a web page's own name pointed at loopback) or that a web
    /// page of another origin sent (`Origin`, which browsers add to posts).
    fn origin_allowed(&self, request: &Request<Incoming>) -> Result<(), Denied> {
        let bad = |status, reason, message: String| Denied {
            status,
            reason,
            message,
        };
        let hosts = request.headers().get_all(hyper::header::HOST);
        let mut hosts = hosts.iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(host), None) => Some(host.to_str().unwrap_or("")),
            // HTTP/1.0 (a balancer's health check) may send none; browsers always do.
            (None, _) => request.uri().authority().map(|a| a.as_str()),
            (Some(_), Some(_)) => {
                return Err(bad(400, "bad_host", "more than one `Host` header".into()));
            }
        };
        if let Some(host) = host
            && !self.host_name_allowed(host_name(host))
        {
            return Err(bad(
                400,
                "bad_host",
                format!("this server does not answer to Host `{host}` (see --allowed-host)"),
            ));
        }
        if let Some(origin) = request.headers().get(hyper::header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("null");
            let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
            if !self.host_name_allowed(host_name(authority)) {
                return Err(bad(
                    403,
                    "cross_origin",
                    format!("requests from web pages of `{origin}` are not accepted"),
                ));
            }
        }
        Ok(())
    }

    /// `/metrics` is open on loopback; elsewhere it needs the metrics token.
    fn metrics_allowed(&self, request: &Request<Incoming>) -> Result<(), Denied> {
        if self.options.addr.ip().is_loopback() {
            return Ok(());
        }
        let Some(expected) = self.options.metrics_token else {
            return Err(Denied {
                status: 403,
                reason: "metrics_closed",
                message: "/metrics is served on loopback only (or with --metrics-token-file)"
                    .into(),
            });
        };
        let given = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| -> [u8; 32] { sha2::Sha256::digest(t.trim().as_bytes()).into() });
        match given {
            Some(hash) if hash == expected => Ok(()),
            _ => Err(Denied {
                status: 401,
                reason: "metrics_token",
                message: "/metrics needs its bearer token".into(),
            }),
        }
    }

    /// A refusal: counted, logged, answered.
    fn refuse(&self, denied: Denied, what: &str) -> Response<Full<Bytes>> {
        self.metrics.denied(denied.reason);
        tracing::warn!(target: "serve", reason = denied.reason, status = denied.status, "refused {what}: {}", denied.message);
        let status = StatusCode::from_u16(denied.status).unwrap_or(StatusCode::FORBIDDEN);
        let mut response = error_response(status, &denied.message);
        if denied.status == 401 {
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        if denied.status == 429 {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// Who the request acts for, from its credential and headers.
    fn principal(&self, request: &Request<Incoming>) -> Result<Principal, Denied> {
        let text = |name: &str| single_header(request, name);
        let headers = TenantHeaders {
            env: text("x-greentic-env")?,
            tenant: text("x-greentic-tenant")?,
            team: text("x-greentic-team")?,
            user: text("x-greentic-user")?,
        };
        let authorization = text("authorization")?;
        self.options
            .auth
            .authenticate(authorization.as_deref(), &headers)
    }

    /// The credential's own limits: a permit for one run, or a refusal.
    fn credential_permit(
        &self,
        principal: &Principal,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Denied> {
        let slots = principal
            .max_concurrent
            .or(self.options.credential_max_concurrent);
        let rps = principal.rps.or(self.options.credential_rps);
        if slots.is_none() && rps.is_none() {
            // Nothing to keep per credential (and no entry a client could multiply).
            return Ok(None);
        }
        let mut credentials = self.credentials.lock().expect("credential limits");
        let limits = credentials
            .entry(principal.credential.clone())
            .or_insert_with(|| CredentialLimits {
                slots: slots.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
                rate: rps
                    .and_then(std::num::NonZeroU32::new)
                    .map(|r| governor::RateLimiter::direct(governor::Quota::per_second(r))),
            });
        if let Some(rate) = &limits.rate
            && rate.check().is_err()
        {
            return Err(Denied {
                status: 429,
                reason: "credential_rate",
                message: format!(
                    "credential `{}` is over its requests per second",
                    principal.credential
                ),
            });
        }
        match &limits.slots {
            None => Ok(None),
            Some(slots) => slots
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| Denied {
                    status: 429,
                    reason: "credential_busy",
                    message: format!(
                        "credential `{}` has as many runs in progress as it may",
                        principal.credential
                    ),
                }),
        }
    }

    async fn run(
        self: &Arc<Self>,
        flow_id: String,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        // Who first: an unauthenticated client learns nothing, not even which flows exist.
        let what = format!("a run of `{flow_id}`");
        let principal = match self.principal(&request) {
            Ok(principal) => principal,
            Err(denied) => return self.refuse(denied, &what),
        };
        if !principal.may_run(&flow_id) {
            let denied = Denied {
                status: 403,
                reason: "flow_not_allowed",
                message: format!(
                    "credential `{}` may not run flow `{flow_id}`",
                    principal.credential
                ),
            };
            return self.refuse(denied, &what);
        }
        let credential_permit = match self.credential_permit(&principal) {
            Ok(permit) => permit,
            Err(denied) => return self.refuse(denied, &what),
        };
        let Some(flow) = self.catalog.find(&flow_id).await else {
            // Not labelled by the asked id: clients must not create series.
            self.metrics.rejected("", "unknown_flow");
            return error_response(
                StatusCode::NOT_FOUND,
                &format!("no flow `{flow_id}` is served here"),
            );
        };
        let settings = match self.settings_for(&request, &principal) {
            Ok(settings) => settings,
            Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
        };
        if request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > self.options.max_body)
        {
            self.metrics.rejected(&flow_id, "too_large");
            linger(request.into_body(), self.options.max_body.saturating_mul(4));
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {} bytes", self.options.max_body),
            );
        }
        if !is_json(&request) {
            self.metrics.rejected(&flow_id, "bad_input");
            linger(request.into_body(), self.options.max_body);
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the entry as JSON with `Content-Type: application/json`",
            );
        }
        // The body before the permit, bounded in size and time: a slow upload
        // holds no run slot.
        let read = Limited::new(request.into_body(), self.options.max_body).collect();
        let body = match tokio::time::timeout(self.options.body_timeout, read).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => {
                self.metrics.rejected(&flow_id, "too_large");
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the body is larger than {} bytes (or unreadable)",
                        self.options.max_body
                    ),
                );
            }
            Err(_) => {
                self.metrics.rejected(&flow_id, "body_timeout");
                let mut response = error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the body did not arrive within {} ms",
                        self.options.body_timeout.as_millis()
                    ),
                );
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.metrics.rejected(&flow_id, "busy");
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{} runs are in progress; try again",
                    self.options.max_concurrent
                ),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        };
        let entry = match std::str::from_utf8(&body) {
            Ok(text) if text.trim().is_empty() => "{}".to_string(),
            Ok(text) if serde_json::from_str::<serde_json::Value>(text).is_ok() => text.to_string(),
            _ => {
                self.metrics.rejected(&flow_id, "bad_input");
                return json_response(
                    StatusCode::BAD_REQUEST,
                    invalid_input_record("the body is not JSON"),
                );
            }
        };
        let server = self.clone();
        let started = Instant::now();
        self.metrics.in_flight.inc();
        let job = tokio::task::spawn_blocking(move || {
            let turn = server.run_on_a_host(&flow, &entry, &settings);
            drop(permit);
            drop(credential_permit);
            turn
        });
        // The run stops itself at --run-timeout (RunSettings::time_limit);
        // this only bounds a run stuck in a host call past that.
        let outcome =
            tokio::time::timeout(self.options.run_timeout + RUN_TIMEOUT_BACKSTOP, job).await;
        self.metrics.in_flight.dec();
        let (status, body, label) = match outcome {
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                json!({"error": {"kind": "host", "message": format!("the run took longer than {} ms", self.options.run_timeout.as_millis())}}).to_string(),
                "timeout",
            ),
            Ok(Err(join)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": {"kind": "host", "message": format!("the run panicked: {join}")}}).to_string(),
                "failed",
            ),
            Ok(Ok(Ok(turn))) => {
                let label = if matches!(turn, Turn::Waiting { .. }) { "waiting" } else { "completed" };
                match turn.to_json() {
                    Ok(value) => (StatusCode::OK, value.to_string(), label),
                    Err(failure) => (StatusCode::INTERNAL_SERVER_ERROR, self.public(&flow_id, &failure), "failed"),
                }
            }
            Ok(Ok(Err(failure @ Failure::RunTimeout(_)))) => {
                (StatusCode::GATEWAY_TIMEOUT, self.public(&flow_id, &failure), "timeout")
            }
            Ok(Ok(Err(failure))) => (status_of(&failure), self.public(&flow_id, &failure), "failed"),
        };
        self.metrics.finished(&flow_id, label, started.elapsed());
        json_response(status, body)
    }

    /// A failure's record for the client: logged in full, sent without the
    /// server's paths.
    fn public(&self, flow_id: &str, failure: &Failure) -> String {
        tracing::warn!(flow = flow_id, "run failed: {failure:#}");
        let root = self.catalog.root();
        failure.to_json_with(|message| crate::redact::without_paths(message, root))
    }

    /// The run's tenant (its principal's) and session.
    fn settings_for(
        &self,
        request: &Request<Incoming>,
        principal: &Principal,
    ) -> Result<RunSettings, String> {
        let header = |name: &str| single_header(request, name).map_err(|d| d.message);
        let mut settings = self.options.settings.clone();
        settings.env = principal.env.clone();
        settings.tenant = principal.tenant.clone();
        settings.team = principal.team.clone();
        settings.user = principal.user.clone();
        settings.session = header("x-greentic-session")?.map(|id| SessionSettings {
            id,
            ttl: self.options.session_ttl,
            wait: self.options.session_wait,
            restart: false,
        });
        settings.observer = Some(self.metrics.clone() as Arc<dyn NodeObserver>);
        Ok(settings)
    }

    /// Runs on a pooled host (a new one when all are busy).
    fn run_on_a_host(
        &self,
        flow: &Path,
        entry: &str,
        settings: &RunSettings,
    ) -> Result<Turn, Failure> {
        let pooled = self.hosts.lock().expect("host pool").pop();
        let mut host = match pooled {
            Some(host) => host,
            None => {
                let options = (self.options.host)().map_err(Failure::Invalid)?;
                Host::new(HostOptions {
                    shared_state: Some(self.shared_store.clone()),
                    state_bindings: self.state_bindings.clone(),
                    ..options
                })
                .map_err(Failure::Internal)?
            }
        };
        let turn = host
            .run_file(flow, entry, settings, 1)
            .pop()
            .unwrap_or_else(|| {
                Err(Failure::Internal(anyhow::anyhow!(
                    "the run produced nothing"
                )))
            });
        self.hosts.lock().expect("host pool").push(host);
        turn
    }
}
