//! What the front parts of a self-contained composition share.
//!
//! `host-shim compose` bakes the flow, the flows it reaches and their sidecars
//! into a generated part exporting `greentic:runner/baked-flows`; a front part
//! imports it and the runner's API and runs the baked flow for its caller:
//! `app-front` through `greentic:runner/app`, `http-front` also through
//! `wasi:http/incoming-handler` with host-shim serve's contract (see [`http`]).

pub mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod http;

use std::sync::OnceLock;

use bindings::exports::greentic::runner::app;
use bindings::greentic::runner::baked_flows;
use bindings::greentic::runner::run::{self, FlowSource, RunError, RunOutcome, RunRequest, Tenant};
use serde::Deserialize;

/// One baked flow file, as `compose` writes it.
#[derive(Debug, Deserialize)]
struct BakedSource {
    name: String,
    yaml: String,
    resolve_json: Option<String>,
    resolve_summary_json: Option<String>,
    strict_templating: Option<bool>,
}

impl BakedSource {
    fn to_wit(&self) -> FlowSource {
        FlowSource {
            name: self.name.clone(),
            yaml: self.yaml.clone(),
            resolve_json: self.resolve_json.clone(),
            resolve_summary_json: self.resolve_summary_json.clone(),
            strict_templating: self.strict_templating,
        }
    }
}

/// What `compose --http` decided about requests (serve's flags, baked).
#[derive(Debug, Deserialize)]
pub struct HttpSettings {
    /// The tenant of runs (and the defaults when headers are trusted).
    pub env: String,
    pub tenant: String,
    pub team: Option<String>,
    pub user: Option<String>,
    /// Take the tenant from the `x-greentic-*` headers.
    pub trust_tenant_headers: bool,
    /// Largest request body, in bytes.
    pub max_body: u64,
}

impl Default for HttpSettings {
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

/// The baked document.
#[derive(Debug, Deserialize)]
pub struct Baked {
    /// The main flow's id.
    pub flow_id: String,
    main: BakedSource,
    library: Vec<BakedSource>,
    #[serde(default)]
    pub http: HttpSettings,
}

/// The baked flows, read once per instance.
pub fn baked() -> &'static Baked {
    static BAKED: OnceLock<Baked> = OnceLock::new();
    BAKED.get_or_init(|| {
        // Written by compose together with this part: unreadable means a
        // broken composition, not a caller's mistake.
        serde_json::from_str(&baked_flows::flows_json())
            .expect("the baked-flows part of this composition is not what compose writes")
    })
}

/// Runs the baked flow for `tenant` (a waiting run's next turn when
/// `resume_snapshot` is not empty).
pub fn run_baked(
    entry_json: String,
    tenant: Tenant,
    resume_snapshot: String,
) -> Result<RunOutcome, RunError> {
    let baked = baked();
    run::run(&RunRequest {
        flow: baked.main.to_wit(),
        entry_json,
        // Compose put component i of the plan into slot i.
        bindings: Vec::new(),
        tenant,
        max_steps: None,
        trace_id: String::new(),
        vars_json: String::new(),
        library: baked.library.iter().map(BakedSource::to_wit).collect(),
        resume_snapshot,
    })
}

/// The `greentic:runner/app` export.
pub struct AppFront;

impl app::Guest for AppFront {
    fn flow_id() -> String {
        baked().flow_id.clone()
    }

    fn run(
        entry_json: String,
        tenant: Tenant,
        resume_snapshot: String,
    ) -> Result<RunOutcome, RunError> {
        run_baked(entry_json, tenant, resume_snapshot)
    }
}
