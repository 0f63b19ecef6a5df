//! Sequencing: runs a [`Flow`] from its start node, rendering each node's
//! input, calling its component through a [`NodeInvoker`] (or executing a
//! native node), and following the routing until a node ends the flow.
//!
//! The run context seen by templates and conditions is built by
//! [`crate::context`]; this module owns what happens between nodes: retries,
//! error routing, `vars_out`, emits, `flow.call` / `flow.goto` and the
//! `greentic_control` jump, and turns: a run that waits (`session.wait`, or
//! conditional routing that matches nothing) ends its turn with a
//! [`Snapshot`] that [`Flow::resume`] continues with the next message.

//!
//! Rooms: `api` (what a host gives and gets), `walk` (node to node),
//! `native` (the runner's own nodes), `component` (component calls).

mod api;
mod component;
mod native;
mod walk;

pub use api::{
    DEFAULT_MAX_REDIRECTS, MAX_CALL_DEPTH, NodeCall, NodeFailure, NodeInvoker, RunOptions,
    RunOutcome,
};
use walk::{FlowRef, Run, Start, seed_vars};

use serde_json::{Value, json};

use crate::error::RunError;
use crate::flow::Flow;
use crate::snapshot::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot};

impl Flow {
    /// Runs the flow with `entry` as input and returns its output: the last
    /// node's output, or, when nodes emitted (`emit.*`), the egress list. A
    /// run that would wait for another message is an error here; use
    /// [`Flow::start`] where runs may wait.
    pub fn run(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<Value, RunError> {
        match self.start(entry, invoker, options)? {
            RunOutcome::Completed(output) => Ok(output),
            RunOutcome::Waiting { snapshot, .. } => {
                let Snapshot { flow, node, .. } = *snapshot;
                Err(RunError::Waits {
                    file: self.name.clone(),
                    flow,
                    node,
                })
            }
        }
    }

    /// Runs the flow's first turn with `entry` as input.
    pub fn start(
        &self,
        entry: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let mut run = Run::new(invoker, options, self, 0, 0);
        let vars = seed_vars(self, options.vars.clone())?;
        let mut egress = Vec::new();
        let ended = run.flow(
            FlowRef::Borrowed(self),
            entry,
            vars,
            Start::At(None),
            0,
            &mut egress,
        )?;
        Ok(run.outcome(ended, egress))
    }

    /// Continues a waiting run (`snapshot`, from a turn of this flow) with the
    /// next `message`, which replaces `entry` and `in`; `node.*`, `vars` and
    /// `prev` are the snapshot's. The snapshot must belong to this flow or,
    /// after a `flow.goto`, to a flow of `options.library`, in the very
    /// version that wrote it.
    pub fn resume(
        &self,
        snapshot: &Snapshot,
        message: Value,
        invoker: &mut dyn NodeInvoker,
        options: &RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let refused = |message: String| RunError::Snapshot {
            file: self.name.clone(),
            message,
        };
        if snapshot.format != SNAPSHOT_FORMAT || snapshot.version != SNAPSHOT_VERSION {
            return Err(refused(format!(
                "format `{}` version {} is not this runner's",
                snapshot.format, snapshot.version
            )));
        }
        let flow = if snapshot.flow == self.id {
            FlowRef::Borrowed(self)
        } else {
            match options.library.get(&snapshot.flow) {
                Some(f) => FlowRef::Shared(f.clone()),
                None => {
                    return Err(refused(format!(
                        "the run waits in flow `{}`, which is neither this flow (`{}`) nor one of the flows given with it",
                        snapshot.flow, self.id
                    )));
                }
            }
        };
        let tenant = options.tenant.clone();
        if snapshot.tenant != tenant {
            return Err(refused(format!(
                "the run belongs to tenant `{}`/`{}` (team {:?}, user {:?}), not to this run's",
                snapshot.tenant.env,
                snapshot.tenant.tenant,
                snapshot.tenant.team,
                snapshot.tenant.user
            )));
        }
        if flow.content_hash != snapshot.flow_hash {
            return Err(refused(format!(
                "the run waits in another version of flow `{}` ({}; this one is {}): it cannot be resumed on a changed flow",
                snapshot.flow, snapshot.flow_hash, flow.content_hash
            )));
        }
        // Past a wait's deadline the run takes its timeout route, whatever
        // the message; a host's timeout call before it is refused.
        let mut resume_at = snapshot.node.clone();
        let mut message = message;
        let late = snapshot
            .deadline
            .as_ref()
            .filter(|d| crate::clock::now_ms() >= d.at_ms);
        match (late, &snapshot.deadline) {
            (Some(deadline), _) => {
                let timed_out = json!({
                    "timed_out": true,
                    "deadline": crate::clock::rfc3339_ms(deadline.at_ms),
                    "reason": snapshot.reason,
                    "message": if is_timeout_call(&message) { Value::Null } else { message },
                });
                match &deadline.node {
                    Some(node) => {
                        resume_at = node.clone();
                        message = timed_out;
                    }
                    // `{out: true, status: timeout}`: the run ends as it stood.
                    None => return Ok(RunOutcome::Completed(snapshot.prev.clone())),
                }
            }
            (None, Some(deadline)) if is_timeout_call(&message) => {
                return Err(refused(format!(
                    "the wait's deadline ({}) has not passed",
                    crate::clock::rfc3339_ms(deadline.at_ms)
                )));
            }
            (None, None) if is_timeout_call(&message) => {
                return Err(refused("the run waits without a deadline".into()));
            }
            _ => {}
        }
        let at = flow.node_index(&resume_at).ok_or_else(|| {
            refused(format!(
                "flow `{}` has no node `{}`",
                snapshot.flow, resume_at
            ))
        })?;
        let mut vars = snapshot.vars.clone();
        for (name, value) in &options.vars {
            vars.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let mut run = Run::new(invoker, options, &flow, snapshot.steps, snapshot.redirects);
        let mut egress = Vec::new();
        let start = Start::Resume {
            at,
            redispatch: snapshot.redispatch && resume_at == snapshot.node,
            nodes: snapshot.nodes.clone(),
            prev: snapshot.prev.clone(),
        };
        let ended = run.flow(flow, message, vars, start, 0, &mut egress)?;
        Ok(run.outcome(ended, egress))
    }
}

/// The entry a host resumes a run with when it fires a wait's deadline:
/// `{"greentic_wait_deadline": <Unix ms>}`. A client sending it gains
/// nothing: before the deadline it is refused, after it any message times
/// the wait out.
pub const TIMEOUT_CALL_KEY: &str = "greentic_wait_deadline";

fn is_timeout_call(message: &Value) -> bool {
    message
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(TIMEOUT_CALL_KEY))
}
