//! The server's state and its router.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::catalog::Catalog;
use super::channels::MessagingHost;
use super::metrics::Metrics;
use super::options::ServeOptions;
use super::respond::{error_response, json_response};
use crate::host::{Host, HostOptions};

/// What the server holds for every request.
pub(super) struct Server {
    pub(super) options: ServeOptions,
    pub(super) catalog: Catalog,
    /// Hosts not running now: one per run slot at most, made on demand as
    /// siblings of `seed` (one engine, one allocator pool, one runner).
    pub(super) hosts: Mutex<Vec<Host>>,
    pub(super) seed: Mutex<Host>,
    pub(super) slots: super::slots::RunSlots,
    pub(super) metrics: Arc<Metrics>,
    pub(super) registry: Registry,
    pub(super) stopping: AtomicBool,
    /// Per credential: runs in progress, and requests per second.
    pub(super) credentials: Mutex<HashMap<String, CredentialLimits>>,
    /// Channels served, when any.
    pub(super) messaging: Option<MessagingHost>,
    /// The state backend all hosts share (scheduled ticks are claimed in it).
    pub(super) store: std::sync::Arc<dyn greentic_state::StateStore>,
}

/// What one credential may still do.
pub(super) struct CredentialLimits {
    pub(super) slots: Option<Arc<tokio::sync::Semaphore>>,
    pub(super) rate: Option<governor::DefaultDirectRateLimiter>,
}

impl Server {
    pub(super) fn new(options: ServeOptions) -> anyhow::Result<Server> {
        let catalog = Catalog::new(&options.target, options.rescan_every)?;
        let first = options.host.clone();
        let shared_store = first.state.open()?;
        // One host made at start: a broken runner or engine fails here.
        let seed = Host::new(HostOptions {
            shared_state: Some(shared_store.clone()),
            concurrent_runs: options.max_concurrent.max(1),
            ..first
        })?;
        let mut registry = Registry::with_prefix("greentic");
        let metrics = Arc::new(Metrics::register(&mut registry));
        registry.register(
            "catalog_scans",
            "Rescans of the served flows (at start, and for an unknown id at most once per --rescan-interval)",
            catalog.scans.clone(),
        );
        let messaging = MessagingHost::new(&options, shared_store.clone())?;
        Ok(Server {
            store: shared_store,
            messaging,
            slots: super::slots::RunSlots::new(
                options.max_concurrent,
                options.max_queue,
                options.queue_timeout,
            ),
            catalog,
            hosts: Mutex::new(vec![seed.sibling()]),
            seed: Mutex::new(seed),
            metrics,
            registry,
            stopping: AtomicBool::new(false),
            credentials: Mutex::new(HashMap::new()),
            options,
        })
    }

    pub(super) async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
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
                self.metrics.queued.set(self.slots.waiting() as i64);
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
            (Method::POST, p) if p.starts_with("/v1/messaging/ingress/") => {
                self.ingress(request).await
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
}
