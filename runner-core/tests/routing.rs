//! Flow loading, start selection, routing, conditions and the step limit.

use runner_core::{Flow, FlowError, FlowSource, NodeCall, NodeFailure, RunError, RunOptions};
use serde_json::{Value, json};

fn source(yaml: &str) -> FlowSource {
    FlowSource {
        name: "flows/f.yaml".into(),
        yaml: yaml.into(),
        ..Default::default()
    }
}

fn load(yaml: &str) -> Result<Flow, FlowError> {
    Flow::load(&source(yaml))
}

/// Runs with an echo invoker and returns (output, visited node ids).
fn run_trace(yaml: &str, entry: Value) -> (Result<Value, RunError>, Vec<String>) {
    let flow = load(yaml).unwrap_or_else(|e| panic!("{e}"));
    let mut visited = Vec::new();
    let mut echo = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        visited.push(call.node.to_string());
        Ok(call.input.clone())
    };
    let out = flow.run(entry, &mut echo, &RunOptions::default());
    (out, visited)
}

const BRANCHING: &str = r#"
id: branch
nodes:
  check:
    echo: { tier: "{{entry.tier}}", score: "{{entry.score}}" }
    routing:
      - to: gold
        condition: out.tier == "gold"
      - to: high
        condition: "out.score >= 90 && out.tier != 'gold'"
      - to: plain
  gold:
    echo: { which: gold }
    routing: out
  high:
    echo: { which: high }
    routing: reply
  plain:
    echo: { which: plain }
"#;

#[test]
fn conditions_pick_the_first_matching_route() {
    let (out, path) = run_trace(BRANCHING, json!({"tier": "gold", "score": 10}));
    assert_eq!(
        (out.unwrap(), path),
        (
            json!({"which": "gold"}),
            vec!["check".to_string(), "gold".into()]
        )
    );
    let (out, path) = run_trace(BRANCHING, json!({"tier": "silver", "score": 95}));
    assert_eq!(
        (out.unwrap(), path),
        (
            json!({"which": "high"}),
            vec!["check".to_string(), "high".into()]
        )
    );
    let (out, path) = run_trace(BRANCHING, json!({"tier": "none", "score": 1}));
    assert_eq!(
        (out.unwrap(), path),
        (
            json!({"which": "plain"}),
            vec!["check".to_string(), "plain".into()]
        )
    );
}

#[test]
fn no_matching_condition_makes_the_run_wait_at_that_node() {
    // As in greentic-runner: conditions that all fail park the run at the
    // node (a card waiting for its answer); `run` cannot wait, so it says so.
    let yaml = "id: x\nnodes:\n  a:\n    echo: { v: 1 }\n    routing:\n      - to: b\n        condition: out.v == 2\n  b:\n    echo: { v: 2 }\n";
    let (out, path) = run_trace(yaml, json!({}));
    assert_eq!(path, vec!["a".to_string()]);
    match out.unwrap_err() {
        RunError::Waits { node, .. } => assert_eq!(node, "a"),
        other => panic!("expected to wait, got {other}"),
    }
    // An unconditional route after the conditions ends it instead.
    let ended = yaml.replace(
        "condition: out.v == 2\n",
        "condition: out.v == 2\n      - out: true\n",
    );
    let (out, path) = run_trace(&ended, json!({}));
    assert_eq!(
        (out.unwrap(), path),
        (json!({"v": 1}), vec!["a".to_string()])
    );
}

#[test]
fn nodes_without_routing_run_in_file_order() {
    let yaml =
        "id: x\nnodes:\n  a:\n    echo: {}\n  b:\n    echo: {}\n  c:\n    echo: { last: true }\n";
    let (out, path) = run_trace(yaml, json!({}));
    assert_eq!(
        (out.unwrap(), path),
        (
            json!({"last": true}),
            vec!["a".to_string(), "b".into(), "c".into()]
        )
    );
}

#[test]
fn flow_id_defaults_to_the_file_stem() {
    let flow = load("nodes:\n  a:\n    echo: {}\n").unwrap();
    assert_eq!(flow.id(), "f");
}

#[test]
fn start_key_then_entrypoints_then_first_node() {
    let base = "nodes:\n  a:\n    echo: { n: a }\n    routing: out\n  b:\n    echo: { n: b }\n    routing: out\n";
    let first = format!("id: x\n{base}");
    let start = format!("id: x\nstart: b\n{base}");
    let entry = format!("id: x\nentrypoints:\n  default: b\n{base}");
    assert_eq!(run_trace(&first, json!({})).1, vec!["a"]);
    assert_eq!(run_trace(&start, json!({})).1, vec!["b"]);
    assert_eq!(run_trace(&entry, json!({})).1, vec!["b"]);
    assert_eq!(load(&start).unwrap().plan().start, "b");
}

#[test]
fn loops_count_visits_and_stop_at_the_step_limit() {
    let yaml = r#"
id: loop
max_steps: 7
nodes:
  tick:
    echo: { n: "{{state.visits}}" }
    routing:
      - to: tick
        condition: out.n < 3
      - to: done
  done:
    echo: { ticks: "{{node.tick.n}}", step: "{{state.step}}" }
"#;
    let (out, path) = run_trace(yaml, json!({}));
    assert_eq!(out.unwrap(), json!({"ticks": 3, "step": 4}));
    assert_eq!(path, vec!["tick", "tick", "tick", "done"]);

    let endless = "id: spin\nmax_steps: 5\nnodes:\n  a:\n    echo: {}\n    routing: [{ to: b }]\n  b:\n    echo: {}\n    routing: [{ to: a }]\n";
    let (out, path) = run_trace(endless, json!({}));
    let err = out.unwrap_err();
    assert!(
        matches!(err, RunError::StepLimit { limit: 5, .. }),
        "{err:?}"
    );
    assert_eq!(path.len(), 5);
    assert!(err.to_string().contains("step limit of 5"), "{err}");
    assert_eq!(
        err.node(),
        Some("b"),
        "a, b, a, b, a ran; b would be the sixth step"
    );

    // The run option overrides the flow's own limit.
    let flow = load(endless).unwrap();
    let mut count = 0;
    let mut echo = |c: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        count += 1;
        Ok(c.input.clone())
    };
    let options = RunOptions {
        max_steps: Some(2),
        ..Default::default()
    };
    assert!(matches!(
        flow.run(json!({}), &mut echo, &options),
        Err(RunError::StepLimit { limit: 2, .. })
    ));
    assert_eq!(count, 2);
}

#[test]
fn a_failing_condition_names_node_and_condition() {
    let yaml = "id: c\nnodes:\n  a:\n    echo: { v: x }\n    routing:\n      - to: a\n        condition: out.v > 1\n";
    let err = run_trace(yaml, json!({})).0.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("node `a`") && msg.contains("`out.v > 1`") && msg.contains("cannot order"),
        "{msg}"
    );
}

#[test]
fn node_errors_carry_code_and_message() {
    let flow = load("id: e\nnodes:\n  boom:\n    component.exec: { component: bad, input: {} }\n")
        .unwrap();
    let mut failing = |_: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        Err(NodeFailure::Error {
            code: "E42".into(),
            message: "went wrong".into(),
            retryable: false,
            backoff_ms: None,
        })
    };
    let err = flow
        .run(json!({}), &mut failing, &RunOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "flows/f.yaml: node `boom` (component `bad`) failed: [E42] went wrong"
    );
}

fn invalid(yaml: &str) -> String {
    load(yaml).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn invalid_flows_are_explained() {
    let cases: &[(&str, &str)] = &[
        (
            "id: [x]\nnodes: {a: {echo: {}}}",
            "`id` must be a non-empty string",
        ),
        ("id: x", "missing `nodes`"),
        ("id: x\nnodes: {}", "`nodes` is empty"),
        ("- a\n- b", "must be a YAML mapping"),
        (
            "id: x\nstart: nope\nnodes:\n  a:\n    echo: {}\n",
            "`start` names `nope`, which is not a node (nodes: a)",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    routing: [{ to: ghost }]\n",
            "routing entry 0 goes to unknown node `ghost`",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    other: {}\n",
            "more than one operation key: `echo`, `other`",
        ),
        (
            "id: x\nnodes:\n  a:\n    routing: out\n",
            "no operation key",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    retry: { max: 3 }\n",
            "`retry` must be a number of attempts",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    when: out.x\n",
            "`when` is not supported",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    timeout: soon\n",
            "`timeout` must be milliseconds",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    routing: [{ to: a, condition: \"out.x ==\" }]\n",
            "condition `out.x ==`: expected a value",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    routing: [{ to: a, condition: \"foo.x\" }]\n",
            "reads `foo`",
        ),
        (
            "id: x\nnodes:\n  a:\n    echo: {}\n    routing: sideways\n",
            "`routing: sideways` is not valid",
        ),
        (
            "id: x\nnodes:\n  \"9a\":\n    echo: {}\n",
            "node ids must start with a letter",
        ),
        (
            "id: x\nmax_steps: 0\nnodes:\n  a:\n    echo: {}\n",
            "`max_steps` must be a positive integer",
        ),
        ("id: x\nnodez: {}\n", "missing `nodes`"),
        (
            "id: x\nnodes:\n  a:\n    component.exec: { operation: x }\n",
            "`component.exec` names no `component`",
        ),
        (
            "id: x\nnodes:\n  a:\n    component.exec: { component: 7 }\n",
            "`component.exec.component` must be a non-empty string",
        ),
    ];
    for (yaml, expected) in cases {
        let msg = invalid(yaml);
        assert!(msg.starts_with("flows/f.yaml"), "no file in {msg:?}");
        assert!(
            msg.contains(expected),
            "for {yaml:?}: expected {expected:?} in {msg:?}"
        );
    }
}

#[test]
fn node_errors_point_at_the_node_line() {
    let yaml =
        "id: x\nnodes:\n  a:\n    echo: {}\n  b:\n    echo: {}\n    routing: [{ to: ghost }]\n";
    let err = load(yaml).unwrap_err();
    assert!(
        err.to_string().starts_with("flows/f.yaml:5:3: node `b`"),
        "{err}"
    );
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let err = load("id: x\nnodes:\n  a: [unclosed\n").unwrap_err();
    let FlowError::Yaml { pos, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(pos.line.is_some() && pos.column.is_some(), "{err:?}");
    assert!(err.to_string().starts_with("flows/f.yaml:"), "{err}");
}

#[test]
fn sidecar_resolves_components_for_op_nodes() {
    let yaml =
        "id: x\nnodes:\n  a:\n    read: { u: 1 }\n  b:\n    write: {}\n  c:\n    other: {}\n";
    let sidecar = r#"{"schema_version": 1, "nodes": {"a": "fetcher", "b": {"source": {"kind": "local", "path": "./w.wasm"}}}}"#;
    let flow = Flow::load(&FlowSource {
        resolve_json: Some(sidecar.into()),
        ..source(yaml)
    })
    .unwrap();
    let plan = flow.plan();
    let got: Vec<(&str, &str, &str)> = plan
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.component.as_str(), n.operation.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "fetcher", "read"),
            ("b", "./w.wasm", "write"),
            ("c", "other", "other")
        ]
    );
    assert_eq!(plan.components, vec!["fetcher", "./w.wasm", "other"]);

    // Any source kind is planned by its reference; the host resolves it.
    let oci =
        r#"{"nodes": {"a": {"source": {"kind": "oci", "ref": "oci://ghcr.io/x/fetcher:1"}}}}"#;
    let plan = Flow::load(&FlowSource {
        resolve_json: Some(oci.into()),
        ..source(yaml)
    })
    .unwrap()
    .plan();
    assert_eq!(plan.nodes[0].component, "oci://ghcr.io/x/fetcher:1");
    let bad = Flow::load(&FlowSource {
        resolve_json: Some("{".into()),
        ..source(yaml)
    })
    .unwrap_err();
    assert!(
        bad.to_string()
            .starts_with("flows/f.yaml.resolve.json: invalid JSON"),
        "{bad}"
    );
}

#[test]
fn invalid_entry_json_is_an_input_error() {
    let err = runner_core::parse_entry("{nope").unwrap_err();
    assert!(matches!(err, RunError::InvalidInput(_)));
    assert_eq!(runner_core::parse_entry("  ").unwrap(), json!({}));
}

/// An invoker that fails with a retryable error until `succeed_at`, recording
/// the attempts it saw and the delays the runner chose.
struct Flaky {
    succeed_at: u32,
    backoff_ms: Option<u64>,
    attempts: Vec<u32>,
    delays: Vec<u64>,
    retryable: bool,
}

impl runner_core::NodeInvoker for Flaky {
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        self.attempts.push(call.attempt);
        if call.attempt < self.succeed_at {
            return Err(NodeFailure::Error {
                code: "E_FLAKY".into(),
                message: "try again".into(),
                retryable: self.retryable,
                backoff_ms: self.backoff_ms,
            });
        }
        Ok(json!({"attempt": call.attempt}))
    }

    fn before_retry(&mut self, _: &NodeCall<'_>, _: &NodeFailure, delay_ms: u64) {
        self.delays.push(delay_ms);
    }
}

fn flaky(succeed_at: u32, backoff_ms: Option<u64>, retryable: bool) -> Flaky {
    Flaky {
        succeed_at,
        backoff_ms,
        attempts: vec![],
        delays: vec![],
        retryable,
    }
}

#[test]
fn retryable_errors_are_retried_with_backoff() {
    let flow = load("id: r\nnodes:\n  n:\n    echo: {}\n").unwrap();
    // Default policy: 3 attempts, 100 ms doubling.
    let mut f = flaky(3, None, true);
    assert_eq!(
        flow.run(json!({}), &mut f, &RunOptions::default()).unwrap(),
        json!({"attempt": 3})
    );
    assert_eq!((f.attempts, f.delays), (vec![1, 2, 3], vec![100, 200]));
    // The component's backoff_ms wins.
    let mut f = flaky(2, Some(7), true);
    flow.run(json!({}), &mut f, &RunOptions::default()).unwrap();
    assert_eq!(f.delays, vec![7]);
    // Out of attempts: the error says how many were made.
    let mut f = flaky(5, None, true);
    let err = flow
        .run(json!({}), &mut f, &RunOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed after 3 attempts: [E_FLAKY] try again"),
        "{err}"
    );
    // Not retryable: one attempt.
    let mut f = flaky(2, None, false);
    let err = flow
        .run(json!({}), &mut f, &RunOptions::default())
        .unwrap_err();
    assert_eq!(f.attempts, vec![1]);
    assert!(err.to_string().contains("failed: [E_FLAKY]"), "{err}");
}

#[test]
fn the_retry_key_sets_the_policy() {
    let flow =
        load("id: r\nnodes:\n  n:\n    echo: {}\n    retry: { max_attempts: 5, delay_ms: 10 }\n")
            .unwrap();
    let mut f = flaky(5, None, true);
    flow.run(json!({}), &mut f, &RunOptions::default()).unwrap();
    assert_eq!(f.delays, vec![10, 20, 40, 80]);
    let once = load("id: r\nnodes:\n  n:\n    echo: {}\n    retry: 1\n").unwrap();
    let mut f = flaky(2, None, true);
    assert!(once.run(json!({}), &mut f, &RunOptions::default()).is_err());
    assert_eq!(f.attempts, vec![1]);
}

#[test]
fn timeouts_reach_the_invoker() {
    let flow = load("id: t\nnodes:\n  a:\n    echo: {}\n    timeout: 2s\n  b:\n    echo: {}\n    timeout: 250\n  c:\n    echo: {}\n").unwrap();
    let mut seen = Vec::new();
    let mut record = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        seen.push(call.timeout_ms);
        Ok(json!({}))
    };
    flow.run(json!({}), &mut record, &RunOptions::default())
        .unwrap();
    assert_eq!(seen, vec![Some(2000), Some(250), None]);
}

/// Found by the `flow_load` fuzz target: a node whose operation key is not a
/// string (`1:`, `true:`) made the loader panic (the runner component trapped)
/// looking the key up again by its text.
#[test]
fn a_non_string_operation_key_loads_or_is_refused_without_a_panic() {
    for key in ["1", "true", "1.5", "~"] {
        let yaml = format!("id: x\nnodes:\n  a:\n    {key}: {{ text: hi }}\n");
        match load(&yaml) {
            Ok(flow) => assert_eq!(flow.plan().nodes.len(), 1, "{key}"),
            Err(e) => assert!(e.to_string().contains("node `a`"), "{key}: {e}"),
        }
    }
}
