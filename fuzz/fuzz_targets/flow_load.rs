//! YAML (+ resolve sidecars) → `Flow`: never a panic, and a flow that loads
//! plans the same way when loaded again.
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
    }
});
