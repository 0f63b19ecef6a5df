//! `host-shim run`.

use serde_json::Value;

use super::args::{ComponentArgs, TenantArgs};
use super::setup::{Sources, flow_file, host_with_state, optimize_later, state_backend};
use crate::{Failure, RunSettings};
use clap::Args;
use std::path::PathBuf;

/// `host-shim run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Flow, components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Entry payload: JSON text, or `@path` to read it from a file. Default `{}`.
    #[arg(short, long, value_name = "JSON|@FILE")]
    pub input: Option<String>,
    /// Who the run acts for.
    #[command(flatten)]
    pub scope: TenantArgs,
    /// A flow variable: `NAME=VALUE`, where VALUE is JSON or else a string;
    /// repeatable. Wins over `parameters.vars_init` defaults.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Maximum node executions (overrides the flow's `max_steps`, default 1000).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Pretty-print the output.
    #[arg(long)]
    pub pretty: bool,
    /// Call `invoke-stream` on components that have it (the 0.4/0.5 ABIs) and
    /// show their progress on stderr; the default when stderr is a terminal.
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never stream, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON line per node call on stderr: flow, node, component,
    /// attempt, outcome, microseconds and the log lines it emitted.
    #[arg(long)]
    pub trace: bool,
    /// Run as a turn of conversation ID: a run that waits for the next
    /// message is kept in the state backend, and the next `run --session ID`
    /// resumes it with its `--input`; a completed run ends the session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// How long a waiting run is kept after its last turn (`30m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: std::time::Duration,
    /// How long a turn waits for another turn of the same session to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub session_wait: std::time::Duration,
    /// Forget the session's waiting run and start the flow anew.
    #[arg(long, requires = "session")]
    pub new_session: bool,
    /// On failure, also print the error record as JSON on stdout:
    /// `{"error": {"kind", "message", "node", "code", "line", "column"}}`.
    #[arg(long)]
    pub json_errors: bool,
    /// Run the flow N times on one instance (state and node instances carry
    /// over), printing one output line per run.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Run this composed component (made by `host-shim compose` from FLOW)
    /// instead of the runner with the flow's components.
    #[arg(long, value_name = "APP.wasm")]
    pub composed: Option<PathBuf>,
}

pub(super) fn run(mut args: RunArgs) -> Result<(), Failure> {
    args.common.flow = flow_file(&args.common.flow, &Sources::of(&args.common)?)?;
    let entry = match args.input.as_deref() {
        None => "{}".to_string(),
        Some(text) => match text.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                Failure::Invalid(anyhow::anyhow!("cannot read --input file `{path}`: {e}"))
            })?,
            None => text.to_string(),
        },
    };
    // Checked here too, so the message can name the option.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&entry) {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "invalid --input JSON: {e}"
        )));
    }
    let vars = parse_vars(&args.vars)?;
    let state = state_backend(&args.common, args.session.is_some())?;
    if args.session.is_some()
        && state == crate::caps::state::StateBackend::Memory
        && !args.common.quiet
    {
        eprintln!("warning: --state memory keeps the session only while this process runs");
    }
    let mut host = host_with_state(&args.common, state)?;
    let settings = RunSettings {
        scope: args.scope.tenant(),
        max_steps: args.max_steps,
        progress: args.progress
            || (!args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr())),
        observer: args.trace.then(|| {
            std::sync::Arc::new(crate::nodes::StderrTrace)
                as std::sync::Arc<dyn crate::nodes::NodeObserver>
        }),
        session: args.session.clone().map(|id| crate::SessionSettings {
            id,
            ttl: args.session_ttl,
            wait: args.session_wait,
            restart: args.new_session,
            fire_deadline: None,
        }),
        vars,
        // A CLI run is stopped by Ctrl-C; each node has its own budget.
        time_limit: None,
    };
    let outputs = match &args.composed {
        Some(app) => host.run_composed(app, &args.common.flow, &entry, &settings, args.repeat),
        None => host.run_file(&args.common.flow, &entry, &settings, args.repeat),
    };
    optimize_later(&host);
    for output in outputs {
        match output {
            Ok(turn) => {
                if let crate::Turn::Waiting {
                    session: None,
                    node,
                    ..
                } = &turn
                    && !args.common.quiet
                {
                    eprintln!(
                        "host-shim: the run waits at node `{node}` for the next message; run it with --session ID to continue it"
                    );
                }
                let value = turn.to_json()?;
                if args.pretty {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&value).expect("a JSON value serialises")
                    );
                } else {
                    println!("{value}");
                }
            }
            Err(failure) => {
                if args.json_errors {
                    println!("{}", failure.to_json());
                }
                return Err(failure);
            }
        }
    }
    Ok(())
}

/// `--var NAME=VALUE`: VALUE is JSON when it parses as JSON, else a string.
pub(super) fn parse_vars(specs: &[String]) -> Result<serde_json::Map<String, Value>, Failure> {
    let mut vars = serde_json::Map::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            return Err(Failure::Invalid(anyhow::anyhow!(
                "invalid --var `{spec}`: expected NAME=VALUE"
            )));
        };
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}
