//! One function per subcommand; each returns the exit code.
//!
//! Exit codes: 0 success; 1 the flow ran and failed (a node error, a template
//! that did not render, a routing error, the step limit); 2 the inputs are
//! wrong (invalid flow, `--input`, a missing or invalid component).

mod args;
mod check;
mod compile;
mod compose;
mod pull;
mod run;
mod schedules;
mod serve;
mod setup;

use check::check;
use compile::compile;
use compose::compose;
use pull::pull;
use run::run;
use schedules::schedules;
use serve::serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use check::CheckArgs;
use compile::CompileArgs;
use compose::ComposeArgs;
use pull::PullArgs;
use run::RunArgs;
use schedules::SchedulesArgs;
use serve::ServeArgs;

/// Runs greentic flows: YAML flows whose nodes are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "host-shim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Show components' log lines (telemetry) on stderr; `-vv` adds debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a flow and print the last node's output as JSON on stdout.
    Run(Box<RunArgs>),
    /// Validate a flow (or every flow under a directory) and its components
    /// without running it; print its plan (a line per flow for a directory).
    Check(CheckArgs),
    /// Compose a flow's runner and node components into one component.
    Compose(ComposeArgs),
    /// Serve flows over HTTP: `POST /flows/{flow_id}` with the entry JSON.
    Serve(Box<ServeArgs>),
    /// Compile the components of flows, directories of flows, packs or
    /// component files into the cache ahead of time (e.g. in a container
    /// image), so no run compiles them.
    Compile(CompileArgs),
    /// List the schedules (a bindings file's `timers`) of a directory of
    /// flows or a pack, with their next fire times.
    Schedules(SchedulesArgs),
    /// Fetch the `oci://` components and packs of flows and packs into the
    /// cache and pin them in a lock file (`--lock FILE`), for runs that need
    /// no registry (`run --lock FILE --offline`).
    Pull(PullArgs),
}

pub(crate) fn exec(cli: Cli) -> ExitCode {
    let default_filter = match cli.verbose {
        0 => "warn",
        1 => "warn,component=info",
        _ => "info,component=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // First Ctrl-C: ask running nodes to cancel (then stop them); second: quit.
    // `serve` handles its signals itself (graceful shutdown).
    if !matches!(cli.command, Command::Serve(_)) {
        let _ = ctrlc::set_handler(|| {
            if crate::limits::interrupted_for().is_some() {
                std::process::exit(130);
            }
            eprintln!(
                "host-shim: interrupted; asking running nodes to stop (Ctrl-C again to quit)"
            );
            crate::limits::interrupt();
        });
    }
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Run(args) => run(*args),
        Command::Check(args) => check(args),
        Command::Compose(args) => compose(args),
        Command::Compile(args) => compile(args),
        Command::Schedules(args) => schedules(args),
        Command::Pull(args) => pull(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
