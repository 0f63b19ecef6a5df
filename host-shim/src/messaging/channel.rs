//! A served channel: its kind and the provider component that speaks it, as
//! flags and packs name them.

use std::path::PathBuf;

use greentic_messaging_core::ChannelKind;

/// A served channel: its kind and the provider component that speaks it.
#[derive(Debug, Clone)]
pub struct ChannelProvider {
    /// The channel.
    pub kind: ChannelKind,
    /// The provider component: a path, or a name looked up as a flow's.
    pub component: PathBuf,
    /// The provider's `config`, given to every op (`--channel-config`):
    /// greentic's setup answers (`bot_token`, `api_base_url`, …).
    pub config: serde_json::Value,
}

impl ChannelProvider {
    /// The messaging channels a provider pack declares; other providers
    /// are named in `skipped`.
    pub fn of_pack(pack: &compose::pack::Pack, skipped: &mut Vec<String>) -> Vec<ChannelProvider> {
        let mut channels = Vec::new();
        for provider in &pack.providers {
            match ChannelKind::of_provider_type(&provider.provider_type) {
                Some(kind) => channels.push(ChannelProvider {
                    kind,
                    component: provider.component.clone(),
                    config: serde_json::json!({}),
                }),
                None => skipped.push(format!("{} ({})", provider.provider_type, pack.pack_id)),
            }
        }
        channels
    }
}

impl std::str::FromStr for ChannelProvider {
    type Err = String;

    /// `KIND=COMPONENT` (`telegram=providers/telegram.wasm`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, component) = text
            .split_once('=')
            .ok_or_else(|| format!("--channel `{text}`: expected KIND=COMPONENT"))?;
        let kind = ChannelKind::parse(kind).ok_or_else(|| {
            let known: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "--channel `{text}`: unknown channel `{kind}` (known: {})",
                known.join(", ")
            )
        })?;
        if component.is_empty() {
            return Err(format!("--channel `{text}`: no component"));
        }
        Ok(ChannelProvider {
            kind,
            component: PathBuf::from(component),
            config: serde_json::json!({}),
        })
    }
}
