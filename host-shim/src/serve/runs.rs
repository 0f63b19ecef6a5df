//! A run request: the body under its deadline, a run slot, the run on a
//! pooled host, its answer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::respond::{
    busy_response, error_response, invalid_input_record, is_json, json_response, linger,
    single_header, status_of,
};
use super::server::Server;
use crate::auth::{Denied, Principal};
use crate::host::{Failure, Host, RunSettings, SessionSettings, Turn};
use crate::nodes::NodeObserver;

/// How much longer than `--run-timeout` serve waits for a run that was
/// stopped at its deadline but is inside a host call (a state write, an
/// outbound request) that epoch interruption cannot cut short.
pub(super) const RUN_TIMEOUT_BACKSTOP: Duration = Duration::from_secs(5);

/// How a run in the blocking pool ended: past its backstop, panicked, or
/// with the host's answer.
pub(super) type RunOutcome =
    Result<Result<Result<Turn, Failure>, tokio::task::JoinError>, tokio::time::error::Elapsed>;

/// The metrics label of a run's outcome.
pub(super) fn outcome_label(outcome: &RunOutcome) -> &'static str {
    match outcome {
        Err(_) | Ok(Ok(Err(Failure::RunTimeout(_)))) => "timeout",
        Ok(Ok(Ok(Turn::Waiting { .. }))) => "waiting",
        Ok(Ok(Ok(_))) => "completed",
        Ok(Err(_)) | Ok(Ok(Err(_))) => "failed",
    }
}

impl Server {
    pub(super) async fn run(
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
        if self.too_large(&request) {
            return self.refuse_too_large(request.into_body(), &flow_id);
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
        let body = match self.read_body(request.into_body(), &flow_id).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let permit = match self.slots.acquire().await {
            Ok(permit) => permit,
            Err(no_slot) => {
                self.metrics.rejected(&flow_id, no_slot.label());
                return busy_response(no_slot, self.options.max_concurrent, self.options.max_queue);
            }
        };
        let entry = match std::str::from_utf8(&body) {
            Ok(text) if text.trim().is_empty() => "{}".to_string(),
            // Checked, not built: the runner reads the entry itself.
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                text.to_string()
            }
            _ => {
                self.metrics.rejected(&flow_id, "bad_input");
                return json_response(
                    StatusCode::BAD_REQUEST,
                    invalid_input_record("the body is not JSON"),
                );
            }
        };
        let started = Instant::now();
        let outcome = self
            .run_blocking(flow, entry, settings, (permit, credential_permit))
            .await;
        let mut label = outcome_label(&outcome);
        let (status, body) = match outcome {
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                json!({"error": {"kind": "host", "message": format!("the run took longer than {} ms", self.options.run_timeout.as_millis())}}).to_string(),
            ),
            Ok(Err(join)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": {"kind": "host", "message": format!("the run panicked: {join}")}}).to_string(),
            ),
            Ok(Ok(Ok(turn))) => match turn.to_json() {
                Ok(value) => (StatusCode::OK, value.to_string()),
                Err(failure) => {
                    label = "failed";
                    (StatusCode::INTERNAL_SERVER_ERROR, self.public(&flow_id, &failure))
                }
            },
            Ok(Ok(Err(failure @ Failure::RunTimeout(_)))) => {
                (StatusCode::GATEWAY_TIMEOUT, self.public(&flow_id, &failure))
            }
            Ok(Ok(Err(failure))) => (status_of(&failure), self.public(&flow_id, &failure)),
        };
        self.metrics.finished(&flow_id, label, started.elapsed());
        json_response(status, body)
    }

    /// Runs `entry` on a pooled host in the blocking pool, holding `permits`
    /// until it ends, under --run-timeout (and its backstop).
    pub(super) async fn run_blocking<P: Send + 'static>(
        self: &Arc<Self>,
        flow: std::path::PathBuf,
        entry: String,
        settings: RunSettings,
        permits: P,
    ) -> RunOutcome {
        let server = self.clone();
        self.metrics.in_flight.inc();
        let job = tokio::task::spawn_blocking(move || {
            let turn = server.run_on_a_host(&flow, &entry, &settings);
            drop(permits);
            turn
        });
        // The run stops itself at --run-timeout (RunSettings::time_limit);
        // this only bounds a run stuck in a host call past that.
        let outcome =
            tokio::time::timeout(self.options.run_timeout + RUN_TIMEOUT_BACKSTOP, job).await;
        self.metrics.in_flight.dec();
        outcome
    }

    /// A failure's record for the client: logged in full, sent without the
    /// server's paths.
    pub(super) fn public(&self, flow_id: &str, failure: &Failure) -> String {
        tracing::warn!(flow = flow_id, "run failed: {failure:#}");
        let root = self.catalog.root();
        failure.to_json_with(|message| crate::redact::without_paths(message, &root))
    }

    /// The run's tenant (its principal's) and session.
    pub(super) fn settings_for(
        &self,
        request: &Request<Incoming>,
        principal: &Principal,
    ) -> Result<RunSettings, String> {
        let header = |name: &str| single_header(request, name).map_err(|d| d.message);
        let mut settings = self.options.settings.clone();
        settings.scope = principal.scope.clone();
        settings.session = header("x-greentic-session")?.map(|id| SessionSettings {
            id,
            ttl: self.options.session_ttl,
            wait: self.options.session_wait,
            restart: false,
            fire_deadline: None,
        });
        settings.observer = Some(self.metrics.clone() as Arc<dyn NodeObserver>);
        Ok(settings)
    }

    /// Runs on a pooled host (a new one when all are busy).
    pub(super) fn run_on_a_host(
        &self,
        flow: &Path,
        entry: &str,
        settings: &RunSettings,
    ) -> Result<Turn, Failure> {
        self.on_a_host(|host| {
            host.run_file(flow, entry, settings, 1)
                .pop()
                .unwrap_or_else(|| {
                    Err(Failure::Internal(anyhow::anyhow!(
                        "the run produced nothing"
                    )))
                })
        })
    }

    /// `work` on a pooled host (a new sibling when all are busy), given back after.
    pub(super) fn on_a_host<T>(
        &self,
        work: impl FnOnce(&mut Host) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let pooled = self.hosts.lock().expect("host pool").pop();
        let mut host = match pooled {
            Some(host) => host,
            None => self.seed.lock().expect("seed host").sibling(),
        };
        let result = work(&mut host);
        self.hosts.lock().expect("host pool").push(host);
        result
    }
}
