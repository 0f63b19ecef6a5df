//! `greentic:http/http-client@1.1.0` (and `@1.0.0`): real outbound HTTP for
//! approved components, with [ureq](https://crates.io/crates/ureq). Only hosts
//! the profile's `http.allow` lists are reachable (checked again on every
//! redirect hop, which the host follows itself); every request has a timeout
//! (the profile's, or less if the request asks) and a response-size cap.
//! Failures reach the guest as `host-error {code, message}` with the codes
//! `denied`, `invalid-request`, `timeout`, `too-large`, `unavailable`.
//! `allow-insecure` is ignored: TLS certificates are always verified, against
//! the Mozilla roots (webpki-roots) or, with `--http-ca`, the operator's CAs.

mod connect_to;

pub use connect_to::{ConnectRule, ConnectTo};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use greentic_interfaces_wasmtime::host_helpers::v1::http_client::{
    HttpClientErrorV1_1 as HostError, HttpClientHostV1_1, RequestOptionsV1_1 as RequestOptions,
    RequestV1_1 as Request, ResponseV1_1 as Response, TenantCtxV1_1 as TenantCtx,
    add_http_client_compat_to_linker,
};
use ureq::http::Uri;
use wasmtime::component::Linker;

/// Redirect hops the host follows when a request asks it to.
const MAX_REDIRECTS: u32 = 5;

/// How the host makes outbound requests: the profile's limits and the
/// certificates servers are verified against.
#[derive(Debug, Clone, Default)]
pub struct HttpClientConfig {
    /// Per-request timeout (a request may ask for less).
    pub timeout: Duration,
    /// Largest response body.
    pub max_response_bytes: u64,
    /// CA certificates trusted instead of the built-in roots; empty: the
    /// built-in ones.
    pub roots: TrustedRoots,
    /// Where requests for some hosts connect instead (`--connect-to`).
    pub connect_to: ConnectTo,
}

/// CA certificates (`--http-ca`), read once per process.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots(Arc<Vec<ureq::tls::Certificate<'static>>>);

impl TrustedRoots {
    /// The certificates of PEM `files` (each must hold at least one), in
    /// place of the built-in roots (`--http-ca`); no files: the built-in roots.
    pub fn from_pem_files(files: &[PathBuf]) -> anyhow::Result<TrustedRoots> {
        Ok(TrustedRoots(Arc::new(read_pem_files(files, "--http-ca")?)))
    }

    /// The built-in (Mozilla) roots and the CAs of PEM `files` besides them
    /// (`--ca-cert`: an internal or proxy CA, public sites still trusted).
    pub fn builtin_and(files: &[PathBuf]) -> anyhow::Result<TrustedRoots> {
        if files.is_empty() {
            return Ok(TrustedRoots::default());
        }
        let mut certs: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
                .collect();
        certs.extend(read_pem_files(files, "--ca-cert")?);
        Ok(TrustedRoots(Arc::new(certs)))
    }

    /// How many certificates are trusted (0: the built-in roots as ureq has them).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether ureq's built-in roots are used.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The certificates of PEM `files`, each holding at least one (`flag` names them in errors).
fn read_pem_files(
    files: &[PathBuf],
    flag: &str,
) -> anyhow::Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = Vec::new();
    for file in files {
        let pem =
            std::fs::read(file).map_err(|e| anyhow::anyhow!("{flag} `{}`: {e}", file.display()))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert.to_owned()),
                Ok(_) => {}
                Err(e) => anyhow::bail!("{flag} `{}`: {e}", file.display()),
            }
        }
        if certs.len() == before {
            anyhow::bail!("{flag} `{}` holds no PEM certificate", file.display());
        }
    }
    Ok(certs)
}

/// A component instance's outbound HTTP: what the profile allows.
#[derive(Debug, Clone, Default)]
pub struct HttpCtx {
    component: String,
    /// Host patterns (see [`compose::policy::host_allowed`]); empty: no HTTP.
    allow: Vec<String>,
    timeout: Duration,
    max_response_bytes: u64,
    roots: TrustedRoots,
    connect_to: ConnectTo,
}

impl HttpCtx {
    /// HTTP for `component` to the hosts in `allow`.
    pub fn new(component: &str, allow: Vec<String>, config: &HttpClientConfig) -> Self {
        HttpCtx {
            component: component.to_string(),
            allow,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            roots: config.roots.clone(),
            connect_to: config.connect_to.clone(),
        }
    }

    /// Checks a URL against the allow list; returns it parsed.
    fn check(&self, url: &str) -> Result<Uri, HostError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| error("invalid-request", format!("`{url}` is not a URL: {e}")))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(error(
                    "invalid-request",
                    format!("`{url}`: only http and https URLs"),
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| error("invalid-request", format!("`{url}` has no host")))?;
        let port = uri.port_u16().unwrap_or(default_port);
        if !compose::policy::host_allowed(&self.allow, host, port, default_port) {
            tracing::warn!(component = %self.component, host, port, "refused an HTTP request to a host the profile does not allow");
            return Err(error(
                "denied",
                format!("{host}:{port} is not in the profile's http.allow"),
            ));
        }
        Ok(uri)
    }

    fn agent(&self, timeout: Duration) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false);
        if !self.roots.0.is_empty() {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&self.roots.0))
                    .build(),
            );
        }
        if self.connect_to.is_empty() {
            return config.build().into();
        }
        ureq::Agent::with_parts(
            config.build(),
            ureq::unversioned::transport::DefaultConnector::default(),
            connect_to::RoutingResolver {
                rules: self.connect_to.clone(),
                fallback: Default::default(),
            },
        )
    }

    fn send_once(
        &self,
        agent: &ureq::Agent,
        method: &str,
        uri: Uri,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, HostError> {
        let mut builder = ureq::http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| error("invalid-request", e.to_string()))?;
        let mut response = agent.run(request).map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => error(
                    "too-large",
                    format!("the response body exceeds {limit} bytes"),
                ),
                other => transport_error(other),
            })?;
        Ok(Response {
            status,
            headers,
            body: Some(body),
        })
    }
}

fn error(code: &str, message: String) -> HostError {
    HostError {
        code: code.into(),
        message,
    }
}

fn transport_error(e: ureq::Error) -> HostError {
    match e {
        ureq::Error::Timeout(_) => error("timeout", e.to_string()),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => error("invalid-request", e.to_string()),
        other => error("unavailable", other.to_string()),
    }
}

impl HttpClientHostV1_1 for HttpCtx {
    fn send(
        &mut self,
        req: Request,
        opts: Option<RequestOptions>,
        _ctx: Option<TenantCtx>,
    ) -> Result<Response, HostError> {
        let timeout = opts
            .as_ref()
            .and_then(|o| o.timeout_ms)
            .map(|ms| Duration::from_millis(ms.into()).min(self.timeout))
            .unwrap_or(self.timeout);
        let follow = opts
            .as_ref()
            .and_then(|o| o.follow_redirects)
            .unwrap_or(false);
        let agent = self.agent(timeout);
        let mut uri = self.check(&req.url)?;
        let mut method = req.method.to_ascii_uppercase();
        let mut body = req.body;
        let mut headers = req.headers;
        for _ in 0..=MAX_REDIRECTS {
            let response =
                self.send_once(&agent, &method, uri.clone(), &headers, body.as_deref())?;
            let location = response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.clone());
            let (true, Some(location)) =
                (follow && (300..400).contains(&response.status), location)
            else {
                return Ok(response);
            };
            // Each hop is checked against the allow list like the first.
            let next = self.check(&resolve_location(&uri, &location))?;
            if uri.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
                return Err(error(
                    "denied",
                    format!("refused a redirect from https to `{next}` (no downgrade)"),
                ));
            }
            if origin(&next) != origin(&uri) {
                // Credentials were meant for the first origin only.
                headers.retain(|(name, _)| !is_credential(name));
            }
            uri = next;
            if response.status == 303
                || ((response.status == 301 || response.status == 302) && method == "POST")
            {
                method = "GET".into();
                body = None;
            }
        }
        Err(error(
            "unavailable",
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }
}

/// Scheme, host and port: what a credential is scoped to.
fn origin(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    (
        scheme,
        uri.host().unwrap_or_default().to_ascii_lowercase(),
        port,
    )
}

/// Headers that carry credentials, dropped on a redirect to another origin.
fn is_credential(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// A `Location` header resolved against the request URI.
fn resolve_location(base: &Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{scheme}://{authority}{dir}{location}")
    }
}

/// Adds `greentic:http/http-client@1.1.0` and `@1.0.0` to `linker`.
pub fn add_to_linker<T: crate::caps::holds::Holds<HttpCtx>>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    add_http_client_compat_to_linker(linker, |state: &mut T| state.held())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_cert_adds_to_the_builtin_roots_and_http_ca_replaces_them() {
        use base64::Engine as _;
        let der = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let dir = std::env::temp_dir().join(format!("ca-cert-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("one.pem");
        std::fs::write(&file, pem).unwrap();
        let builtin = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert_eq!(
            TrustedRoots::builtin_and(std::slice::from_ref(&file))
                .unwrap()
                .len(),
            builtin + 1
        );
        assert_eq!(
            TrustedRoots::from_pem_files(std::slice::from_ref(&file))
                .unwrap()
                .len(),
            1
        );
        assert!(TrustedRoots::builtin_and(&[]).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
