//! Node components are untrusted: wall-clock, fuel, memory and payload limits,
//! cooperative cancellation, and retries of retryable errors, all through
//! host-shim with real misbehaving components (`faulty`, `patient`).

use std::time::Instant;

use serde_json::json;

use crate::support::{built_component, host_shim, run_flow, scratch};

/// A one-node flow calling `faulty` (or `patient`) `op` with `input`, plus node keys.
fn node_flow(name: &str, component: &str, op: &str, input: &str, keys: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        format!("id: {name}\nnodes:\n  n:\n    component.exec: {{ component: {component}, operation: {op}, input: {input} }}\n{keys}"),
    )
    .unwrap();
    flow
}

#[test]
fn an_endless_loop_is_stopped_at_its_timeout() {
    let flow = node_flow("limit-loop", "faulty", "spin", "{}", "    timeout: 300\n");
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("node `n` (component `faulty`) failed: [timeout] component `faulty` exceeded its wall-time limit of"),
        "{out}"
    );
    assert_stopped_within_the_flows_timeout(&out.stderr, 300);
}

/// The budget a flow's `timeout` gives is what is left of it when the node
/// starts (the deadline is absolute, set by the runner a moment before), so
/// a loaded machine may report a little less than `timeout_ms`: never more,
/// and the node ran at least as long as that budget.
fn assert_stopped_within_the_flows_timeout(stderr: &str, timeout_ms: u64) {
    let number_after = |marker: &str| -> u64 {
        let at = stderr
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?}: {stderr}"));
        stderr[at + marker.len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {marker:?}: {stderr}"))
    };
    let budget = number_after("wall-time limit of ");
    let stopped = number_after("stopped after ");
    assert!(
        budget > 0 && budget <= timeout_ms,
        "budget {budget} ms for a {timeout_ms} ms timeout: {stderr}"
    );
    assert!(stopped >= budget, "stopped before its budget: {stderr}");
}

#[test]
fn the_manifest_or_host_default_sets_the_wall_time() {
    let flow = node_flow("limit-default-wall", "faulty", "spin", "{}", "");
    let out = run_flow(&flow, &["--node-timeout-ms", "200"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("[timeout] component `faulty` exceeded its wall-time limit of 200 ms"),
        "{out}"
    );

    // A manifest's limits apply to its component; the flow's timeout can only shorten them.
    let dir = scratch("limit-manifest");
    std::fs::copy(built_component("faulty"), dir.join("faulty.wasm")).unwrap();
    std::fs::write(
        dir.join("faulty.manifest.json"),
        json!({"id": "tests.faulty", "limits": {"wall_time_ms": 150}}).to_string(),
    )
    .unwrap();
    let flow = dir.join("flow.yaml");
    std::fs::write(&flow, "id: m\nnodes:\n  n:\n    component.exec: { component: ./faulty.wasm, operation: spin, input: {} }\n    timeout: 5s\n").unwrap();
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("node `n`"), "{out}");
    assert!(
        out.stderr
            .contains("exceeded its wall-time limit of 150 ms"),
        "{out}"
    );
}

#[test]
fn a_memory_bomb_is_stopped_at_its_limit() {
    let flow = node_flow("limit-memory", "faulty", "hog", "{ step_mb: 8 }", "");
    let out = run_flow(&flow, &["--node-memory-mb", "64"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("node `n` (component `faulty`) failed: [memory-limit] component `faulty` tried to grow memory to"), "{out}");
    assert!(out.stderr.contains("past its limit of 64 MiB"), "{out}");
}

#[test]
fn fuel_runs_out() {
    let flow = node_flow("limit-fuel", "faulty", "spin", "{}", "");
    let out = run_flow(&flow, &["--node-fuel", "5000000"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("[fuel-exhausted] component `faulty` exhausted its fuel limit of 5000000"),
        "{out}"
    );
}

#[test]
fn oversized_payloads_are_refused() {
    let flow = node_flow("limit-payload", "faulty", "big", "{ mb: 2 }", "");
    let out = run_flow(&flow, &["--max-payload", "1048576"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("[payload-too-large] output of"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("exceeds the payload limit of 1048576 bytes"),
        "{out}"
    );
    assert_eq!(
        run_flow(&flow, &[]).code,
        0,
        "2 MiB is fine under the default limit"
    );
}

#[test]
fn a_cooperative_component_is_asked_to_cancel_at_its_deadline() {
    let flow = node_flow(
        "limit-cooperate",
        "patient",
        "wait",
        "{}",
        "    timeout: 200\n",
    );
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), json!({"cancelled": true}));
}

#[test]
fn retryable_failures_are_retried_with_their_backoff() {
    let flow = node_flow(
        "retry-ok",
        "faulty",
        "flaky",
        "{ succeed_at: 3, backoff_ms: 60 }",
        "",
    );
    let started = Instant::now();
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    let elapsed = started.elapsed();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({"attempt": 3}),
        "the envelope's attempt reached 3"
    );
    assert_eq!(out.stderr.matches("retrying in 60 ms").count(), 2, "{out}");
    assert!(
        elapsed.as_millis() >= 120,
        "two 60 ms backoffs were skipped: {elapsed:?}"
    );

    // Too few attempts allowed: the error says how many were made.
    let flow = node_flow(
        "retry-exhausted",
        "faulty",
        "flaky",
        "{ succeed_at: 4 }",
        "    retry: { max_attempts: 2, delay_ms: 1 }\n",
    );
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "node `n` (component `faulty`) failed after 2 attempts: [E_FLAKY] attempt 2 failed"
        ),
        "{out}"
    );

    // Non-retryable errors are not retried.
    let flow = node_flow("retry-never", "faulty", "fail", "{}", "");
    let out = run_flow(&flow, &[]);
    assert!(!out.stderr.contains("retrying"), "{out}");
    assert!(
        out.stderr.contains("failed: [E_FAULTY] failed as asked"),
        "{out}"
    );
}

#[test]
fn the_host_stays_healthy_after_a_stopped_node() {
    let mut host = host_shim::Host::new(host_shim::HostOptions {
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    let settings = host_shim::RunSettings::default();
    let spin = node_flow("healthy-spin", "faulty", "spin", "{}", "    timeout: 100\n");
    let results = host.run_file(&spin, "{}", &settings, 2);
    assert_eq!(results.len(), 1, "stops at the first failure");
    let failure = results.into_iter().next().unwrap().unwrap_err();
    assert!(failure.to_string().contains("[timeout]"), "{failure}");
    // The same host, the same component: a fresh instance serves the next run.
    let echo = node_flow("healthy-echo", "faulty", "echo", "{ fine: true }", "");
    let ok = host
        .run_file(&echo, "{}", &settings, 1)
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(ok, host_shim::Turn::Completed(r#"{"fine":true}"#.into()));
    let again = host
        .run_file(&spin, "{}", &settings, 1)
        .pop()
        .unwrap()
        .unwrap_err();
    assert!(again.to_string().contains("[timeout]"), "{again}");
}

/// With Wasmtime's pooling allocator a stopped node's slot is used again:
/// the limits hold the same way and the next run in that slot works.
#[test]
fn pooled_instances_keep_their_limits_and_their_slots_serve_the_next_run() {
    let mut host = host_shim::Host::new(host_shim::HostOptions {
        quiet: true,
        pooling_allocator: true,
        node_limits: host_shim::NodeLimits {
            memory_bytes: 64 << 20,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let settings = host_shim::RunSettings::default();
    let hog = node_flow("pooled-hog", "faulty", "hog", "{ step_mb: 8 }", "");
    let spin = node_flow("pooled-spin", "faulty", "spin", "{}", "    timeout: 100\n");
    let echo = node_flow("pooled-echo", "faulty", "echo", "{ fine: true }", "");
    for _ in 0..3 {
        let failure = host
            .run_file(&hog, "{}", &settings, 1)
            .pop()
            .unwrap()
            .unwrap_err();
        assert!(failure.to_string().contains("[memory-limit]"), "{failure}");
        assert!(
            failure.to_string().contains("past its limit of 64 MiB"),
            "{failure}"
        );
        let failure = host
            .run_file(&spin, "{}", &settings, 1)
            .pop()
            .unwrap()
            .unwrap_err();
        assert!(failure.to_string().contains("[timeout]"), "{failure}");
        let ok = host.run_file(&echo, "{}", &settings, 2);
        assert_eq!(
            ok.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            vec![host_shim::Turn::Completed(r#"{"fine":true}"#.into()); 2]
        );
    }
}

#[test]
fn ctrl_c_cancels_the_running_node_and_starts_no_other() {
    let flow = scratch("limit-interrupt").join("flow.yaml");
    std::fs::write(
        &flow,
        "id: i\nnodes:\n  wait:\n    component.exec: { component: patient, operation: wait, input: {} }\n  next:\n    component.exec: { component: faulty, operation: spin, input: {} }\n",
    )
    .unwrap();
    // Compile (and cache) everything first, so the run reaches `wait` quickly.
    assert_eq!(host_shim(&["check", flow.to_str().unwrap(), "-q"]).code, 0);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_host-shim"))
        .args(["run", flow.to_str().unwrap(), "-q"])
        .env(
            "GREENTIC_CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Press Ctrl-C once the waiting node says it is running.
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("patient: waiting for cancellation") {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for line in lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted; asking running nodes to stop"),
        "{stderr}"
    );
    assert!(stderr.contains("node `next` (component `faulty`) failed: [interrupted] the run was interrupted before this node started"), "{stderr}");
}

/// The limits are the engine's (epoch deadlines, fuel, memory limiter, traps),
/// so they must hold whichever compiler made the code: Winch on a first run,
/// Cranelift otherwise (`--no-cache` makes each choice deterministic).
#[test]
fn limits_hold_for_winch_and_cranelift_code_alike() {
    let cases = [
        (
            "spin",
            "    timeout: 300\n",
            vec![],
            "[timeout] component `faulty` exceeded its wall-time limit of",
        ),
        (
            "spin",
            "",
            vec!["--node-fuel", "1000000"],
            "[fuel-exhausted] component `faulty` exhausted its fuel limit of 1000000",
        ),
        (
            "hog",
            "",
            vec!["--node-memory-mb", "16"],
            "[memory-limit] component `faulty` tried to grow memory",
        ),
        ("trap", "", vec![], "[trap] component `faulty` trapped"),
    ];
    for (compiler, marker) in [("auto", "baseline compiler"), ("cranelift", "compiling")] {
        for (op, keys, extra, expected) in &cases {
            let flow = node_flow(&format!("limit-{compiler}-{op}"), "faulty", op, "{}", keys);
            let mut args = vec![
                "run",
                flow.to_str().unwrap(),
                "--no-cache",
                "--compiler",
                compiler,
            ];
            args.extend(extra.iter().copied());
            let out = host_shim(&args);
            assert_eq!(out.code, 1, "{compiler} {op}: {out}");
            assert!(out.stderr.contains(marker), "{compiler} {op}: {out}");
            assert!(out.stderr.contains(expected), "{compiler} {op}: {out}");
            if !keys.is_empty() {
                assert_stopped_within_the_flows_timeout(&out.stderr, 300);
            }
        }
    }
}

/// Eight memories of 200 MiB each: each under the 256 MiB limit, together
/// 1.6 GiB. The limit is on the component's memory as a whole.
const MANY_MEMORIES: &str = r#"(component
  (core module $m
    (memory (export "memory") 3200)
    (memory 3200) (memory 3200) (memory 3200)
    (memory 3200) (memory 3200) (memory 3200) (memory 3200)
    (data (memory 0) (i32.const 16) "\a0")
    (data (memory 0) (i32.const 32) "\10\00\00\00\01\00\00\00\00\00\00\00\00\00\00\00")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "run") (param i32 i32 i32 i32) (result i32) i32.const 32)
  )
  (core instance $i (instantiate $m))
  (type $rr (record (field "output" (list u8)) (field "new-state" (list u8))))
  (func $run (param "input" (list u8)) (param "state" (list u8)) (result $rr)
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (component $iface
    (type $rr0 (record (field "output" (list u8)) (field "new-state" (list u8))))
    (import "import-type-run-result" (type $rri (eq $rr0)))
    (import "import-func-run" (func $f (param "input" (list u8)) (param "state" (list u8)) (result $rri)))
    (export $rre "run-result" (type $rri))
    (type $ft (func (param "input" (list u8)) (param "state" (list u8)) (result $rre)))
    (export "run" (func $f) (func (type $ft)))
  )
  (instance $inst (instantiate $iface
    (with "import-func-run" (func $run))
    (with "import-type-run-result" (type $rr))))
  (export "greentic:component/component-runtime@0.6.0" (instance $inst))
)"#;

#[test]
fn the_memory_limit_holds_for_all_of_a_components_memories_together() {
    let dir = scratch("limit-many-memories");
    std::fs::write(
        dir.join("memories.wasm"),
        wat::parse_str(MANY_MEMORIES).unwrap(),
    )
    .unwrap();
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        "id: memories\nnodes:\n  n:\n    component.exec: { component: ./memories.wasm, input: {} }\n",
    )
    .unwrap();
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("node `n`"), "{out}");
    assert!(out.stderr.contains("past its limit of 256 MiB"), "{out}");
    // With room for all eight, it runs.
    let out = run_flow(&flow, &["--node-memory-mb", "2048"]);
    assert_eq!(out.code, 0, "{out}");
}

/// The runner's own store has a memory cap too (a flow whose data grows is
/// stopped, not left to take the host's memory), named in the error.
#[test]
fn the_runner_store_is_capped_by_runner_memory_mb() {
    let dir = scratch("limit-runner-memory");
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        "id: big\nnodes:\n  n:\n    component.exec: { component: echo, input: { blob: \"{{in.blob}}\" } }\n",
    )
    .unwrap();
    let input = dir.join("input.json");
    std::fs::write(
        &input,
        serde_json::to_string(&json!({"blob": "x".repeat(12 << 20)})).unwrap(),
    )
    .unwrap();
    let input_arg = format!("@{}", input.display());
    let out = run_flow(&flow, &["--input", &input_arg, "--runner-memory-mb", "8"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("past its limit of 8 MiB"),
        "{}",
        out.stderr
    );
    let out = run_flow(&flow, &["--input", &input_arg]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["blob"].as_str().map(str::len), Some(12 << 20));
}
