//! Composition: gating at composition time, and the composed flows of the
//! portability corpus run on three engines with byte-identical results:
//! Wasmtime (host-shim), V8 (jco + preview2-shim) and wasmtime-py.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Outcome, built_component, host_shim, host_shim_env, scratch, workspace};

/// Composes `flow` into `out`; panics with the outcome unless it worked.
fn compose(flow: &str, out: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["compose", flow, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    host_shim(&args)
}

/// The composed component's imports, read back with Wasmtime.
fn imports_of(app: &Path) -> Vec<String> {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::from_file(&engine, app).unwrap();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// A probe flow next to a copy of `state-probe.wasm`, with an optional manifest.
fn probe_flow(name: &str, manifest: Option<serde_json::Value>) -> PathBuf {
    let dir = scratch(name);
    std::fs::copy(built_component("state-probe"), dir.join("state-probe.wasm")).unwrap();
    if let Some(m) = manifest {
        std::fs::write(dir.join("state-probe.manifest.json"), m.to_string()).unwrap();
    }
    let flow = dir.join("flow.yaml");
    std::fs::write(
        &flow,
        "id: probe\nnodes:\n  w:\n    component.exec: { component: ./state-probe.wasm, operation: write, input: { key: k, bytes: [1, 2] } }\n  r:\n    component.exec: { component: ./state-probe.wasm, operation: read, input: { key: k } }\n  all:\n    echo: { w: \"{{node.w}}\", r: \"{{node.r}}\" }\n",
    )
    .unwrap();
    flow
}

const FULL: fn() -> serde_json::Value = || json!({"id": "tests.probe", "capabilities": {"host": {"state": {"read": true, "write": true, "delete": true}}}});

#[test]
fn an_unapproved_state_component_is_refused_at_composition() {
    let flow = probe_flow("compose-unapproved", None);
    let app = flow.with_file_name("app.wasm");
    let out = compose(flow.to_str().unwrap(), &app, &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("component `./state-probe.wasm` imports `greentic:state/state-store@1.1.0` but may not use state: it has no manifest"),
        "{out}"
    );
    assert!(!app.exists(), "nothing may be written");

    // The profile can refuse what the manifest declares.
    let flow = probe_flow("compose-profile", Some(FULL()));
    let out = compose(flow.to_str().unwrap(), &app, &["--profile", "no-state"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("profile `no-state` does not allow state for `tests.probe`"),
        "{out}"
    );
}

#[test]
fn with_deny_the_app_runs_and_the_node_is_refused() {
    let flow = probe_flow("compose-deny", None);
    let app = flow.with_file_name("app.wasm");
    let out = compose(flow.to_str().unwrap(), &app, &["--deny-unapproved", "-q"]);
    assert_eq!(out.code, 0, "{out}");
    let imports = imports_of(&app);
    assert!(
        !imports.iter().any(|i| i.starts_with("greentic:state/")),
        "state leaked into {imports:?}"
    );
    let run = host_shim(&[
        "run",
        flow.to_str().unwrap(),
        "--composed",
        app.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let o = run.json();
    assert_eq!(o["w"]["ok"], json!(false), "{o}");
    assert_eq!(o["w"]["code"], json!("permission-denied"), "{o}");
    assert_eq!(o["r"]["code"], json!("permission-denied"), "{o}");
}

#[test]
fn state_is_an_import_only_when_an_approved_component_needs_it() {
    let dir = scratch("compose-imports");
    // No component imports state: no state import, whatever the options.
    let app = dir.join("hello.wasm");
    assert_eq!(compose("examples/hello/flow.yaml", &app, &["-q"]).code, 0);
    assert!(
        !imports_of(&app)
            .iter()
            .any(|i| i.starts_with("greentic:state/"))
    );

    // Approved, default wiring: one state import for the embedding host.
    let app = dir.join("counter-import.wasm");
    assert_eq!(compose("examples/counter/flow.yaml", &app, &["-q"]).code, 0);
    let imports = imports_of(&app);
    assert!(
        imports.contains(&"greentic:state/state-store@1.0.0".to_string()),
        "{imports:?}"
    );
    // host-shim provides it: the count persists on the file backend across processes.
    let state = format!("file:{}", dir.join("s.redb").display());
    for expected in [1, 2] {
        let out = host_shim(&[
            "run",
            "examples/counter/flow.yaml",
            "--composed",
            app.to_str().unwrap(),
            "-q",
            "--state",
            &state,
        ]);
        assert_eq!(out.json()["count"], json!(expected), "{out}");
    }

    // Approved, in-composition provider: no state import at all.
    let app = dir.join("counter-memory.wasm");
    assert_eq!(
        compose(
            "examples/counter/flow.yaml",
            &app,
            &["-q", "--state-provider", "memory"]
        )
        .code,
        0
    );
    assert!(
        !imports_of(&app)
            .iter()
            .any(|i| i.starts_with("greentic:state/"))
    );
    // Every remaining import is WASI or carries only types.
    for import in imports_of(&app) {
        assert!(
            import.starts_with("wasi:")
                || [
                    "greentic:types-core/core@0.6.0",
                    "greentic:component/node@0.6.0",
                    "greentic:interfaces-types/types@0.1.0"
                ]
                .contains(&import.as_str()),
            "unexpected import {import}"
        );
    }
}

#[test]
fn partial_grants_cannot_be_composed() {
    let flow = probe_flow(
        "compose-partial",
        Some(json!({"id": "tests.probe", "capabilities": {"host": {"state": {"read": true}}}})),
    );
    let out = compose(
        flow.to_str().unwrap(),
        &flow.with_file_name("app.wasm"),
        &[],
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("is granted only part of the state store"),
        "{out}"
    );
}

#[test]
fn a_flow_that_does_not_load_is_not_composed() {
    let out = compose(
        "tests/flows/unknown-route/flow.yaml",
        &scratch("compose-bad").join("app.wasm"),
        &[],
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("routing entry 0 goes to unknown node `nowhere`"),
        "{out}"
    );
}

/// One flow of the portability corpus.
struct Case {
    flow: &'static str,
    input: Option<&'static str>,
    repeat: u32,
    /// Environment of the three engines' processes (secrets).
    env: &'static [(&'static str, &'static str)],
}

const CORPUS: &[Case] = &[
    Case {
        flow: "examples/hello/flow.yaml",
        input: Some("examples/hello/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "examples/seed-001/flow.yaml",
        input: Some("examples/seed-001/input.json"),
        repeat: 1,
        env: &[],
    },
    // State with the in-composition provider, across calls of one instance.
    Case {
        flow: "examples/counter/flow.yaml",
        input: None,
        repeat: 3,
        env: &[],
    },
    Case {
        flow: "tests/flows/typed-insertion/flow.yaml",
        input: Some("tests/flows/typed-insertion/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/string-templating/flow.yaml",
        input: Some("tests/flows/string-templating/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/routing-branch/flow.yaml",
        input: Some("tests/flows/routing-branch/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/loop/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/lenient/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/seed-001-unquoted/flow.yaml",
        input: Some("tests/flows/seed-001-unquoted/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/node-error/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/not-ok/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/bad-cbor/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/missing-variable/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/bad-condition/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/step-limit/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    // The ecosystem forms: context roots, native nodes, error routes, sidecars,
    // more components than the old 8 slots, and a component that logs.
    Case {
        flow: "tests/flows/generated-v2/flow.yaml",
        input: Some("tests/flows/generated-v2/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/context-roots/flow.yaml",
        input: Some("tests/flows/context-roots/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/native-emit/flow.yaml",
        input: Some("tests/flows/native-emit/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/native-state/flow.yaml",
        input: Some("tests/flows/native-state/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/error-route/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/condition-forms/flow.yaml",
        input: Some("tests/flows/condition-forms/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/component-exec-spellings/flow.yaml",
        input: Some("tests/flows/component-exec-spellings/input.json"),
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/many-components/flow.yaml",
        input: None,
        repeat: 1,
        env: &[],
    },
    Case {
        flow: "tests/flows/component-logs/flow.yaml",
        input: Some("tests/flows/component-logs/input.json"),
        repeat: 1,
        env: &[],
    },
    // Every other node ABI through its adapter part; component-runtime state
    // lasts for one run, not across the repeats.
    Case {
        flow: "tests/flows/adapted-abis/flow.yaml",
        input: Some("tests/flows/adapted-abis/input.json"),
        repeat: 2,
        env: &[],
    },
    // A run that waits for the next message: the same waiting record everywhere.
    Case {
        flow: "tests/flows/session-wait/flow.yaml",
        input: Some("tests/flows/session-wait/input.json"),
        repeat: 1,
        env: &[],
    },
    // Secrets through the app's import: each engine's host reads
    // `GREENTIC_SECRET_<KEY>` (tests/portability/secrets.mjs, run.py).
    Case {
        flow: "tests/flows/secret-reader/flow.yaml",
        input: None,
        repeat: 1,
        env: &[("GREENTIC_SECRET_API_TOKEN", "open-sesame")],
    },
];

fn portability_dir() -> PathBuf {
    workspace().join("tests/portability")
}

/// The Python with `wasmtime` 50 (`tests/run` makes `target/portability-venv`).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GREENTIC_PYTHON") {
        return PathBuf::from(p);
    }
    workspace().join("target/portability-venv/bin/python")
}

fn engine_output(mut cmd: Command, engine: &str) -> String {
    let out = cmd.current_dir(workspace()).output().unwrap_or_else(|e| {
        panic!("{engine} did not start ({e}); run tests/run to set up jco and wasmtime-py")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() || stdout.contains("{\"error\":"),
        "{engine} failed without an error record:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn composed_flows_give_identical_results_on_three_engines() {
    let jco = portability_dir().join("node_modules/.bin/jco");
    assert!(
        jco.is_file(),
        "jco is not installed: run tests/run (npm ci in tests/portability)"
    );
    assert!(
        python().is_file(),
        "wasmtime-py is not installed: run tests/run (or set GREENTIC_PYTHON)"
    );
    let out_dir = portability_dir().join(".out");
    let apps = scratch("portability");
    let mut report = Vec::new();
    for (i, case) in CORPUS.iter().enumerate() {
        let app = apps.join(format!("app{i}.wasm"));
        let composed = compose(case.flow, &app, &["-q", "--state-provider", "memory"]);
        assert_eq!(composed.code, 0, "{}: {composed}", case.flow);
        let input = case.input.unwrap_or("-");
        let repeat = case.repeat.to_string();

        let input_arg = case.input.map(|i| format!("@{i}"));
        let mut args = vec![
            "run",
            case.flow,
            "--composed",
            app.to_str().unwrap(),
            "-q",
            "--json-errors",
            "--repeat",
            &repeat,
        ];
        if let Some(input_arg) = &input_arg {
            args.extend(["--input", input_arg.as_str()]);
        }
        let wasmtime = host_shim_env(&args, case.env).stdout + "\n";

        let mut py = Command::new(python());
        py.envs(case.env.iter().copied());
        py.arg(portability_dir().join("run.py")).args([
            app.to_str().unwrap(),
            case.flow,
            input,
            &repeat,
        ]);
        let wasmtime_py = engine_output(py, "wasmtime-py");

        let js_dir = out_dir.join(format!("app{i}"));
        let secrets_map = format!(
            "greentic:secrets-store/secrets-store@1.0.0=file://{}",
            portability_dir().join("secrets.mjs").display()
        );
        let status = Command::new(&jco)
            .args([
                "transpile",
                app.to_str().unwrap(),
                "-o",
                js_dir.to_str().unwrap(),
                "--name",
                "app",
                "-q",
                "--map",
                &secrets_map,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "jco transpile failed for {}", case.flow);
        let mut node = Command::new("node");
        node.envs(case.env.iter().copied());
        node.arg(portability_dir().join("run.mjs")).args([
            js_dir.to_str().unwrap(),
            case.flow,
            input,
            &repeat,
        ]);
        let v8 = engine_output(node, "node");

        // The same flow, baked into the app: `greentic:runner/app` runs it
        // without being given the YAML.
        let mut py = Command::new(python());
        py.envs(case.env.iter().copied());
        py.arg(portability_dir().join("run.py")).args([
            app.to_str().unwrap(),
            "--app",
            input,
            &repeat,
        ]);
        let wasmtime_py_baked = engine_output(py, "wasmtime-py");
        let mut node = Command::new("node");
        node.envs(case.env.iter().copied());
        node.arg(portability_dir().join("run.mjs")).args([
            js_dir.to_str().unwrap(),
            "--app",
            input,
            &repeat,
        ]);
        let v8_baked = engine_output(node, "node");
        assert_eq!(
            wasmtime, wasmtime_py_baked,
            "{}: Wasmtime vs wasmtime-py, baked flow",
            case.flow
        );
        assert_eq!(
            wasmtime, v8_baked,
            "{}: Wasmtime vs V8, baked flow",
            case.flow
        );

        assert_eq!(
            wasmtime, wasmtime_py,
            "{}: Wasmtime vs wasmtime-py",
            case.flow
        );
        assert_eq!(wasmtime, v8, "{}: Wasmtime vs V8", case.flow);
        assert_eq!(
            wasmtime.lines().count(),
            case.repeat as usize,
            "{}: {wasmtime}",
            case.flow
        );
        report.push((case.flow, wasmtime));
    }
    // The outputs are the flows' real results, not three identical failures.
    let by_flow = |flow: &str| report.iter().find(|(f, _)| *f == flow).unwrap().1.clone();
    assert!(
        by_flow("examples/hello/flow.yaml").contains("\"reply\":\"Welcome back, Ada Lovelace!\"")
    );
    let counts: Vec<serde_json::Value> = by_flow("examples/counter/flow.yaml")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].clone())
        .collect();
    assert_eq!(counts, vec![json!(1), json!(2), json!(3)]);
    assert!(
        by_flow("tests/flows/node-error/flow.yaml").starts_with("{\"error\":{\"kind\":\"node\"")
    );
    let mut compared = 0;
    for (flow, output) in &report {
        // Each composed run agrees with the golden result of running the
        // flow under host-shim (every run of a repeated case).
        let golden = workspace().join(flow).with_file_name("expected.json");
        if golden.is_file() && !flow.starts_with("examples/") {
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
            for line in output.lines() {
                let got: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(
                    got,
                    expected,
                    "{flow}: composed run vs {}",
                    golden.display()
                );
            }
            compared += 1;
        }
    }
    // The goldens are found (paths are the workspace's, not the test's cwd).
    assert_eq!(compared, 18, "cases compared with their golden file");
}

#[test]
fn flow_state_and_called_flows_are_composed_and_gated() {
    // The golden flows use state.get/state.set and flow.call/flow.goto.
    let dir = scratch("compose-flow-state");
    let app = dir.join("state.wasm");
    let out = compose("tests/flows/native-state/flow.yaml", &app, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        imports_of(&app)
            .iter()
            .any(|i| i.starts_with("greentic:state/state-store@")),
        "an approved flow's state is the app's import"
    );
    let run = host_shim(&[
        "run",
        "tests/flows/native-state/flow.yaml",
        "--composed",
        app.to_str().unwrap(),
        "--input",
        "{\"user\": \"ada\"}",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["after"], json!({"visits": 1, "name": "ada"}));

    // Refused by the profile; with --deny-unapproved the app composes without a
    // state import and the node fails at run time.
    let refused = compose(
        "tests/flows/native-state/flow.yaml",
        &dir.join("refused.wasm"),
        &["--profile", "no-state"],
    );
    assert_eq!(refused.code, 2, "{refused}");
    assert!(refused.stderr.contains("flow:native_state"), "{refused}");
    let denied_app = dir.join("denied.wasm");
    let denied = compose(
        "tests/flows/native-state/flow.yaml",
        &denied_app,
        &["--profile", "no-state", "--deny-unapproved"],
    );
    assert_eq!(denied.code, 0, "{denied}");
    assert!(
        !imports_of(&denied_app)
            .iter()
            .any(|i| i.starts_with("greentic:state/"))
    );
    let run = host_shim(&[
        "run",
        "tests/flows/native-state/flow.yaml",
        "--composed",
        denied_app.to_str().unwrap(),
        "--input",
        "{\"user\": \"ada\"}",
        "-q",
    ]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("node `before` (state.get)"), "{run}");

    // A flow that uses no state gets no state import from the runner either.
    let plain = dir.join("plain.wasm");
    assert_eq!(compose("examples/hello/flow.yaml", &plain, &[]).code, 0);
    assert!(
        !imports_of(&plain)
            .iter()
            .any(|i| i.starts_with("greentic:state/"))
    );

    // Called flows' components are composed in, and the caller passes the library.
    let calls = dir.join("calls.wasm");
    let out = compose("tests/flows/flow-call/flow.yaml", &calls, &[]);
    assert_eq!(out.code, 0, "{out}");
    let run = host_shim(&[
        "run",
        "tests/flows/flow-call/flow.yaml",
        "--composed",
        calls.to_str().unwrap(),
        "--input",
        "@tests/flows/flow-call/input.json",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json(), json!({"queued": "refunds"}));
}

#[test]
fn capabilities_are_gated_at_composition() {
    let dir = scratch("compose-capabilities");
    // Logging components get the in-app stderr logger: the app imports no telemetry.
    let logs = dir.join("logs.wasm");
    let out = compose("tests/flows/component-logs/flow.yaml", &logs, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("logs: stderr part"), "{out}");
    assert!(
        !imports_of(&logs)
            .iter()
            .any(|i| i.starts_with("greentic:telemetry/"))
    );
    let run = host_shim(&[
        "run",
        "tests/flows/component-logs/flow.yaml",
        "--composed",
        logs.to_str().unwrap(),
        "--input",
        "@tests/flows/component-logs/input.json",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("[telemetry] component_logs/work info working on invoices"),
        "{run}"
    );
    // ... or the app's own import, which host-shim provides.
    let imported = dir.join("logs-import.wasm");
    let out = compose(
        "tests/flows/component-logs/flow.yaml",
        &imported,
        &["--telemetry", "import"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        imports_of(&imported)
            .iter()
            .any(|i| i == "greentic:telemetry/logger-api@1.0.0")
    );
    let run = host_shim(&[
        "run",
        "tests/flows/component-logs/flow.yaml",
        "--composed",
        imported.to_str().unwrap(),
        "--input",
        "@tests/flows/component-logs/input.json",
        "-v",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("working on invoices"), "{run}");

    // An approved secrets reader keeps its import for the host; host-shim
    // provides it with the keys approved components declare.
    let flow = dir.join("secret.yaml");
    std::fs::write(
        &flow,
        "id: s\nnodes:\n  a:\n    component.exec: { component: secret-reader, input: { key: API_TOKEN, expect: v } }\n  b:\n    component.exec: { component: secret-reader, input: { key: OTHER } }\n  all:\n    echo: { a: \"{{node.a}}\", b: \"{{node.b}}\" }\n",
    )
    .unwrap();
    let app = dir.join("secret.wasm");
    let out = compose(flow.to_str().unwrap(), &app, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        imports_of(&app)
            .iter()
            .any(|i| i.starts_with("greentic:secrets-store/"))
    );
    let run = host_shim(&[
        "run",
        flow.to_str().unwrap(),
        "--composed",
        app.to_str().unwrap(),
        "--secret",
        "API_TOKEN=v",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["a"]["matches"], json!(true), "{run}");
    assert!(
        run.json()["b"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{run}"
    );

    // Unapproved secrets or HTTP refuse the composition, naming component and reason.
    std::fs::copy(built_component("secret-reader"), dir.join("bare.wasm")).unwrap();
    let bare = dir.join("bare.yaml");
    std::fs::write(&bare, "id: b\nnodes:\n  a:\n    component.exec: { component: ./bare.wasm, input: { key: API_TOKEN } }\n").unwrap();
    let out = compose(bare.to_str().unwrap(), &dir.join("bare-app.wasm"), &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("component `./bare.wasm` imports `greentic:secrets-store/secrets-store@1.0.0` but may not use secrets: it has no manifest"), "{out}");
    let http = dir.join("http.yaml");
    std::fs::write(&http, "id: h\nnodes:\n  a:\n    component.exec: { component: http-fetch, input: { url: \"http://127.0.0.1:9/\" } }\n").unwrap();
    let out = compose(http.to_str().unwrap(), &dir.join("http-app.wasm"), &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("may not use outbound HTTP"), "{out}");
    let out = compose(
        http.to_str().unwrap(),
        &dir.join("http-app.wasm"),
        &["--allow-host", "127.0.0.1:*"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(!dir.join("bare-app.wasm").exists());

    // With --deny-unapproved they compose with the refusing part inside the
    // app: no secrets or HTTP import is left, and each call is refused.
    let denied = dir.join("denied.yaml");
    std::fs::write(&denied, "id: d\nnodes:\n  a:\n    component.exec: { component: ./bare.wasm, input: { key: API_TOKEN } }\n    routing: [{ to: b }]\n  b:\n    component.exec: { component: http-fetch, input: { url: \"http://127.0.0.1:9/\" } }\n    routing: [{ to: all }]\n  all:\n    echo: { a: \"{{node.a}}\", b: \"{{node.b}}\" }\n").unwrap();
    let app = dir.join("denied.wasm");
    let out = compose(denied.to_str().unwrap(), &app, &["--deny-unapproved"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("refused: greentic:secrets-store/secrets-store@1.0.0"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("refused: greentic:http/http-client@1.1.0"),
        "{out}"
    );
    let imports = imports_of(&app);
    assert!(
        !imports
            .iter()
            .any(|i| i.starts_with("greentic:secrets-store/") || i.starts_with("greentic:http/")),
        "{imports:?}"
    );
    let run = host_shim(&[
        "run",
        denied.to_str().unwrap(),
        "--composed",
        app.to_str().unwrap(),
        "--secret",
        "API_TOKEN=v",
        "--allow-host",
        "127.0.0.1:*",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.json()["a"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{run}"
    );
    assert_eq!(run.json()["b"]["error"]["code"], json!("denied"), "{run}");
}

/// A loopback server giving `count` fixed answers (no date header, so two
/// engines' outputs can be compared byte for byte).
fn fixed_http_server(count: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-served-by: fixed\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

#[test]
fn composed_outbound_http_runs_on_wasmtime_and_wasmtime_py() {
    // The approved http-fetch keeps its `greentic:http/http-client@1.1.0`
    // import; host-shim and the wasmtime-py harness provide it, each letting
    // components reach only the hosts it allows. (jco: no synchronous
    // outbound HTTP for a host import in Node, so not wired there.)
    let dir = scratch("compose-http");
    let flow = dir.join("fetch.yaml");
    std::fs::write(
        &flow,
        "id: fetch\nnodes:\n  get:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\" } }\n",
    )
    .unwrap();
    let app = dir.join("fetch.wasm");
    let out = compose(
        flow.to_str().unwrap(),
        &app,
        &["--allow-host", "127.0.0.1:*", "-q"],
    );
    assert_eq!(out.code, 0, "{out}");
    let port = fixed_http_server(2);
    let input = dir.join("input.json");
    std::fs::write(&input, format!(r#"{{"url": "http://127.0.0.1:{port}/x"}}"#)).unwrap();
    let wasmtime = host_shim(&[
        "run",
        flow.to_str().unwrap(),
        "--composed",
        app.to_str().unwrap(),
        "--input",
        &format!("@{}", input.display()),
        "--allow-host",
        "127.0.0.1:*",
        "-q",
    ]);
    assert_eq!(wasmtime.code, 0, "{wasmtime}");
    assert_eq!(wasmtime.json()["body"], json!("hello"), "{wasmtime}");
    let mut py = Command::new(python());
    py.arg(portability_dir().join("run.py"))
        .args([
            app.to_str().unwrap(),
            flow.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .env("GREENTIC_HTTP_ALLOW", "127.0.0.1:*");
    let py_out = engine_output(py, "wasmtime-py");
    assert_eq!(py_out.trim(), wasmtime.stdout.trim(), "wasmtime-py differs");
    // A host it does not allow is refused by the harness, as by host-shim.
    let mut refused = Command::new(python());
    refused.arg(portability_dir().join("run.py")).args([
        app.to_str().unwrap(),
        flow.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let refused = engine_output(refused, "wasmtime-py");
    assert!(refused.contains(r#""code":"denied""#), "{refused}");
}
