//! Who sees node calls: `--trace` prints them, `serve` counts them.

/// One node call, as an observer sees it.
#[derive(Debug)]
pub struct NodeCallRecord<'a> {
    /// The flow id.
    pub flow: &'a str,
    /// The node id.
    pub node: &'a str,
    /// The component, as the flow names it.
    pub component: &'a str,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// `ok`, `not-ok` or `error:<code>`.
    pub outcome: &'a str,
    /// How long the call took.
    pub elapsed: std::time::Duration,
    /// Log lines the component emitted during the call.
    pub log_lines: u64,
}

/// Sees every node call of a run: `--trace` prints them, `serve` counts them.
pub trait NodeObserver: Send + Sync + std::fmt::Debug {
    /// One call ended.
    fn node_call(&self, call: &NodeCallRecord<'_>);
}

/// `--trace`: one JSON line per node call on stderr.
#[derive(Debug)]
pub struct StderrTrace;

impl NodeObserver for StderrTrace {
    fn node_call(&self, call: &NodeCallRecord<'_>) {
        eprintln!(
            "{}",
            serde_json::json!({
                "trace": "node",
                "flow": call.flow,
                "node": call.node,
                "component": call.component,
                "attempt": call.attempt,
                "outcome": call.outcome,
                "micros": call.elapsed.as_micros() as u64,
                "log_lines": call.log_lines,
            })
        );
    }
}
