//! The session snapshot decoder and resume: arbitrary text never panics; a
//! snapshot that decodes encodes and decodes to itself; and whatever a
//! snapshot holds, resuming it on a flow whose content hash it does not
//! carry is refused (a conversation never continues on a changed flow),
//! while the flow's own hash is never the reason a resume fails.
#![no_main]

use greentic_runner_fuzz::{Echo, short_run};
use libfuzzer_sys::fuzz_target;
use runner_core::{Flow, FlowSource, RunOutcome, Snapshot};
use serde_json::json;

/// A flow that waits, and a real snapshot of it waiting.
fn waiting() -> &'static (Flow, Snapshot) {
    static IT: std::sync::OnceLock<(Flow, Snapshot)> = std::sync::OnceLock::new();
    IT.get_or_init(|| {
        let flow = Flow::load(&FlowSource {
            name: "wait.ygtc".into(),
            yaml: "id: w\nnodes:\n  ask:\n    session.wait: name\n    routing: [{ to: reply }]\n  reply:\n    echo: { got: \"{{in.text}}\" }\n".into(),
            ..Default::default()
        })
        .expect("the fixed flow loads");
        let Ok(RunOutcome::Waiting { snapshot, .. }) = flow.start(json!({}), &mut Echo, &short_run())
        else {
            panic!("the fixed flow waits");
        };
        (flow, *snapshot)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(snapshot) = Snapshot::from_json(text) else {
        return;
    };
    let encoded = snapshot.to_json();
    let again = Snapshot::from_json(&encoded).expect("our own snapshot decodes");
    assert_eq!(snapshot, again, "snapshot round trip changed it");
    assert_eq!(encoded, again.to_json());

    // The fuzzed run state on the real flow, tenant and format.
    let (flow, real) = waiting();
    let mut resumed = snapshot.clone();
    resumed.format = real.format.clone();
    resumed.version = real.version;
    resumed.flow = real.flow.clone();
    resumed.tenant = real.tenant.clone();
    let message = json!({"text": "hi"});
    let result = flow.resume(&resumed, message.clone(), &mut Echo, &short_run());
    let hash_refusal = |r: &Result<RunOutcome, runner_core::RunError>| {
        matches!(r, Err(e) if e.to_string().contains("cannot be resumed on a changed flow"))
    };
    if resumed.flow_hash == real.flow_hash {
        assert!(!hash_refusal(&result), "refused for its own hash");
    } else {
        assert!(hash_refusal(&result), "resumed on another flow version: {:?}", result.map(|_| ()));
    }
    // The same state with the right hash is never refused for the hash.
    resumed.flow_hash = real.flow_hash.clone();
    let result = flow.resume(&resumed, message, &mut Echo, &short_run());
    assert!(!hash_refusal(&result), "refused for its own hash");
});
