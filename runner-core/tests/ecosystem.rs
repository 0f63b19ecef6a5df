//! What real greentic flows need: greentic-flow's loader rules, the peer
//! runner's context roots, native nodes, error routing and sidecars.

#![allow(clippy::result_large_err)] // RunError is the API's error; tests return it as is.

use std::collections::HashMap;
use std::sync::Arc;

use runner_core::{Flow, FlowError, FlowSource, NodeCall, NodeFailure, RunError, RunOptions};
use serde_json::{Map, Value, json};

fn source(yaml: &str) -> FlowSource {
    FlowSource {
        name: "flows/f.ygtc".into(),
        yaml: yaml.into(),
        ..Default::default()
    }
}

fn load(yaml: &str) -> Flow {
    Flow::load(&source(yaml)).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(yaml: &str) -> String {
    Flow::load(&source(yaml))
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

/// A host for native nodes: echo components, a map for flow state, a log.
#[derive(Default)]
struct Host {
    state: HashMap<(String, String), Value>,
    logs: Vec<String>,
    calls: Vec<String>,
    /// Component -> what it answers instead of echoing.
    answers: HashMap<String, Result<Value, NodeFailure>>,
}

impl runner_core::NodeInvoker for Host {
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        self.calls.push(format!("{}:{}", call.node, call.operation));
        match self.answers.get(call.component) {
            Some(answer) => answer.clone(),
            None => Ok(call.input.clone()),
        }
    }
    fn before_retry(&mut self, _: &NodeCall<'_>, _: &NodeFailure, _: u64) {}
    fn state_get(&mut self, flow: &str, key: &str) -> Result<Option<Value>, String> {
        Ok(self.state.get(&(flow.into(), key.into())).cloned())
    }
    fn state_set(&mut self, flow: &str, key: &str, value: &Value) -> Result<(), String> {
        self.state.insert((flow.into(), key.into()), value.clone());
        Ok(())
    }
    fn log(&mut self, flow: &str, node: &str, payload: &Value) {
        self.logs.push(format!("{flow}/{node}: {payload}"));
    }
}

fn run_with(
    host: &mut Host,
    yaml: &str,
    entry: Value,
    options: &RunOptions,
) -> Result<Value, RunError> {
    load(yaml).run(entry, host, options)
}

fn run(yaml: &str, entry: Value) -> Value {
    run_with(&mut Host::default(), yaml, entry, &RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

// --- loader parity with greentic-flow -------------------------------------

#[test]
fn unknown_top_level_keys_are_accepted_x_keys_silently() {
    let flow = load(
        "id: x\ntype: messaging\nx-generated-by: packgen\nowner: me\nnodes:\n  a:\n    echo: {}\n",
    );
    let notes = flow.plan().notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("top-level key `owner`"), "{notes:?}");
}

#[test]
fn every_compiler_type_loads_and_unknown_types_are_a_note() {
    for t in [
        "messaging",
        "event",
        "events",
        "component-config",
        "job",
        "http",
    ] {
        let flow = load(&format!("id: x\ntype: {t}\nnodes:\n  a:\n    echo: {{}}\n"));
        assert!(flow.plan().notes.is_empty(), "{t}");
    }
    let notes = load("id: x\ntype: digital_worker\nnodes:\n  a:\n    echo: {}\n")
        .plan()
        .notes;
    assert!(notes[0].contains("flow type `digital_worker`"), "{notes:?}");
}

#[test]
fn component_exec_accepts_greentic_flow_spellings() {
    let yaml = r#"
id: x
nodes:
  a:
    component.exec:
      component_ref: ai.greentic.echo
      op: shout
      input: { text: "{{entry.t}}" }
      config: { loud: true, who: "{{entry.who}}" }
  b:
    component.exec:
      component: ./c.wasm
      input: {}
    operation: whisper
    telemetry: { span_name: b }
    annotations: { owner: me }
"#;
    let flow = load(yaml);
    let plan = flow.plan();
    assert_eq!(
        (
            plan.nodes[0].component.as_str(),
            plan.nodes[0].operation.as_str()
        ),
        ("ai.greentic.echo", "shout")
    );
    assert_eq!(
        (
            plan.nodes[1].component.as_str(),
            plan.nodes[1].operation.as_str()
        ),
        ("./c.wasm", "whisper")
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("`telemetry`") && n.contains("`annotations`")),
        "{:?}",
        plan.notes
    );
    // `config` reaches the component as the payload's `config`, templated.
    let mut host = Host::default();
    let out = flow
        .run(
            json!({"t": "hi", "who": "ada"}),
            &mut host,
            &RunOptions::default(),
        )
        .unwrap();
    assert_eq!(out, json!({}));
    let mut seen = Vec::new();
    let mut capture = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        seen.push(call.input.clone());
        Ok(json!({}))
    };
    flow.run(
        json!({"t": "hi", "who": "ada"}),
        &mut capture,
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(
        seen[0],
        json!({"text": "hi", "config": {"loud": true, "who": "ada"}})
    );
}

#[test]
fn legacy_dialects_are_named_with_their_v2_spelling() {
    let messaging = load_err(
        "id: x\ntype: messaging\nin: start\nnodes:\n  start:\n    card: {}\n    routes:\n      - end\n",
    );
    assert!(
        messaging.contains("greentic-messaging dialect"),
        "{messaging}"
    );
    assert!(
        messaging.contains("routing: out") && messaging.contains("start: <node>"),
        "{messaging}"
    );
    assert!(messaging.contains("node `start`"), "{messaging}");
    let list =
        load_err("id: x\nnodes:\n  - id: a\n    component: echo\nedges:\n  - from: a\n    to: b\n");
    assert!(list.contains("list-of-nodes flow with `edges`"), "{list}");
    let next = load_err(
        "id: x\nnodes:\n  a:\n    echo: {}\n    routing:\n      - next: b\n  b:\n    echo: {}\n",
    );
    assert!(
        next.contains("`next:` is an older spelling") && next.contains("`to: <node>`"),
        "{next}"
    );
    let when = load_err(
        "id: x\nnodes:\n  a:\n    echo: {}\n    routing:\n      - to: a\n        when: x\n",
    );
    assert!(when.contains("write `condition:"), "{when}");
    let wait = load_err("id: x\nnodes:\n  a:\n    session.wait: { reason: r }\n");
    assert!(
        wait.contains("node `a`: `session.wait` needs a route to the node the run resumes at"),
        "{wait}"
    );
}

#[test]
fn a_node_named_in_is_the_default_start() {
    let flow = load("id: x\nnodes:\n  first:\n    echo: {}\n  in:\n    echo: {}\n");
    assert_eq!(flow.plan().start, "in");
}

#[test]
fn summary_sidecar_adds_component_id_and_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let flow = Flow::load(&FlowSource {
        resolve_json: Some(r#"{"nodes": {"a": {"source": {"kind": "local", "path": "file://../c/qa.wasm"}}, "b": {"source": {"kind": "repo", "ref": "repo://placeholder/templating"}}}}"#.into()),
        resolve_summary_json: Some(format!(r#"{{"schema_version": 1, "nodes": {{"a": {{"component_id": "ai.greentic.qa", "digest": "{digest}", "source": {{"kind": "local", "path": "../c/qa.wasm"}}}}}}}}"#)),
        ..source("id: x\nnodes:\n  a:\n    text: {}\n  b:\n    render: {}\n")
    })
    .unwrap();
    let plan = flow.plan();
    assert_eq!(plan.nodes[0].component, "../c/qa.wasm");
    assert_eq!(
        plan.nodes[0].component_id.as_deref(),
        Some("ai.greentic.qa")
    );
    assert_eq!(plan.nodes[0].digest.as_deref(), Some(digest.as_str()));
    assert_eq!(plan.nodes[1].component, "repo://placeholder/templating");
    let bad = Flow::load(&FlowSource {
        resolve_summary_json: Some(
            r#"{"nodes": {"a": {"component_id": "c", "digest": "md5:1"}}}"#.into(),
        ),
        ..source("id: x\nnodes:\n  a:\n    text: {}\n")
    })
    .unwrap_err()
    .to_string();
    assert!(
        bad.starts_with("flows/f.ygtc.resolve.summary.json: node `a`: digest `md5:1`"),
        "{bad}"
    );
}

// --- template context --------------------------------------------------------

#[test]
fn in_is_entry_and_entry_input_aliases_a_bare_message() {
    let yaml = r#"
id: x
nodes:
  a:
    echo: { a: "{{in.text}}", b: "{{entry.input.text}}", c: "{{in.input.text}}" }
"#;
    assert_eq!(
        run(yaml, json!({"text": "hi"})),
        json!({"a": "hi", "b": "hi", "c": "hi"})
    );
    // An explicit `input` wrapper is kept as it is.
    let out = run(
        "id: x\nnodes:\n  a:\n    echo: { b: \"{{entry.input.text}}\" }\n",
        json!({"input": {"text": "wrapped"}}),
    );
    assert_eq!(out, json!({"b": "wrapped"}));
}

#[test]
fn state_has_the_peer_run_view() {
    let yaml = r#"
id: x
nodes:
  first:
    echo: { t: "{{ state.input.msg.text }}" }
  second:
    echo:
      ok: "{{state.nodes.first.ok}}"
      payload: "{{state.nodes.first.payload.t}}"
      entry: "{{state.entry.msg.text}}"
      step: "{{state.step}}"
"#;
    let out = run(yaml, json!({"msg": {"text": "hello"}}));
    assert_eq!(
        out,
        json!({"ok": true, "payload": "hello", "entry": "hello", "step": 2})
    );
}

#[test]
fn vars_come_from_vars_init_var_set_and_vars_out() {
    let yaml = r#"
id: x
parameters:
  region: eu
  vars_init:
    counter: { type: number, default: 1 }
    name: { type: string }
nodes:
  set:
    var.set: { name: greeting, value: "hello {{parameters.region}}" }
  copy:
    var.set: { name: copy, value: "{{vars.counter}}" }
  produce:
    echo:
      message: made
      vars_out: { last: "{{prev.message}}" }
  show:
    echo: { greeting: "{{vars.greeting}}", copy: "{{vars.copy}}", last: "{{vars.last}}", region: "{{parameters.region}}" }
"#;
    let mut host = Host::default();
    let out = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap();
    assert_eq!(
        out,
        json!({"greeting": "hello eu", "copy": 1, "last": "made", "region": "eu"})
    );
    // `vars_out` is the runner's: never sent to the component.
    let flow = load(yaml);
    let mut inputs = Vec::new();
    let mut capture = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        inputs.push(call.input.clone());
        Ok(call.input.clone())
    };
    flow.run(json!({}), &mut capture, &RunOptions::default())
        .unwrap();
    assert_eq!(inputs[0], json!({"message": "made"}));
    // Caller values win over defaults.
    let mut vars = Map::new();
    vars.insert("counter".into(), json!(7));
    let options = RunOptions {
        vars,
        ..Default::default()
    };
    let out = run_with(&mut Host::default(), yaml, json!({}), &options).unwrap();
    assert_eq!(out["copy"], json!(7));
}

#[test]
fn a_missing_required_var_fails_before_any_node_runs() {
    let yaml = "id: x\nparameters:\n  vars_init:\n    region: { required: true }\nnodes:\n  a:\n    echo: {}\n";
    let mut host = Host::default();
    let err = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap_err();
    assert!(
        matches!(err, RunError::MissingVar { ref var, .. } if var == "region"),
        "{err}"
    );
    assert!(host.calls.is_empty());
}

#[test]
fn now_is_one_instant_per_node() {
    let out = run(
        "id: x\nnodes:\n  a:\n    echo: { iso: \"{{now.iso}}\", again: \"{{now.iso}}\", ms: \"{{now.epoch_ms}}\", date: \"{{now.date}}\" }\n",
        json!({}),
    );
    assert_eq!(out["iso"], out["again"]);
    let iso = out["iso"].as_str().unwrap();
    assert!(iso.ends_with('Z') && iso.len() == 24, "{iso}");
    assert!(out["ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(out["date"].as_str().unwrap(), &iso[..10]);
}

#[test]
fn liquid_filters_fail_at_load_with_the_handlebars_way() {
    let err = load_err(
        "id: x\nnodes:\n  a:\n    echo: { p: \"{{ params.provider_id | default(\\\"x\\\") }}\" }\n",
    );
    assert!(
        err.contains("`|` filter (Liquid/Jinja style)") && err.contains("{{default x"),
        "{err}"
    );
    assert!(err.contains("node `a`"), "{err}");
    // The default helper is the Handlebars spelling, strict mode included.
    let out = run(
        "id: x\nnodes:\n  a:\n    echo: { p: \"{{default entry.missing \\\"fallback\\\"}}\", q: \"{{default entry.v \\\"no\\\"}}\" }\n",
        json!({"v": "yes"}),
    );
    assert_eq!(out, json!({"p": "fallback", "q": "yes"}));
    // Handlebars' own block params are not filters.
    load("id: x\nnodes:\n  a:\n    echo: { p: \"{{#each entry.xs as |x|}}{{x}}{{/each}}\" }\n");
}

#[test]
fn templating_override_beats_the_flow_setting() {
    let yaml = "id: x\ntemplating: strict\nnodes:\n  a:\n    echo: { p: \"{{entry.nope}}\" }\n";
    let lenient = Flow::load(&FlowSource {
        strict_templating: Some(false),
        ..source(yaml)
    })
    .unwrap();
    let mut host = Host::default();
    assert_eq!(
        lenient
            .run(json!({}), &mut host, &RunOptions::default())
            .unwrap(),
        json!({"p": null})
    );
    assert!(
        load(yaml)
            .run(json!({}), &mut host, &RunOptions::default())
            .is_err()
    );
}

// --- native nodes ----------------------------------------------------------

#[test]
fn emits_make_the_output_an_egress_list() {
    let yaml = r#"
id: x
nodes:
  first:
    emit.response: { text: first }
  log:
    emit.log: { message: "working on {{entry.q}}" }
  second:
    emit.response: { payload: { text: second } }
  last:
    echo: { text: final }
"#;
    let mut host = Host::default();
    let out = run_with(&mut host, yaml, json!({"q": "it"}), &RunOptions::default()).unwrap();
    assert_eq!(
        out,
        json!([{"text": "first"}, {"text": "second"}, {"text": "final"}])
    );
    assert_eq!(host.logs, vec![r#"x/log: {"message":"working on it"}"#]);
    // The last emit is not doubled when it is also the last output.
    let out = run(
        "id: x\nnodes:\n  a:\n    emit.response: { text: only }\n",
        json!({}),
    );
    assert_eq!(out, json!([{"text": "only"}]));
}

#[test]
fn state_get_and_set_use_the_hosts_flow_state() {
    let yaml = r#"
id: counter
nodes:
  read:
    state.get: { key: count, fallback: 0 }
  write:
    state.set: { key: count, value: "{{node.read.value}}" }
  again:
    state.get: { key: count }
"#;
    let mut host = Host::default();
    let out = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap();
    assert_eq!(out, json!({"key": "count", "value": 0, "found": true}));
    assert_eq!(
        host.state.get(&("counter".into(), "count".into())),
        Some(&json!(0))
    );
    // Without a state store the node fails with a clear error.
    let flow = load(yaml);
    let mut echo = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> { Ok(call.input.clone()) };
    let err = flow
        .run(json!({}), &mut echo, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node `read` (state.get)") && err.contains("no state store"),
        "{err}"
    );
}

fn library(flows: &[&str]) -> HashMap<String, Arc<Flow>> {
    flows
        .iter()
        .map(|yaml| {
            let flow = Flow::load(&FlowSource {
                name: "flows/lib.ygtc".into(),
                yaml: yaml.to_string(),
                ..Default::default()
            })
            .unwrap();
            (flow.id().to_string(), Arc::new(flow))
        })
        .collect()
}

#[test]
fn flow_call_runs_a_subflow_and_flow_goto_continues_in_another() {
    let sub = "id: sub\nnodes:\n  s:\n    echo: { doubled: \"{{entry.n}}{{entry.n}}\", var: \"{{default vars.v \\\"none\\\"}}\" }\n";
    let target = "id: target\nnodes:\n  t0:\n    echo: { skipped: true }\n  t1:\n    echo: { landed: \"{{entry.m}}\", v: \"{{vars.v}}\" }\n";
    let options = RunOptions {
        library: library(&[sub, target]),
        ..Default::default()
    };
    let yaml = r#"
id: main
nodes:
  set:
    var.set: { name: v, value: kept }
  call:
    flow.call: { flow: sub, input: { n: "{{entry.n}}" } }
  after:
    echo: { got: "{{node.call.doubled}}", var: "{{node.call.var}}" }
  jump:
    flow.goto: { flow_id: target, node: t1, input: { m: "{{node.after.got}}" } }
  never:
    echo: { unreachable: true }
"#;
    let mut host = Host::default();
    let out = run_with(&mut host, yaml, json!({"n": "4"}), &options).unwrap();
    // The callee has its own vars; goto carries the caller's along.
    assert_eq!(out, json!({"landed": "44", "v": "kept"}));
    assert!(
        !host
            .calls
            .iter()
            .any(|c| c.starts_with("never") || c.starts_with("t0")),
        "{:?}",
        host.calls
    );

    let err = run_with(
        &mut Host::default(),
        "id: m\nnodes:\n  c:\n    flow.call: { flow: ghost }\n",
        json!({}),
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("flow `ghost` not found (flows available to this run: sub, target)"),
        "{err}"
    );
    assert!(load("id: m\nnodes:\n  c:\n    flow.call: { flow: sub }\n  d:\n    flow.goto: { flow_id: target }\n").plan().calls == vec!["sub", "target"]);
}

#[test]
fn redirect_loops_stop_at_max_redirects() {
    let ping = "id: ping\nnodes:\n  p:\n    flow.goto: { flow: pong }\n";
    let pong = "id: pong\nnodes:\n  p:\n    flow.goto: { flow: ping, max_redirects: 5 }\n";
    let options = RunOptions {
        library: library(&[ping, pong]),
        ..Default::default()
    };
    let err = run_with(&mut Host::default(), ping, json!({}), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 3 redirects") || err.contains("more than 5 redirects"),
        "{err}"
    );
}

#[test]
fn a_control_jump_in_a_component_output_is_honoured() {
    let target = "id: elsewhere\nnodes:\n  e:\n    echo: { arrived: \"{{entry.why}}\" }\n";
    let options = RunOptions {
        library: library(&[target]),
        ..Default::default()
    };
    let mut host = Host::default();
    host.answers.insert(
        "router".into(),
        Ok(json!({"greentic_control": {"v": 1, "action": "jump", "flow": "elsewhere", "payload": {"why": "asked"}}})),
    );
    let out = run_with(
        &mut host,
        "id: m\nnodes:\n  r:\n    router: {}\n  n:\n    echo: {}\n",
        json!({}),
        &options,
    )
    .unwrap();
    assert_eq!(out, json!({"arrived": "asked"}));
}

#[test]
fn pack2flow_jump_targets_and_respond_controls_are_honoured() {
    let target = "id: elsewhere\nnodes:\n  skipped:\n    echo: { no: true }\n  e:\n    echo: { arrived: \"{{entry.why}}\" }\n";
    let options = RunOptions {
        library: library(&[target]),
        ..Default::default()
    };
    // pack2flow's shape: `target: {flow, node}` and `params`.
    let mut host = Host::default();
    host.answers.insert(
        "router".into(),
        Ok(json!({"greentic_control": {"v": 1, "action": "jump", "target": {"flow": "elsewhere", "node": "e"}, "params": {"why": "routed"}}})),
    );
    let flow = "id: m\nnodes:\n  r:\n    router: {}\n  n:\n    echo: {}\n";
    let out = run_with(&mut host, flow, json!({}), &options).unwrap();
    assert_eq!(out, json!({"arrived": "routed"}));

    // `respond` ends the flow with that response as its last egress item.
    let mut host = Host::default();
    host.answers.insert(
        "router".into(),
        Ok(json!({"greentic_control": {"v": 1, "action": "respond", "text": "handled"}})),
    );
    let flow = "id: m\nnodes:\n  hello:\n    emit.response: { text: hi }\n  r:\n    router: {}\n  n:\n    echo: { never: true }\n";
    let out = run_with(&mut host, flow, json!({}), &options).unwrap();
    assert_eq!(
        out,
        json!([{"text": "hi"}, {"text": "handled", "card_cbor": null, "needs_user": null}])
    );
    assert!(
        !host.calls.iter().any(|c| c.starts_with("n:")),
        "{:?}",
        host.calls
    );

    // Another version is an error naming it.
    let mut host = Host::default();
    host.answers.insert(
        "router".into(),
        Ok(json!({"greentic_control": {"v": 2, "action": "jump", "flow": "elsewhere"}})),
    );
    let err = run_with(
        &mut host,
        "id: m\nnodes:\n  r:\n    router: {}\n",
        json!({}),
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unsupported version `v: 2`"), "{err}");
}

// --- conditions and error routing -------------------------------------------

#[test]
fn contains_and_roots_in_conditions() {
    let yaml = r#"
id: x
parameters: { word: world }
nodes:
  a:
    echo: { text: "{{entry.text}}", tags: [x, y] }
    routing:
      - to: yes
        condition: out.text contains "WORLD" && out.tags contains "y" && in.text contains parameters.word
      - to: no
  yes:
    echo: { which: yes }
    routing: out
  no:
    echo: { which: no }
"#;
    assert_eq!(
        run(yaml, json!({"text": "hello world"})),
        json!({"which": "yes"})
    );
    assert_eq!(run(yaml, json!({"text": "bye"})), json!({"which": "no"}));
}

const ERROR_ROUTED: &str = r#"
id: x
nodes:
  call:
    flaky: { q: 1 }
    retry: 1
    routing:
      - to: recover
        condition: event == "on_error"
      - to: fine
  fine:
    echo: { which: fine, event: "{{node.call}}" }
    routing: out
  recover:
    echo: { which: recover, error: "{{node.call.error.code}}", ok: "{{node.call.ok}}" }
"#;

#[test]
fn a_failure_follows_an_error_route_instead_of_failing_the_run() {
    let mut host = Host::default();
    host.answers.insert(
        "flaky".into(),
        Err(NodeFailure::Error {
            code: "boom".into(),
            message: "it broke".into(),
            retryable: false,
            backoff_ms: None,
        }),
    );
    let out = run_with(&mut host, ERROR_ROUTED, json!({}), &RunOptions::default()).unwrap();
    assert_eq!(
        out,
        json!({"which": "recover", "error": "boom", "ok": false})
    );
    // On success the same node takes the other route.
    assert_eq!(run(ERROR_ROUTED, json!({}))["which"], json!("fine"));
}

#[test]
fn not_ok_outputs_are_routed_and_status_routes_are_evaluated() {
    let yaml = r#"
id: x
nodes:
  call:
    flaky: {}
    routing:
      - to: bad
        status: error
      - to: good
        status: ok
  good:
    echo: { which: good }
    routing: out
  bad:
    echo: { which: bad, detail: "{{node.call.reason}}" }
"#;
    let mut host = Host::default();
    host.answers.insert(
        "flaky".into(),
        Err(NodeFailure::NotOk(json!({"reason": "nope"}))),
    );
    let out = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap();
    assert_eq!(out, json!({"which": "bad", "detail": "nope"}));
    assert_eq!(run(yaml, json!({}))["which"], json!("good"));
}

#[test]
fn an_unconditional_route_never_swallows_an_error() {
    let yaml = "id: x\nnodes:\n  call:\n    flaky: {}\n    routing:\n      - to: next\n  next:\n    echo: {}\n";
    let mut host = Host::default();
    host.answers.insert(
        "flaky".into(),
        Err(NodeFailure::Error {
            code: "boom".into(),
            message: "m".into(),
            retryable: false,
            backoff_ms: None,
        }),
    );
    let err = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap_err();
    assert!(
        matches!(err, RunError::Node { ref code, .. } if code == "boom"),
        "{err}"
    );
    // A node with error routes whose conditions all fail still fails the run.
    let mut host = Host::default();
    host.answers
        .insert("flaky".into(), Err(NodeFailure::NotOk(json!({}))));
    let yaml = "id: x\nnodes:\n  call:\n    flaky: {}\n    routing:\n      - to: next\n        condition: event == \"on_error\" && out.retry\n  next:\n    echo: {}\n";
    let err = run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ok = false"), "{err}");
}

#[test]
fn an_outcome_in_the_output_is_the_event() {
    let yaml = r#"
id: x
nodes:
  gate:
    approval: {}
    routing:
      - to: yes
        condition: event == "approved"
      - to: no
        condition: event == "denied"
  yes:
    echo: { which: yes }
    routing: out
  no:
    echo: { which: no }
"#;
    let mut host = Host::default();
    host.answers
        .insert("approval".into(), Ok(json!({"outcome": "denied"})));
    assert_eq!(
        run_with(&mut host, yaml, json!({}), &RunOptions::default()).unwrap(),
        json!({"which": "no"})
    );
}

#[test]
fn flow_errors_name_file_and_node() {
    let err = Flow::load(&source("id: x\nnodes:\n  a:\n    var.set: {}\n")).unwrap();
    let e = err
        .run(json!({}), &mut Host::default(), &RunOptions::default())
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("flows/f.ygtc: node `a` (var.set): the payload needs `name`"),
        "{e}"
    );
    let _: FlowError = Flow::load(&source(
        "id: x\nnodes:\n  a:\n    in_map: {}\n    echo: {}\n",
    ))
    .unwrap_err();
}

#[test]
fn mustache_sections_over_paths_render_as_in_handlebars_js() {
    let yaml = r#"
id: x
nodes:
  a:
    echo:
      list: "{{#entry.days}}[{{date}}]{{/entry.days}}"
      object: "{{#entry.place}}<{{name}}>{{/entry.place}}"
      missing: "{{#entry.nothing}}never{{/entry.nothing}}{{^entry.nothing}}none{{/entry.nothing}}"
      nested: "{{#if entry.place}}{{#entry.days}}{{date}};{{/entry.days}}{{/if}}"
"#;
    let out = run(
        yaml,
        json!({"days": [{"date": "mon"}, {"date": "tue"}], "place": {"name": "Oslo"}}),
    );
    assert_eq!(
        out,
        json!({"list": "[mon][tue]", "object": "<Oslo>", "missing": "none", "nested": "mon;tue;"})
    );
}
