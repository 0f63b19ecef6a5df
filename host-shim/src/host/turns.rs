//! Runs and turns: a flow file run once, `--repeat` times, warm, or as a
//! turn of a conversation.

use super::options::{RunSettings, SessionSettings};
use super::outcome::{CheckReport, Failure, NotDue, Turn};
use super::prepare::plan_set;
use super::setup::Host;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::caps::state::StateCtx;
use crate::deadlines::{self, Deadlines, DueWait};
use crate::limits::RunDeadline;
use crate::runner::{
    ErrorKind, FlowSource, RunOutcome, RunRequest, RunnerInstance, SlotBinding, Tenant,
};
use crate::sessions::Sessions;
use serde_json::json;

/// A planned and linked flow on live instances: each [`WarmRun::run`] is one
/// more run on them (no planning, linking or instantiation).
pub struct WarmRun {
    pub(super) instance: RunnerInstance,
    pub(super) request: RunRequest,
}

impl WarmRun {
    /// Runs the flow once more.
    pub fn run(&mut self) -> Result<Turn, Failure> {
        self.request.trace_id = trace_id();
        run_once(&mut self.instance, &self.request).map(|(turn, _)| turn)
    }
}

/// A run request for a planned flow.
pub(super) fn request(
    flow: FlowSource,
    library: Vec<FlowSource>,
    entry_json: &str,
    bindings: Vec<SlotBinding>,
    settings: &RunSettings,
) -> RunRequest {
    RunRequest {
        flow,
        entry_json: entry_json.to_string(),
        bindings,
        tenant: Tenant {
            env: settings.scope.env.clone(),
            tenant: settings.scope.tenant.clone(),
            team: settings.scope.team.clone(),
            user: settings.scope.user.clone(),
        },
        max_steps: settings.max_steps,
        trace_id: String::new(),
        vars_json: if settings.vars.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(settings.vars.clone()).to_string()
        },
        library,
        resume_snapshot: String::new(),
    }
}

/// Runs one turn; with the snapshot to keep when the run waits.
pub(super) fn run_once(
    instance: &mut RunnerInstance,
    request: &RunRequest,
) -> Result<(Turn, Option<String>), Failure> {
    let outcome = instance
        .run(request)
        .map_err(Failure::runner_trap)?
        .map_err(|e| Failure::of_run(e, instance.deadline()))?;
    Ok(match outcome {
        RunOutcome::Completed(output) => (Turn::Completed(output), None),
        RunOutcome::Waiting(waiting) => (
            Turn::Waiting {
                session: None,
                node: waiting.node,
                reason: waiting.reason,
                output: waiting.output_json,
            },
            Some(waiting.snapshot_json),
        ),
    })
}

/// Runs a planned flow `repeat` times on one instance, stopping at a failure.
pub(super) fn run_repeatedly(
    instance: &mut RunnerInstance,
    mut request: RunRequest,
    repeat: u32,
) -> Vec<Result<Turn, Failure>> {
    let mut outputs = Vec::new();
    for _ in 0..repeat {
        request.trace_id = trace_id();
        let output = run_once(instance, &request).map(|(turn, _)| turn);
        let failed = output.is_err();
        outputs.push(output);
        if failed {
            break;
        }
    }
    outputs
}

/// A run id for the envelope's `trace-id`: time and process, no randomness needed.
pub(super) fn trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{:x}", std::process::id())
}

impl Host {
    /// The component files the flow at `path` and the flows it calls use,
    /// resolved as a run would resolve them (nothing is compiled or linked).
    pub fn flow_components(&self, path: &Path) -> Result<Vec<PathBuf>, Failure> {
        let (_, set) = plan_set(
            &self.runner,
            None,
            path,
            self.strict_templating,
            StateCtx::none(),
            RunDeadline::none(),
        )?;
        Ok(self
            .resolved_components(&set)?
            .into_iter()
            .map(|(_, _, resolved)| resolved.path)
            .collect())
    }

    /// Validates the flow at `path`, the flows it calls and that every
    /// component they use loads; returns what it found.
    pub fn check_file(&mut self, path: &Path) -> Result<CheckReport, Failure> {
        let prepared = self.prepare(path, &RunSettings::default())?;
        self.keep_runner(prepared.instance, &[]);
        Ok(prepared.ready.report.clone())
    }

    /// Runs the flow at `path` with the entry payload `entry_json`, `repeat`
    /// times on one instance, and returns each run's output (the last node's
    /// output as JSON text); it stops at the first failure.
    pub fn run_file(
        &mut self,
        path: &Path,
        entry_json: &str,
        settings: &RunSettings,
        repeat: u32,
    ) -> Vec<Result<Turn, Failure>> {
        match self.warm_run(path, entry_json, settings) {
            Ok(mut warm) => {
                let turns = self.run_turns(
                    &mut warm.instance,
                    warm.request,
                    settings,
                    repeat,
                    Some(path),
                );
                self.keep_runner(warm.instance, &turns);
                turns
            }
            Err(failure) => vec![Err(failure)],
        }
    }

    /// Plans and links the flow at `path` once and returns it ready to run
    /// again and again with `entry_json` on the same instances (what
    /// `run --repeat` does, one run at a time; benchmarks time it).
    pub fn warm_run(
        &mut self,
        path: &Path,
        entry_json: &str,
        settings: &RunSettings,
    ) -> Result<WarmRun, Failure> {
        let prepared = self.prepare(path, settings)?;
        let ready = &prepared.ready;
        self.print_notes(&ready.report);
        Ok(WarmRun {
            request: request(
                ready.flow.clone(),
                ready.library.clone(),
                entry_json,
                ready.bindings.clone(),
                settings,
            ),
            instance: prepared.instance,
        })
    }

    /// Keeps the runner instance of a finished run for the next one, cleared,
    /// unless it trapped or failed inside the host (an instance that trapped
    /// cannot be entered again) or the host makes a new one per run.
    pub(super) fn keep_runner(
        &mut self,
        mut instance: RunnerInstance,
        turns: &[Result<Turn, Failure>],
    ) {
        let healthy = !turns
            .iter()
            .any(|t| matches!(t, Err(Failure::Internal(_) | Failure::RunTimeout(_))));
        if self.reuse_runner && healthy && instance.clear_run().is_ok() {
            self.spare_runner = Some(instance);
        }
    }

    /// Runs `request` `repeat` times, or once as a turn of the settings'
    /// session; `flow` is the file a session's deadline is fired with (none
    /// for a composed app: its deadlines take effect at the next message).
    pub(super) fn run_turns(
        &self,
        instance: &mut RunnerInstance,
        request: RunRequest,
        settings: &RunSettings,
        repeat: u32,
        flow: Option<&Path>,
    ) -> Vec<Result<Turn, Failure>> {
        let Some(session) = &settings.session else {
            return run_repeatedly(instance, request, repeat);
        };
        if repeat != 1 {
            return vec![Err(Failure::Invalid(anyhow!(
                "--session runs one turn per invocation; drop --repeat"
            )))];
        }
        vec![self.run_session_turn(instance, request, settings, session, flow)]
    }

    /// One turn of a conversation: claims the session, resumes its waiting
    /// run (or starts one), and keeps the snapshot if the run waits again.
    /// A failed turn leaves the session as it was.
    pub(super) fn run_session_turn(
        &self,
        instance: &mut RunnerInstance,
        mut request: RunRequest,
        settings: &RunSettings,
        session: &SessionSettings,
        flow: Option<&Path>,
    ) -> Result<Turn, Failure> {
        let tenant = settings.run_tenant()?;
        crate::sessions::check_id(&session.id).map_err(Failure::Invalid)?;
        let sessions = Sessions::new(self.state_store.clone(), tenant, session.ttl);
        let lease = sessions
            .claim(&session.id, session.wait)
            .map_err(Failure::Internal)?;
        let previous = lease.snapshot().map_err(Failure::Internal)?;
        let before = previous.as_deref().and_then(deadlines::of_snapshot);
        if let Some(due) = session.fire_deadline {
            // Firing a deadline: only while the session still waits on it.
            if before != Some(due) {
                return Err(Failure::Invalid(NotDue(session.id.clone()).into()));
            }
            request.entry_json = json!({ runner_core::TIMEOUT_CALL_KEY: due }).to_string();
        }
        if session.restart {
            lease.clear().map_err(Failure::Internal)?;
        } else if let Some(snapshot) = previous {
            request.resume_snapshot = snapshot;
        }
        request.trace_id = trace_id();
        let (turn, snapshot) = run_once(instance, &request).map_err(|failure| match failure {
            Failure::Flow(mut e) if e.kind == ErrorKind::Session => {
                e.message.push_str(
                    "; the session keeps it (run the flow it started with, or --new-session to start over)",
                );
                Failure::Flow(e)
            }
            other => other,
        })?;
        match &snapshot {
            Some(snapshot) => lease.save(snapshot),
            None => lease.clear(),
        }
        .map_err(Failure::Internal)?;
        let after = snapshot.as_deref().and_then(deadlines::of_snapshot);
        if before != after
            && let Some(flow) = flow
        {
            let wait = DueWait {
                tenant: settings.scope.clone(),
                session: session.id.clone(),
                // Absolute: a server started elsewhere fires it.
                flow: std::fs::canonicalize(flow).unwrap_or_else(|_| flow.to_path_buf()),
                at_ms: 0,
            };
            // The run waits as saved either way; without the index entry
            // its deadline takes effect at the next message only.
            if let Err(e) = Deadlines::new(self.state_store.clone()).set(&wait, after) {
                tracing::warn!(
                    "session `{}`: the wait's deadline is not indexed: {e:#}",
                    session.id
                );
            }
        }
        Ok(match turn {
            Turn::Waiting {
                node,
                reason,
                output,
                ..
            } => Turn::Waiting {
                session: Some(session.id.clone()),
                node,
                reason,
                output,
            },
            completed => completed,
        })
    }

    pub(super) fn print_notes(&self, report: &CheckReport) {
        if self.quiet {
            return;
        }
        for note in &report.notes {
            eprintln!("warning: {note}");
        }
        for stub in &report.stubbed {
            eprintln!("warning: {stub}: not found; the echo component stands in (--stub-missing)");
        }
    }
}
