//! One function per subcommand; each returns the exit code.
//!
//! Exit codes: 0 success; 1 the flow ran and failed (a node error, a template
//! that did not render, a routing error, the step limit); 2 the inputs are
//! wrong (invalid flow, `--input`, a missing or invalid component).

use std::process::ExitCode;

use crate::cli::{CheckArgs, Cli, Command, ComponentArgs, ComposeArgs, RunArgs, StateProvider};
use crate::{Failure, Host, HostOptions, RunSettings};

pub(crate) fn exec(cli: Cli) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // First Ctrl-C: ask running nodes to cancel (then stop them); second: quit.
    let _ = ctrlc::set_handler(|| {
        if crate::limits::interrupted_for().is_some() {
            std::process::exit(130);
        }
        eprintln!("host-shim: interrupted; asking running nodes to stop (Ctrl-C again to quit)");
        crate::limits::interrupt();
    });
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Compose(args) => compose(args),
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
    let profile = compose::policy::Profile::select(&common.profile)
        .map_err(|e| Failure::Invalid(e.into()))?;
    Host::new(HostOptions {
        state: common.state.clone(),
        profile,
        component_dirs: common.components.clone(),
        node_limits: crate::limits::NodeLimits {
            wall_time: std::time::Duration::from_millis(common.node_timeout_ms),
            fuel: common.node_fuel,
            memory_bytes: (common.node_memory_mb as usize) << 20,
            max_payload: common.max_payload,
        },
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
        env: args.env.clone(),
        tenant: args.tenant.clone(),
        team: args.team.clone(),
        user: args.user.clone(),
        max_steps: args.max_steps,
        progress: args.progress
            || (!args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr())),
    };
    let outputs = match &args.composed {
        Some(app) => host.run_composed(app, &args.common.flow, &entry, &settings, args.repeat),
        None => host.run_file(&args.common.flow, &entry, &settings, args.repeat),
    };
    for output in outputs {
        match output {
            Ok(output) if args.pretty => {
                let value: serde_json::Value = serde_json::from_str(&output).map_err(|e| {
                    Failure::Internal(anyhow::anyhow!("runner output is not JSON: {e}"))
                })?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).expect("a JSON value serialises")
                );
            }
            Ok(output) => println!("{output}"),
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

fn compose(args: ComposeArgs) -> Result<(), Failure> {
    let profile = compose::policy::Profile::select(&args.common.profile)
        .map_err(|e| Failure::Invalid(e.into()))?;
    let wiring = match args.state_provider {
        StateProvider::Import => compose::StateWiring::Import,
        StateProvider::Memory => compose::StateWiring::Memory,
    };
    let composition = crate::compose_file(
        &args.common.flow,
        args.common.components.clone(),
        profile,
        wiring,
        args.deny_state,
    )?;
    std::fs::write(&args.output, &composition.bytes).map_err(|e| {
        Failure::Invalid(anyhow::anyhow!(
            "cannot write `{}`: {e}",
            args.output.display()
        ))
    })?;
    if !args.common.quiet {
        for node in &composition.nodes {
            let state = match &node.state {
                compose::StateDecision::None => "no state".to_string(),
                compose::StateDecision::Imported => "state: the app's import".to_string(),
                compose::StateDecision::Memory => "state: in-memory, its own".to_string(),
                compose::StateDecision::Denied(why) => format!("state: denied ({why})"),
            };
            eprintln!(
                "host-shim: slot {} <- {} ({}), {state}",
                node.slot,
                node.reference,
                node.path.display()
            );
        }
        eprintln!("host-shim: imports: {}", composition.imports.join(", "));
        eprintln!(
            "host-shim: wrote {} ({} bytes)",
            args.output.display(),
            composition.bytes.len()
        );
    }
    Ok(())
}
