//! What the fuzz targets share: splitting one input into fields, and a node
//! invoker that echoes its input without sleeping on retries.

use runner_core::{Flow, FlowSource, NodeCall, NodeFailure, NodeInvoker, RunOptions};
use serde_json::Value;

/// Splits `data` at NUL bytes into at most `n` UTF-8 fields (lossy), so one
/// fuzz input can carry a template and a context, a condition and an output...
pub fn fields(data: &[u8], n: usize) -> Vec<String> {
    data.splitn(n, |b| *b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// Echoes every node's rendered input as its output.
pub struct Echo;

impl NodeInvoker for Echo {
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        Ok(call.input.clone())
    }

    fn before_retry(&mut self, _: &NodeCall<'_>, _: &NodeFailure, _: u64) {}
}

/// Loads a flow given as a JSON document (JSON is YAML) with `strict` templating.
pub fn flow_from_json(flow: &Value, strict: bool) -> Result<Flow, runner_core::FlowError> {
    Flow::load(&FlowSource {
        name: "fuzz.ygtc".into(),
        yaml: flow.to_string(),
        strict_templating: Some(strict),
        ..Default::default()
    })
}

/// Run options that keep a looping flow short.
pub fn short_run() -> RunOptions {
    RunOptions {
        max_steps: Some(64),
        ..Default::default()
    }
}
