//! `host-shim compose`.

use super::setup::{flow_file, profile};
use crate::Failure;
use crate::cli::{ComposeArgs, StateProvider, TelemetryProvider};

pub(super) fn compose(mut args: ComposeArgs) -> Result<(), Failure> {
    args.common.flow = flow_file(&args.common.flow)?;
    let profile = profile(&args.common)?;
    let wiring = match args.state_provider {
        StateProvider::Import => compose::StateWiring::Import,
        StateProvider::Memory => compose::StateWiring::Memory,
    };
    let telemetry = match args.telemetry {
        TelemetryProvider::Stderr => compose::TelemetryWiring::Stderr,
        TelemetryProvider::Import => compose::TelemetryWiring::Import,
    };
    if !args.http && args.scope != crate::cli::TenantArgs::default() {
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
    let options = compose::ComposeOptions {
        telemetry,
        profile,
        state: wiring,
        deny_unapproved: args.deny_unapproved,
        http,
    };
    let composition =
        crate::compose_file(&args.common.flow, args.common.components.clone(), &options)?;
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
        eprintln!("host-shim: imports: {}", composition.imports.join(", "));
        eprintln!(
            "host-shim: wrote {} ({} bytes)",
            args.output.display(),
            composition.bytes.len()
        );
    }
    Ok(())
}
