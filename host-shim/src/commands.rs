//! One function per subcommand; each returns the exit code.
//!
//! Exit codes: 0 success; 1 the flow ran and failed (a node error, a template
//! that did not render, a routing error, the step limit); 2 the inputs are
//! wrong (invalid flow, `--input`, a missing or invalid component).

use std::process::ExitCode;

use crate::cli::{CheckArgs, Cli, Command, ComponentArgs, RunArgs};
use crate::{Failure, Host, HostOptions, RunSettings};

pub(crate) fn exec(cli: Cli) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn host(common: &ComponentArgs) -> Result<Host, Failure> {
    let profile = crate::policy::Profile::select(&common.profile).map_err(Failure::Invalid)?;
    Host::new(HostOptions {
        state: common.state.clone(),
        profile,
        component_dirs: common.components.clone(),
        runner: common.runner.clone(),
        cache: !common.no_cache,
        quiet: common.quiet,
    })
    .map_err(Failure::Invalid)
}

fn run(args: RunArgs) -> Result<(), Failure> {
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
    let mut host = host(&args.common)?;
    let settings = RunSettings {
        env: args.env,
        tenant: args.tenant,
        team: args.team,
        user: args.user,
        max_steps: args.max_steps,
    };
    let output = host.run_file(&args.common.flow, &entry, &settings)?;
    if args.pretty {
        let value: serde_json::Value = serde_json::from_str(&output)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("runner output is not JSON: {e}")))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("a JSON value serialises")
        );
    } else {
        println!("{output}");
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<(), Failure> {
    let mut host = host(&args.common)?;
    let plan = host.check_file(&args.common.flow)?;
    let nodes: Vec<serde_json::Value> = plan
        .nodes
        .iter()
        .map(
            |n| serde_json::json!({"id": n.id, "component": n.component, "operation": n.operation}),
        )
        .collect();
    let out = serde_json::json!({"id": plan.id, "start": plan.start, "nodes": nodes, "components": plan.components});
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("a JSON value serialises")
    );
    Ok(())
}
