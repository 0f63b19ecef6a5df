//! The flow model (YGTC v2) and its loading: YAML -> validated [`Flow`] with
//! every template and condition compiled. Rooms: `model` (what a loaded
//! flow is), `load` (the document's top level, sidecars), `node` (one node:
//! operation, component call, routing, retry), `provider` (`provider.invoke`).

mod load;
mod model;
mod node;
mod provider;

pub(crate) use model::{Action, Native, Node, RouteWhen};
pub use model::{
    DEFAULT_MAX_STEPS, DEFAULT_OPERATION, Flow, FlowPlan, FlowSource, MAX_RETRY_DELAY_MS,
    NodeIndex, NodePlan, RetryPolicy, is_runner_op_key,
};
