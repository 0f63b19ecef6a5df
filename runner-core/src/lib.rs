//! The flow logic of the greentic Wasm-in-Wasm runner: YGTC flow parsing,
//! payload templating and sequencing. Pure logic, no I/O.
//!
//! The same code runs in two places:
//! - natively, for tests, benchmarks and tools (`compose` uses [`Flow::plan`]);
//! - as the `runner` component (wasm32-wasip2, `wit/runner.wit`), where the
//!   [`guest`](crate) module maps the `run` export onto [`Flow`] and node calls
//!   onto the component's node-slot imports.
//!
//! A run goes: [`FlowSource`] --[`Flow::load`]--> [`Flow`] (every template and
//! condition compiled) --[`Flow::run`] with a [`NodeInvoker`]--> final output.
//!
//! ```
//! use runner_core::{Flow, FlowSource, NodeCall, NodeFailure, RunOptions};
//! use serde_json::{json, Value};
//!
//! let source = FlowSource {
//!     name: "hello.yaml".into(),
//!     yaml: "id: hello\nnodes:\n  greet:\n    echo:\n      text: \"hi {{entry.name}}\"\n".into(),
//!     ..Default::default()
//! };
//! let flow = Flow::load(&source)?;
//! let mut echo = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> { Ok(call.input.clone()) };
//! let out = flow.run(json!({"name": "Ada"}), &mut echo, &RunOptions::default())?;
//! assert_eq!(out, json!({"text": "hi Ada"}));
//! # Ok::<(), runner_core::RunError>(())
//! ```
#![deny(missing_docs)]

mod cbor;
mod clock;
mod condition;
mod context;
mod error;
mod flow;
#[cfg(target_arch = "wasm32")]
mod guest;
mod run;
mod snapshot;
mod template;
mod yaml;

pub use cbor::{cbor_to_json, json_to_cbor};
pub use context::Tenant;
pub use error::{FlowError, Position, RunError, TemplateError};
pub use flow::{
    DEFAULT_MAX_STEPS, DEFAULT_OPERATION, Flow, FlowPlan, FlowSource, MAX_RETRY_DELAY_MS, NodePlan,
    RetryPolicy, is_runner_op_key,
};
pub use run::{
    DEFAULT_MAX_REDIRECTS, MAX_CALL_DEPTH, NodeCall, NodeFailure, NodeInvoker, RunOptions,
    RunOutcome, TIMEOUT_CALL_KEY,
};
pub use snapshot::{
    MAX_SNAPSHOT_BYTES, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot, SnapshotError, WaitDeadline,
};
#[cfg(fuzzing)]
pub use template::render_both_ways;

/// Parses the entry payload; an empty (or all-whitespace) text is `{}`.
pub fn parse_entry(text: &str) -> Result<serde_json::Value, RunError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| RunError::InvalidInput(e.to_string()))
}
