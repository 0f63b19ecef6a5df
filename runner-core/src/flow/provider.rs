//! greentic-runner's `provider.invoke` node: which provider it calls, its
//! `in_map` / `out_map`, and their JSON pointers.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use super::load::{Loader, Resolved};
use super::model::{ComponentCall, ProviderMaps};
use crate::error::FlowError;
use crate::template::{InputTemplate, Templates};
use crate::yaml;

impl Loader<'_> {
    /// greentic-runner's `provider.invoke: {provider_id|provider_type,
    /// op|operation, input, in_map, out_map, err_map}`: a call of the provider
    /// component bound by the sidecars, else named by `provider_id`, else by
    /// `provider_type`. `in_map`/`out_map` strings that start with `/` and
    /// hold no `{{` are JSON pointers into what they see; `err_map` is read
    /// and not used, as greentic-runner does.
    pub(super) fn provider_invoke(
        &self,
        id: &str,
        value: &Yaml,
        sidecar: &HashMap<String, Resolved>,
        templates: &mut Templates,
    ) -> Result<(ComponentCall, Yaml), FlowError> {
        let Yaml::Mapping(spec) = value else {
            return Err(self.invalid(
                Some(id),
                "`provider.invoke` must be a mapping with `provider_id` (or `provider_type`), `op` and `input` or `in_map`",
            ));
        };
        let text = |key: &str| match yaml::get(spec, key) {
            Some(Yaml::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            None | Some(Yaml::Null) => Ok(None),
            Some(_) => Err(self.invalid(
                Some(id),
                format!("`provider.invoke.{key}` must be a non-empty string"),
            )),
        };
        let operation = match (text("op")?, text("operation")?) {
            (Some(op), _) | (None, Some(op)) => op,
            (None, None) => {
                return Err(self.invalid(Some(id), "`provider.invoke` needs `op`"));
            }
        };
        let resolved = sidecar.get(id).cloned().unwrap_or_default();
        let reference = resolved
            .reference
            .clone()
            .or_else(|| resolved.component_id.clone())
            .map(Some)
            .unwrap_or(text("provider_id")?)
            .or(text("provider_type")?)
            .ok_or_else(|| {
                self.invalid(
                    Some(id),
                    "`provider.invoke` names no provider (`provider_id` or `provider_type`) and the resolve sidecars bind none",
                )
            })?;
        let mut map = |key: &str| -> Result<Option<InputTemplate>, FlowError> {
            match yaml::get(spec, key) {
                None | Some(Yaml::Null) => Ok(None),
                Some(m) => {
                    let json = yaml::to_json(m, key).map_err(|e| self.invalid(Some(id), e))?;
                    let json = pointers_to_paths(json)
                        .map_err(|e| self.invalid(Some(id), format!("`{key}`: {e}")))?;
                    Ok(Some(templates.compile(id, key, &json)?))
                }
            }
        };
        let in_map = map("in_map")?;
        let out_map = map("out_map")?;
        let input = yaml::get(spec, "input")
            .cloned()
            .unwrap_or(Yaml::Mapping(Mapping::new()));
        Ok((
            ComponentCall {
                reference,
                operation,
                component_id: resolved.component_id,
                digest: resolved.digest,
                config: None,
                maps: (in_map.is_some() || out_map.is_some())
                    .then(|| Box::new(ProviderMaps { in_map, out_map })),
            },
            input,
        ))
    }
}

/// A map's JSON-pointer strings (`/result/ok`: starts with `/`, no `{{`) as
/// typed insertions (`{{result.ok}}`); segments that are not plain names are
/// bracketed (`{{a.[b c]}}`). `~1` and `~0` are `/` and `~`.
fn pointers_to_paths(value: Json) -> Result<Json, String> {
    Ok(match value {
        Json::String(s) if s.starts_with('/') && !s.contains("{{") => {
            let mut path = Vec::new();
            for segment in s[1..].split('/') {
                let segment = segment.replace("~1", "/").replace("~0", "~");
                if segment.contains(']') || segment.is_empty() {
                    return Err(format!(
                        "the pointer `{s}` cannot be read as a template path"
                    ));
                }
                let plain = segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                path.push(if plain {
                    segment
                } else {
                    format!("[{segment}]")
                });
            }
            Json::String(format!("{{{{{}}}}}", path.join(".")))
        }
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .map(pointers_to_paths)
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, pointers_to_paths(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::pointers_to_paths;
    use serde_json::json;

    #[test]
    fn map_pointers_become_typed_insertions() {
        let map = json!({"to": "/input/chat", "n": ["/result/items/0", "/a~1b/c d"], "t": "Hi {{input.x}}", "k": "plain"});
        assert_eq!(
            pointers_to_paths(map).unwrap(),
            json!({"to": "{{input.chat}}", "n": ["{{result.items.0}}", "{{[a/b].[c d]}}"], "t": "Hi {{input.x}}", "k": "plain"})
        );
        assert!(pointers_to_paths(json!("/a//b")).is_err());
    }
}
