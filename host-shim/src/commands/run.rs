//! `host-shim run`.

use serde_json::Value;

use super::setup::{flow_file, host_with_state, optimize_later, state_backend};
use crate::cli::RunArgs;
use crate::{Failure, RunSettings};

pub(super) fn run(mut args: RunArgs) -> Result<(), Failure> {
    args.common.flow = flow_file(&args.common.flow)?;
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
        env: args.scope.env.clone(),
        tenant: args.scope.tenant.clone(),
        team: args.scope.team.clone(),
        user: args.scope.user.clone(),
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
