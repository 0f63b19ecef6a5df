//! Composed apps: a flow composed into one component with its nodes, run here
//! as another host would run it; and composing one.

use super::options::RunSettings;
use super::outcome::{Failure, Turn};
use super::prepare::{plan_set, to_wit_source};
use super::setup::Host;
use super::setup::component_search_dirs;
use super::turns::WarmRun;
use super::turns::request;
use std::path::{Path, PathBuf};

use compose::ComponentResolver;

use crate::caps::http::HttpCtx;
use crate::caps::secrets::SecretsCtx;
use crate::caps::state::StateCtx;
use crate::caps::telemetry::TelemetryCtx;
use crate::limits::RunDeadline;
use crate::runner::{FlowSource, Linking, RunnerComponent, RunnerInstance};
use compose::policy::Grant;
use compose::policy::{Capability, capability_of};

/// Composes the flow at `flow` into one component, with the runner and parts
/// built with host-shim; no engine is needed for that.
pub fn compose_file(
    flow: &Path,
    component_dirs: Vec<PathBuf>,
    registry: Option<std::sync::Arc<greentic_registry::Registry>>,
    options: &compose::ComposeOptions,
) -> Result<compose::Composition, Failure> {
    let parts = compose::Parts::read(
        Path::new(crate::BUILT_RUNNER),
        Path::new(crate::BUILT_COMPOSE_PARTS_DIR),
    )
    .map_err(|e| Failure::Invalid(e.into()))?;
    let resolver =
        ComponentResolver::new(component_search_dirs(component_dirs)).with_registry(registry);
    compose::compose(flow, &resolver, &parts, options).map_err(|e| Failure::Invalid(e.into()))
}

impl Host {
    /// Runs the flow at `flow` inside the composed component `app` (made by
    /// `host-shim compose` from that flow), providing WASI and, if the
    /// composition imports it, the state store; like [`Host::run_file`] otherwise.
    pub fn run_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        entry_json: &str,
        settings: &RunSettings,
        repeat: u32,
    ) -> Vec<Result<Turn, Failure>> {
        match self.warm_composed(app, flow, entry_json, settings) {
            Ok(mut warm) => {
                self.run_turns(&mut warm.instance, warm.request, settings, repeat, None)
            }
            Err(failure) => vec![Err(failure)],
        }
    }

    /// [`Host::warm_run`] for the flow `flow` inside the composed component `app`.
    pub fn warm_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        entry_json: &str,
        settings: &RunSettings,
    ) -> Result<WarmRun, Failure> {
        let (instance, source, library) = self.instantiate_composed(app, flow, settings)?;
        Ok(WarmRun {
            request: request(source, library, entry_json, Vec::new(), settings),
            instance,
        })
    }

    pub(super) fn instantiate_composed(
        &mut self,
        app: &Path,
        flow: &Path,
        settings: &RunSettings,
    ) -> Result<(RunnerInstance, FlowSource, Vec<FlowSource>), Failure> {
        let invalid = |e: wasmtime::Error, what: String| {
            Failure::Invalid(anyhow::Error::from(e).context(what))
        };
        let component = self
            .cache
            .load(app)
            .map_err(|e| invalid(e, format!("loading `{}`", app.display())))?;
        let imports: Vec<String> = component
            .component_type()
            .imports(component.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let capabilities: Vec<Capability> = imports
            .iter()
            .filter_map(|i| capability_of(i).map(|row| row.capability))
            .collect();
        let runner = RunnerComponent::new(
            &component,
            Linking::Composed {
                imports: capabilities,
            },
            self.runner_memory_bytes,
        )
        .map_err(|e| invalid(e, format!("`{}` is not a composed flow", app.display())))?;
        // The composition was approved when it was made; the components that
        // use the app's state import share one namespace, named after the app file.
        let scope = self.scope(
            settings,
            super::prepare::assets_dir(flow),
            RunDeadline::after(settings.time_limit),
        )?;
        let scope_deadline = scope.deadline;
        let stem = app.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
        let id: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let state = StateCtx::new(
            scope.store,
            scope.tenant,
            &format!("composed.{id}"),
            Grant::ALL,
        );
        let (mut instance, set) = plan_set(
            &runner,
            None,
            flow,
            self.strict_templating,
            state,
            scope_deadline,
        )?;
        // The composition merged its components' secrets and HTTP imports into
        // one each: the app may read the secrets its approved components
        // declare and reach the hosts the profile allows.
        let tenant = settings.scope.tenant.clone();
        let secret_keys = self.declared_secrets(&set)?;
        let caps = instance.capabilities();
        caps.telemetry = TelemetryCtx::new(&format!("composed {}", app.display()), &tenant);
        caps.secrets = SecretsCtx::new(self.secrets.clone(), &tenant, "composed app", secret_keys);
        caps.http = HttpCtx::new(
            "composed app",
            self.profile.http_allow.clone(),
            &self.http_client(),
        );
        let library = set
            .library
            .iter()
            .map(|(_, s, _)| to_wit_source(s))
            .collect();
        Ok((instance, to_wit_source(&set.main.1), library))
    }
}
