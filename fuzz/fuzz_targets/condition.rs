//! Routing conditions: parse + evaluate arbitrary text against arbitrary node
//! outputs; never a panic, and a run ends on one of the two routes or with an
//! error.
#![no_main]

use greentic_runner_fuzz::{Echo, fields, flow_from_json, short_run};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 2);
    let condition = parts[0].clone();
    let out: Value = parts
        .get(1)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({"v": 1}));
    let flow = json!({
        "id": "c",
        "nodes": {
            "a": {"echo": {"out": out}, "routing": [{"to": "yes", "condition": condition}, {"to": "no"}]},
            "yes": {"echo": {"route": "yes"}},
            "no": {"echo": {"route": "no"}},
        }
    });
    if let Ok(flow) = flow_from_json(&flow, false) {
        if let Ok(output) = flow.run(json!({}), &mut Echo, &short_run()) {
            let route = &output["route"];
            assert!(route == "yes" || route == "no", "ended elsewhere: {output}");
        }
    }
});
