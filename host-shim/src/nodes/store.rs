//! What a node component's Store holds.

use greentic_interfaces_wasmtime::component_v0_6::greentic::component::control;
use greentic_interfaces_wasmtime::component_v0_6::greentic::types_core::core::NodeError;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::{Capabilities, HasCapabilities};
use crate::limits::{Deadline, RunDeadline, StoreLimiter};

/// What a node component's Store holds: WASI, one context per host
/// capability (empty unless approved), limits.
pub struct NodeState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) caps: Capabilities,
    pub(super) limiter: StoreLimiter,
    pub(super) deadline: Deadline,
    /// The whole run's deadline: stops the node too.
    pub(super) run_deadline: RunDeadline,
}

impl HasCapabilities for NodeState {
    fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.caps
    }
}

impl WasiView for NodeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl NodeState {
    /// True once the invocation's budget is spent or the user pressed Ctrl-C;
    /// the component then has a grace period to return before it is stopped.
    pub(crate) fn should_cancel(&self) -> bool {
        self.deadline.should_cancel()
    }
}

impl control::Host for NodeState {
    fn should_cancel(&mut self) -> bool {
        NodeState::should_cancel(self)
    }

    /// Nothing to schedule here; the epoch check right after this call stops
    /// a component past its grace period.
    fn yield_now(&mut self) {}
}

/// A node failure the host makes (not the component): one line, not retryable.
pub(crate) fn node_error(code: &str, message: String) -> NodeError {
    NodeError {
        code: code.into(),
        message: message.replace('\n', " "),
        retryable: false,
        backoff_ms: None,
        details: None,
    }
}
