//! Routing conditions: parse + evaluate arbitrary text against arbitrary node
//! outputs. Never a panic; a run ends on one of the two routes or with an
//! error; and two oracles that can fail:
//! - `C` and `!(C)` on the same output take opposite routes (a router that
//!   ignored conditions, took the first or the last route, or negated wrongly
//!   would not);
//! - a bare path `out.v` routes by the value's truthiness as documented
//!   (`false`, `null`, `0`, `""`, `[]`, `{}` are false), computed here.
#![no_main]

use greentic_runner_fuzz::{Echo, fields, flow_from_json, short_run};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// The route a flow whose node `a` outputs `payload` takes with `condition`
/// on its first routing entry (to `yes`; else `no`); `None` if the flow is
/// refused or the run fails.
fn route(condition: &str, payload: &Value) -> Option<String> {
    let flow = json!({
        "id": "c",
        "nodes": {
            "a": {"echo": payload, "routing": [{"to": "yes", "condition": condition}, {"to": "no"}]},
            "yes": {"echo": {"route": "yes"}, "routing": "out"},
            "no": {"echo": {"route": "no"}, "routing": "out"},
        }
    });
    let flow = flow_from_json(&flow, false).ok()?;
    let output = flow.run(json!({}), &mut Echo, &short_run()).ok()?;
    let route = output["route"].as_str().map(str::to_string);
    assert!(
        route.as_deref() == Some("yes") || route.as_deref() == Some("no"),
        "ended elsewhere: {output}"
    );
    route
}

/// Handlebars' `{{#if}}` truthiness, as the condition language documents it
/// (a number is true when it is a normal float: 0 and subnormals are false).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(f64::is_normal),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 2);
    let condition = parts[0].clone();
    let value: Value = parts
        .get(1)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!(1));
    // The node's payload is rendered as templates: keep the value literal.
    if value.to_string().contains("{{") {
        return;
    }
    let payload = json!({"v": value});

    if let (Some(plain), Some(negated)) = (
        route(&condition, &payload),
        route(&format!("!({condition})"), &payload),
    ) {
        assert_ne!(
            plain, negated,
            "`{condition}` and its negation took the same route on {payload}"
        );
    }

    // (A payload the node's templating refuses runs nothing to compare.)
    if let Some(taken) = route("out.v", &payload) {
        let expected = if truthy(&value) { "yes" } else { "no" };
        assert_eq!(taken, expected, "`out.v` on {payload}");
    }
});
