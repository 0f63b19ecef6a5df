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
#[cfg(feature = "wasi-http")]
pub mod wire;

use std::sync::OnceLock;

use bindings::exports::greentic::runner::app;
use bindings::greentic::runner::baked_flows;
use bindings::greentic::runner::run::{self, FlowSource, RunError, RunOutcome, RunRequest, Tenant};

pub use greentic_baked_doc::{Baked, BotSettings, FlowSource as BakedSource, HttpSettings};

/// The runner's form of a baked flow file.
fn to_wit(source: &BakedSource) -> FlowSource {
    FlowSource {
        name: source.name.clone(),
        yaml: source.yaml.clone(),
        resolve_json: source.resolve_json.clone(),
        resolve_summary_json: source.resolve_summary_json.clone(),
        strict_templating: source.strict_templating,
    }
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
        flow: to_wit(&baked.main),
        entry_json,
        // Compose put component i of the plan into slot i.
        bindings: Vec::new(),
        tenant,
        max_steps: None,
        trace_id: String::new(),
        vars_json: String::new(),
        library: baked.library.iter().map(to_wit).collect(),
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
