//! `host-shim compose`.

use super::args::{ComponentArgs, TenantArgs};
use super::setup::{Sources, channel_config, flow_file, pack_channels, profile};
use crate::Failure;
use clap::Args;
use std::path::PathBuf;

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
    /// With --http: make the app a bot. Channel webhooks at
    /// `POST /v1/messaging/ingress/{channel}/{tenant}` go through this
    /// messaging provider and the flow, replies back through the provider:
    /// a provider pack (`.gtpack` or directory) or `KIND=COMPONENT`.
    #[arg(long, value_name = "PACK|KIND=COMPONENT", requires = "http")]
    pub provider: Option<String>,
    /// With --provider: the provider's `config`, a JSON object file
    /// (greentic's setup answers: `bot_token`, `api_base_url`, …).
    #[arg(long, value_name = "FILE", requires = "provider")]
    pub channel_config: Option<PathBuf>,
    /// With --provider: take webhooks without verifying their signature
    /// (only behind a gateway that does).
    #[arg(long, requires = "provider")]
    pub unverified_channel: bool,
    /// Put the runner in the app as built, not pre-initialised with the
    /// flows planned (an instance of the app then parses the flow and
    /// compiles its templates on its first run).
    #[arg(long)]
    pub no_preinit: bool,
}

pub(super) fn compose(mut args: ComposeArgs) -> Result<(), Failure> {
    let sources = Sources::of(&args.common)?;
    args.common.flow = flow_file(&args.common.flow, &sources)?;
    let profile = profile(&args.common)?;
    let wiring = match args.state_provider {
        StateProvider::Import => compose::StateWiring::Import,
        StateProvider::Memory => compose::StateWiring::Memory,
    };
    let telemetry = match args.telemetry {
        TelemetryProvider::Stderr => compose::TelemetryWiring::Stderr,
        TelemetryProvider::Import => compose::TelemetryWiring::Import,
    };
    if !args.http && args.scope != TenantArgs::default() {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "--env/--tenant/--team/--user set who an --http app's runs act for; add --http"
        )));
    }
    let http = args.http.then(|| compose::HttpSettings {
        env: args.scope.env.clone(),
        tenant: args.scope.tenant.clone(),
        team: args.scope.team.clone(),
        user: args.scope.user.clone(),
        trust_tenant_headers: args.trust_tenant_headers,
        max_body: args.max_body,
    });
    let bot = match &args.provider {
        None => None,
        Some(given) => {
            let provider = channel_provider(given, &sources, args.common.quiet)?;
            Some(compose::BotOptions {
                channel: provider.kind,
                provider: provider.component.display().to_string(),
                config: match &args.channel_config {
                    Some(file) => channel_config(file)?,
                    None => provider.config,
                },
                verify: !args.unverified_channel,
            })
        }
    };
    let options = compose::ComposeOptions {
        telemetry,
        profile,
        state: wiring,
        deny_unapproved: args.deny_unapproved,
        http,
        bot,
        preinit: (!args.no_preinit).then(|| {
            std::sync::Arc::new(crate::preinit::RunnerPreInit)
                as std::sync::Arc<dyn compose::PreInit>
        }),
    };
    let composition = crate::compose_file(
        &args.common.flow,
        args.common.components.clone(),
        Some(sources.registry.clone()),
        &options,
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
            let mut extra = String::new();
            if node.abi != compose::NodeAbi::Node06 {
                extra.push_str(&format!(", adapted from `{}`", node.abi.export()));
            }
            if node.logs_to_stderr {
                extra.push_str(", logs: stderr part");
            }
            if !node.denied.is_empty() {
                extra.push_str(&format!(", refused: {}", node.denied.join(", ")));
            }
            if !node.imported.is_empty() {
                extra.push_str(&format!(
                    ", the app's imports: {}",
                    node.imported.join(", ")
                ));
            }
            eprintln!(
                "host-shim: slot {} <- {} ({}), {state}{extra}",
                node.slot,
                node.reference,
                node.path.display()
            );
        }
        if let Some(provider) = &composition.provider {
            let mut grants = vec![format!(
                "secrets from the environment: [{}]",
                provider.secrets.join(", ")
            )];
            grants.push(format!("HTTP to [{}]", provider.http_allow.join(", ")));
            if !provider.denied.is_empty() {
                grants.push(format!("refused: {}", provider.denied.join(", ")));
            }
            eprintln!(
                "host-shim: {} bot <- {}, {}",
                provider.channel.name(),
                provider.path.display(),
                grants.join(", ")
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

/// The bot's provider: `KIND=COMPONENT` (a path is made absolute; a bare
/// name is resolved as a flow's component) or a provider pack with one
/// messaging channel.
fn channel_provider(
    given: &str,
    sources: &Sources,
    quiet: bool,
) -> Result<crate::messaging::ChannelProvider, Failure> {
    let named_kind = given
        .split_once('=')
        .is_some_and(|(kind, _)| crate::messaging::ChannelKind::parse(kind).is_some());
    if named_kind {
        let mut provider: crate::messaging::ChannelProvider =
            given.parse().map_err(|e: String| {
                Failure::Invalid(anyhow::anyhow!(e.replace("--channel", "--provider")))
            })?;
        let text = provider.component.display().to_string();
        if text.ends_with(".wasm") || text.contains('/') {
            provider.component = std::path::absolute(&provider.component)
                .map_err(|e| Failure::Invalid(anyhow::anyhow!("--provider `{given}`: {e}")))?;
        }
        return Ok(provider);
    }
    let mut channels = pack_channels(std::path::Path::new(given), sources, quiet)?;
    if channels.len() > 1 {
        let kinds: Vec<&str> = channels.iter().map(|c| c.kind.name()).collect();
        return Err(Failure::Invalid(anyhow::anyhow!(
            "--provider `{given}` declares {} channels ({}): a bot is one channel; name it as KIND=COMPONENT",
            channels.len(),
            kinds.join(", ")
        )));
    }
    Ok(channels.remove(0))
}
