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
