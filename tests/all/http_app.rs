//! `compose --http`: the composed app is a `wasi:http` server that another
//! engine runs unchanged — here `jco serve` (V8) — and answers requests with
//! the same status and bytes as `host-shim serve` running the flow itself.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{HttpReply, host_shim, http, scratch, serve, try_http, workspace};

/// `jco serve APP` on a free loopback port, killed (with the node process
/// it starts) on drop.
struct JcoServe {
    child: Child,
    base: String,
}

impl Drop for JcoServe {
    fn drop(&mut self) {
        // jco runs the server in a child node process: stop the whole group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn jco_serve(app: &Path) -> JcoServe {
    let jco = workspace().join("tests/portability/node_modules/.bin/jco");
    assert!(
        jco.is_file(),
        "jco is not installed: run tests/run (npm ci in tests/portability)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(jco)
        .args(["serve", app.to_str().unwrap(), "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .current_dir(workspace().join("tests/portability"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting jco serve");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("jco serve exited before listening")
            .unwrap();
        if line.contains("Server listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let served = JcoServe {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    // "Listening" is said before a loaded machine has the server answering:
    // wait (bounded) until it answers at all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Err(e) = try_http("GET", &format!("{}/healthz", served.base), "", &[]) {
        assert!(
            std::time::Instant::now() < deadline,
            "jco serve never answered: {e}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    served
}

/// Status, body and content type: what both servers must agree on.
fn essentials(reply: Result<HttpReply, String>) -> (u16, String, Option<String>) {
    let (status, body, headers) = reply.unwrap_or_else(|e| panic!("no response: {e}"));
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    (status, body, content_type)
}

/// Requests both servers get: (method, path, body, headers).
type Probe = (
    &'static str,
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
);

fn compare(flow: &str, probes: &[Probe]) -> Vec<(u16, String)> {
    let name = Path::new(flow).parent().unwrap().file_name().unwrap();
    let dir = scratch(&format!("http-app-{}", name.to_str().unwrap()));
    let app = dir.join("app.wasm");
    let composed = host_shim(&[
        "compose",
        flow,
        "-o",
        app.to_str().unwrap(),
        "--http",
        "--trust-tenant-headers",
        "-q",
    ]);
    assert_eq!(composed.code, 0, "{composed}");
    let served = serve(
        Path::new(flow),
        &["--addr", "127.0.0.1:0", "--trust-tenant-headers"],
    );
    let jco = jco_serve(&app);
    let mut answers = Vec::new();
    for (method, path, body, headers) in probes {
        let ours = essentials(try_http(
            method,
            &format!("{}{path}", served.base),
            body,
            headers,
        ));
        let theirs = essentials(try_http(
            method,
            &format!("{}{path}", jco.base),
            body,
            headers,
        ));
        assert_eq!(
            ours, theirs,
            "{flow}: {method} {path}: host-shim serve vs jco serve"
        );
        answers.push((ours.0, ours.1));
    }
    answers
}

#[test]
fn the_http_app_answers_like_serve_under_jco_serve() {
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let probes: Vec<Probe> = vec![
        ("POST", "/flows/hello", input.clone(), vec![]),
        (
            "POST",
            "/flows/hello",
            input,
            vec![("x-greentic-tenant", "acme")],
        ),
        // Empty body: `{}`, which this flow cannot greet (a template error).
        ("POST", "/flows/hello?trace=1", String::new(), vec![]),
        ("POST", "/flows/hello", "{not json".into(), vec![]),
        ("POST", "/flows/nope", "{}".into(), vec![]),
        ("POST", "/flows/hello", "x".repeat((1 << 20) + 1), vec![]),
        ("GET", "/healthz", String::new(), vec![]),
        ("GET", "/flows/hello", String::new(), vec![]),
    ];
    let answers = compare("examples/hello/flow.yaml", &probes);
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![200, 200, 422, 400, 404, 413, 200, 405]);
    // Real runs, and the tenant header reached the flow.
    assert!(
        answers[0].1.contains("Welcome back, Ada Lovelace!"),
        "{}",
        answers[0].1
    );
    assert!(answers[0].1.contains("(default)"), "{}", answers[0].1);
    assert!(answers[1].1.contains("(acme)"), "{}", answers[1].1);
}

#[test]
fn a_failing_flow_gets_the_same_error_and_status_from_the_http_app() {
    let probes: Vec<Probe> = vec![("POST", "/flows/node-error", "{}".into(), vec![])];
    let answers = compare("tests/flows/node-error/flow.yaml", &probes);
    assert_eq!(answers[0].0, 422);
    assert!(
        answers[0].1.starts_with("{\"error\":{\"kind\":\"node\""),
        "{}",
        answers[0].1
    );
}

#[test]
fn the_http_app_refuses_sessions_and_untrusted_tenant_headers_do_nothing() {
    let dir = scratch("http-app-sessions");
    let app = dir.join("app.wasm");
    let composed = host_shim(&[
        "compose",
        "examples/hello/flow.yaml",
        "-o",
        app.to_str().unwrap(),
        "--http",
        "--tenant",
        "fixed",
        "-q",
    ]);
    assert_eq!(composed.code, 0, "{composed}");
    let jco = jco_serve(&app);
    let url = format!("{}/flows/hello", jco.base);
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let (status, body, _) = http("POST", &url, &input, &[("x-greentic-session", "s1")]).unwrap();
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("keeps no sessions"), "{body}");
    // Without --trust-tenant-headers the baked tenant wins over the header.
    let (status, body, _) = http("POST", &url, &input, &[("x-greentic-tenant", "other")]).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("(fixed)") && !body.contains("other"),
        "{body}"
    );
}

/// One instance of a composed app run for two tenants (trusted headers,
/// in-composition state): each tenant counts on its own — the state-memory
/// part keys entries by the scope the runner entered, not one map for all.
#[test]
fn one_composed_instance_keeps_each_tenants_state_apart() {
    let dir = scratch("http-app-tenants");
    let app = dir.join("app.wasm");
    let composed = host_shim(&[
        "compose",
        "examples/counter/flow.yaml",
        "-o",
        app.to_str().unwrap(),
        "--http",
        "--trust-tenant-headers",
        "--state-provider",
        "memory",
        "-q",
    ]);
    assert_eq!(composed.code, 0, "{composed}");
    let jco = jco_serve(&app);
    let url = format!("{}/flows/counter", jco.base);
    let count = |tenant: &str| -> (u64, String) {
        let (status, body, _) = http("POST", &url, "{}", &[("x-greentic-tenant", tenant)]).unwrap();
        assert_eq!(status, 200, "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            value["count"].as_u64().unwrap_or_else(|| panic!("{body}")),
            value["tenant"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(count("acme"), (1, "acme".into()));
    assert_eq!(count("acme"), (2, "acme".into()));
    // Same instance (acme's count went on), another tenant: its own count.
    assert_eq!(count("globex"), (1, "globex".into()));
    assert_eq!(count("acme"), (3, "acme".into()));
    assert_eq!(count("globex"), (2, "globex".into()));
}
