//! Conversations: a run that waits for the next message (`session.wait`, or a
//! card whose conditions match nothing), written down as a snapshot and
//! resumed from it — after a JSON round trip, as a host stores it.

use std::collections::HashMap;
use std::sync::Arc;

use runner_core::{
    Flow, FlowSource, NodeCall, NodeFailure, RunError, RunOptions, RunOutcome, Snapshot,
};
use serde_json::{Value, json};

fn load(yaml: &str) -> Flow {
    Flow::load(&FlowSource {
        name: "flows/chat.ygtc".into(),
        yaml: yaml.into(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Echo components; records the nodes called.
#[derive(Default)]
struct Echo {
    calls: Vec<String>,
}

impl runner_core::NodeInvoker for Echo {
    fn invoke(&mut self, call: &NodeCall<'_>) -> Result<Value, NodeFailure> {
        self.calls.push(call.node.to_string());
        Ok(call.input.clone())
    }
}

/// The snapshot of a waiting turn, through its JSON form; panics otherwise.
fn waiting(outcome: RunOutcome) -> (Value, Snapshot) {
    match outcome {
        RunOutcome::Waiting { output, snapshot } => {
            (output, Snapshot::from_json(&snapshot.to_json()).unwrap())
        }
        RunOutcome::Completed(out) => panic!("completed with {out}, expected to wait"),
    }
}

fn completed(outcome: RunOutcome) -> Value {
    match outcome {
        RunOutcome::Completed(out) => out,
        RunOutcome::Waiting { snapshot, .. } => panic!("waits at {}", snapshot.node),
    }
}

const ASK: &str = r#"
id: ask
parameters:
  vars_init:
    turns: { default: 0 }
nodes:
  hello:
    var.set: { name: greeting, value: "hello" }
    routing: [{ to: question }]
  question:
    emit.response: { text: "what is your name?" }
    routing: [{ to: wait }]
  wait:
    session.wait: { reason: "name" }
    routing: [{ to: answer }]
  answer:
    component.exec:
      component: echo
      input: { text: "{{vars.greeting}} {{in.text}}", asked: "{{node.question.text}}", turns: "{{vars.turns}}" }
"#;

#[test]
fn a_flow_asks_waits_and_answers_on_the_next_message() {
    let flow = load(ASK);
    let mut echo = Echo::default();
    let options = RunOptions::default();
    let (output, snapshot) = waiting(
        flow.start(json!({"text": "hi"}), &mut echo, &options)
            .unwrap(),
    );
    // The turn answers with what it emitted and the wait node's output.
    assert_eq!(
        output,
        json!([{"text": "what is your name?"}, {"waiting": true, "reason": "name"}])
    );
    assert_eq!(snapshot.node, "answer");
    assert!(!snapshot.redispatch);
    assert_eq!(snapshot.reason.as_deref(), Some("name"));
    assert_eq!(snapshot.steps, 3);
    assert!(echo.calls.is_empty(), "no component ran before the wait");

    let out = completed(
        flow.resume(&snapshot, json!({"text": "Ada"}), &mut echo, &options)
            .unwrap(),
    );
    assert_eq!(
        out,
        json!({"text": "hello Ada", "asked": "what is your name?", "turns": 0}),
        "vars and node.* survive the wait; `in` is the new message"
    );
    assert_eq!(echo.calls, ["answer"]);
}

/// A snapshot names its tenant: resumed for another (a host handing a
/// snapshot back with another tenant's request), it is refused, nothing runs.
#[test]
fn a_snapshot_resumes_only_for_the_tenant_whose_run_it_is() {
    let flow = load(ASK);
    let mut echo = Echo::default();
    let acme = RunOptions {
        tenant: runner_core::Tenant {
            env: "local".into(),
            tenant: "acme".into(),
            team: None,
            user: Some("u1".into()),
        },
        ..RunOptions::default()
    };
    let (_, snapshot) = waiting(flow.start(json!({}), &mut echo, &acme).unwrap());
    assert_eq!(snapshot.tenant.tenant, "acme");
    let mut other = acme.clone();
    other.tenant.tenant = "globex".into();
    let mut other_user = acme.clone();
    other_user.tenant.user = Some("u2".into());
    for options in [&other, &other_user] {
        let err = flow
            .resume(&snapshot, json!({"text": "Mallory"}), &mut echo, options)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the run belongs to tenant `local`/`acme`"),
            "{err}"
        );
    }
    assert!(echo.calls.is_empty(), "a refused resume ran a node");
    let out = completed(
        flow.resume(&snapshot, json!({"text": "Ada"}), &mut echo, &acme)
            .unwrap(),
    );
    assert_eq!(out["text"], json!("hello Ada"));
}

#[test]
fn running_a_waiting_flow_without_a_session_is_an_error_naming_the_node() {
    let err = load(ASK)
        .run(json!({}), &mut Echo::default(), &RunOptions::default())
        .unwrap_err();
    assert!(matches!(err, RunError::Waits { .. }));
    assert!(
        err.to_string()
            .contains("the run waits at node `answer` of flow `ask`"),
        "{err}"
    );
}

const CARD: &str = r#"
id: card
nodes:
  form:
    component.exec:
      component: card
      input: { title: "Your email?", answer_fields: [email] }
    routing:
      - { to: thanks, condition: 'response.action == "submit"' }
      - { to: help, on_message: true }
  thanks:
    component.exec: { component: echo, input: { email: "{{node.form.answers.email}}", answers: "{{node.form.answers}}" } }
    routing: out
  help:
    component.exec: { component: echo, input: { help: "you wrote {{in.text}}" } }
"#;

#[test]
fn a_card_waits_for_its_button_and_gets_the_answers() {
    let flow = load(CARD);
    let mut echo = Echo::default();
    let options = RunOptions::default();
    let (output, snapshot) = waiting(flow.start(json!({}), &mut echo, &options).unwrap());
    assert_eq!(output["title"], "Your email?");
    assert_eq!(snapshot.node, "form");
    assert!(snapshot.redispatch, "a parked card runs again on resume");

    let submit =
        json!({"email": "ada@example.com", "phone": "123", "metadata": {"action": "submit"}});
    let out = completed(flow.resume(&snapshot, submit, &mut echo, &options).unwrap());
    assert_eq!(
        out,
        json!({"email": "ada@example.com", "answers": {"email": "ada@example.com"}}),
        "answers are kept to answer_fields, without metadata"
    );
    assert_eq!(echo.calls, ["form", "form", "thanks"]);
}

#[test]
fn free_text_while_a_card_waits_takes_on_message_or_keeps_waiting() {
    let options = RunOptions::default();
    // With an `on_message` route: free text takes it.
    let flow = load(CARD);
    let (_, snapshot) = waiting(
        flow.start(json!({}), &mut Echo::default(), &options)
            .unwrap(),
    );
    let out = completed(
        flow.resume(
            &snapshot,
            json!({"text": "what?"}),
            &mut Echo::default(),
            &options,
        )
        .unwrap(),
    );
    assert_eq!(out, json!({"help": "you wrote what?"}));

    // Without one: free text leaves the run waiting at the card, intact, and
    // the button still works afterwards.
    let strict = load(&CARD.replace("      - { to: help, on_message: true }\n", ""));
    let mut echo = Echo::default();
    let (_, first) = waiting(strict.start(json!({}), &mut echo, &options).unwrap());
    let (_, again) = waiting(
        strict
            .resume(&first, json!({"text": "hello?"}), &mut echo, &options)
            .unwrap(),
    );
    assert_eq!(again.node, "form");
    assert!(again.redispatch);
    let out = completed(
        strict
            .resume(
                &again,
                json!({"email": "a@b.c", "metadata": {"action": "submit"}}),
                &mut echo,
                &options,
            )
            .unwrap(),
    );
    assert_eq!(out["email"], "a@b.c");
    // An `on_message` route is not taken by a first run or by a button.
    let (_, parked) = waiting(
        flow.start(json!({"text": "x"}), &mut Echo::default(), &options)
            .unwrap(),
    );
    let (_, still) = waiting(
        flow.resume(
            &parked,
            json!({"metadata": {"action": "cancel"}}),
            &mut Echo::default(),
            &options,
        )
        .unwrap(),
    );
    assert_eq!(still.node, "form");
}

#[test]
fn a_snapshot_of_another_flow_version_is_refused() {
    let flow = load(ASK);
    let (_, snapshot) = waiting(
        flow.start(json!({}), &mut Echo::default(), &RunOptions::default())
            .unwrap(),
    );
    let changed = load(&ASK.replace("what is your name?", "who are you?"));
    let err = changed
        .resume(
            &snapshot,
            json!({"text": "Ada"}),
            &mut Echo::default(),
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, RunError::Snapshot { .. }));
    assert!(
        err.to_string()
            .contains("waits in another version of flow `ask`"),
        "{err}"
    );
    let other = load("id: other\nnodes:\n  a:\n    echo: {}\n");
    let err = other
        .resume(
            &snapshot,
            json!({}),
            &mut Echo::default(),
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("waits in flow `ask`"), "{err}");
}

#[test]
fn a_called_flow_cannot_wait_but_a_goto_target_can() {
    let callee = Arc::new(load(
        "id: callee\nnodes:\n  w:\n    session.wait: x\n    routing: [{ to: done }]\n  done:\n    echo: { got: \"{{in.text}}\" }\n",
    ));
    let options = RunOptions {
        library: HashMap::from([("callee".to_string(), callee)]),
        ..Default::default()
    };
    let caller = load("id: caller\nnodes:\n  c:\n    flow.call: { flow: callee }\n");
    let err = caller
        .start(json!({}), &mut Echo::default(), &options)
        .unwrap_err();
    assert!(
        err.to_string().contains("a called flow cannot wait"),
        "{err}"
    );

    let goto = load("id: caller\nnodes:\n  g:\n    flow.goto: { flow: callee }\n");
    let (_, snapshot) = waiting(
        goto.start(json!({}), &mut Echo::default(), &options)
            .unwrap(),
    );
    assert_eq!(
        (snapshot.flow.as_str(), snapshot.node.as_str()),
        ("callee", "done")
    );
    let out = completed(
        goto.resume(
            &snapshot,
            json!({"text": "yes"}),
            &mut Echo::default(),
            &options,
        )
        .unwrap(),
    );
    assert_eq!(out, json!({"got": "yes"}));
}

#[test]
fn the_step_limit_applies_to_each_turn() {
    // A loop that waits every 2 steps runs for many turns under max_steps 3.
    let flow = load(
        "id: loop\nmax_steps: 3\nnodes:\n  w:\n    session.wait: again\n    routing: [{ to: n }]\n  n:\n    echo: { t: \"{{in.t}}\" }\n    routing: [{ to: w }]\n",
    );
    let options = RunOptions::default();
    let (_, mut snapshot) = waiting(
        flow.start(json!({}), &mut Echo::default(), &options)
            .unwrap(),
    );
    for turn in 0..5 {
        let (out, next) = waiting(
            flow.resume(
                &snapshot,
                json!({"t": turn}),
                &mut Echo::default(),
                &options,
            )
            .unwrap(),
        );
        assert_eq!(out["waiting"], true);
        assert_eq!(next.nodes["n"]["t"], turn);
        snapshot = next;
    }
    assert_eq!(snapshot.steps, 11);
}

const REMIND: &str = r#"
id: remind
nodes:
  wait:
    session.wait: { reason: "answer", timeout: "{{entry.wait}}" }
    routing:
      - to: answer
      - to: reminder
        status: timeout
  answer:
    component.exec: { component: echo, input: { got: "{{in.text}}" } }
    routing: [{ out: true }]
  reminder:
    component.exec: { component: echo, input: { timed_out: "{{entry.timed_out}}", late: "{{#if entry.message}}{{entry.message.text}}{{/if}}" } }
"#;

/// A wait with a deadline: a message in time takes the normal route; past
/// the deadline any resume takes the `status: timeout` route (a host's
/// timeout call before it is refused), and the snapshot says when.
#[test]
fn a_wait_with_a_deadline_takes_its_timeout_route_once_it_passes() {
    let flow = load(REMIND);
    let mut echo = Echo::default();
    let options = RunOptions::default();
    let call = json!({ runner_core::TIMEOUT_CALL_KEY: 0 });

    let (_, snapshot) = waiting(
        flow.start(json!({"wait": "1h"}), &mut echo, &options)
            .unwrap(),
    );
    let deadline = snapshot
        .deadline
        .clone()
        .expect("the snapshot records the deadline");
    assert_eq!(deadline.node.as_deref(), Some("reminder"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(deadline.at_ms > now + 3_500_000 && deadline.at_ms <= now + 3_600_000);
    let early = flow
        .resume(&snapshot, call.clone(), &mut echo, &options)
        .unwrap_err();
    assert!(early.to_string().contains("has not passed"), "{early}");
    let out = completed(
        flow.resume(&snapshot, json!({"text": "hi"}), &mut echo, &options)
            .unwrap(),
    );
    assert_eq!(out, json!({"got": "hi"}));

    // A deadline already passed: the timeout route, with or without a message.
    let (_, snapshot) = waiting(flow.start(json!({"wait": 0}), &mut echo, &options).unwrap());
    let out = completed(flow.resume(&snapshot, call, &mut echo, &options).unwrap());
    assert_eq!(out["timed_out"], json!(true), "{out}");
    let out = completed(
        flow.resume(&snapshot, json!({"text": "late"}), &mut echo, &options)
            .unwrap(),
    );
    assert_eq!(out, json!({"timed_out": true, "late": "late"}));
}

#[test]
fn deadlines_and_timeout_routes_are_checked() {
    let bad_route = "id: f\nnodes:\n  a:\n    echo: {}\n    routing:\n      - to: b\n        status: timeout\n  b:\n    echo: {}\n";
    let e = Flow::load(&FlowSource {
        name: "f.ygtc".into(),
        yaml: bad_route.into(),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`status: timeout` routes only follow a `session.wait`"),
        "{e}"
    );
    let no_route = "id: f\nnodes:\n  w:\n    session.wait: { timeout: 10m }\n    routing: [{ to: b }]\n  b:\n    echo: {}\n";
    let flow = load(no_route);
    let e = flow
        .start(json!({}), &mut Echo::default(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a route for it"), "{e}");
    let bad_timeout = "id: f\nnodes:\n  w:\n    session.wait: { timeout: soon }\n    routing: [{ to: b }, { out: true, status: timeout }]\n  b:\n    echo: {}\n";
    let e = load(bad_timeout)
        .start(json!({}), &mut Echo::default(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`timeout: soon`"), "{e}");
    // `{out: true, status: timeout}`: past the deadline the run ends as it stood.
    let ends = "id: f\nnodes:\n  w:\n    session.wait: { until: \"2000-01-01T00:00:00Z\" }\n    routing: [{ to: b }, { out: true, status: timeout }]\n  b:\n    echo: {}\n";
    let flow = load(ends);
    let (_, snapshot) = waiting(
        flow.start(json!({}), &mut Echo::default(), &RunOptions::default())
            .unwrap(),
    );
    assert_eq!(snapshot.deadline.as_ref().unwrap().node, None);
    let out = completed(
        flow.resume(
            &snapshot,
            json!({"text": "x"}),
            &mut Echo::default(),
            &RunOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(out, json!({"waiting": true, "reason": null}));
}
