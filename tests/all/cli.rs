//! The command line as a user meets it: examples, bad inputs, exit codes, cache.

use serde_json::json;

use crate::support::{built_component, host_shim, host_shim_with_cache, scratch};

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    host_shim::cli::Cli::command().debug_assert();
}

#[test]
fn hello_example_runs() {
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({
            "reply": "Welcome back, Ada Lovelace!",
            "words": 4,
            "tags": ["math", "engines"],
            "summary": "4 words for Ada Lovelace (default)"
        })
    );
    // The other branch, and the tenant reaching `state`.
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "-q",
        "--input",
        r#"{"user": {"name": "Bo"}}"#,
    ]);
    assert_eq!(
        out.json(),
        json!({"reply": "HELLO, BO!", "words": 2}),
        "{out}"
    );
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "-q",
        "--tenant",
        "acme",
        "--input",
        r#"{"user": {"name": "Ada Lovelace", "vip": true}, "tags": []}"#,
    ]);
    assert_eq!(
        out.json()["summary"],
        json!("4 words for Ada Lovelace (acme)"),
        "{out}"
    );
}

#[test]
fn seed_001_example_runs_as_written() {
    let out = host_shim(&[
        "run",
        "examples/seed-001/flow.yaml",
        "--input",
        "@examples/seed-001/input.json",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({"user_id": 7, "name": "Grace Hopper", "last_status": 200})
    );
}

#[test]
fn invalid_input_json_is_refused() {
    let out = host_shim(&["run", "examples/hello/flow.yaml", "--input", "{\"user\": "]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("invalid --input JSON"), "{out}");
    assert!(out.stdout.is_empty());
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@no/such/file.json",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("cannot read --input file `no/such/file.json`"),
        "{out}"
    );
}

#[test]
fn missing_flow_file_is_refused() {
    let out = host_shim(&["run", "no/such/flow.yaml"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("cannot read `no/such/flow.yaml`"),
        "{out}"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = scratch("not-a-component");
    std::fs::write(dir.join("garbage.wasm"), b"definitely not wasm").unwrap();
    // The smallest valid core module: a module, not a component.
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    for (file, why) in [
        ("garbage.wasm", "is not a WebAssembly component"),
        ("core.wasm", "it is a core module"),
    ] {
        let flow = dir.join(format!("{file}.yaml"));
        std::fs::write(
            &flow,
            format!(
                "id: x\nnodes:\n  n:\n    component.exec: {{ component: ./{file}, input: {{}} }}\n"
            ),
        )
        .unwrap();
        let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr.contains("node `n`: component `./") && out.stderr.contains(why),
            "{out}"
        );
    }
}

#[test]
fn a_component_that_is_not_a_node_is_refused() {
    // The runner itself is a component, but exports no `greentic:component/node`.
    let dir = scratch("not-a-node");
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        format!(
            "id: x\nnodes:\n  n:\n    component.exec: {{ component: {}, input: {{}} }}\n",
            host_shim::BUILT_RUNNER
        ),
    )
    .unwrap();
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("node `n`"), "{out}");
}

/// A flow whose nodes each use a distinct copy of `echo`.
fn distinct_components_flow(name: &str, count: usize) -> std::path::PathBuf {
    let dir = scratch(name);
    let mut yaml = String::from("id: many\nnodes:\n");
    for i in 0..count {
        std::fs::copy(built_component("echo"), dir.join(format!("c{i}.wasm"))).unwrap();
        yaml.push_str(&format!("  n{i}:\n    component.exec: {{ component: ./c{i}.wasm, input: {{ i: {i}, prev: \"{{{{prev}}}}\" }} }}\n"));
    }
    let flow = dir.join("flow.yaml");
    std::fs::write(&flow, yaml).unwrap();
    flow
}

#[test]
fn every_node_slot_is_wired() {
    let flow = distinct_components_flow("eight-slots", 8);
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 0, "{out}");
    // Each node wraps the previous output: unwrap all eight levels.
    let mut value = out.json();
    for i in (0..8).rev() {
        assert_eq!(value["i"], json!(i), "{out}");
        value = value["prev"].clone();
    }
    assert_eq!(value, json!({}));
}

#[test]
fn more_components_than_slots_is_a_clear_error() {
    let flow = distinct_components_flow("nine-slots", 9);
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("uses 9 distinct components; the runner has 8 node slots"),
        "{out}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let cache = scratch("cache-check");
    let args = [
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
    ];
    let first = host_shim_with_cache(&args, &cache);
    assert_eq!(first.code, 0, "{first}");
    assert!(
        first.stderr.contains("compiling") && first.stderr.contains("runner.wasm"),
        "{first}"
    );
    let artifacts = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(artifacts, 3, "runner, text and echo");
    let second = host_shim_with_cache(&args, &cache);
    assert_eq!(second.code, 0, "{second}");
    assert!(
        !second.stderr.contains("compiling"),
        "second run recompiled: {second}"
    );
    assert_eq!(first.stdout, second.stdout);
    // A corrupt artifact is ignored and replaced, not fatal.
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), b"corrupt").unwrap();
    }
    let third = host_shim_with_cache(&args, &cache);
    assert_eq!(third.code, 0, "{third}");
    assert_eq!(third.stdout, first.stdout);
}

#[test]
fn check_prints_the_plan_without_running() {
    let out = host_shim(&["check", "examples/seed-001/flow.yaml", "-q"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        json!({
            "id": "flow",
            "start": "start",
            "nodes": [
                {"id": "start", "component": "users", "operation": "read"},
                {"id": "process", "component": "echo", "operation": "transform"}
            ],
            "components": ["users", "echo"]
        })
    );
    let out = host_shim(&["check", "tests/flows/unknown-component/flow.yaml", "-q"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("component `no-such-component` not found"),
        "{out}"
    );
}

#[test]
fn components_dirs_come_before_the_built_in_ones() {
    let dir = scratch("components-dir");
    // A directory where `echo` is really `text`: `upper` then changes the output.
    std::fs::copy(built_component("text"), dir.join("echo.wasm")).unwrap();
    let flow = dir.join("flow.yaml");
    std::fs::write(&flow, "id: x\nnodes:\n  n:\n    component.exec: { component: echo, operation: upper, input: { s: abc } }\n").unwrap();
    let default = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(default.json(), json!({"s": "abc"}), "{default}");
    let custom = host_shim(&[
        "run",
        flow.to_str().unwrap(),
        "-q",
        "--components",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(custom.json(), json!({"s": "ABC"}), "{custom}");
}

#[test]
fn a_missing_runner_is_reported() {
    let out = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "--runner",
        "no/runner.wasm",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("loading the runner component `no/runner.wasm`"),
        "{out}"
    );
}
