//! Templating rules (seeds 001 and 003), run natively through `Flow::run` with
//! an echo invoker: each node's output is its rendered input.

#![allow(clippy::result_large_err)] // RunError is the API's error; tests return it as is.

use runner_core::{
    Flow, FlowError, FlowSource, NodeCall, NodeFailure, RunError, RunOptions, Tenant,
};
use serde_json::{Value, json};

fn flow(yaml: &str) -> Flow {
    Flow::load(&source(yaml)).unwrap_or_else(|e| panic!("flow should load: {e}\n{yaml}"))
}

fn source(yaml: &str) -> FlowSource {
    FlowSource {
        name: "flow.yaml".into(),
        yaml: yaml.into(),
        ..Default::default()
    }
}

fn echo(call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
    Ok(call.input.clone())
}

fn run(yaml: &str, entry: Value) -> Result<Value, RunError> {
    flow(yaml).run(entry, &mut echo, &RunOptions::default())
}

/// A one-node flow whose input is `input_yaml` (indented under the op key).
fn render(input_yaml: &str, entry: Value) -> Result<Value, RunError> {
    let yaml = format!(
        "id: t\nnodes:\n  only:\n    echo:\n{}\n",
        indent(input_yaml, 6)
    );
    run(&yaml, entry)
}

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

#[test]
fn typed_insertion_keeps_json_types() {
    let entry = json!({"n": 42, "f": 1.5, "b": true, "o": {"k": [1, "x"]}, "a": [1, 2], "z": null, "s": "text"});
    let out = render(
        "n: \"{{entry.n}}\"\nf: \"{{entry.f}}\"\nb: \"{{entry.b}}\"\no: \"{{entry.o}}\"\na: \"{{entry.a}}\"\nz: \"{{entry.z}}\"\ns: \"{{entry.s}}\"",
        entry.clone(),
    )
    .unwrap();
    assert_eq!(out, entry);
}

#[test]
fn typed_insertion_allows_spaces_and_triple_stash() {
    let out = render(
        "a: \"{{ entry.n }}\"\nb: \"{{{entry.n}}}\"",
        json!({"n": 7}),
    )
    .unwrap();
    assert_eq!(out, json!({"a": 7, "b": 7}));
}

#[test]
fn unquoted_templates_from_seed_001_work_as_written() {
    let yaml = r#"
id: seed
nodes:
  start:
    read:
      url: "https://api.example.com/users/{{entry.user_id}}"
      user: {{entry.user}}
  process:
    transform:
      user_id: {{node.start.user.id}}
      name: {{node.start.user.name}}
      last_status: {{prev.status}}
      url_again: {{prev.url}}
"#;
    // The fake makes `start` answer like an API would.
    let mut fake = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        Ok(match call.node {
            "start" => json!({"status": 200, "url": call.input["url"], "user": call.input["user"]}),
            _ => call.input.clone(),
        })
    };
    // Seed 001 has no routing: nodes run in file order.
    let out = flow(yaml)
        .run(
            json!({"user_id": 7, "user": {"id": 7, "name": "Ada"}}),
            &mut fake,
            &RunOptions::default(),
        )
        .unwrap();
    assert_eq!(
        out,
        json!({"user_id": 7, "name": "Ada", "last_status": 200, "url_again": "https://api.example.com/users/7"})
    );
}

#[test]
fn mixed_text_renders_to_string() {
    let out = render(
        "url: \"https://x/{{entry.id}}\"\ntwo: \"{{entry.a}} {{entry.b}}\"\nnum_in_text: \"n={{entry.id}}\"",
        json!({"id": 5, "a": "hello", "b": "world"}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"url": "https://x/5", "two": "hello world", "num_in_text": "n=5"})
    );
}

#[test]
fn block_helpers_render() {
    let input = "flag: \"{{#if entry.vip}}yes{{else}}no{{/if}}\"\nlist: \"{{#each entry.items}}[{{this}}]{{/each}}\"\neq: \"{{#if (eq entry.tier 'gold')}}gold{{/if}}\"";
    let out = render(input, json!({"vip": true, "items": [1, 2], "tier": "gold"})).unwrap();
    assert_eq!(out, json!({"flag": "yes", "list": "[1][2]", "eq": "gold"}));
    let out = render(input, json!({"vip": false, "items": [], "tier": "x"})).unwrap();
    assert_eq!(out, json!({"flag": "no", "list": "", "eq": ""}));
}

#[test]
fn no_html_escaping() {
    let out = render(
        "s: \"<b>{{entry.t}}</b>\"\nt: \"{{entry.t}}\"",
        json!({"t": "a & <b> \"q\""}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"s": "<b>a & <b> \"q\"</b>", "t": "a & <b> \"q\""})
    );
}

#[test]
fn plain_values_pass_through_and_keys_are_not_templated() {
    let out = render(
        "\"{{entry.k}}\": 1\nplain: just text\nnum: 3\nnested:\n  - a: \"{{entry.k}}\"\n  - 4\n  - [\"{{entry.k}}\", x]",
        json!({"k": "v"}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"{{entry.k}}": 1, "plain": "just text", "num": 3, "nested": [{"a": "v"}, 4, ["v", "x"]]})
    );
}

#[test]
fn entry_defaults_to_empty_object_and_prev_to_empty_for_first_node() {
    let out = render("e: \"{{entry}}\"\np: \"{{prev}}\"", json!({})).unwrap();
    assert_eq!(out, json!({"e": {}, "p": {}}));
}

#[test]
fn prev_and_node_refer_to_earlier_outputs() {
    let yaml = r#"
id: chain
nodes:
  a:
    echo: { v: 1 }
    routing: [{ to: b }]
  b:
    echo: { v: 2, from_a: "{{prev.v}}" }
    routing: [{ to: c }]
  c:
    echo:
      prev_v: "{{prev.v}}"
      a_v: "{{node.a.v}}"
      b_from_a: "{{node.b.from_a}}"
      all: "{{node}}"
"#;
    let out = run(yaml, json!({})).unwrap();
    assert_eq!(
        out,
        json!({"prev_v": 2, "a_v": 1, "b_from_a": 1, "all": {"a": {"v": 1}, "b": {"v": 2, "from_a": 1}}})
    );
}

#[test]
fn state_is_the_runner_local_view() {
    let yaml = r#"
id: st
nodes:
  first:
    echo: { s: "{{state}}" }
"#;
    let options = RunOptions {
        tenant: Tenant {
            env: "dev".into(),
            tenant: "acme".into(),
            team: Some("ops".into()),
            user: None,
        },
        ..Default::default()
    };
    let out = flow(yaml).run(json!({}), &mut echo, &options).unwrap();
    assert_eq!(
        out["s"],
        json!({"flow": "st", "node": "first", "step": 1, "visits": 1,
               "tenant": {"env": "dev", "tenant": "acme", "team": "ops", "user": null}})
    );
}

#[test]
fn missing_variable_is_an_error_naming_node_field_and_expression() {
    let err = render("user:\n  id: \"{{entry.user.id}}\"", json!({})).unwrap_err();
    let RunError::Template(t) = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(t.node, "only");
    assert_eq!(t.field, "input.user.id");
    assert_eq!(t.expr, "{{entry.user.id}}");
    assert!(
        t.reason.contains("missing variable `entry.user.id`"),
        "{}",
        t.reason
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("flow.yaml: node `only`, field `input.user.id`"),
        "{msg}"
    );

    let err = render("s: \"id={{entry.nope}}\"", json!({})).unwrap_err();
    assert!(err.to_string().contains("missing variable"), "{err}");
    let err = render("l: [\"x\", \"{{entry.nope}}\"]", json!({})).unwrap_err();
    assert!(err.to_string().contains("field `input.l[1]`"), "{err}");
}

#[test]
fn lenient_templating_renders_missing_as_empty_or_null() {
    let yaml = "id: t\ntemplating: lenient\nnodes:\n  only:\n    echo: { a: \"{{entry.nope}}\", b: \"x{{entry.nope}}y\" }\n";
    assert_eq!(run(yaml, json!({})).unwrap(), json!({"a": null, "b": "xy"}));
}

#[test]
fn if_on_a_missing_value_is_not_an_error_in_strict_mode() {
    let out = render(
        "a: \"{{#if entry.maybe}}set{{else}}unset{{/if}}\"",
        json!({}),
    )
    .unwrap();
    assert_eq!(out, json!({"a": "unset"}));
}

#[test]
fn template_syntax_errors_are_reported_at_load() {
    let err = Flow::load(&source(
        "id: t\nnodes:\n  n:\n    echo: { a: \"{{#if x}}open\" }\n",
    ))
    .unwrap_err();
    let FlowError::Template(t, _) = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!((t.node.as_str(), t.field.as_str()), ("n", "input.a"));
    assert!(t.reason.starts_with("syntax error"), "{}", t.reason);
}

#[test]
fn v2_input_wrapper_is_unwrapped_and_component_exec_works() {
    let yaml = r#"
id: forms
nodes:
  a:
    handle_message:
      input: { msg: "hi {{entry.who}}" }
    routing: [{ to: b }]
  b:
    component.exec:
      component: ./echo.wasm
      operation: shout
      input: { got: "{{prev.msg}}" }
"#;
    let mut seen = Vec::new();
    let mut record = |call: &NodeCall<'_>| -> Result<Value, NodeFailure> {
        seen.push((
            call.node.to_string(),
            call.component.to_string(),
            call.operation.to_string(),
        ));
        Ok(call.input.clone())
    };
    let out = flow(yaml)
        .run(json!({"who": "you"}), &mut record, &RunOptions::default())
        .unwrap();
    assert_eq!(out, json!({"got": "hi you"}));
    assert_eq!(
        seen,
        vec![
            ("a".into(), "handle_message".into(), "handle_message".into()),
            ("b".into(), "./echo.wasm".into(), "shout".into())
        ]
    );
}
