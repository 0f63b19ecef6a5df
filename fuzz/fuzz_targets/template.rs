//! Template compile + render against arbitrary contexts: never a panic;
//! typed insertion (`"{{entry.x}}"` alone) gives back any JSON value as it
//! was; a text template of plain paths renders as handlebars renders it.
#![no_main]

use std::sync::OnceLock;

use greentic_runner_fuzz::{Echo, fields, flow_from_json, short_run};
use libfuzzer_sys::fuzz_target;
use runner_core::Flow;
use serde_json::{Value, json};

/// The typed-insertion flow, strict and lenient: the same for every input
/// (only the entry varies), so it is loaded once.
fn insertion_flow(strict: bool) -> &'static Flow {
    static FLOWS: OnceLock<[Flow; 2]> = OnceLock::new();
    let flows = FLOWS.get_or_init(|| {
        let flow = json!({"id": "t", "nodes": {"n": {"echo": {"v": "{{entry.x}}"}}}});
        [false, true].map(|strict| flow_from_json(&flow, strict).expect("the insertion flow loads"))
    });
    &flows[usize::from(strict)]
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let strict = flags & 1 != 0;
    let parts = fields(rest, 2);
    let template = parts[0].clone();
    let entry: Value = parts
        .get(1)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({}));

    // Any template, as a field of a node's input.
    let flow = json!({"id": "t", "nodes": {"n": {"echo": {"v": template, "w": [template]}}}});
    if let Ok(flow) = flow_from_json(&flow, strict) {
        let _ = flow.run(entry.clone(), &mut Echo, &short_run());
    }

    // Where a text template renders by direct lookup, handlebars agrees.
    if let Some((Some(fast), slow)) =
        runner_core::render_both_ways(&template, &json!({"entry": entry}), strict)
    {
        assert_eq!(Ok(fast), slow, "the plain path and handlebars disagree");
    }

    // Typed insertion round-trips any value.
    let out = insertion_flow(strict)
        .run(json!({"x": entry}), &mut Echo, &short_run())
        .expect("inserting a present value works");
    assert_eq!(
        out,
        json!({"v": entry}),
        "typed insertion changed the value"
    );
});
