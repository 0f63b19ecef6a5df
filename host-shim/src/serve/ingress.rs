//! `POST /v1/messaging/ingress/{channel}/{tenant}[/{team}[/{handler}]]`: a
//! channel's webhook (greentic-start's route). The body is read under the
//! usual limits, the webhook verified with the route tenant's secret before
//! anything runs (401 otherwise), then — on a run slot and a pooled host —
//! the provider, the app flow and the replies ([`crate::messaging`]); the
//! channel gets the provider's answer.

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::respond::{busy_response, error_response};
use super::runs::RUN_TIMEOUT_BACKSTOP;
use super::server::Server;
use crate::host::{Failure, SessionSettings};
use crate::messaging::{BearerCheck, ChannelKind, Webhook, verify};

/// The route's parts: channel, tenant, team.
fn route(path: &str) -> Option<(&str, &str, Option<&str>)> {
    let rest = path.strip_prefix("/v1/messaging/ingress/")?;
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let channel = parts.next()?;
    let tenant = parts.next()?;
    let team = parts.next();
    // A handler segment is accepted (greentic-start's) and not used.
    let _handler = parts.next();
    parts.next().is_none().then_some((channel, tenant, team))
}

impl Server {
    pub(super) async fn ingress(
        self: &Arc<Self>,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let Some((channel, tenant, team)) = route(&path) else {
            return error_response(
                StatusCode::NOT_FOUND,
                "use POST /v1/messaging/ingress/{channel}/{tenant}[/{team}[/{handler}]]",
            );
        };
        let (Some(host), Some(kind)) = (&self.messaging, ChannelKind::parse(channel)) else {
            return error_response(StatusCode::NOT_FOUND, "no such channel is served here");
        };
        if !host.providers.contains_key(&kind) {
            return error_response(StatusCode::NOT_FOUND, "no such channel is served here");
        }
        let channel = kind.name();
        // The route names the tenant; the default team is no team.
        let team = team.filter(|t| *t != "default");
        let mut settings = self.options.settings.clone();
        settings.scope.tenant = tenant.to_string();
        settings.scope.team = team.map(str::to_string);
        settings.scope.user = None;
        if let Err(e) = crate::caps::state::scope::RunTenant::new(
            &settings.scope.env,
            &settings.scope.tenant,
            settings.scope.team.as_deref(),
            None,
        ) {
            return error_response(StatusCode::NOT_FOUND, &format!("{e}"));
        }
        if self.too_large(&request) {
            return self.refuse_too_large(request.into_body(), "");
        }
        let (parts, body) = request.into_parts();
        let body = match self.read_body(body, "").await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let header = |name: &str| {
            let mut values = parts.headers.get_all(name).iter();
            let first = values.next()?.to_str().ok()?.to_string();
            // A repeated signature header is not a signature.
            values.next().is_none().then_some(first)
        };
        if !self.options.unverified.contains(&kind) {
            let key = greentic_messaging_core::secret_key(kind).unwrap_or_default();
            let secret = self.options.secrets.host_secret(tenant, key);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            if let Err(unverified) = verify(
                kind,
                header,
                &body,
                secret,
                self.options
                    .bot_framework_keys
                    .as_deref()
                    .map(|keys| keys as &dyn BearerCheck),
                now,
            ) {
                self.metrics.webhook(channel, "", "unverified", 1);
                tracing::warn!(channel, tenant, "refused a webhook: {unverified}");
                return error_response(StatusCode::UNAUTHORIZED, &unverified.to_string());
            }
        }
        let catalog = host.app_for(tenant, team).unwrap_or(&self.catalog);
        let Some(app) = catalog.find_app(&self.options.messaging_flow).await else {
            self.metrics.webhook(channel, tenant, "refused", 1);
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "no flow `{}` (nor one single flow of type `messaging`) is served here to take channel messages",
                    self.options.messaging_flow
                ),
            );
        };
        let permit = match self.slots.acquire().await {
            Ok(permit) => permit,
            Err(no_slot) => {
                self.metrics.webhook(channel, tenant, no_slot.label(), 1);
                return busy_response(no_slot, self.options.max_concurrent, self.options.max_queue);
            }
        };
        let webhook = Webhook {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body: body.to_vec(),
        };
        let session = SessionSettings {
            id: String::new(),
            ttl: self.options.session_ttl,
            wait: self.options.session_wait,
            restart: false,
            fire_deadline: None,
        };
        settings.observer = Some(self.metrics.clone() as Arc<dyn crate::nodes::NodeObserver>);
        let server = self.clone();
        self.metrics.in_flight.inc();
        let job = tokio::task::spawn_blocking(move || {
            let messaging = server.messaging.as_ref().expect("checked above");
            let provider = &messaging.providers[&kind];
            let result = server.on_a_host(|host| {
                messaging
                    .messaging
                    .ingest(host, provider, &app, &webhook, &settings, &session)
            });
            drop(permit);
            result
        });
        let outcome =
            tokio::time::timeout(self.options.run_timeout + RUN_TIMEOUT_BACKSTOP, job).await;
        self.metrics.in_flight.dec();
        match outcome {
            Ok(Ok(Ok((answer, report)))) => {
                for (outcome, n) in [
                    ("ran", report.ran),
                    ("duplicate", report.duplicates),
                    ("from_bot", report.from_bots),
                    ("run_failed", report.runs_failed),
                ] {
                    self.metrics.webhook(channel, tenant, outcome, n);
                }
                self.metrics.reply(channel, tenant, "sent", report.sent);
                self.metrics
                    .reply(channel, tenant, "failed", report.send_failed);
                self.metrics
                    .reply(channel, tenant, "unreadable", report.unreadable);
                let mut response = Response::new(Full::new(Bytes::from(answer.body)));
                *response.status_mut() =
                    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
                for (name, value) in answer.headers {
                    if let (Ok(name), Ok(value)) =
                        (HeaderName::try_from(name), HeaderValue::try_from(value))
                    {
                        response.headers_mut().append(name, value);
                    }
                }
                response
            }
            Ok(Ok(Err(failure))) => {
                self.metrics.webhook(channel, tenant, "failed", 1);
                tracing::warn!(channel, tenant, "a webhook failed: {failure:#}");
                // The channel retries on a 5xx; the events it carries run then.
                let status = match failure {
                    Failure::RunTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                error_response(status, "the webhook could not be processed")
            }
            Ok(Err(_)) | Err(_) => {
                self.metrics.webhook(channel, tenant, "failed", 1);
                error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the webhook could not be processed in time",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn ingress_routes_name_channel_tenant_and_team() {
        assert_eq!(
            route("/v1/messaging/ingress/telegram/acme"),
            Some(("telegram", "acme", None))
        );
        assert_eq!(
            route("/v1/messaging/ingress/messaging-slack/acme/sales/events"),
            Some(("messaging-slack", "acme", Some("sales")))
        );
        assert_eq!(route("/v1/messaging/ingress/telegram"), None);
        assert_eq!(route("/v1/messaging/ingress/a/b/c/d/e"), None);
        assert_eq!(route("/flows/x"), None);
    }
}
