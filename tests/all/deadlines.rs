//! Wait deadlines in `serve`: a `session.wait` with `timeout` that gets no
//! message is resumed on its `status: timeout` route once, by whichever of
//! the servers sharing the state notices first; a message in time takes the
//! normal route and the deadline never fires; a server restarted after the
//! deadline fires it. Each route writes a key with create-if-absent (a
//! second timeout of one wait would find it taken and mark `twice`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const REMIND: &str = "id: remind\nnodes:\n  ask:\n    session.wait: { reason: \"{{entry.name}}\", timeout: \"{{entry.timeout}}\" }\n    routing:\n      - to: answered\n      - to: reminded\n        status: timeout\n  answered:\n    component.exec: { component: ./state-probe.wasm, operation: write-if-absent, input: { key: \"answered-{{in.name}}\", bytes: [1] } }\n    routing: [{ out: true }]\n  reminded:\n    component.exec: { component: ./state-probe.wasm, operation: write-if-absent, input: { key: \"reminded-{{entry.reason}}\", bytes: [1] } }\n    routing:\n      - to: twice\n        condition: out.created == false\n      - out: true\n  twice:\n    component.exec: { component: ./state-probe.wasm, operation: write, input: { key: twice, bytes: [1] } }\n";

fn remind_dir(name: &str) -> PathBuf {
    let dir = probe_dir(name);
    std::fs::write(dir.join("remind.ygtc"), REMIND).unwrap();
    dir
}

fn serve_remind(dir: &Path, state: &str, tenant: &str) -> Served {
    serve(
        dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            state,
            "--tenant",
            tenant,
            "-q",
        ],
    )
}

/// A turn of `session` on `server`: the response status and JSON.
fn turn(server: &Served, session: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/flows/remind", server.base);
    let (status, text, _) = http(
        "POST",
        &url,
        &body.to_string(),
        &[("x-greentic-session", session)],
    )
    .expect("serve answers");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Which of `keys` the runs wrote, for `tenant`.
fn written(dir: &Path, state: &str, tenant: &str, keys: &[&str]) -> Vec<bool> {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    probe_keys(dir, state, tenant, &keys)
}

#[test]
fn a_wait_times_out_once_across_servers_and_a_message_in_time_stops_it() {
    let redis = redis();
    let dir = remind_dir("deadlines-redis");
    let tenant = "deadlines-redis";
    let a = serve_remind(&dir, &redis.url, tenant);
    let b = serve_remind(&dir, &redis.url, tenant);
    let (status, waiting) = turn(&a, "late", json!({"name": "late", "timeout": "1s"}));
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    let (status, _) = turn(&b, "prompt", json!({"name": "prompt", "timeout": "2s"}));
    assert_eq!(status, 200);
    let (status, answered) = turn(&a, "prompt", json!({"name": "prompt"}));
    assert_eq!(
        (status, answered["ok"].clone()),
        (200, json!(true)),
        "{answered}"
    );
    std::thread::sleep(Duration::from_millis(3500));
    let keys = [
        "reminded-late",
        "reminded-prompt",
        "answered-prompt",
        "twice",
    ];
    assert_eq!(
        written(&dir, &redis.url, tenant, &keys),
        [true, false, true, false],
        "the unanswered wait timed out once; the answered one never did"
    );
    // The timed-out run ended: the session starts anew.
    let (status, again) = turn(&b, "late", json!({"name": "again", "timeout": "1h"}));
    assert_eq!(
        (status, again["status"].clone()),
        (200, json!("waiting")),
        "{again}"
    );
    for server in [&a, &b] {
        let metrics = http("GET", &format!("{}/metrics", server.base), "", &[])
            .unwrap()
            .1;
        assert!(!metrics.contains("outcome=\"failed\""), "{metrics}");
    }
}

#[test]
fn a_server_restarted_after_the_deadline_fires_it() {
    let dir = remind_dir("deadlines-restart");
    let state = format!("file:{}", dir.join("state.redb").display());
    let tenant = "deadlines-restart";
    let first = serve_remind(&dir, &state, tenant);
    let (status, waiting) = turn(&first, "r1", json!({"name": "r1", "timeout": "1h"}));
    assert_eq!(
        (status, waiting["status"].clone()),
        (200, json!("waiting")),
        "{waiting}"
    );
    drop(first); // killed, long before the deadline
    // Two hours later (the injectable clock of debug builds): the deadline
    // passed while no server ran; the one started now fires it.
    let later = serve_env(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            &state,
            "--tenant",
            tenant,
            "-q",
        ],
        &[("GREENTIC_FAULTS", "clock-offset-ms=7200000")],
    );
    wait_for_metric(
        &later,
        "greentic_wait_timeouts_total{outcome=\"completed\"} 1",
    );
    drop(later);
    assert_eq!(
        written(&dir, &state, tenant, &["reminded-r1", "twice"]),
        [true, false]
    );
}
