//! The command line as a user meets it: examples, bad inputs, exit codes, cache.

use std::path::Path;

use serde_json::json;

use crate::support::{built_component, host_shim, host_shim_with_cache, scratch};

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    host_shim::Cli::command().debug_assert();
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
    // A component that imports nothing gated and exports no node ABI (the
    // refusing capability part of compositions): refused for that, by name.
    let dir = scratch("not-a-node");
    let flow = dir.join("flow.yaml");
    let part = Path::new(host_shim::BUILT_COMPOSE_PARTS_DIR).join("capability-deny.wasm");
    std::fs::write(
        &flow,
        format!(
            "id: x\nnodes:\n  n:\n    component.exec: {{ component: {}, input: {{}} }}\n",
            part.display()
        ),
    )
    .unwrap();
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("node `n`"), "{out}");
    assert!(
        out.stderr
            .contains("cannot be a flow node: it exports none of `greentic:component/node@0.6.0`"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("(it exports: greentic:secrets-store/secrets-store@1.0.0"),
        "{out}"
    );
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
    let slots = host_shim::SLOT_COUNT;
    let flow = distinct_components_flow("all-slots", slots);
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 0, "{out}");
    // Each node wraps the previous output: unwrap every level.
    let mut value = out.json();
    for i in (0..slots).rev() {
        assert_eq!(value["i"], json!(i), "{out}");
        value = value["prev"].clone();
    }
    assert_eq!(value, json!({}));
}

#[test]
fn more_components_than_slots_is_a_clear_error() {
    let slots = host_shim::SLOT_COUNT;
    let flow = distinct_components_flow("too-many-slots", slots + 1);
    let out = host_shim(&["run", flow.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 2, "{out}");
    let expected = format!(
        "use {} distinct components; the runner has {slots} node slots",
        slots + 1
    );
    assert!(out.stderr.contains(&expected), "{out}");
}

/// Waits (bounded) until `cache` holds `count` artifacts (Wasmtime's ELF
/// files) and no fill lock: the background `host-shim compile` a run started
/// has finished.
fn wait_for_artifacts(cache: &Path, count: usize) {
    let files = || -> Vec<String> {
        std::fs::read_dir(cache)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for _ in 0..2400 {
        let names = files();
        let artifacts = names
            .iter()
            .filter(|n| n.ends_with(".cwasm"))
            .filter(|n| {
                std::fs::read(cache.join(n)).is_ok_and(|bytes| bytes.starts_with(b"\x7fELF"))
            })
            .count();
        if artifacts >= count && !names.iter().any(|n| n.ends_with(".lock")) {
            assert_eq!(artifacts, count, "{names:?}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "the background compile did not fill {}: {:?}",
        cache.display(),
        files()
    );
}

#[test]
fn a_first_run_compiles_nothing_slowly_and_the_next_finds_optimised_code() {
    let cache = scratch("cache-check").join("cache");
    let args = [
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
    ];
    let first = host_shim_with_cache(&args, &cache);
    assert_eq!(first.code, 0, "{first}");
    assert!(first.stdout.contains("Welcome back"), "{first}");
    // The runner comes precompiled by the build; the node components are new
    // to this cache, so Winch compiles them for this run…
    assert!(!first.stderr.contains("runner"), "{first}");
    for name in ["text.wasm", "echo.wasm"] {
        assert!(
            first
                .stderr
                .lines()
                .any(|l| l.contains(name) && l.contains("baseline compiler")),
            "{first}"
        );
    }
    assert!(!first.stderr.contains("compiling"), "{first}");
    // …and a process of its own writes Cranelift's code for the next runs.
    wait_for_artifacts(&cache, 2);
    let second = host_shim_with_cache(&args, &cache);
    assert_eq!(second.code, 0, "{second}");
    assert!(
        !second.stderr.contains("compil"),
        "second run compiled: {second}"
    );
    assert_eq!(first.stdout, second.stdout);
    // A corrupt artifact is ignored and replaced, not fatal.
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), b"corrupt").unwrap();
    }
    let third = host_shim_with_cache(&args, &cache);
    assert_eq!(third.code, 0, "{third}");
    assert_eq!(third.stdout, first.stdout);
    wait_for_artifacts(&cache, 2);
    let fourth = host_shim_with_cache(&args, &cache);
    assert!(!fourth.stderr.contains("compil"), "{fourth}");
    assert_eq!(fourth.stdout, first.stdout);
}

#[test]
fn cranelift_now_or_no_cache_at_all() {
    let dir = scratch("compiler-choice");
    let hello = [
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
    ];
    let reference = host_shim_with_cache(&hello, &dir.join("reference"));
    // `--compiler cranelift`: optimised code now, in the cache when the run ends.
    let cache = dir.join("cranelift");
    let mut args = hello.to_vec();
    args.extend(["--compiler", "cranelift"]);
    let out = host_shim_with_cache(&args, &cache);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, reference.stdout);
    assert!(
        out.stderr.contains("compiling") && !out.stderr.contains("baseline"),
        "{out}"
    );
    let artifacts = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(artifacts, 2, "text and echo (the runner is the build's)");
    // `--no-cache`: nothing written, now or later (no background compile).
    let cache = dir.join("none");
    let mut args = hello.to_vec();
    args.push("--no-cache");
    let out = host_shim_with_cache(&args, &cache);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, reference.stdout);
    assert!(out.stderr.contains("baseline compiler"), "{out}");
    assert!(!cache.exists(), "--no-cache wrote {}", cache.display());
}

#[test]
fn compile_fills_the_cache_ahead_of_time() {
    let dir = scratch("compile-ahead");
    let cache = dir.join("cache");
    let out = host_shim_with_cache(&["compile", "examples/hello/flow.yaml"], &cache);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("3 components: 2 compiled, 1 already compiled"),
        "{out}"
    );
    let run = host_shim_with_cache(
        &[
            "run",
            "examples/hello/flow.yaml",
            "--input",
            "@examples/hello/input.json",
        ],
        &cache,
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stderr.contains("compil"), "{run}");
    // Again: nothing left to do. A directory of flows and a component file
    // add what they use.
    let again = host_shim_with_cache(
        &[
            "compile",
            "examples",
            built_component("counter").to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(again.code, 0, "{again}");
    // runner, text, echo (done), counter and users (examples/counter, seed-001).
    assert!(
        again
            .stderr
            .contains("5 components: 2 compiled, 3 already compiled"),
        "{again}"
    );
    assert!(
        again.stderr.contains("compiled  ") && again.stderr.contains("counter.wasm"),
        "{again}"
    );
    // A target that is not there fails, naming it, after compiling the rest.
    let missing = host_shim_with_cache(
        &["compile", "no/such/flow.yaml", "examples/hello/flow.yaml"],
        &cache,
    );
    assert_eq!(missing.code, 2, "{missing}");
    assert!(missing.stderr.contains("no/such/flow.yaml"), "{missing}");
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

#[test]
fn check_dir_reports_every_flow_and_names_legacy_dialects() {
    let dir = scratch("check-dir");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("good.ygtc"),
        "id: good\ntype: messaging\nx-generated-by: t\nnodes:\n  a:\n    component.exec: { component: echo, input: {} }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/unbound.ygtc"),
        "id: unbound\ntype: job\nnodes:\n  a:\n    some-missing-tool: { x: 1 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("legacy.yaml"),
        "id: legacy\ntype: messaging\nin: a\nnodes:\n  a:\n    card: {}\n    routes: [end]\n",
    )
    .unwrap();
    // Not flows: skipped, not failed.
    std::fs::write(dir.join("pack.yaml"), "id: p\nversion: 1\n").unwrap();
    std::fs::write(dir.join("index.ygtc"), "# placeholder\nversion: 0.1\n").unwrap();

    let path = dir.to_str().unwrap();
    let out = host_shim(&["check", path]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stdout.contains("ok    ") && out.stdout.contains("good.ygtc"),
        "{out}"
    );
    assert!(
        out.stdout.contains("older greentic-messaging dialect"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("component `some-missing-tool` not found"),
        "{out}"
    );
    assert!(out.stdout.contains("3 flows: 1 ok, 2 failed"), "{out}");

    // With the echo stand-in, only the legacy file fails; --json for tools.
    let out = host_shim(&["check", path, "--stub-missing", "--json"]);
    assert_eq!(out.code, 2, "{out}");
    let report = out.json();
    assert_eq!(
        (report["ok"].clone(), report["failed"].clone()),
        (json!(2), json!(1)),
        "{out}"
    );
    let flows = report["flows"].as_array().unwrap();
    let unbound = flows
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("unbound.ygtc"))
        .unwrap();
    assert_eq!(unbound["stubbed"].as_array().unwrap().len(), 1, "{out}");
    let legacy = flows.iter().find(|f| f["ok"] == json!(false)).unwrap();
    assert!(
        legacy["error"].as_str().unwrap().contains("routes:"),
        "{out}"
    );
}

#[test]
fn flow_variables_and_templating_can_be_set_from_the_command_line() {
    let dir = scratch("vars-cli");
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        "id: v\nparameters:\n  vars_init:\n    region: { required: true }\nnodes:\n  a:\n    component.exec: { component: echo, input: { r: \"{{vars.region}}\", m: \"{{entry.missing}}\" } }\n",
    )
    .unwrap();
    let path = flow.to_str().unwrap();
    let out = host_shim(&["run", path, "--var", "region=eu", "-q"]);
    assert_eq!(out.code, 1, "strict by default: {out}");
    assert!(
        out.stderr.contains("missing variable `entry.missing`"),
        "{out}"
    );
    let out = host_shim(&[
        "run",
        path,
        "--var",
        "region={\"zone\": 2}",
        "--templating",
        "lenient",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), json!({"r": {"zone": 2}, "m": null}));
    let out = host_shim(&["run", path, "--var", "=x", "-q"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("expected NAME=VALUE"), "{out}");
}
