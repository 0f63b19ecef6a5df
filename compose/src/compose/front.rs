//! The front part: the baked flow set and the `app` (and `wasi:http`) export;
//! for a bot, `bot-front` with the provider behind it.

use runner_core::FlowPlan;
use wac_graph::NodeId;

use super::bot::BotProvider;
use super::composer::Composer;
use super::names::{APP_EXPORT, BAKED_EXPORT, HTTP_HANDLER_EXPORT, PROVIDER_EXPORT, RUN_EXPORT};
use super::options::{ComposeError, graph_error};
use super::parts::Parts;
use crate::baked::{self, HttpSettings};
use crate::source::FlowSet;

impl Composer<'_> {
    /// Bakes the flow set into a generated part and puts the front part
    /// (`app-front`, `http-front` with `--http`, `bot-front` with a
    /// `provider`) in front of the runner; exports what the front exports.
    pub(super) fn add_front(
        &mut self,
        runner: NodeId,
        set: &FlowSet<FlowPlan>,
        parts: &Parts,
        provider: Option<&BotProvider>,
    ) -> Result<(), ComposeError> {
        let http = self.options.http.clone();
        let document = baked::document(
            &set.main.2.id,
            &set.main.1,
            &set.library.iter().map(|(_, s, _)| s).collect::<Vec<_>>(),
            http.as_ref().unwrap_or(&HttpSettings::default()),
            provider.map(|p| &p.settings),
        );
        let bytes = baked::component(&document).map_err(|e| ComposeError::Graph {
            what: "generating the baked-flows part".into(),
            source: e.into(),
        })?;
        let flows = self.instantiate("greentic:baked-flows", &bytes, "the baked-flows part")?;
        let (front_bytes, what) = match (&http, provider) {
            (Some(_), Some(_)) => (&parts.bot_front, "the bot-front part"),
            (Some(_), None) => (&parts.http_front, "the http-front part"),
            (None, _) => (&parts.app_front, "the app-front part"),
        };
        let front = self.instantiate("greentic:front", front_bytes, what)?;
        self.wire(runner, RUN_EXPORT, front, RUN_EXPORT)?;
        self.wire(flows, BAKED_EXPORT, front, BAKED_EXPORT)?;
        if let Some(provider) = provider {
            self.wire(provider.node, PROVIDER_EXPORT, front, PROVIDER_EXPORT)?;
            if let Some(caps) = self.caps_wasi {
                self.wire(flows, BAKED_EXPORT, caps, BAKED_EXPORT)?;
            }
        }
        let mut exports = vec![APP_EXPORT.to_string()];
        if self.options.http.is_some() {
            let package = self.graph[front]
                .package()
                .expect("an instantiation has a package");
            let world = &self.graph.types()[self.graph[package].ty()];
            let handler = world
                .exports
                .keys()
                .find(|name| name.starts_with(HTTP_HANDLER_EXPORT))
                .cloned()
                .ok_or_else(|| ComposeError::Graph {
                    what: format!("{what} exports no `{HTTP_HANDLER_EXPORT}*`"),
                    source: "wrong part".into(),
                })?;
            exports.push(handler);
        }
        for name in exports {
            let alias = self
                .graph
                .alias_instance_export(front, &name)
                .map_err(graph_error(format!("{what} does not export `{name}`")))?;
            self.graph
                .export(alias, &name)
                .map_err(graph_error(format!("exporting `{name}`")))?;
        }
        Ok(())
    }
}
