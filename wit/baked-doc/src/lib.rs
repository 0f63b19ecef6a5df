//! The JSON document `greentic:runner/baked-flows.flows-json` returns
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
    pub main: BakedSource,
    /// The flows it reaches (`flow.call`, `flow.goto`, jumps).
    pub library: Vec<BakedSource>,
    /// What `compose --http` decided about requests.
    #[serde(default)]
    pub http: HttpSettings,
}

/// One flow file with its sidecars, as the runner's `flow-source` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakedSource {
    /// Name used in messages (the file's path at composition).
    pub name: String,
    /// The YGTC document.
    pub yaml: String,
    /// `<flow>.resolve.json`, if any.
    pub resolve_json: Option<String>,
    /// `<flow>.resolve.summary.json`, if any.
    pub resolve_summary_json: Option<String>,
    /// The templating mode forced at composition, if any.
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
