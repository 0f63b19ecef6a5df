//! ABI negotiation: node components on `greentic:component/node@0.6.0`, on
//! `component-runtime@0.6.0`, and on the legacy JSON ABIs `@0.5.0` and
//! `@0.4.0` in both record shapes, in one flow; streaming, lifecycle hooks and
//! error mapping of the legacy ABIs.

use serde_json::json;

use crate::support::{host_shim, run_flow, scratch};

fn flow(name: &str, yaml: &str) -> std::path::PathBuf {
    let path = scratch(name).join("flow.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_flow_mixes_0_6_0_5_and_0_4_components() {
    let f = flow(
        "abi-mixed",
        r#"id: mixed
nodes:
  new:
    component.exec: { component: text, operation: upper, input: { from: "{{entry.who}}" } }
  v05:
    component.exec: { component: legacy-v05, operation: upper, input: { prev: "{{prev.from}}" } }
  v04:
    component.exec: { component: legacy-v04, operation: upper, input: { prev: "{{prev}}" } }
  started:
    component.exec: { component: legacy-v05, operation: started, input: {} }
  all:
    echo: { v05: "{{node.v05}}", v04: "{{node.v04}}", started: "{{node.started.started}}" }
"#,
    );
    let out = run_flow(&f, &["--input", r#"{"who": "ada"}"#]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({
            "v05": {"prev": "ADA", "abi": "legacy-v05"},
            "v04": {"prev": {"prev": "ADA", "abi": "LEGACY-V05"}, "abi": "legacy-v04"},
            "started": true
        })
    );
}

#[test]
fn streams_report_progress_and_must_end_properly() {
    let f = flow(
        "abi-stream",
        "id: s\nnodes:\n  s:\n    component.exec: { component: legacy-v04, operation: stream, input: { x: 1 } }\n",
    );
    let out = run_flow(&f, &["--progress"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), json!({"streamed": 7, "abi": "legacy-v04"}));
    for p in ["0%", "50%", "100%"] {
        assert!(
            out.stderr
                .contains(&format!("host-shim: node `s` (legacy-v04): {p}")),
            "{out}"
        );
    }

    let f = flow(
        "abi-stream-open",
        "id: s\nnodes:\n  s:\n    component.exec: { component: legacy-v05, operation: stream-unterminated, input: {} }\n",
    );
    let out = run_flow(&f, &["--progress"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("[bad-stream] the stream ended without `done` or `error`"),
        "{out}"
    );

    let f = flow(
        "abi-stream-error",
        "id: s\nnodes:\n  s:\n    component.exec: { component: legacy-v05, operation: stream-error, input: {} }\n",
    );
    let out = run_flow(&f, &["--progress"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("[stream-error] stream broke"), "{out}");

    // Without progress, `invoke` is used (where this op does not exist).
    let out = run_flow(
        &flow(
            "abi-no-stream",
            "id: s\nnodes:\n  s:\n    component.exec: { component: legacy-v04, operation: stream, input: {} }\n",
        ),
        &[],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("node `s`"), "{out}");
    assert!(out.stderr.contains("[unknown-op]"), "{out}");
}

#[test]
fn legacy_errors_and_lifecycle_failures_are_reported() {
    let f = flow(
        "abi-fail",
        "id: f\nnodes:\n  f:\n    component.exec: { component: legacy-v04, operation: fail, input: {} }\n",
    );
    let out = run_flow(&f, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("node `f` (component `legacy-v04`) failed: [E_LEGACY] failed as asked"),
        "{out}"
    );

    let f = flow(
        "abi-stop",
        "id: f\nnodes:\n  f:\n    component.exec: { component: legacy-v05, operation: fail-stop, input: {} }\n",
    );
    let out = run_flow(&f, &[]);
    assert_eq!(out.code, 0, "the run itself succeeded: {out}");
    assert!(
        out.stderr.contains("warning: component `legacy-v05` failed in on-stop: could not stop cleanly (run finished)"),
        "{out}"
    );
}

#[test]
fn a_component_with_no_node_abi_is_not_composed() {
    // Every node ABI composes through its adapter (the portability corpus runs
    // them on three engines); a component exporting none of them is refused
    // by name, not left to a type error of the graph.
    let f = flow(
        "abi-compose",
        "id: c\nnodes:\n  c:\n    component.exec: { component: ./part.wasm, input: {} }\n",
    );
    let part = std::path::Path::new(host_shim::BUILT_COMPOSE_PARTS_DIR).join("state-memory.wasm");
    std::fs::copy(part, f.with_file_name("part.wasm")).unwrap();
    let out = host_shim(&[
        "compose",
        f.to_str().unwrap(),
        "-o",
        f.with_file_name("app.wasm").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(
            "component `./part.wasm` cannot be a flow node: it exports none of `greentic:component/node@0.6.0`"
        ),
        "{out}"
    );
    assert!(!f.with_file_name("app.wasm").exists());
}

#[test]
fn legacy_components_of_both_record_shapes_run() {
    // `-pre-i18n` components were built from the WIT without `i18n-id`:
    // linking them with the other shape fails with a record-size mismatch.
    let f = flow(
        "abi-shapes",
        r#"id: shapes
nodes:
  old4:
    component.exec: { component: legacy-v04-pre-i18n, operation: upper, input: { s: "{{entry.s}}" } }
  old5:
    component.exec: { component: legacy-v05-pre-i18n, operation: upper, input: { s: "{{entry.s}}" } }
  new4:
    component.exec: { component: legacy-v04, operation: upper, input: { s: "{{entry.s}}" } }
  started:
    component.exec: { component: legacy-v05-pre-i18n, operation: started, input: {} }
  all:
    echo: { old4: "{{node.old4}}", old5: "{{node.old5}}", new4: "{{node.new4}}", started: "{{node.started.started}}" }
"#,
    );
    let out = run_flow(&f, &["--input", r#"{"s": "hi"}"#, "--progress"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({
            "old4": {"s": "HI", "abi": "legacy-v04-pre-i18n"},
            "old5": {"s": "HI", "abi": "legacy-v05-pre-i18n"},
            "new4": {"s": "HI", "abi": "legacy-v04"},
            "started": true
        })
    );
}

#[test]
fn component_runtime_components_get_their_state_back_per_node() {
    let f = flow(
        "abi-runtime",
        r#"id: runtime
nodes:
  a:
    component.exec: { component: runtime-counter, input: { add: 2 } }
  b:
    component.exec: { component: runtime-counter, input: { add: 100 } }
  a_again:
    component.exec: { component: runtime-counter, input: { add: 1 } }
    routing:
      - to: a_again
        condition: out.count < 3
      - to: all
  all:
    echo: { a: "{{node.a.count}}", b: "{{node.b.count}}", again: "{{node.a_again.count}}", seen: "{{node.a.seen}}" }
"#,
    );
    let out = run_flow(&f, &[]);
    assert_eq!(out.code, 0, "{out}");
    // Each node starts from an empty state; a node's own state comes back on its next call.
    assert_eq!(
        out.json(),
        json!({"a": 2, "b": 100, "again": 3, "seen": {"add": 2}})
    );
    // A fresh run starts from empty state again (it is never persisted).
    let again = run_flow(&f, &["--repeat", "2"]);
    assert_eq!(again.code, 0, "{again}");
    let lines: Vec<&str> = again.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{again}");
    assert_eq!(lines[0], lines[1], "state leaked between runs: {again}");
}
