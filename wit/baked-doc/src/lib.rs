//! Plain-data forms of the runner's WIT records that travel as documents:
//! [`FlowSource`] (the runner's `flow-source`, which `runner-core` re-exports)
//! and the JSON document `greentic:runner/baked-flows.flows-json` returns
//! (`wit/baked-flows.wit`): the flows a self-contained composition was built
//! from and what its HTTP front does with requests. One definition, written
//! by `compose` and read by the front parts.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// The baked document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baked {
    /// The main flow's id.
    pub flow_id: String,
    /// The flow the app runs.
    pub main: FlowSource,
    /// The flows it reaches (`flow.call`, `flow.goto`, jumps).
    pub library: Vec<FlowSource>,
    /// What `compose --http` decided about requests.
    #[serde(default)]
    pub http: HttpSettings,
    /// With `compose --provider`: the channel the app is a bot on.
    #[serde(default)]
    pub bot: Option<BotSettings>,
}

/// What the composed bot's parts need: the channel and its provider's
/// grants, decided at composition from the provider's manifest and the
/// profile (as host-shim decides them per call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotSettings {
    /// The channel, as routes name it (`telegram`).
    pub channel: String,
    /// The provider's `config` (a JSON object's text), given to every op.
    pub config_json: String,
    /// Check the channel's webhook signature (`false`: `--unverified-channel`).
    pub verify: bool,
    /// Hosts the provider may call (the profile's `http.allow`; see
    /// [`host_allowed`]); empty: no HTTP.
    pub http_allow: Vec<String>,
    /// Per-request timeout of the provider's HTTP calls, in milliseconds.
    pub http_timeout_ms: u64,
    /// Largest response body the provider is given, in bytes.
    pub http_max_response: u64,
    /// The secrets the provider may read (its manifest's), each from the
    /// environment variable of the same name.
    pub secrets: Vec<String>,
}

/// A flow as given to the runner: its YAML text, a name for messages and the
/// optional resolve sidecars (the runner WIT's `flow-source`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowSource {
    /// Name used in messages, normally the flow file's path.
    pub name: String,
    /// The YGTC document.
    pub yaml: String,
    /// The `<flow file>.resolve.json` sidecar's text, if any.
    pub resolve_json: Option<String>,
    /// The `<flow file>.resolve.summary.json` sidecar's text, if any (packc's
    /// resolved form: `component_id`, `digest`, `source` per node).
    pub resolve_summary_json: Option<String>,
    /// Overrides the flow's `templating:` setting (`Some(true)` = strict).
    pub strict_templating: Option<bool>,
}

/// What an HTTP front needs to know about requests (host-shim serve's flags
/// of the same names), baked with the flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Environment id of the runs' tenant.
    pub env: String,
    /// Tenant id of the runs.
    pub tenant: String,
    /// Team id of the runs.
    pub team: Option<String>,
    /// User id of the runs.
    pub user: Option<String>,
    /// Take the tenant from the `x-greentic-env|tenant|team|user` headers.
    pub trust_tenant_headers: bool,
    /// Largest request body, in bytes.
    pub max_body: u64,
}

impl Default for HttpSettings {
    /// serve's defaults: tenant `local`/`default`, headers not trusted, 1 MiB bodies.
    fn default() -> Self {
        HttpSettings {
            env: "local".into(),
            tenant: "default".into(),
            team: None,
            user: None,
            trust_tenant_headers: false,
            max_body: 1 << 20,
        }
    }
}

/// Whether `host:port` (of a URL with `default_port` for its scheme) is in
/// `allow`: `host` matches the default port, `host:port` that port, `host:*`
/// any port, and a leading `*.` any subdomain. Hosts compare case-insensitively.
pub fn host_allowed(allow: &[String], host: &str, port: u16, default_port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    allow.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        let (pattern_host, pattern_port) = match pattern.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => {
                (h.to_string(), Some(p.to_string()))
            }
            _ => (pattern.clone(), None),
        };
        let pattern_host = pattern_host.trim_start_matches('[').trim_end_matches(']');
        let host_ok = match pattern_host.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern_host == host,
        };
        let port_ok = match pattern_port.as_deref() {
            None => port == default_port,
            Some("*") => true,
            Some(p) => p.parse::<u16>() == Ok(port),
        };
        host_ok && port_ok
    })
}
