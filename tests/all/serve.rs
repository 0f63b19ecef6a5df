//! `host-shim serve` as a client sees it: answers, sessions, metrics, load
//! shedding, body limits and graceful shutdown. Orderings, not durations: a
//! slow run is one whose node waits on an HTTP server the test holds open.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn start(target: &Path, extra: &[&str]) -> Served {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    serve(target, &args)
}

/// POST `body` to `path` with `headers`: (status, body, headers).
fn post(
    server: &Served,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<(String, String)>) {
    http("POST", &format!("{}{path}", server.base), body, headers).expect("a response")
}

fn get(server: &Served, path: &str) -> (u16, String) {
    let (status, body, _) =
        http("GET", &format!("{}{path}", server.base), "", &[]).expect("a response");
    (status, body)
}

/// Starts a run of the `slow` flow whose node waits on a [`gate`]; returns
/// once the server counts it in progress, with its answer to come and the
/// sender that lets it finish.
pub fn slow_run(
    server: &Served,
    headers: &[(&'static str, &'static str)],
) -> (
    std::thread::JoinHandle<(u16, String)>,
    std::sync::mpsc::Sender<()>,
) {
    let (port, open) = gate();
    let url = format!(r#"{{"url": "http://127.0.0.1:{port}/"}}"#);
    let (base, headers) = (server.base.clone(), headers.to_vec());
    let slow = std::thread::spawn(move || {
        let (status, body, _) =
            http("POST", &format!("{base}/flows/slow"), &url, &headers).expect("a response");
        (status, body)
    });
    wait_for_metric(server, "greentic_runs_in_progress 1");
    (slow, open)
}

fn flows_dir(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::copy(
        workspace().join("examples/hello/flow.yaml"),
        dir.join("hello.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ask.ygtc"),
        "id: ask\nnodes:\n  wait:\n    session.wait: name\n    routing: [{ to: answer }]\n  answer:\n    component.exec: { component: echo, input: { hello: \"{{in.text}}\" } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.ygtc"),
        "id: broken\nnodes:\n  f:\n    component.exec: { component: faulty, operation: fail, input: {} }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("slow.ygtc"),
        "id: slow\nnodes:\n  fetch:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\" } }\n",
    )
    .unwrap();
    dir
}

/// A flow is made ready once and kept while its files stay as they were: a
/// component file replaced under a running server (a deploy's rename) is
/// linked anew for the next request, like an edited flow.
#[test]
fn a_replaced_component_file_is_served_anew() {
    let dir = scratch("serve-component-swap");
    std::fs::copy(built_component("echo"), dir.join("part.wasm")).unwrap();
    std::fs::write(
        dir.join("swap.ygtc"),
        "id: swap\nnodes:\n  shout:\n    component.exec: { component: ./part.wasm, operation: upper, input: { v: \"{{in.v}}\" } }\n",
    )
    .unwrap();
    let server = start(&dir, &[]);
    let answer = |server: &Served| {
        let (status, body, _) = post(server, "/flows/swap", r#"{"v": "ab"}"#, &[]);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(answer(&server), json!({"v": "ab"}), "echo answers as is");
    assert_eq!(
        answer(&server),
        json!({"v": "ab"}),
        "and again, made ready once"
    );
    let next = dir.join("part.wasm.next");
    std::fs::copy(built_component("text"), &next).unwrap();
    std::fs::rename(&next, dir.join("part.wasm")).unwrap();
    assert_eq!(
        answer(&server),
        json!({"v": "AB"}),
        "the new component answers"
    );
}

#[test]
fn serve_answers_resumes_sessions_and_counts() {
    let dir = flows_dir("serve-basic");
    let server = start(&dir, &[]);
    let hello_input =
        std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let expected = run_flow(
        &workspace().join("examples/hello/flow.yaml"),
        &["--input", &hello_input],
    )
    .json();
    let (status, body, headers) = post(&server, "/flows/hello", &hello_input, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        expected,
        "same output as `run`"
    );
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );

    let (status, body, _) = post(&server, "/flows/nope", "{}", &[]);
    assert_eq!(status, 404, "{body}");
    let (status, body, _) = post(&server, "/flows/hello", "not json", &[]);
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"]["kind"].clone()
        ),
        (400, json!("invalid-input"))
    );
    let (status, body, _) = post(&server, "/flows/broken", "{}", &[]);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        (
            error["error"]["kind"].clone(),
            error["error"]["node"].clone()
        ),
        (json!("node"), json!("f"))
    );

    // A conversation over two requests.
    let session = [("x-greentic-session", "chat-9")];
    let (status, body, _) = post(&server, "/flows/ask", "{}", &session);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "waiting"
    );
    let (_, body, _) = post(&server, "/flows/ask", r#"{"text": "Ada"}"#, &session);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"hello": "Ada"})
    );

    // An edited flow is served as edited.
    std::fs::write(
        dir.join("ask.ygtc"),
        "id: ask\nnodes:\n  answer:\n    component.exec: { component: echo, input: { edited: true } }\n",
    )
    .unwrap();
    let (_, body, _) = post(&server, "/flows/ask", "{}", &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"edited": true})
    );

    assert_eq!(
        get(&server, "/healthz"),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    let (_, metrics) = get(&server, "/metrics");
    for line in [
        r#"greentic_runs_total{flow="hello",outcome="completed"} 1"#,
        r#"greentic_runs_total{flow="hello",outcome="bad_input"} 1"#,
        r#"greentic_runs_total{flow="broken",outcome="failed"} 1"#,
        r#"greentic_runs_total{flow="ask",outcome="waiting"} 1"#,
        r#"greentic_runs_total{flow="ask",outcome="completed"} 2"#,
        r#"greentic_runs_total{flow="",outcome="unknown_flow"} 1"#,
        r#"greentic_node_calls_total{flow="broken",outcome="error"} 1"#,
        r#"greentic_runs_in_progress 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains(r#"greentic_node_duration_seconds_count{flow="hello"}"#),
        "{metrics}"
    );
}

#[test]
fn serve_sheds_load_and_limits_bodies() {
    let dir = flows_dir("serve-load");
    let server = start(
        &dir,
        &[
            "--max-concurrent",
            "1",
            "--max-queue",
            "1",
            "--max-body",
            "256",
            "--allow-host",
            "127.0.0.1:*",
        ],
    );
    let (slow, open) = slow_run(&server, &[]);
    // The one run allowed is in progress: the next request waits in the
    // queue (one place) ...
    let base = server.base.clone();
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let queued = std::thread::spawn(move || {
        http("POST", &format!("{base}/flows/hello"), &input, &[]).expect("a response")
    });
    crate::support::wait_for_metric(&server, "greentic_runs_queued 1");
    // ... and the one after it, with the queue full, is shed at once.
    let (status, body, headers) = post(&server, "/flows/hello", "{}", &[]);
    assert_eq!(status, 429, "{body}");
    assert!(headers.iter().any(|(k, v)| k == "retry-after" && v == "1"));
    open.send(()).unwrap();
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["body"],
        "open"
    );
    // The queued request ran once the slot came free.
    let (status, body, _) = queued.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Welcome back, Ada Lovelace!"), "{body}");
    // Bodies over the limit are refused before any run.
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(300));
    assert_eq!(post(&server, "/flows/hello", &big, &[]).0, 413);
    let (_, metrics) = get(&server, "/metrics");
    assert!(
        metrics.contains(r#"greentic_runs_total{flow="hello",outcome="busy"} 1"#),
        "{metrics}"
    );
}

#[test]
fn serve_finishes_runs_in_progress_on_sigterm() {
    let dir = flows_dir("serve-shutdown");
    let mut server = start(&dir, &["--allow-host", "127.0.0.1:*"]);
    let (slow, open) = slow_run(&server, &[]);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // It stops accepting but the run in progress still gets its answer.
    open.send(()).unwrap();
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}

/// After SIGTERM with `--drain`, `/healthz` answers 503 (a load balancer
/// takes the process out) while the server still serves runs, and the run
/// in progress finishes.
#[test]
fn a_draining_server_answers_healthz_503_and_still_serves() {
    let dir = flows_dir("serve-stopping");
    let mut server = start(&dir, &["--allow-host", "127.0.0.1:*", "--drain", "60s"]);
    let (slow, open) = slow_run(&server, &[]);
    assert_eq!(get(&server, "/healthz").0, 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The signal is handled asynchronously: poll until it has been.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = get(&server, "/healthz");
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "healthz never said stopping");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(body, r#"{"status":"stopping"}"#);
    // Still serving while draining.
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let (status, body, _) = post(&server, "/flows/hello", &input, &[]);
    assert_eq!(status, 200, "{body}");
    open.send(()).unwrap();
    assert_eq!(slow.join().unwrap().0, 200);
    let _ = server.child.kill();
}

/// A turn of a session whose previous turn is still running waits
/// `--session-wait`, then is refused 409 with the session error kind.
#[test]
fn a_turn_of_a_busy_session_is_refused_with_409() {
    let dir = flows_dir("serve-busy");
    let server = start(
        &dir,
        &["--allow-host", "127.0.0.1:*", "--session-wait", "200ms"],
    );
    // The first turn's node is running (so the session is claimed) once
    // its request reaches the gate.
    let (port, open, arrived) = crate::support::gate_seen();
    let base = server.base.clone();
    let slow = std::thread::spawn(move || {
        let url = format!(r#"{{"url": "http://127.0.0.1:{port}/"}}"#);
        let headers = [("x-greentic-session", "s-busy")];
        http("POST", &format!("{base}/flows/slow"), &url, &headers).expect("a response")
    });
    arrived
        .recv_timeout(Duration::from_secs(60))
        .expect("the first turn runs");
    let (status, body, _) = post(
        &server,
        "/flows/slow",
        r#"{"url": "http://127.0.0.1:9/"}"#,
        &[("x-greentic-session", "s-busy")],
    );
    assert_eq!(status, 409, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "session", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is busy"),
        "{body}"
    );
    open.send(()).unwrap();
    assert_eq!(slow.join().unwrap().0, 200);
}

#[test]
fn trusting_tenant_headers_is_refused_off_loopback() {
    let dir = flows_dir("serve-trust");
    let out = host_shim(&[
        "serve",
        dir.to_str().unwrap(),
        "--addr",
        "0.0.0.0:0",
        "--trust-tenant-headers",
    ]);
    expect_failure(
        &out,
        2,
        "--trust-tenant-headers lets any client act for any tenant",
    );
}
