//! The playground: built with `playground/build`, served by a plain static
//! file server, driven in headless Chromium (Debian's `chromium` through
//! playwright-core, `playground/test/drive.mjs`); what the page shows is
//! compared with `host-shim run` on the same flows and inputs.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

struct StaticServer(Child);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` over `dir` on a free loopback port.
fn static_server(dir: &Path) -> (StaticServer, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "-b",
            "127.0.0.1",
            "-d",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while try_http("GET", &format!("{base}/index.html"), "", &[]).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the static server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (StaticServer(child), base)
}

const TEMPLATE_ERROR: &str = "id: bad\nnodes:\n  first:\n    echo:\n      fine: \"{{entry.x}}\"\n  second:\n    echo:\n      broken: \"{{#if entry.x}}yes\"\n";
const ENDLESS: &str = "id: spin\nmax_steps: 100000000\nnodes:\n  a:\n    echo: { n: 1 }\n    routing: [{ to: b }]\n  b:\n    echo: { n: 2 }\n    routing: [{ to: a }]\n";

#[test]
fn the_playground_runs_flows_in_chromium_as_host_shim_does() {
    let dir = scratch("playground");
    let site = dir.join("site");
    let built = Command::new(workspace().join("playground/build"))
        .arg(&site)
        .env("HOST_SHIM", env!("CARGO_BIN_EXE_host-shim"))
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "playground/build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (_server, base) = static_server(&site);
    let mut drive = Command::new("node")
        .arg(workspace().join("playground/test/drive.mjs"))
        .arg(&base)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    use std::io::Write;
    drive
        .stdin
        .take()
        .unwrap()
        .write_all(
            json!({"templateError": TEMPLATE_ERROR, "endless": ENDLESS})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let out = drive.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the browser driver failed (tests/run installs chromium and playwright-core): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.get("pageErrors").is_none(), "{report}");

    // Each example's output is byte for byte what host-shim prints.
    let run = |args: &[&str]| {
        let out = host_shim(args);
        assert_eq!(out.code, 0, "{out}");
        out.stdout
    };
    assert_eq!(
        report["examples"]["hello"],
        run(&[
            "run",
            "examples/hello/flow.yaml",
            "--input",
            "@examples/hello/input.json",
            "-q"
        ])
        .as_str()
    );
    assert_eq!(
        report["examples"]["seed-001"],
        run(&[
            "run",
            "examples/seed-001/flow.yaml",
            "--input",
            "@examples/seed-001/input.json",
            "-q"
        ])
        .as_str()
    );
    // The page's trace has host-shim's `--trace` records, but the times.
    let traced = host_shim(&[
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
        "--trace",
        "-q",
    ]);
    assert_eq!(traced.code, 0, "{traced}");
    let without_time = |mut v: Value| {
        assert!(v["micros"].as_u64().is_some(), "{v}");
        v.as_object_mut().unwrap().remove("micros");
        v
    };
    let expected: Vec<Value> = traced
        .stderr
        .lines()
        .filter(|l| l.starts_with("{\"trace\""))
        .map(|l| without_time(serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(expected.len(), 3, "{traced}");
    let page_trace: Vec<Value> = report["trace"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(without_time)
        .collect();
    assert_eq!(page_trace, expected);
    // The counter counts in the page's state store as in a file store.
    let store = format!("file:{}", dir.join("counter.redb").display());
    let counted: Vec<String> = (0..2)
        .map(|_| run(&["run", "examples/counter/flow.yaml", "--state", &store, "-q"]))
        .collect();
    assert_eq!(report["examples"]["counter"], json!(counted));
    // The conversation: the same waiting record (but the session id host-shim
    // adds), then the same greeting.
    let store = format!("file:{}", dir.join("ask.redb").display());
    let ask = "playground/examples/ask.ygtc";
    let mut waiting: Value = serde_json::from_str(&run(&[
        "run",
        ask,
        "--session",
        "s",
        "--state",
        &store,
        "-q",
    ]))
    .unwrap();
    waiting.as_object_mut().unwrap().remove("session");
    let page_waiting: Value =
        serde_json::from_str(report["examples"]["ask"][0].as_str().unwrap()).unwrap();
    assert_eq!(page_waiting, waiting);
    let answered = run(&[
        "run",
        ask,
        "--session",
        "s",
        "--state",
        &store,
        "--input",
        r#"{"name": "Ada"}"#,
        "-q",
    ]);
    assert_eq!(report["examples"]["ask"][1], answered.as_str());

    // A template error: the record host-shim gives, placed at its line.
    let bad = dir.join("bad.ygtc");
    std::fs::write(&bad, TEMPLATE_ERROR).unwrap();
    let failed = host_shim(&[
        "run",
        bad.to_str().unwrap(),
        "--json-errors",
        "-q",
        "--input",
        "{}",
    ]);
    assert_eq!(failed.code, 2, "{failed}");
    let mut expected: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(
        expected["error"]["line"], 8,
        "the broken template's line: {expected}"
    );
    let page_error: Value =
        serde_json::from_str(report["templateError"]["output"].as_str().unwrap()).unwrap();
    // The page names the flow `flow.ygtc`; host-shim the file.
    let message = expected["error"]["message"]
        .as_str()
        .unwrap()
        .replace(bad.to_str().unwrap(), "flow.ygtc");
    expected["error"]["message"] = json!(message);
    assert_eq!(page_error, expected);
    let column = expected["error"]["column"].as_u64().unwrap();
    assert_eq!(report["templateError"]["markedLines"], json!([8]));
    let location = report["templateError"]["location"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("line 8, column {column} (node second)")),
        "{location}"
    );

    // An endless flow is stopped by the page's deadline, and the page
    // goes on working.
    assert_eq!(report["endless"]["status"], "stopped", "{report}");
    assert!(
        report["endless"]["output"]
            .as_str()
            .unwrap()
            .starts_with("stopped: no answer within 2 s")
    );
    assert_eq!(report["afterEndless"], report["examples"]["hello"]);
    // Nothing is fetched from anywhere but the page's own server.
    let requests = report["requests"].as_array().unwrap();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.as_str().unwrap().starts_with(&base)),
        "{requests:?}"
    );
}
