//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Runs greentic flows: YAML flows whose nodes are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "host-shim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a flow and print the last node's output as JSON on stdout.
    Run(RunArgs),
    /// Validate a flow and its components without running it; print its plan.
    Check(CheckArgs),
}

/// Options shared by commands that load a flow and its components.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// The flow file (YGTC YAML). A `<FLOW>.resolve.json` sidecar next to it is read too.
    pub flow: PathBuf,
    /// Directory to look up bare component names in (`<DIR>/<name>.wasm`); repeatable,
    /// searched in order before the built-in example components.
    #[arg(short = 'c', long = "components", value_name = "DIR")]
    pub components: Vec<PathBuf>,
    /// Where component state lives: `memory` (this process only), `file:PATH`
    /// (embedded database, kept across runs) or `redis://HOST[:PORT][/DB]`.
    #[arg(long, value_name = "SPEC", default_value = "memory")]
    pub state: crate::state_store::StateBackend,
    /// Which components may use state: `default` (those whose manifest declares
    /// it), `no-state`, or the path of a profile file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub profile: String,
    /// Runner component to use instead of the one built with host-shim.
    #[arg(long, value_name = "WASM")]
    pub runner: Option<PathBuf>,
    /// Compile components every time instead of using the on-disk cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print nothing on stderr but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `host-shim run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Flow, components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Entry payload: JSON text, or `@path` to read it from a file. Default `{}`.
    #[arg(short, long, value_name = "JSON|@FILE")]
    pub input: Option<String>,
    /// Environment id of the run's tenant context.
    #[arg(long, default_value = "local")]
    pub env: String,
    /// Tenant id of the run.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Team id of the run.
    #[arg(long)]
    pub team: Option<String>,
    /// User id of the run.
    #[arg(long)]
    pub user: Option<String>,
    /// Maximum node executions (overrides the flow's `max_steps`, default 1000).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Pretty-print the output.
    #[arg(long)]
    pub pretty: bool,
}

/// `host-shim check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Flow, components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
}
