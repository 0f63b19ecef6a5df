//! Conversations through `host-shim run --session`: a run that waits is kept
//! in the state backend and resumed by the next process, on every backend.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const ASK: &str = r#"id: ask_name
parameters:
  vars_init:
    greeting: { default: "hello" }
nodes:
  question:
    emit.response: { text: "what is your name?" }
    routing: [{ to: wait }]
  wait:
    session.wait: name
    routing: [{ to: answer }]
  answer:
    component.exec: { component: echo, input: { text: "{{vars.greeting}} {{in.text}}", asked: "{{node.question.text}}" } }
"#;

fn flow(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// One turn: `run FLOW --session ID --input INPUT` plus `extra`.
fn turn(flow: &Path, session: &str, input: Value, extra: &[&str]) -> Outcome {
    let input = input.to_string();
    let mut args = vec![
        "run",
        flow.to_str().unwrap(),
        "--session",
        session,
        "--input",
        &input,
        "-q",
    ];
    args.extend_from_slice(extra);
    host_shim(&args)
}

fn ask_and_answer(name: &str, state: &[&str]) {
    let dir = scratch(name);
    let f = flow(&dir, "ask.ygtc", ASK);
    let first = turn(&f, "chat-1", json!({"text": "hi"}), state);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(
        first.json(),
        json!({"status": "waiting", "session": "chat-1", "node": "answer", "reason": "name",
               "output": [{"text": "what is your name?"}, {"waiting": true, "reason": "name"}]})
    );
    // Another process resumes it with the next message.
    let second = turn(&f, "chat-1", json!({"text": "Ada"}), state);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(
        second.json(),
        json!({"text": "hello Ada", "asked": "what is your name?"})
    );
    // The run completed: the session starts the flow anew.
    let third = turn(&f, "chat-1", json!({"text": "again"}), state);
    assert_eq!(third.json()["status"], "waiting", "{third}");
    // Session ids are per tenant: another tenant's `chat-1` is a conversation
    // of its own (it starts the flow), and ours is neither read nor changed.
    let mut other = state.to_vec();
    other.extend(["--tenant", "globex"]);
    let theirs = turn(&f, "chat-1", json!({"text": "Mallory"}), &other);
    assert_eq!(theirs.json()["status"], "waiting", "{theirs}");
    let ours = turn(&f, "chat-1", json!({"text": "Bo"}), state);
    assert_eq!(ours.json()["text"], "hello Bo", "{ours}");
    let theirs = turn(&f, "chat-1", json!({"text": "Eve"}), &other);
    assert_eq!(theirs.json()["text"], "hello Eve", "{theirs}");
}

#[test]
fn a_flow_asks_waits_and_answers_across_processes_on_a_file() {
    let dir = scratch("sessions-file-db");
    let db = format!("file:{}", dir.join("state.redb").display());
    ask_and_answer("sessions-file-flow", &["--state", &db]);
}

#[test]
fn a_flow_asks_waits_and_answers_across_processes_on_redis() {
    let server = redis();
    ask_and_answer("sessions-redis-flow", &["--state", &server.url]);
}

#[test]
fn without_a_session_a_waiting_run_is_reported_and_with_memory_it_is_not_kept() {
    let dir = scratch("sessions-none");
    let f = flow(&dir, "ask.ygtc", ASK);
    let out = host_shim(&["run", f.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["status"], "waiting");
    assert!(out.json().get("session").is_none());
    assert!(
        out.stderr
            .contains("run it with --session ID to continue it"),
        "{out}"
    );
    let mem = host_shim(&[
        "run",
        f.to_str().unwrap(),
        "--session",
        "m",
        "--state",
        "memory",
    ]);
    assert!(
        mem.stderr
            .contains("--state memory keeps the session only while this process runs"),
        "{mem}"
    );
    assert_eq!(mem.json()["status"], "waiting");
}

const CARD: &str = r#"id: card
nodes:
  form:
    component.exec:
      component: echo
      input: { card: "email?", answer_fields: [email] }
    routing:
      - { to: thanks, condition: 'response.action == "submit"' }
  thanks:
    component.exec: { component: echo, input: { thanks: "{{node.form.answers.email}}", answers: "{{node.form.answers}}" } }
"#;

#[test]
fn a_card_ignores_free_text_or_routes_it_with_on_message() {
    let dir = scratch("sessions-card");
    let db = format!("file:{}", dir.join("state.redb").display());
    let state = ["--state", db.as_str()];
    let f = flow(&dir, "card.ygtc", CARD);
    let parked = turn(&f, "c", json!({}), &state);
    assert_eq!(parked.json()["node"], "form", "{parked}");
    assert_eq!(parked.json()["output"]["card"], "email?");
    // Free text: the card stays where it is, the run intact.
    let text = turn(&f, "c", json!({"text": "what is this?"}), &state);
    assert_eq!(
        (text.json()["status"].clone(), text.json()["node"].clone()),
        (json!("waiting"), json!("form")),
        "{text}"
    );
    let click = turn(
        &f,
        "c",
        json!({"email": "ada@example.com", "phone": "1", "metadata": {"action": "submit"}}),
        &state,
    );
    assert_eq!(
        click.json(),
        json!({"thanks": "ada@example.com", "answers": {"email": "ada@example.com"}}),
        "{click}"
    );

    // With an `on_message` route, free text leaves the card for it.
    let routed = flow(
        &dir,
        "card2.ygtc",
        &(CARD.replace(
            "      - { to: thanks, condition: 'response.action == \"submit\"' }\n",
            "      - { to: thanks, condition: 'response.action == \"submit\"' }\n      - { to: help, on_message: true }\n",
        ) + "    routing: out\n  help:\n    component.exec: { component: echo, input: { help: \"you said {{in.text}}\" } }\n"),
    );
    turn(&routed, "c2", json!({}), &state);
    let help = turn(&routed, "c2", json!({"text": "huh?"}), &state);
    assert_eq!(help.json(), json!({"help": "you said huh?"}), "{help}");
}

#[test]
fn a_changed_flow_refuses_the_waiting_run_and_keeps_it() {
    let dir = scratch("sessions-changed");
    let db = format!("file:{}", dir.join("state.redb").display());
    let state = ["--state", db.as_str()];
    let f = flow(&dir, "ask.ygtc", ASK);
    turn(&f, "s", json!({}), &state);
    std::fs::write(&f, ASK.replace("what is your name?", "who are you?")).unwrap();
    let refused = turn(&f, "s", json!({"text": "Ada"}), &state);
    expect_failure(&refused, 2, "waits in another version of flow `ask_name`");
    assert!(refused.stderr.contains("--new-session"), "{refused}");
    // Nothing was lost: the original flow still resumes it.
    std::fs::write(&f, ASK).unwrap();
    let resumed = turn(&f, "s", json!({"text": "Ada"}), &state);
    assert_eq!(resumed.json()["text"], "hello Ada", "{resumed}");
    // --new-session forgets a waiting run and starts over.
    turn(&f, "s", json!({}), &state);
    let fresh = turn(
        &f,
        "s",
        json!({"text": "x"}),
        &[&state[..], &["--new-session"]].concat(),
    );
    assert_eq!(fresh.json()["status"], "waiting", "{fresh}");
    // A bad session id is an input error.
    let bad = turn(&f, "a/b", json!({}), &state);
    expect_failure(&bad, 2, "invalid session id `a/b`");
}

#[test]
fn a_waiting_run_expires_after_its_ttl() {
    let dir = scratch("sessions-ttl");
    let db = format!("file:{}", dir.join("state.redb").display());
    let state = ["--state", db.as_str(), "--session-ttl", "1s"];
    let f = flow(&dir, "ask.ygtc", ASK);
    assert_eq!(turn(&f, "t", json!({}), &state).json()["status"], "waiting");
    // Well past the TTL: expiry, not a race.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after = turn(&f, "t", json!({"text": "late"}), &state);
    assert_eq!(
        after.json()["status"],
        "waiting",
        "expired: started anew: {after}"
    );
}

/// Each turn reports the message it got and the one the turn before it got.
const RELAY: &str = r#"id: relay
parameters:
  vars_init:
    last: { default: "none" }
nodes:
  wait:
    session.wait: next
    routing: [{ to: slow }]
  slow:
    component.exec: { component: http-fetch, input: { url: "{{in.url}}" } }
    routing: [{ to: say }]
  say:
    emit.response: { got: "{{in.n}}", previous: "{{vars.last}}" }
    routing: [{ to: remember }]
  remember:
    var.set: { name: last, value: "{{in.n}}" }
    routing: [{ to: wait }]
"#;

/// Commands Redis at `url` has processed.
fn redis_commands(url: &str) -> u64 {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "INFO", "stats"])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

#[test]
fn concurrent_turns_of_one_session_run_one_after_the_other() {
    // Two processes on one Redis resume the same waiting run, overlapping
    // for sure: the first turn's node waits on a gate until the second
    // process is seen retrying the session's lease. Serialised, the second
    // sees the first's message as `previous`; last-write-wins would show
    // `none` twice and lose a turn.
    let server = redis();
    let dir = scratch("sessions-concurrent");
    let f = flow(&dir, "relay.ygtc", RELAY);
    let grant = ["--allow-host", "127.0.0.1:*"];
    let state = ["--state", server.url.as_str(), grant[0], grant[1]];
    assert_eq!(turn(&f, "r", json!({}), &state).json()["status"], "waiting");
    let start = |n: u32, port: u16| {
        let (f, url) = (f.clone(), server.url.clone());
        let input = json!({"n": n, "url": format!("http://127.0.0.1:{port}/")});
        std::thread::spawn(move || {
            turn(
                &f,
                "r",
                input,
                &["--state", &url, "--allow-host", "127.0.0.1:*"],
            )
        })
    };
    let (port_a, open_a, arrived_a) = crate::support::gate_seen();
    let (port_b, open_b, arrived_b) = crate::support::gate_seen();
    let a = start(1, port_a);
    arrived_a
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the first turn runs its node (holding the session)");
    let before = redis_commands(&server.url);
    let b = start(2, port_b);
    // The second process polls the lease every 25 ms while the first holds
    // it: many commands while nothing else talks to Redis.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while redis_commands(&server.url) < before + 12 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second turn never tried the session"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        arrived_b.try_recv().is_err(),
        "the second turn ran while the first held the session"
    );
    open_a.send(()).unwrap();
    arrived_b
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the second turn runs once the first is done");
    open_b.send(()).unwrap();
    let said: Vec<(Value, Value)> = [a, b]
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert_eq!(out.code, 0, "{out}");
            let first = out.json()["output"][0].clone();
            (first["got"].clone(), first["previous"].clone())
        })
        .collect();
    assert_eq!(
        said,
        vec![(json!(1), json!("none")), (json!(2), json!(1))],
        "the second turn must see the first"
    );
    // And the session goes on from the second.
    let next = turn(
        &f,
        "r",
        json!({"n": 3, "url": "http://127.0.0.1:9/"}),
        &state,
    );
    assert_eq!(next.json()["output"][0]["previous"], json!(2), "{next}");
}

#[test]
fn a_composed_flow_holds_a_conversation_too() {
    let dir = scratch("sessions-composed");
    let f = flow(&dir, "ask.ygtc", ASK);
    let app = dir.join("ask.wasm");
    let out = host_shim(&[
        "compose",
        f.to_str().unwrap(),
        "-o",
        app.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let db = format!("file:{}", dir.join("state.redb").display());
    let state = ["--state", db.as_str(), "--composed", app.to_str().unwrap()];
    assert_eq!(turn(&f, "k", json!({}), &state).json()["status"], "waiting");
    let done = turn(&f, "k", json!({"text": "Ada"}), &state);
    assert_eq!(done.json()["text"], "hello Ada", "{done}");
}

#[test]
fn a_waiting_run_survives_a_redis_restart_and_an_outage_is_a_clear_error() {
    // A Redis of its own that persists every write (AOF, fsync always), so it
    // can be killed and started again on the same data.
    let dir = scratch("sessions-redis-restart");
    let mut redis = crate::support::DurableRedis::start(&dir.join("redis"));
    let url = redis.url();
    let state = ["--state", url.as_str()];
    let f = flow(&dir, "ask.ygtc", ASK);
    assert_eq!(
        turn(&f, "r1", json!({}), &state).json()["status"],
        "waiting"
    );
    redis.kill();
    // Backend down: a clear error, exit 2, nothing half-done.
    let down = turn(&f, "r1", json!({"text": "Ada"}), &state);
    expect_failure(&down, 2, "cannot reach the Redis state store");
    // Back up: the run still waits where it was.
    redis.restart();
    let resumed = turn(&f, "r1", json!({"text": "Ada"}), &state);
    assert_eq!(resumed.json()["text"], "hello Ada", "{resumed}");
}

/// A failed first turn leaves no record: neither the tenant itself nor any
/// other finds the id taken afterwards (on main, an owner record outside
/// the tenants made another tenant's `chat-42` refused for a day).
#[test]
fn a_failed_first_turn_leaves_the_id_free_and_ids_are_per_tenant() {
    let dir = scratch("sessions-squat");
    let db = format!("file:{}", dir.join("state.redb").display());
    let failing = flow(
        &dir,
        "fail.ygtc",
        "id: ask_name\nnodes:\n  f:\n    component.exec: { component: faulty, operation: fail, input: {} }\n",
    );
    let failed = turn(
        &failing,
        "chat-42",
        json!({}),
        &["--state", &db, "--tenant", "acme"],
    );
    assert_eq!(failed.code, 1, "{failed}");
    let ask = flow(&dir, "ask.ygtc", ASK);
    for tenant in ["globex", "acme"] {
        let first = turn(
            &ask,
            "chat-42",
            json!({}),
            &["--state", &db, "--tenant", tenant],
        );
        assert_eq!(first.json()["status"], "waiting", "{tenant}: {first}");
    }
    let answer = turn(
        &ask,
        "chat-42",
        json!({"text": "Gl"}),
        &["--state", &db, "--tenant", "globex"],
    );
    assert_eq!(answer.json()["text"], "hello Gl", "{answer}");
}
