//! Calling a provider's ops on a [`Host`]: each op is a one-node flow
//! written once, at start, into a private directory, and run like any flow —
//! so a provider call gets what every node gets: the profile's gate over its
//! manifest, its tenant's secrets, the HTTP allow-list, limits, the compiled
//! component cache. `send_payload` carries a retry policy: a send the
//! provider calls retryable (a 429, a 5xx, a timeout) is sent again with
//! backoff by the runner's own node retries.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use greentic_messaging_core::ChannelKind;
pub use greentic_messaging_core::Op;
use greentic_messaging_core::{SEND_ATTEMPTS, SEND_FIRST_DELAY_MS};

use super::channel::ChannelProvider;
use crate::host::{Failure, Host, RunSettings, Turn};

/// One channel's provider, callable op by op.
#[derive(Debug, Clone)]
pub struct ProviderCalls {
    /// Its channel.
    pub kind: ChannelKind,
    /// The provider's `config` (given with every op).
    pub config: Value,
    dir: PathBuf,
}

impl ProviderCalls {
    /// Writes the op flows of `provider` under `dir` (a private directory).
    pub fn new(dir: &Path, provider: &ChannelProvider) -> anyhow::Result<ProviderCalls> {
        // A path is made absolute (the op flows live elsewhere); a bare name
        // is looked up as a flow's would be (`--components`, the built ones).
        let given = provider.component.display().to_string();
        let component = if given.ends_with(".wasm") || given.contains('/') {
            let path = std::path::absolute(&provider.component)
                .with_context(|| format!("--channel component `{given}`"))?;
            if !path.is_file() {
                anyhow::bail!(
                    "--channel {}: no component file `{}`",
                    provider.kind.name(),
                    path.display()
                );
            }
            path.display().to_string()
        } else {
            given
        };
        let dir = dir.join(provider.kind.name());
        compose::private_dir::create(&dir)
            .with_context(|| format!("creating `{}`", dir.display()))?;
        // A JSON string is a YAML string: the path needs no escaping rules of its own.
        let reference = Value::String(component).to_string();
        for op in Op::ALL {
            let retry = if op == Op::SendPayload {
                format!(
                    "\n    retry: {{ max_attempts: {SEND_ATTEMPTS}, delay_ms: {SEND_FIRST_DELAY_MS} }}"
                )
            } else {
                String::new()
            };
            let yaml = format!(
                "id: messaging-{kind}-{op}\nnodes:\n  call:\n    component.exec: {{ component: {reference}, operation: {op}, input: \"{{{{in}}}}\" }}{retry}\n",
                kind = provider.kind.name(),
                op = op.name(),
            );
            std::fs::write(dir.join(format!("{}.ygtc", op.name())), yaml)
                .with_context(|| format!("writing the {} op flow", op.name()))?;
        }
        Ok(ProviderCalls {
            kind: provider.kind,
            config: provider.config.clone(),
            dir,
        })
    }

    /// The flow file of `op` (for checks at start).
    pub fn flow(&self, op: Op) -> PathBuf {
        self.dir.join(format!("{}.ygtc", op.name()))
    }

    /// Calls `op` with `input` (and the provider's `config`, unless the
    /// input has one) as the tenant of `settings`; the provider's answer.
    pub fn call(
        &self,
        host: &mut Host,
        op: Op,
        input: &Value,
        settings: &RunSettings,
    ) -> Result<Value, Failure> {
        let mut input = input.clone();
        if let Value::Object(map) = &mut input
            && !matches!(map.get("config"), Some(Value::Object(_)))
        {
            map.insert("config".into(), self.config.clone());
        }
        let turn = host
            .run_file(&self.flow(op), &input.to_string(), settings, 1)
            .pop()
            .unwrap_or_else(|| {
                Err(Failure::Internal(anyhow::anyhow!(
                    "the call produced nothing"
                )))
            })?;
        match turn {
            Turn::Completed(text) => serde_json::from_str(&text).map_err(|e| {
                Failure::Internal(anyhow::anyhow!(
                    "the provider's `{}` answer: {e}",
                    op.name()
                ))
            }),
            Turn::Waiting { .. } => Err(Failure::Internal(anyhow::anyhow!(
                "the provider's `{}` op waited",
                op.name()
            ))),
        }
    }
}
