//! Arguments several commands share: the flow and its components, the
//! compiler and templating choices, who a run acts for.

use std::path::PathBuf;

use clap::Args;

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
    /// An Ed25519 public key (PEM, `BEGIN PUBLIC KEY`) trusted to sign packs
    /// (`packc sign`); repeatable.
    #[arg(long = "pack-key", value_name = "FILE")]
    pub pack_keys: Vec<PathBuf>,
    /// Pack signatures: `strict` refuses an unsigned pack, or one no
    /// --pack-key verifies, before anything of it runs; `warn` says so and
    /// goes on; `off` does not look. Default: strict with a --pack-key, else off.
    #[arg(long = "verify", value_enum, value_name = "MODE")]
    pub verify: Option<Verify>,
    /// A lock file pinning `oci://` references to manifest digests (written
    /// by `host-shim pull --lock FILE`; greentic-pack's `pack.lock.json`
    /// reads too): pinned artifacts come from the cache or by digest, before
    /// any local file of the same name.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Never ask a registry: `oci://` references must be pinned (by digest
    /// or --lock) and already fetched.
    #[arg(long)]
    pub offline: bool,
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
    /// PEM file of CA certificates outbound HTTPS trusts besides the
    /// built-in Mozilla roots (a proxy's or staging CA); repeatable.
    #[arg(long = "ca-cert", value_name = "FILE", conflicts_with = "http_ca")]
    pub ca_cert: Vec<PathBuf>,
    /// Outbound requests for HOST1:PORT1 connect to HOST2:PORT2 instead
    /// (curl's `--connect-to`; the URL, `Host` and the TLS name stay HOST1;
    /// an empty HOST1 or PORT1 matches any); repeatable.
    #[arg(long = "connect-to", value_name = "HOST1:PORT1:HOST2:PORT2")]
    pub connect_to: Vec<crate::caps::http::ConnectRule>,
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

/// How pack signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// Refuse unsigned and untrusted packs.
    Strict,
    /// Say so on stderr and go on.
    Warn,
    /// Do not check.
    Off,
}

/// Missing template variables: an error (`strict`) or empty (`lenient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Templating {
    /// A missing variable is an error naming it (the default).
    Strict,
    /// A missing variable renders empty (typed insertion: `null`).
    Lenient,
}

/// Who a run acts for: its env, tenant, team and user (`run`, `serve`,
/// `compose --http`).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct TenantArgs {
    /// Environment id of the run's tenant context.
    #[arg(long, default_value = crate::DEFAULT_ENV)]
    pub env: String,
    /// Tenant id.
    #[arg(long, default_value = crate::DEFAULT_TENANT)]
    pub tenant: String,
    /// Team id.
    #[arg(long)]
    pub team: Option<String>,
    /// User id.
    #[arg(long)]
    pub user: Option<String>,
}

impl TenantArgs {
    /// The run scope the flags name.
    pub fn tenant(&self) -> runner_core::Tenant {
        runner_core::Tenant {
            env: self.env.clone(),
            tenant: self.tenant.clone(),
            team: self.team.clone(),
            user: self.user.clone(),
        }
    }
}

impl Default for TenantArgs {
    /// What the flags default to.
    fn default() -> Self {
        TenantArgs {
            env: crate::DEFAULT_ENV.into(),
            tenant: crate::DEFAULT_TENANT.into(),
            team: None,
            user: None,
        }
    }
}
