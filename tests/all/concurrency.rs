//! Many runs at once: different tenants in one process (serve's threads) and
//! in many processes on one Redis — no run reads another tenant's state, no
//! write is lost, and `write-if-absent` lets exactly one racer create a key.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{built_component, host_shim, http, redis, scratch, serve};

/// A run id no other test (or earlier run of this one) uses on a shared Redis.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

#[test]
fn tenants_in_many_processes_on_one_redis_see_only_their_own_counts() {
    let server = redis();
    let run_id = unique("procs");
    let children: Vec<_> = (0..6)
        .map(|i| {
            let url = server.url.clone();
            let tenant = format!("{run_id}-t{i}");
            std::thread::spawn(move || {
                host_shim(&[
                    "run",
                    "examples/counter/flow.yaml",
                    "--state",
                    &url,
                    "--tenant",
                    &tenant,
                    "--repeat",
                    "15",
                    "-q",
                ])
            })
        })
        .collect();
    for child in children {
        let out = child.join().unwrap();
        assert_eq!(out.code, 0, "{out}");
        // Each process's 15 runs count 1..=15 for its own tenant: nothing
        // lost, nothing read from the five others running at the same time.
        let counts: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["count"].clone())
            .collect();
        assert_eq!(
            counts,
            (1..=15).map(|n| json!(n)).collect::<Vec<_>>(),
            "{out}"
        );
    }
}

#[test]
fn tenants_in_one_serving_process_see_only_their_own_counts() {
    let server = redis();
    let run_id = unique("threads");
    let served = serve(
        Path::new("examples/counter/flow.yaml"),
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            &server.url,
            "--trust-tenant-headers",
            "--max-concurrent",
            "16",
        ],
    );
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let url = format!("{}/flows/counter", served.base);
            let tenant = format!("{run_id}-u{i}");
            std::thread::spawn(move || {
                (1..=12)
                    .map(|_| {
                        let (status, body, _) =
                            http("POST", &url, "{}", &[("x-greentic-tenant", &tenant)])
                                .expect("a response");
                        assert_eq!(status, 200, "{body}");
                        let out: Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(out["tenant"], json!(tenant), "{body}");
                        out["count"].clone()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        let counts = client.join().unwrap();
        assert_eq!(counts, (1..=12).map(|n| json!(n)).collect::<Vec<_>>());
    }
}

#[test]
fn write_if_absent_lets_exactly_one_of_many_racing_processes_create_a_key() {
    let server = redis();
    let dir = scratch("concurrency-claim");
    std::fs::copy(built_component("state-probe"), dir.join("state-probe.wasm")).unwrap();
    std::fs::write(
        dir.join("state-probe.manifest.json"),
        json!({"id": "tests.state-probe", "capabilities": {"host": {"state": {"read": true, "write": true, "delete": true}}}}).to_string(),
    )
    .unwrap();
    let flow = dir.join("claim.yaml");
    std::fs::write(
        &flow,
        "id: claim\nnodes:\n  s:\n    component.exec:\n      component: ./state-probe.wasm\n      operation: write-if-absent\n      input: { key: claim, bytes: \"{{entry.who}}\" }\n",
    )
    .unwrap();
    let tenant = unique("claim");
    for round in 0..3 {
        let key_tenant = format!("{tenant}-{round}");
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let url = server.url.clone();
                let flow = flow.clone();
                let key_tenant = key_tenant.clone();
                std::thread::spawn(move || {
                    host_shim(&[
                        "run",
                        flow.to_str().unwrap(),
                        "--state",
                        &url,
                        "--tenant",
                        &key_tenant,
                        "--input",
                        &format!(r#"{{"who": [{i}]}}"#),
                        "-q",
                    ])
                })
            })
            .collect();
        let created: Vec<bool> = racers
            .into_iter()
            .map(|r| {
                let out = r.join().unwrap();
                assert_eq!(out.code, 0, "{out}");
                assert_eq!(out.json()["ok"], json!(true), "{out}");
                out.json()["created"].as_bool().unwrap()
            })
            .collect();
        assert_eq!(
            created.iter().filter(|c| **c).count(),
            1,
            "round {round}: exactly one racer creates the key: {created:?}"
        );
    }
}
