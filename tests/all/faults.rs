//! Faults injected through the host (`GREENTIC_FAULTS`, debug builds only;
//! `host-shim/src/faults.rs`): a state backend that goes down mid-run, a write
//! that fails after some bytes, a node that traps after writing, and the
//! process killed (`kill -9`) inside a state write and a session snapshot
//! write. Each: the run fails with a clear error (or dies), nothing
//! half-written is visible afterwards, the next run works.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Outcome, built_component, host_shim_env, redis, scratch};

/// A flow that increments the counter twice, then reports the count.
fn two_bumps(dir: &Path) -> PathBuf {
    let flow = dir.join("two-bumps.yaml");
    std::fs::write(
        &flow,
        "id: two_bumps\nnodes:\n  first:\n    component.exec: { component: counter, operation: increment, input: { by: 1 } }\n  second:\n    component.exec: { component: counter, operation: increment, input: { by: 1 } }\n  report:\n    echo: { count: \"{{prev.count}}\" }\n",
    )
    .unwrap();
    flow
}

fn run(flow: &Path, state: &str, tenant: &str, faults: &str) -> Outcome {
    let mut env = vec![];
    if !faults.is_empty() {
        env.push(("GREENTIC_FAULTS", faults));
    }
    host_shim_env(
        &[
            "run",
            flow.to_str().unwrap(),
            "-q",
            "--state",
            state,
            "--tenant",
            tenant,
        ],
        &env,
    )
}

fn count(out: &Outcome) -> Value {
    assert_eq!(out.code, 0, "{out}");
    out.json()["count"].clone()
}

#[test]
fn a_state_backend_that_goes_down_mid_run_fails_the_run_and_keeps_what_was_committed() {
    let dir = scratch("fault-unavailable");
    let flow = two_bumps(&dir);
    let server = redis();
    let file = format!("file:{}", dir.join("state.redb").display());
    for state in [file.as_str(), server.url.as_str()] {
        // A tenant of its own: the Redis server may be shared with other tests.
        let tenant = format!("fault-down-{}", std::process::id());
        // Each increment reads and writes: the backend goes down after the
        // first increment, when the second one reads.
        let out = run(&flow, state, &tenant, "state-unavailable-after=2");
        assert_eq!(out.code, 1, "{state}: {out}");
        assert!(out.stdout.is_empty(), "{state}: {out}");
        assert!(
            out.stderr.contains("node `second`") && out.stderr.contains("unavailable"),
            "{state}: the error names the node and the cause: {out}"
        );
        // The first increment was committed, the second never happened.
        assert_eq!(count(&run(&flow, state, &tenant, "")), json!(3), "{state}");
    }
}

#[test]
fn a_write_that_fails_part_way_leaves_nothing_half_written() {
    let dir = scratch("fault-partial-write");
    let flow = two_bumps(&dir);
    let state = format!("file:{}", dir.join("state.redb").display());
    assert_eq!(count(&run(&flow, &state, "t", "")), json!(2));
    let out = run(&flow, &state, "t", "file-write-fails-after=5");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("node `first`") && out.stderr.contains("failed after 5 bytes"),
        "{out}"
    );
    // The five bytes were never committed: the stored count is still a
    // whole record, and the next run goes on from it.
    assert_eq!(count(&run(&flow, &state, "t", "")), json!(4));
}

#[test]
fn a_node_that_traps_after_writing_fails_the_run_and_its_write_is_whole() {
    let dir = scratch("fault-trap-after-write");
    std::fs::copy(built_component("state-probe"), dir.join("state-probe.wasm")).unwrap();
    std::fs::write(
        dir.join("state-probe.manifest.json"),
        json!({"id": "tests.state-probe", "capabilities": {"host": {"state": {"read": true, "write": true, "delete": true}}}}).to_string(),
    )
    .unwrap();
    let step = |op: &str, input: &str| {
        let flow = dir.join(format!("{op}.yaml"));
        std::fs::write(
            &flow,
            format!("id: probe\nnodes:\n  s:\n    component.exec:\n      component: ./state-probe.wasm\n      operation: {op}\n      input: {input}\n"),
        )
        .unwrap();
        flow
    };
    let state = format!("file:{}", dir.join("state.redb").display());
    let value: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let write = step(
        "write-then-trap",
        &json!({"key": "k", "bytes": value}).to_string(),
    );
    let out = run(&write, &state, "t", "");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("node `s`") && out.stderr.contains("trap"),
        "{out}"
    );
    // Writes are committed as the node makes them: the one before the trap
    // is there, whole.
    let read = run(&step("read", r#"{"key": "k"}"#), &state, "t", "");
    assert_eq!(read.code, 0, "{read}");
    assert_eq!(read.json(), json!({"ok": true, "bytes": value}));
}

#[test]
fn kill_9_inside_a_state_write_leaves_the_last_committed_state() {
    let dir = scratch("fault-kill-state");
    let flow = two_bumps(&dir);
    let state = format!("file:{}", dir.join("state.redb").display());
    assert_eq!(count(&run(&flow, &state, "t", "")), json!(2));
    // Killed inside the first increment's write, before its commit.
    let out = run(&flow, &state, "t", "kill-in-file-write=count");
    assert_eq!(out.code, -1, "killed by a signal: {out}");
    assert!(out.stdout.is_empty(), "{out}");
    // The file opens (redb repairs it), holds the last committed count, and
    // the next run goes on from it.
    assert_eq!(count(&run(&flow, &state, "t", "")), json!(4));
}

#[test]
fn kill_9_inside_a_session_snapshot_write_leaves_the_previous_snapshot() {
    let dir = scratch("fault-kill-session");
    let state = format!("file:{}", dir.join("state.redb").display());
    let turn = |session: &str, input: &str, faults: &str| {
        let mut env = vec![];
        if !faults.is_empty() {
            env.push(("GREENTIC_FAULTS", faults));
        }
        host_shim_env(
            &[
                "run",
                "tests/flows/session-wait/flow.yaml",
                "-q",
                "--state",
                &state,
                "--session",
                session,
                "--session-wait",
                "0s",
                "--input",
                input,
            ],
            &env,
        )
    };
    // The first turn of s1 is killed while its snapshot is written.
    let out = turn(
        "s1",
        r#"{"user": "Ada"}"#,
        "kill-in-file-write=runner+sessions",
    );
    assert_eq!(out.code, -1, "killed by a signal: {out}");
    // s1 has no half-written snapshot: the dead turn's lease keeps it busy
    // (for the lease's lifetime), and says so.
    let out = turn("s1", r#"{"text": "gold"}"#, "");
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("session `s1` is busy"), "{out}");
    // The file is intact: another conversation runs both turns on it.
    let first = turn("s2", r#"{"user": "Ada"}"#, "");
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(first.json()["status"], json!("waiting"), "{first}");
    let second = turn("s2", r#"{"text": "gold"}"#, "");
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(second.json(), json!({"plan": "gold"}), "{second}");
}
