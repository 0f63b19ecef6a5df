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
//! with `x-greentic-session`, the next turn of a conversation;
//! `POST /v1/messaging/ingress/{channel}/{tenant}[/{team}]` takes a channel's
//! webhook when channels are configured (`ingress.rs`); `GET /healthz`;
//! `GET /metrics` (Prometheus text). Flows are found by id in the served
//! file, directory or pack and read from disk for each run, so an edited flow
//! is served as edited.

mod admit;
mod body;
mod catalog;
mod channels;
mod ingress;
mod listen;
mod metrics;
mod options;
mod reload;
mod respond;
mod runs;
mod server;
mod slots;
mod ticker;
mod timeouts;

pub use options::{PackReload, ServeOptions};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use hyper_util::rt::TokioIo;

use listen::{AcceptBackoff, connection_cap, shutdown_signal};
use server::Server;

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
    if let Some(messaging) = &state.messaging {
        let mut channels: Vec<&str> = messaging.providers.keys().map(|k| k.name()).collect();
        channels.sort();
        eprintln!(
            "host-shim: channel webhooks at POST /v1/messaging/ingress/{{{}}}/{{tenant}} run flow `{}`",
            channels.join("|"),
            state.options.messaging_flow
        );
    }
    start_schedules(&state)?;
    tokio::spawn(state.clone().fire_deadlines());
    if let Some(reload) = state.options.reload.clone() {
        // Before the first request is accepted.
        state.count_served(&state.catalog.root());
        tokio::spawn(state.clone().watch_pack(reload));
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // On SIGTERM/SIGINT: `/healthz` answers 503 at once, and for `--drain`
    // the server still accepts and serves (a load balancer sees it leave
    // before its connections are refused); then it stops accepting.
    let drain = state.options.drain;
    let mut stop = std::pin::pin!({
        let state = state.clone();
        async move {
            shutdown_signal().await;
            state.stopping.store(true, Ordering::SeqCst);
            if !drain.is_zero() {
                eprintln!(
                    "host-shim: stopping: /healthz answers 503; serving {} ms more before closing the listener",
                    drain.as_millis()
                );
                tokio::time::sleep(drain).await;
            }
        }
    });
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
    // Stopping before the listener goes: a client refused a connection
    // knows every answer from here on says so.
    state.stopping.store(true, Ordering::SeqCst);
    drop(listener);
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

/// Starts the clock of the served schedules, if any.
fn start_schedules(state: &Arc<Server>) -> anyhow::Result<()> {
    let schedules = state.options.schedules.clone();
    if schedules.timers.is_empty() {
        return Ok(());
    }
    let mut scope = state.options.settings.scope.clone();
    if let Some(tenant) = &schedules.tenant {
        scope.tenant = tenant.clone();
    }
    let tenant = crate::caps::state::scope::RunTenant::new(
        &scope.env,
        &scope.tenant,
        scope.team.as_deref(),
        None,
    )?;
    let claims = Arc::new(crate::schedules::claims::TickClaims::new(
        state.store.clone(),
        tenant,
        state.options.tick_lease,
    ));
    let file = schedules
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    eprintln!(
        "host-shim: {} schedule(s) of {file} run for tenant `{}`",
        schedules.timers.len(),
        scope.tenant
    );
    tokio::spawn(state.clone().tick(schedules, claims, scope));
    Ok(())
}
