//! The canonical state store through host-shim, with real components:
//! `state-probe` (reports every host answer as data) and `counter`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Outcome, built_component, expect_failure, host_shim, run_flow, scratch};

/// A directory holding `state-probe.wasm` with the given manifest (none if `None`).
fn probe_dir(name: &str, manifest: Option<Value>) -> PathBuf {
    let dir = scratch(name);
    std::fs::copy(built_component("state-probe"), dir.join("state-probe.wasm")).unwrap();
    if let Some(manifest) = manifest {
        std::fs::write(dir.join("state-probe.manifest.json"), manifest.to_string()).unwrap();
    }
    dir
}

fn manifest(read: bool, write: bool, delete: bool) -> Value {
    json!({"id": "tests.state-probe", "capabilities": {"host": {"state": {"read": read, "write": write, "delete": delete}}}})
}

/// Writes a flow calling the probe once per step, then echoing every output
/// (`{"s0": …, "s1": …}`), and returns its path.
fn probe_flow(dir: &Path, steps: &[(&str, Value)]) -> PathBuf {
    let mut yaml = String::from("id: probe\nnodes:\n");
    for (i, (op, input)) in steps.iter().enumerate() {
        yaml.push_str(&format!(
            "  s{i}:\n    component.exec:\n      component: ./state-probe.wasm\n      operation: {op}\n      input: {input}\n"
        ));
    }
    yaml.push_str("  all:\n    echo: { outputs: \"{{node}}\" }\n");
    let flow = dir.join(format!("flow-{}.yaml", steps.len()));
    std::fs::write(&flow, yaml).unwrap();
    flow
}

fn outputs(out: &Outcome) -> Value {
    assert_eq!(out.code, 0, "{out}");
    out.json()["outputs"].clone()
}

fn all_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend_from_slice(&[0xc3, 0x28, 0xff]); // invalid UTF-8
    bytes.extend_from_slice(b"{ \"json\" :  [1,\n 2] }  ");
    bytes
}

#[test]
fn read_write_delete_round_trip_with_capability() {
    let dir = probe_dir("state-round-trip", Some(manifest(true, true, true)));
    let flow = probe_flow(
        &dir,
        &[
            ("read", json!({"key": "k"})),
            ("write", json!({"key": "k", "bytes": [1, 2, 3]})),
            ("read", json!({"key": "k"})),
            ("write-if-absent", json!({"key": "k", "bytes": [9]})),
            ("write-if-absent", json!({"key": "fresh", "bytes": [7]})),
            ("delete", json!({"key": "k"})),
            ("read", json!({"key": "k"})),
            ("read", json!({"key": "fresh"})),
        ],
    );
    let o = outputs(&run_flow(&flow, &[]));
    assert_eq!(o["s0"]["code"], json!("not-found"), "{o}");
    assert_eq!(o["s1"], json!({"ok": true}));
    assert_eq!(o["s2"], json!({"ok": true, "bytes": [1, 2, 3]}));
    assert_eq!(o["s3"], json!({"ok": true, "created": false}));
    assert_eq!(o["s4"], json!({"ok": true, "created": true}));
    assert_eq!(o["s5"], json!({"ok": true}));
    assert_eq!(o["s6"]["code"], json!("not-found"));
    assert_eq!(o["s7"], json!({"ok": true, "bytes": [7]}));
}

#[test]
fn arbitrary_bytes_round_trip_exactly_on_every_backend() {
    let dir = probe_dir("state-bytes", Some(manifest(true, true, true)));
    let bytes = all_bytes();
    let flow = probe_flow(
        &dir,
        &[
            ("write", json!({"key": "blob", "bytes": bytes})),
            ("read", json!({"key": "blob"})),
        ],
    );
    let o = outputs(&run_flow(&flow, &[]));
    assert_eq!(o["s1"]["bytes"], json!(bytes), "memory backend");

    // Across processes, on the file backend.
    let db = dir.join("state.redb");
    let state = format!("file:{}", db.display());
    let write = probe_flow(&dir, &[("write", json!({"key": "blob", "bytes": bytes}))]);
    outputs(&run_flow(&write, &["--state", &state]));
    let read = probe_flow(
        &dir,
        &[
            ("read", json!({"key": "blob"})),
            ("read", json!({"key": "other"})),
        ],
    );
    let o = outputs(&run_flow(&read, &["--state", &state]));
    assert_eq!(
        o["s0"]["bytes"],
        json!(bytes),
        "file backend, second process"
    );
}

#[test]
fn a_component_without_capability_cannot_run() {
    // The built-in state-probe has no manifest.
    let dir = scratch("state-no-manifest");
    let flow = dir.join("flow.yaml");
    std::fs::write(&flow, "id: x\nnodes:\n  p:\n    component.exec: { component: state-probe, operation: read, input: {} }\n").unwrap();
    let out = run_flow(&flow, &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("node `p`: component `state-probe`"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "imports `greentic:state/state-store@1.1.0` but may not use state: it has no manifest"
        ),
        "{out}"
    );

    // A manifest that does not declare state is no better.
    let dir = probe_dir(
        "state-undeclared",
        Some(json!({"id": "tests.state-probe", "capabilities": {}})),
    );
    let out = run_flow(&probe_flow(&dir, &[("read", json!({}))]), &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("does not declare `capabilities.host.state`"),
        "{out}"
    );
}

#[test]
fn components_that_do_not_import_state_need_no_manifest() {
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "-q",
        "--profile",
        "no-state",
        "--input",
        "@examples/hello/input.json",
    ]);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn a_read_only_manifest_cannot_write_or_delete() {
    let dir = probe_dir("state-read-only", Some(manifest(true, false, false)));
    let flow = probe_flow(
        &dir,
        &[
            ("write", json!({"key": "k", "bytes": [1]})),
            ("write-if-absent", json!({"key": "k", "bytes": [1]})),
            ("delete", json!({"key": "k"})),
            ("read", json!({"key": "k"})),
        ],
    );
    let o = outputs(&run_flow(&flow, &[]));
    for step in ["s0", "s1", "s2"] {
        assert_eq!(o[step]["code"], json!("permission-denied"), "{step}: {o}");
    }
    assert!(
        o["s0"]["message"]
            .as_str()
            .unwrap()
            .contains("not granted state `write`"),
        "{o}"
    );
    assert!(
        o["s2"]["message"]
            .as_str()
            .unwrap()
            .contains("not granted state `delete`"),
        "{o}"
    );
    assert_eq!(
        o["s3"]["code"],
        json!("not-found"),
        "reads are allowed: {o}"
    );
}

#[test]
fn the_profile_can_deny_what_the_manifest_declares() {
    let dir = probe_dir("state-profile", Some(manifest(true, true, true)));
    let flow = probe_flow(
        &dir,
        &[
            ("write", json!({"key": "k", "bytes": [1]})),
            ("read", json!({"key": "k"})),
        ],
    );
    let out = run_flow(&flow, &["--profile", "no-state"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("profile `no-state` does not allow state for `tests.state-probe`"),
        "{out}"
    );

    let read_only = dir.join("read-only.json");
    std::fs::write(
        &read_only,
        json!({"name": "ro", "state": {"allow": ["tests.*"], "operations": ["read"]}}).to_string(),
    )
    .unwrap();
    let o = outputs(&run_flow(
        &flow,
        &["--profile", read_only.to_str().unwrap()],
    ));
    assert_eq!(o["s0"]["code"], json!("permission-denied"), "{o}");
    assert_eq!(o["s1"]["code"], json!("not-found"), "{o}");

    let others = dir.join("others.json");
    std::fs::write(
        &others,
        json!({"name": "others", "state": {"allow": ["greentic.examples.counter"]}}).to_string(),
    )
    .unwrap();
    let out = run_flow(&flow, &["--profile", others.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("profile `others` does not allow state for `tests.state-probe`"),
        "{out}"
    );
}

#[test]
fn a_guest_context_for_another_scope_is_refused_and_logged() {
    let dir = probe_dir("state-cross-tenant", Some(manifest(true, true, true)));
    let flow = probe_flow(
        &dir,
        &[
            (
                "write",
                json!({"key": "k", "bytes": [1], "ctx": {"env": "local", "tenant": "victim"}}),
            ),
            (
                "read",
                json!({"key": "k", "ctx": {"env": "prod", "tenant": "acme"}}),
            ),
            (
                "read",
                json!({"key": "k", "ctx": {"env": "local", "tenant": "acme", "team": "other-team"}}),
            ),
            (
                "write",
                json!({"key": "k", "bytes": [2], "ctx": {"env": "local", "tenant": "acme"}}),
            ),
            ("read", json!({"key": "k"})),
        ],
    );
    let out = run_flow(&flow, &["--tenant", "acme"]);
    let o = outputs(&out);
    for step in ["s0", "s1", "s2"] {
        assert_eq!(o[step]["code"], json!("permission-denied"), "{step}: {o}");
    }
    assert!(
        o["s0"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant `victim` is not the run's tenant `acme`"),
        "{o}"
    );
    assert!(
        o["s1"]["message"].as_str().unwrap().contains("env `prod`"),
        "{o}"
    );
    assert!(
        o["s2"]["message"]
            .as_str()
            .unwrap()
            .contains("team `other-team` is outside the run's scope"),
        "{o}"
    );
    // The run's own context, given explicitly, is fine.
    assert_eq!(o["s3"], json!({"ok": true}));
    assert_eq!(o["s4"], json!({"ok": true, "bytes": [2]}));
    assert!(
        out.stderr
            .contains("refused a state call for another scope"),
        "not logged: {out}"
    );
}

#[test]
fn tenants_teams_and_users_are_isolated() {
    let dir = probe_dir("state-isolation", Some(manifest(true, true, true)));
    let state = format!("file:{}", dir.join("state.redb").display());
    let write = |value: u8, scope: &[&str]| {
        let flow = probe_flow(&dir, &[("write", json!({"key": "k", "bytes": [value]}))]);
        let mut args = vec!["--state", state.as_str()];
        args.extend_from_slice(scope);
        outputs(&run_flow(&flow, &args));
    };
    let read = |scope: &[&str]| -> Value {
        let flow = probe_flow(&dir, &[("read", json!({"key": "k"}))]);
        let mut args = vec!["--state", state.as_str()];
        args.extend_from_slice(scope);
        outputs(&run_flow(&flow, &args))["s0"].clone()
    };
    write(1, &["--tenant", "a"]);
    write(2, &["--tenant", "b"]);
    write(3, &["--tenant", "a", "--team", "x"]);
    write(4, &["--tenant", "a", "--user", "x"]);
    write(5, &["--tenant", "a", "--env", "prod"]);
    assert_eq!(read(&["--tenant", "a"])["bytes"], json!([1]));
    assert_eq!(read(&["--tenant", "b"])["bytes"], json!([2]));
    assert_eq!(read(&["--tenant", "a", "--team", "x"])["bytes"], json!([3]));
    assert_eq!(
        read(&["--tenant", "a", "--user", "x"])["bytes"],
        json!([4]),
        "team x and user x must not share keys"
    );
    assert_eq!(
        read(&["--tenant", "a", "--env", "prod"])["bytes"],
        json!([5])
    );
    assert_eq!(read(&["--tenant", "c"])["code"], json!("not-found"));
}

#[test]
fn counter_example_persists_on_the_file_backend() {
    let dir = scratch("state-counter");
    let state = format!("file:{}", dir.join("counter.redb").display());
    let count = |extra: &[&str]| -> Value {
        let mut args = vec![
            "run",
            "examples/counter/flow.yaml",
            "-q",
            "--state",
            state.as_str(),
        ];
        args.extend_from_slice(extra);
        let out = host_shim(&args);
        assert_eq!(out.code, 0, "{out}");
        out.json()["count"].clone()
    };
    assert_eq!(count(&[]), json!(1));
    assert_eq!(count(&[]), json!(2));
    assert_eq!(count(&["--tenant", "other"]), json!(1));
    assert_eq!(count(&[]), json!(3));
    // The default backend lives in the process only.
    let out = host_shim(&["run", "examples/counter/flow.yaml", "-q"]);
    assert_eq!(out.json()["count"], json!(1), "{out}");
}

#[test]
fn bad_state_options_are_clear_errors() {
    let counter = Path::new("examples/counter/flow.yaml");
    for (args, needle) in [
        (
            ["--state", "s3://bucket"],
            "unknown state backend `s3://bucket`",
        ),
        (["--tenant", "bad:tenant"], "invalid --tenant `bad:tenant`"),
        (["--profile", "nope"], "unknown profile `nope`"),
        (
            ["--state", "redis://127.0.0.1:1"],
            "cannot reach the Redis state store at `redis://127.0.0.1:1`",
        ),
    ] {
        expect_failure(&run_flow(counter, &args), 2, needle);
    }
}

mod redis {
    use super::*;
    use crate::support::redis;

    #[test]
    fn redis_backend_round_trip_and_isolation() {
        let server = redis();
        let dir = probe_dir("state-redis", Some(manifest(true, true, true)));
        let bytes = all_bytes();
        let write = probe_flow(
            &dir,
            &[
                ("write", json!({"key": "blob", "bytes": bytes})),
                ("write", json!({"key": "gone", "bytes": [1]})),
                ("delete", json!({"key": "gone"})),
            ],
        );
        outputs(&run_flow(
            &write,
            &["--state", &server.url, "--tenant", "t1"],
        ));
        let read = probe_flow(
            &dir,
            &[
                ("read", json!({"key": "blob"})),
                ("read", json!({"key": "gone"})),
            ],
        );
        let o = outputs(&run_flow(
            &read,
            &["--state", &server.url, "--tenant", "t1"],
        ));
        assert_eq!(o["s0"]["bytes"], json!(bytes), "byte-exact through Redis");
        assert_eq!(o["s1"]["code"], json!("not-found"), "{o}");
        let o = outputs(&run_flow(
            &read,
            &["--state", &server.url, "--tenant", "t2"],
        ));
        assert_eq!(
            o["s0"]["code"],
            json!("not-found"),
            "another tenant sees nothing: {o}"
        );

        // The counter keeps counting across processes on Redis too.
        let counts: Vec<Value> = (0..2)
            .map(|_| {
                host_shim(&[
                    "run",
                    "examples/counter/flow.yaml",
                    "-q",
                    "--state",
                    &server.url,
                    "--tenant",
                    "redis-t",
                ])
                .json()["count"]
                    .clone()
            })
            .collect();
        assert_eq!(counts, vec![json!(1), json!(2)]);
    }
}

#[test]
fn many_processes_share_one_state_file() {
    // Eight processes at once on one file, each for its own tenant, twice:
    // none is refused for the lock, no write is lost.
    let dir = scratch("state-file-concurrent");
    let db = format!("file:{}", dir.join("shared.redb").display());
    for round in 1..=2 {
        let children: Vec<_> = (0..8)
            .map(|i| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let tenant = format!("t{i}");
                    host_shim(&[
                        "run",
                        "examples/counter/flow.yaml",
                        "--state",
                        &db,
                        "--tenant",
                        &tenant,
                        "-q",
                    ])
                })
            })
            .collect();
        for child in children {
            let out = child.join().unwrap();
            assert_eq!(out.code, 0, "{out}");
            assert_eq!(out.json()["count"], json!(round), "{out}");
        }
    }
}

/// One host runs run after run on the runner instance it keeps (the default):
/// each run acts for its own tenant, sees the flow file as it is now, and a
/// failed run leaves nothing behind for the next. The same with a new runner
/// per run (`--fresh-runner`).
#[test]
fn a_kept_runner_serves_each_run_its_own_tenant_and_the_flow_as_it_is_now() {
    runs_one_after_another("kept-runner", false);
    runs_one_after_another("fresh-runner", true);
}

fn runs_one_after_another(name: &str, fresh_runner_per_run: bool) {
    let dir = scratch(name);
    let flow = dir.join("flow.yaml");
    let counting = |label: &str| {
        format!(
            "id: kept\nnodes:\n  before:\n    state.get: {{ key: visits, fallback: 0 }}\n  save:\n    state.set: {{ key: visits, value: \"{{{{node.before.value}}}}{label}\" }}\n  report:\n    echo: {{ tenant_saw: \"{{{{node.before.value}}}}\", label: {label} }}\n"
        )
    };
    std::fs::write(&flow, counting("a")).unwrap();
    let mut host = ::host_shim::Host::new(::host_shim::HostOptions {
        quiet: true,
        fresh_runner_per_run,
        ..Default::default()
    })
    .unwrap();
    let run_as = |host: &mut ::host_shim::Host, tenant: &str| -> Value {
        let mut settings = ::host_shim::RunSettings::default();
        settings.scope.tenant = tenant.into();
        match host.run_file(&flow, "{}", &settings, 1).pop().unwrap() {
            Ok(::host_shim::Turn::Completed(out)) => serde_json::from_str(&out).unwrap(),
            other => panic!("{tenant}: {other:?}"),
        }
    };
    assert_eq!(
        run_as(&mut host, "acme"),
        json!({"tenant_saw": 0, "label": "a"})
    );
    assert_eq!(
        run_as(&mut host, "acme"),
        json!({"tenant_saw": "0a", "label": "a"})
    );
    // Another tenant on the same kept instance starts from nothing.
    assert_eq!(
        run_as(&mut host, "globex"),
        json!({"tenant_saw": 0, "label": "a"})
    );
    // The flow changed on disk: the next run plans the new text.
    std::fs::write(&flow, counting("b")).unwrap();
    assert_eq!(
        run_as(&mut host, "acme"),
        json!({"tenant_saw": "0aa", "label": "b"})
    );
    // A run that fails in a node, then one that works, on the same host.
    let failing = dir.join("failing.yaml");
    std::fs::write(
        &failing,
        "id: failing\nnodes:\n  n:\n    component.exec: { component: faulty, operation: trap, input: {} }\n",
    )
    .unwrap();
    let settings = ::host_shim::RunSettings::default();
    let failure = host
        .run_file(&failing, "{}", &settings, 1)
        .pop()
        .unwrap()
        .unwrap_err();
    assert!(failure.to_string().contains("trap"), "{failure}");
    // globex's own value from its first run, written by flow `a`.
    assert_eq!(
        run_as(&mut host, "globex"),
        json!({"tenant_saw": "0a", "label": "b"})
    );
}

/// A component's state namespace is the id its manifest claims; another
/// binary claiming that id (here: the probe with the counter's id) gets
/// none of it — refused while another binary holds the id, or when the
/// profile pins the id to another digest or requires pins.
#[test]
fn a_binary_claiming_another_components_state_id_is_refused() {
    use sha2::Digest;
    let dir = probe_dir(
        "state-id-claim",
        Some(
            json!({"id": "greentic.examples.counter", "capabilities": {"host": {"state": {"read": true, "write": true, "delete": true}}}}),
        ),
    );
    let both = dir.join("both.yaml");
    std::fs::write(
        &both,
        "id: both\nnodes:\n  count:\n    component.exec: { component: counter, operation: increment, input: {} }\n  steal:\n    component.exec: { component: ./state-probe.wasm, operation: read, input: { key: count } }\n",
    )
    .unwrap();
    let out = run_flow(&both, &[]);
    expect_failure(
        &out,
        2,
        "state id `greentic.examples.counter` is held in this host by",
    );
    assert!(out.stderr.contains("node `steal`"), "{out}");
    assert!(out.stdout.trim().is_empty(), "{out}");

    // The profile pins the id to the counter's bytes: the probe alone is refused.
    let counter = std::fs::read(built_component("counter")).unwrap();
    let pin = format!("sha256:{:x}", sha2::Sha256::digest(&counter));
    let alone = dir.join("alone.yaml");
    std::fs::write(
        &alone,
        "id: alone\nnodes:\n  steal:\n    component.exec: { component: ./state-probe.wasm, operation: read, input: { key: count } }\n",
    )
    .unwrap();
    let profile = dir.join("pinned.json");
    std::fs::write(
        &profile,
        json!({"name": "pinned", "state": {"allow": ["*"], "pins": {"greentic.examples.counter": pin}}}).to_string(),
    )
    .unwrap();
    let out = run_flow(&alone, &["--profile", profile.to_str().unwrap()]);
    expect_failure(
        &out,
        2,
        &format!("profile `pinned` pins state id `greentic.examples.counter` to {pin}"),
    );
    // The counter itself runs under that profile.
    let counting = dir.join("count.yaml");
    std::fs::write(
        &counting,
        "id: count\nnodes:\n  count:\n    component.exec: { component: counter, operation: increment, input: {} }\n",
    )
    .unwrap();
    let out = run_flow(&counting, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    // Requiring pins: an unpinned id gets no state.
    let strict = dir.join("strict.json");
    std::fs::write(
        &strict,
        r#"{"name": "strict", "state": {"allow": ["*"], "require_pins": true}}"#,
    )
    .unwrap();
    let out = run_flow(&alone, &["--profile", strict.to_str().unwrap()]);
    expect_failure(&out, 2, "profile `strict` requires state ids to be pinned");
}

/// A flow's own `state.get` / `state.set` need the profile to allow
/// `flow:<its id>`, under `run` and `serve` alike: refused before any node
/// runs otherwise, naming the flow.
#[test]
fn flow_state_is_gated_by_flow_id_under_run_and_serve() {
    let dir = scratch("state-flow-gate");
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(
        flows.join("visits.ygtc"),
        "id: visits\nnodes:\n  before:\n    state.get: { key: n, fallback: 0 }\n  save:\n    state.set: { key: n, value: \"{{node.before.value}}\" }\n  report:\n    echo: { saw: \"{{node.before.value}}\" }\n",
    )
    .unwrap();
    let profile = |name: &str, allow: &[&str]| {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(
            &path,
            json!({"name": name, "state": {"allow": allow}}).to_string(),
        )
        .unwrap();
        path
    };
    let (this_flow, other_flow) = (
        profile("this", &["flow:visits"]),
        profile("other", &["flow:reports"]),
    );
    let flow = flows.join("visits.ygtc");
    let ok = run_flow(&flow, &["--profile", this_flow.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "{ok}");
    assert_eq!(ok.json(), json!({"saw": 0}), "{ok}");
    let refused = run_flow(&flow, &["--profile", other_flow.to_str().unwrap()]);
    expect_failure(
        &refused,
        2,
        "flow `visits` uses `state.get`/`state.set` but may not use state: profile `other`",
    );

    for (profile, expected) in [(&this_flow, 200), (&other_flow, 500)] {
        let server = crate::support::serve(
            &flows,
            &[
                "--addr",
                "127.0.0.1:0",
                "--state",
                "memory",
                "--profile",
                profile.to_str().unwrap(),
            ],
        );
        let (status, body, _) = crate::support::http(
            "POST",
            &format!("{}/flows/visits", server.base),
            "{}",
            &[("content-type", "application/json")],
        )
        .unwrap();
        assert_eq!(status, expected, "{body}");
        if expected == 500 {
            assert!(
                body.contains("flow `visits` uses `state.get`/`state.set` but may not use state"),
                "{body}"
            );
        }
    }
}
