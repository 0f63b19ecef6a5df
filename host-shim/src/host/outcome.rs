//! How a run ends: a [`Turn`] or a [`Failure`] (with its exit code and JSON record).

use std::path::PathBuf;

use anyhow::anyhow;
use compose::SourceError;

use crate::runner::{ErrorKind, FlowPlan, RunError};

/// How one run (or turn) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The flow ended: its output (JSON text).
    Completed(String),
    /// The run waits for the next message.
    Waiting {
        /// The session keeping it, if any.
        session: Option<String>,
        /// The node it resumes at.
        node: String,
        /// The `session.wait` reason, if any.
        reason: Option<String>,
        /// What this turn answers (JSON text).
        output: String,
    },
}

impl Turn {
    /// What `run` prints: the output, or for a waiting run
    /// `{"status": "waiting", "session", "node", "reason", "output"}`.
    pub fn to_json(&self) -> Result<serde_json::Value, Failure> {
        let parse = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| Failure::Internal(anyhow!("the runner's output is not JSON: {e}")))
        };
        Ok(match self {
            Turn::Completed(output) => parse(output)?,
            Turn::Waiting {
                session,
                node,
                reason,
                output,
            } => {
                let mut record = serde_json::Map::new();
                record.insert("status".into(), "waiting".into());
                if let Some(session) = session {
                    record.insert("session".into(), session.clone().into());
                }
                record.insert("node".into(), node.clone().into());
                if let Some(reason) = reason {
                    record.insert("reason".into(), reason.clone().into());
                }
                record.insert("output".into(), parse(output)?);
                serde_json::Value::Object(record)
            }
        })
    }
}

/// Why a run did not produce an output.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The inputs are wrong: flow file, `--input`, components.
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    /// The runner refused the flow when planning it (invalid YAML, flow or template).
    #[error("{}", .0.message)]
    InvalidFlow(RunError),
    /// The runner reported an error while running (failed node, routing, ...).
    #[error("{}", .0.message)]
    Flow(RunError),
    /// The runner itself failed (a trap in the runner is a bug).
    #[error("{0:#}")]
    Internal(anyhow::Error),
    /// The run overstayed [`RunSettings::time_limit`] and was stopped.
    #[error("the run exceeded its time limit of {} ms and was stopped", .0.as_millis())]
    RunTimeout(std::time::Duration),
}

impl Failure {
    /// A trap of the runner: its run's deadline, else an internal failure.
    pub(super) fn runner_trap(trap: wasmtime::Error) -> Failure {
        if let Some(crate::limits::LimitError::RunTime { limit }) =
            trap.downcast_ref::<crate::limits::LimitError>()
        {
            return Failure::RunTimeout(*limit);
        }
        Failure::Internal(anyhow::Error::from(trap).context("the runner component trapped"))
    }

    /// A run error: a node stopped by the run's deadline makes the run's
    /// failure a [`Failure::RunTimeout`], whatever the flow did after.
    pub(super) fn of_run(error: RunError, deadline: crate::limits::RunDeadline) -> Failure {
        match deadline.passed() {
            Some(crate::limits::LimitError::RunTime { limit })
                if error.code.as_deref() == Some(crate::limits::RUN_TIMEOUT_CODE) =>
            {
                Failure::RunTimeout(limit)
            }
            _ => Failure::Flow(error),
        }
    }
}

impl Failure {
    /// The process exit code for this failure (see `host-shim --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) | Failure::InvalidFlow(_) => 2,
            Failure::Flow(e) => match e.kind {
                ErrorKind::InvalidFlow
                | ErrorKind::InvalidInput
                | ErrorKind::Binding
                | ErrorKind::Session => 2,
                ErrorKind::Template | ErrorKind::Routing | ErrorKind::Node => 1,
            },
            Failure::Internal(_) | Failure::RunTimeout(_) => 1,
        }
    }

    /// `{"error": {...}}`: the runner's error record (`kind` as in WIT), or for
    /// host failures `kind` `host` and the message. Compact, fields in WIT order,
    /// so every engine's harness prints the same bytes.
    pub fn to_json(&self) -> String {
        self.to_json_with(|message| message.to_string())
    }

    /// [`Failure::to_json`] with the message passed through `message` (a
    /// server takes its paths out, see [`crate::redact`]).
    pub fn to_json_with(&self, message: impl Fn(&str) -> String) -> String {
        let record = match self.run_error() {
            Some(e) => serde_json::json!({
                "kind": error_kind_name(e.kind),
                "message": message(&e.message),
                "node": e.node,
                "code": e.code,
                "line": e.line,
                "column": e.column,
            }),
            None => serde_json::json!({
                // A busy session is the conversation's state, as the
                // runner's own session errors are.
                "kind": if self.is_session_busy() { "session" } else { "host" },
                "message": message(&self.to_string()), "node": null, "code": null, "line": null, "column": null,
            }),
        };
        serde_json::json!({ "error": record }).to_string()
    }

    /// Whether another turn of the session held it past the wait.
    pub fn is_session_busy(&self) -> bool {
        matches!(self, Failure::Internal(e) if e.downcast_ref::<crate::sessions::SessionBusy>().is_some())
    }

    /// Whether a fired deadline found its session no longer waiting on it.
    pub fn is_not_due(&self) -> bool {
        matches!(self, Failure::Invalid(e) if e.downcast_ref::<NotDue>().is_some())
    }

    /// The runner's error record, for `Flow` failures.
    pub fn run_error(&self) -> Option<&RunError> {
        match self {
            Failure::Flow(e) | Failure::InvalidFlow(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Invalid(e.into())
    }
}

/// What `check` found out about one flow.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The flow's plan.
    pub plan: FlowPlan,
    /// Flows it reaches with `flow.call` / `flow.goto`, by file.
    pub calls: Vec<PathBuf>,
    /// Notes from the runner about every flow of the set (`file: note`).
    pub notes: Vec<String>,
    /// Components the echo stand-in replaced (`--stub-missing`): `node: reference`.
    pub stubbed: Vec<String>,
    /// Called flow ids that no file provides.
    pub missing_flows: Vec<String>,
}

pub(super) fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidFlow => "invalid-flow",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Template => "template",
        ErrorKind::Routing => "routing",
        ErrorKind::Node => "node",
        ErrorKind::Binding => "binding",
        ErrorKind::Session => "session",
    }
}

/// A deadline fired for a session that no longer waits on it (a later turn
/// answered it, or the session expired): nothing to do.
#[derive(Debug, thiserror::Error)]
#[error("session `{0}` no longer waits on that deadline")]
pub struct NotDue(pub String);
