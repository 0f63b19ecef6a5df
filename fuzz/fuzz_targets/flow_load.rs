//! YAML (+ resolve sidecars) → `Flow`: never a panic; a flow that loads
//! plans the same way when loaded again; and the same document written
//! again as JSON (which is YAML: the same data, other text, other
//! positions) loads to the same plan — the plan is the data's, not the
//! text's.
#![no_main]

use greentic_runner_fuzz::fields;
use libfuzzer_sys::fuzz_target;
use runner_core::{Flow, FlowSource};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut parts = fields(rest, 3).into_iter();
    let source = FlowSource {
        name: "fuzz.ygtc".into(),
        yaml: parts.next().unwrap_or_default(),
        resolve_json: parts.next().filter(|_| flags & 1 != 0),
        resolve_summary_json: parts.next().filter(|_| flags & 2 != 0),
        strict_templating: match flags >> 2 & 3 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
    };
    if let Ok(flow) = Flow::load(&source) {
        let plan = format!("{:?}", flow.plan());
        let again = Flow::load(&source).expect("a flow that loaded once loads again");
        assert_eq!(
            plan,
            format!("{:?}", again.plan()),
            "re-planned differently"
        );
        // Reloaded from the same data written as JSON (JSON keys are text and
        // JSON has no tags: a document with either is not the same data in JSON).
        let Ok(yaml) = serde_yaml::from_str::<serde_yaml::Value>(&source.yaml) else {
            return;
        };
        if !text_keys_only(&yaml) {
            return;
        }
        let Ok(data) = serde_yaml::from_value::<serde_json::Value>(yaml) else {
            return;
        };
        let rewritten = FlowSource {
            yaml: data.to_string(),
            ..source.clone()
        };
        let reloaded = Flow::load(&rewritten).expect("the same data as JSON loads too");
        assert_eq!(
            plan,
            format!("{:?}", reloaded.plan()),
            "the same data as JSON planned differently"
        );
    }
});

/// Whether `value` is plain data JSON holds as it is: every mapping key a
/// string, no YAML tags (JSON has neither).
fn text_keys_only(value: &serde_yaml::Value) -> bool {
    match value {
        serde_yaml::Value::Mapping(map) => map
            .iter()
            .all(|(k, v)| matches!(k, serde_yaml::Value::String(_)) && text_keys_only(v)),
        serde_yaml::Value::Sequence(items) => items.iter().all(text_keys_only),
        serde_yaml::Value::Tagged(_) => false,
        _ => true,
    }
}
