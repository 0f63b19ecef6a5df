//! What a request must show before anything runs: a name the server answers
//! to, an origin it trusts, a credential, its credential's share.

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use sha2::Digest;

use super::respond::{error_response, host_name, single_header};
use super::server::{CredentialLimits, Server};
use crate::auth::{Denied, Principal, TenantHeaders};

impl Server {
    /// Whether `name` (a `Host` without its port) may be asked for: a loopback
    /// name, or one of `--allowed-host`. A server bound elsewhere with no
    /// `--allowed-host` takes any (its clients authenticate).
    pub(super) fn host_name_allowed(&self, name: &str) -> bool {
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
    pub(super) fn origin_allowed(&self, request: &Request<Incoming>) -> Result<(), Denied> {
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
    pub(super) fn metrics_allowed(&self, request: &Request<Incoming>) -> Result<(), Denied> {
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
    pub(super) fn refuse(&self, denied: Denied, what: &str) -> Response<Full<Bytes>> {
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
    pub(super) fn principal(&self, request: &Request<Incoming>) -> Result<Principal, Denied> {
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
    pub(super) fn credential_permit(
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
}
