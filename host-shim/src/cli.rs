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
}

/// `host-shim compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Flow files, directories of flows, packs (`pack.yaml` directories or
    /// `.gtpack` archives) and component `.wasm` files.
    #[arg(required = true, value_name = "FLOW|DIR|PACK|WASM")]
    pub targets: Vec<PathBuf>,
    /// Directory to look up bare component names in; repeatable.
    #[arg(short = 'c', long = "components", value_name = "DIR")]
    pub components: Vec<PathBuf>,
    /// Print nothing on stderr but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options shared by commands that load a flow and its components.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// The flow file (YGTC YAML; its `.resolve.json` / `.resolve.summary.json`
    /// sidecars are read too), a pack directory (`pack.yaml`) or a `.gtpack`
    /// archive; `PACK#FLOW_ID` picks a pack's flow (default: its entry flow).
    pub flow: PathBuf,
    /// Directory to look up bare component names in (`<DIR>/<name>.wasm`); repeatable,
    /// searched in order before the built-in example components.
    #[arg(short = 'c', long = "components", value_name = "DIR")]
    pub components: Vec<PathBuf>,
    /// Where component state (and conversations) live: `memory` (this process
    /// only), `file:PATH` (embedded database, kept across runs) or
    /// `redis://HOST[:PORT][/DB]`. Default: `memory`; with `--session`, the
    /// file `state.redb` in greentic-runner's data directory.
    #[arg(long, value_name = "SPEC")]
    pub state: Option<crate::caps::state::StateBackend>,
    /// Which components may use state: `default` (those whose manifest declares
    /// it), `no-state`, or the path of a profile file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub profile: String,
    /// Wall-clock budget per node invocation, for components whose manifest sets
    /// no `limits.wall_time_ms` (a node's `timeout` in the flow can shorten it).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub node_timeout_ms: u64,
    /// Linear memory cap per node component (all its memories together), when
    /// its manifest sets no `limits.memory_mb`.
    #[arg(long, value_name = "MB", default_value_t = 256)]
    pub node_memory_mb: u64,
    /// Memory cap of the runner component's store (the run's context; for a
    /// composed app, everything in it), all its memories together.
    #[arg(long, value_name = "MB", default_value_t = (crate::limits::RUNNER_MEMORY_BYTES >> 20) as u64)]
    pub runner_memory_mb: u64,
    /// Fuel per node invocation, when its manifest sets no `limits.fuel` (default: unmetered).
    #[arg(long, value_name = "N")]
    pub node_fuel: Option<u64>,
    /// Largest payload into or out of a node, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_payload: usize,
    /// Runner component to use instead of the one built with host-shim.
    #[arg(long, value_name = "WASM")]
    pub runner: Option<PathBuf>,
    /// Compile components every time instead of using the on-disk cache.
    #[arg(long)]
    pub no_cache: bool,
    /// How `run` and `check` compile a component the cache lacks: `auto` uses
    /// Winch (fast to compile) for this process and has Cranelift's optimised
    /// code made in the background for the next runs; `cranelift` compiles
    /// optimised code now. `serve` and `compile` always use Cranelift.
    #[arg(long, value_enum, value_name = "WHICH", default_value = "auto")]
    pub compiler: Compiler,
    /// Stand the echo component in for components that cannot be found, so a
    /// flow's format and routing can be checked (or dry-run) without them.
    #[arg(long)]
    pub stub_missing: bool,
    /// A secret for components whose manifest declares it: `KEY=VALUE`
    /// (`TENANT/KEY=VALUE` for one tenant); repeatable. Never printed.
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    pub secrets: Vec<String>,
    /// Secrets from a file: dotenv `KEY=VALUE` lines or a JSON object.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// A host components with `http.client` may reach (`host`, `host:port`,
    /// `host:*`, `*.domain`), added to the profile's `http.allow`; repeatable.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// PEM file of CA certificates outbound HTTPS is verified against,
    /// instead of the built-in Mozilla roots (an internal CA); repeatable.
    #[arg(long = "http-ca", value_name = "FILE")]
    pub http_ca: Vec<PathBuf>,
    /// Override the flows' `templating:` setting.
    #[arg(long, value_enum, value_name = "MODE")]
    pub templating: Option<Templating>,
    /// A new runner instance for every run (`serve`: every request). Node
    /// instances are always new per run; by default the runner instance, our
    /// own code, is cleared and kept with the flows it has planned.
    #[arg(long)]
    pub fresh_runner: bool,
    /// Print nothing on stderr but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Which compiler `run` and `check` use for a component the cache lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compiler {
    /// Winch now, Cranelift in the background for later runs.
    Auto,
    /// Cranelift now.
    Cranelift,
}

/// Missing template variables: an error (`strict`) or empty (`lenient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Templating {
    /// A missing variable is an error naming it (the default).
    Strict,
    /// A missing variable renders empty (typed insertion: `null`).
    Lenient,
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

/// Where a composition sends approved components' state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateProvider {
    /// One state-store import of the composed component, for its host to provide.
    Import,
    /// An in-memory store inside the composition, one per component.
    Memory,
}

/// Where a composition sends components' log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TelemetryProvider {
    /// A logger part inside the composition, writing to stderr.
    Stderr,
    /// One telemetry import of the composed component, for its host to provide.
    Import,
}

/// `host-shim compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Flow, components and profile.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Where to write the composed component.
    #[arg(short, long, value_name = "APP.wasm")]
    pub output: PathBuf,
    /// Where approved components' state goes.
    #[arg(long, value_enum, default_value = "import")]
    pub state_provider: StateProvider,
    /// Give components that import state, secrets or HTTP without approval a
    /// provider inside the app that refuses every call, instead of refusing
    /// to compose.
    #[arg(long, alias = "deny-state")]
    pub deny_unapproved: bool,
    /// Where components' log lines go: a logger inside the app writing to
    /// stderr, or the app's own `greentic:telemetry/logger-api` import.
    #[arg(long, value_enum, default_value = "stderr")]
    pub telemetry: TelemetryProvider,
    /// Also export `wasi:http/incoming-handler`: the app answers
    /// `POST /flows/{flow_id}` and `GET /healthz` as `host-shim serve` does, under
    /// any wasi:http host (`wasmtime serve`, `jco serve`, Spin).
    #[arg(long)]
    pub http: bool,
    /// With --http: who the app's runs act for.
    #[command(flatten)]
    pub scope: TenantArgs,
    /// With --http: take the tenant from the `x-greentic-env|tenant|team|user`
    /// headers (any client can then act for any tenant: only behind a gateway
    /// that sets them).
    #[arg(long, requires = "http")]
    pub trust_tenant_headers: bool,
    /// With --http: largest request body, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, requires = "http")]
    pub max_body: u64,
}

/// `host-shim check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Flow (or a directory: every flow file under it), components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Print the result as JSON (for a directory: one record per flow).
    #[arg(long)]
    pub json: bool,
}

/// `host-shim serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What to serve (FLOW: a flow file, a directory of flows or a pack),
    /// components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Who runs act for (with `--auth none`).
    #[command(flatten)]
    pub scope: TenantArgs,
    /// Who a request acts for: `none` (the --tenant flags, or with
    /// --trust-tenant-headers the x-greentic-* headers), `tokens` (bearer
    /// tokens of --tokens FILE) or `jwt` (signed JWTs: --jwt-key or --jwks).
    #[arg(long, value_enum, default_value = "none")]
    pub auth: AuthMode,
    /// Bearer tokens (YAML/JSON): `tokens: [{name, sha256, tenant, env?, team?,
    /// user?, flows?, max_concurrent?, rps?}]`; `sha256` of the token, never the token.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// JWT key: an HMAC secret (32+ bytes) or a PEM public RSA/EC key.
    #[arg(long, value_name = "FILE")]
    pub jwt_key: Option<PathBuf>,
    /// JWT keys as a JWKS (JSON); the token's `kid` picks one.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Required `iss` of JWTs.
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWTs.
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// With `--auth none`: take the tenant from the `x-greentic-env|tenant|team|user`
    /// headers (any client can then act for any tenant): only on a loopback
    /// address or with --i-am-behind-a-gateway.
    #[arg(long)]
    pub trust_tenant_headers: bool,
    /// Allow `--auth none` (and --trust-tenant-headers) on a non-loopback address.
    #[arg(long)]
    pub i_am_behind_a_gateway: bool,
    /// The SHA-256 (`sha256:<hex>`) of the bearer token `/metrics` needs when
    /// the server is not bound to loopback.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Runs in progress per credential (a token's own `max_concurrent` wins).
    #[arg(long, value_name = "N")]
    pub credential_max_concurrent: Option<usize>,
    /// Requests per second per credential (a token's own `rps` wins).
    #[arg(long, value_name = "N")]
    pub credential_rps: Option<u32>,
    /// Maximum node executions per run.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Runs in progress at most; more get 429 with `Retry-After`.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_concurrent: usize,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// A run still going after this is answered 504.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub run_timeout: std::time::Duration,
    /// On SIGTERM / Ctrl-C: how long to let runs in progress finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// How long a waiting run (`x-greentic-session`) is kept after its last turn.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: std::time::Duration,
    /// How long a turn waits for another turn of its session.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub session_wait: std::time::Duration,
    /// Threads serving connections (runs have their own pool, up to --max-concurrent).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub io_threads: usize,
    /// Time a client has to send a request's headers, and how long an idle
    /// keep-alive connection waits for the next request; then it is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Time a client has to send a request's whole body (then 408). No run
    /// slot is held while a body is read.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: std::time::Duration,
    /// Open connections at most; more wait in the listen backlog (lowered
    /// to fit the process's open-file limit).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// A `Host` name (without port) requests may carry besides the loopback
    /// names `localhost`, `127.0.0.1` and `[::1]`; repeatable. Any other Host
    /// is refused (400): a web page cannot reach the server by DNS rebinding.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// A request for a flow id not seen yet rescans the served flows, at
    /// most once per this interval (new files are found within it).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub rescan_interval: std::time::Duration,
}

/// `serve --auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No credentials: the `--tenant` flags (or trusted headers).
    None,
    /// Bearer tokens from `--tokens FILE`.
    Tokens,
    /// Signed JWTs (`--jwt-key FILE` or `--jwks FILE`).
    Jwt,
}

/// Who a run acts for: its env, tenant, team and user (`run`, `serve`,
/// `compose --http`).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct TenantArgs {
    /// Environment id of the run's tenant context.
    #[arg(long, default_value = "local")]
    pub env: String,
    /// Tenant id.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Team id.
    #[arg(long)]
    pub team: Option<String>,
    /// User id.
    #[arg(long)]
    pub user: Option<String>,
}

impl Default for TenantArgs {
    /// What the flags default to.
    fn default() -> Self {
        TenantArgs {
            env: "local".into(),
            tenant: "default".into(),
            team: None,
            user: None,
        }
    }
}
