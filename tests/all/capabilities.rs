//! Host capabilities for node components — telemetry, secrets, outbound HTTP,
//! pack assets — each gated by the manifest and the profile, through real
//! components of this workspace and, for HTTP, a real server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::{
    built_component, expect_failure, host_shim, host_shim_env, run_flow, scratch,
};

/// A flow file in a scratch directory.
fn flow(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("flow.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn component_logs_become_tagged_events_shown_with_v() {
    let dir = scratch("cap-telemetry");
    let f = flow(
        &dir,
        "id: logs\nnodes:\n  say:\n    component.exec: { component: logger, input: { message: \"hello {{in.who}}\", level: info } }\n",
    );
    let quiet = run_flow(&f, &["--input", "{\"who\": \"ada\"}"]);
    assert_eq!(quiet.code, 0, "{quiet}");
    assert_eq!(
        quiet.json()["logged"],
        json!(true),
        "the import is linked for every component"
    );
    assert!(!quiet.stderr.contains("hello ada"), "{quiet}");
    let shown = host_shim(&[
        "run",
        f.to_str().unwrap(),
        "--input",
        "{\"who\": \"ada\"}",
        "-v",
    ]);
    assert_eq!(shown.code, 0, "{shown}");
    let line = shown
        .stderr
        .lines()
        .find(|l| l.contains("hello ada"))
        .unwrap_or_else(|| panic!("no log line: {shown}"));
    for tag in [
        "flow=logs",
        "node=say",
        "component=logger",
        "tenant=default",
    ] {
        assert!(line.contains(tag), "{tag} missing in {line:?}");
    }
    // The manifest names another world than the binary exports: a warning, the binary wins.
    assert!(shown.stderr.contains("using the binary's"), "{shown}");
}

#[test]
fn trace_lines_count_each_node_calls_log_lines() {
    let dir = scratch("cap-trace");
    let f = flow(
        &dir,
        "id: traced\nnodes:\n  say:\n    component.exec: { component: logger, input: { message: \"one\" } }\n    routing: [{ to: again }]\n  again:\n    component.exec: { component: logger, input: { message: \"two\" } }\n    routing: [{ to: quiet }]\n  quiet:\n    component.exec: { component: echo, input: { done: true } }\n",
    );
    let out = run_flow(&f, &["--trace"]);
    assert_eq!(out.code, 0, "{out}");
    let traces: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("{\"trace\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, u64, String)> = traces
        .iter()
        .map(|t| {
            (
                t["node"].as_str().unwrap().to_string(),
                t["component"].as_str().unwrap().to_string(),
                t["log_lines"].as_u64().unwrap(),
                t["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("say".into(), "logger".into(), 1, "ok".into()),
            ("again".into(), "logger".into(), 1, "ok".into()),
            ("quiet".into(), "echo".into(), 0, "ok".into()),
        ],
        "{out}"
    );
    assert!(
        traces
            .iter()
            .all(|t| t["flow"] == "traced" && t["micros"].is_u64())
    );
    // Without --trace, nothing of it.
    let plain = run_flow(&f, &[]);
    assert!(!plain.stderr.contains("\"trace\""), "{plain}");
}

const SECRET_FLOW: &str = r#"
id: secrets
nodes:
  declared:
    component.exec: { component: secret-reader, input: { key: API_TOKEN, expect: "{{in.expect}}" } }
  second:
    component.exec: { component: secret-reader, input: { key: SECOND_TOKEN } }
  undeclared:
    component.exec: { component: secret-reader, input: { key: DATABASE_URL } }
  all:
    component.exec: { component: echo, input: { declared: "{{node.declared}}", second: "{{node.second}}", undeclared: "{{node.undeclared}}" } }
"#;

#[test]
fn secrets_reach_only_declared_keys_and_are_never_printed() {
    let dir = scratch("cap-secrets");
    let f = flow(&dir, SECRET_FLOW);
    let path = f.to_str().unwrap();
    let value = "s3cret-value-91";
    let out = host_shim_env(
        &[
            "run",
            path,
            "--input",
            &format!("{{\"expect\": \"{value}\"}}"),
            "--secret",
            &format!("API_TOKEN={value}"),
            "-vv",
        ],
        &[
            ("GREENTIC_SECRET_DATABASE_URL", "postgres://never"),
            ("RUST_LOG", "trace"),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let got = out.json();
    assert_eq!(
        got["declared"],
        json!({"key": "API_TOKEN", "found": true, "length": value.len(), "matches": true})
    );
    assert_eq!(
        got["second"],
        json!({"key": "SECOND_TOKEN", "found": false})
    );
    assert!(
        got["undeclared"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{out}"
    );
    // Only the test's own input carries the value; the host never prints it.
    let printed =
        format!("{}{}", out.stdout, out.stderr).replace(&format!("\"expect\": \"{value}\""), "");
    assert!(!printed.contains("postgres://never"), "{out}");
    assert!(
        !out.stderr.contains(value),
        "a secret value reached stderr: {out}"
    );

    // From the environment and from a file; tenant-scoped entries win for their tenant.
    let env = host_shim_env(
        &["run", path, "--input", "{\"expect\": \"e\"}", "-q"],
        &[("GREENTIC_SECRET_API_TOKEN", "e")],
    );
    assert_eq!(env.json()["declared"]["matches"], json!(true), "{env}");
    let file = dir.join("secrets.env");
    std::fs::write(&file, "API_TOKEN=everyone\nacme/API_TOKEN=acme-only\n").unwrap();
    let for_acme = run_flow(
        &f,
        &[
            "--secrets-file",
            file.to_str().unwrap(),
            "--tenant",
            "acme",
            "--input",
            "{\"expect\": \"acme-only\"}",
        ],
    );
    assert_eq!(
        for_acme.json()["declared"]["matches"],
        json!(true),
        "{for_acme}"
    );
    let for_other = run_flow(
        &f,
        &[
            "--secrets-file",
            file.to_str().unwrap(),
            "--tenant",
            "other",
            "--input",
            "{\"expect\": \"everyone\"}",
        ],
    );
    assert_eq!(
        for_other.json()["declared"]["matches"],
        json!(true),
        "{for_other}"
    );
}

/// A component cannot reach another tenant's secret by declaring the scoped
/// name (`acme/API_TOKEN`): the manifest is refused at load, before any node runs.
#[test]
fn a_declared_key_with_a_tenant_scope_is_refused_at_load() {
    let dir = scratch("cap-secret-scope");
    std::fs::copy(
        built_component("secret-reader"),
        dir.join("secret-reader.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.join("secret-reader.manifest.json"),
        r#"{"id": "greentic.tests.scoped-reader", "capabilities": {"host": {"secrets": {"required": ["acme/API_TOKEN"]}}}}"#,
    )
    .unwrap();
    let f = flow(
        &dir,
        "id: scoped\nnodes:\n  first:\n    component.exec: { component: logger, input: { message: must-not-appear } }\n  read:\n    component.exec: { component: ./secret-reader.wasm, input: { key: acme/API_TOKEN, expect: acme-secret } }\n",
    );
    let out = host_shim(&[
        "run",
        f.to_str().unwrap(),
        "--tenant",
        "globex",
        "--secret",
        "acme/API_TOKEN=acme-secret",
        "-v",
    ]);
    expect_failure(
        &out,
        2,
        "secret key `acme/API_TOKEN` in `capabilities.host.secrets.required` contains `/`",
    );
    assert!(out.stderr.contains("secret-reader.manifest.json"), "{out}");
    assert!(!out.stderr.contains("must-not-appear"), "a node ran: {out}");
    assert!(!out.stdout.contains("\"matches\": true"), "{out}");
}

#[test]
fn unapproved_components_are_refused_before_anything_runs() {
    let dir = scratch("cap-refused");
    // The first node would log; the refusal must come before it.
    let f = flow(
        &dir,
        "id: refused\nnodes:\n  first:\n    component.exec: { component: logger, input: { message: must-not-appear } }\n  read:\n    component.exec: { component: ./secret-reader.wasm, input: { key: API_TOKEN } }\n",
    );
    std::fs::copy(
        built_component("secret-reader"),
        dir.join("secret-reader.wasm"),
    )
    .unwrap();
    // No manifest next to this copy: no secrets.
    let out = host_shim(&["run", f.to_str().unwrap(), "-v"]);
    expect_failure(
        &out,
        2,
        "imports `greentic:secrets-store/secrets-store@1.0.0` but may not use secrets: it has no manifest",
    );
    assert!(out.stderr.contains("node `read`"), "{out}");
    assert!(!out.stderr.contains("must-not-appear"), "a node ran: {out}");
    // A profile can refuse what the manifest declares.
    let profile = dir.join("profile.json");
    std::fs::write(&profile, r#"{"name": "locked", "secrets": {"allow": []}}"#).unwrap();
    let g = flow(
        &dir,
        "id: p\nnodes:\n  read:\n    component.exec: { component: secret-reader, input: { key: API_TOKEN } }\n",
    );
    let out = run_flow(&g, &["--profile", profile.to_str().unwrap()]);
    expect_failure(
        &out,
        2,
        "profile `locked` does not allow secrets for `greentic.tests.secret-reader` (profile field `secrets.allow`)",
    );
    // check refuses the same way.
    let out = host_shim(&[
        "check",
        g.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{out}");
}

/// A loopback HTTP/1.1 server answering `count` requests: `/big` with 64 KiB,
/// `/slow` after 3 s, `/redirect-out` with a redirect to another host, anything
/// else with `hello from <path>`. Returns its port and the request lines it saw.
fn serve(count: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap_or_default();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(request_line.trim().to_string());
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            let (status, extra, payload) = match path.as_str() {
                "/big" => ("200 OK", String::new(), "x".repeat(64 * 1024)),
                "/slow" => {
                    std::thread::sleep(std::time::Duration::from_secs(3));
                    ("200 OK", String::new(), "late".into())
                }
                "/redirect-out" => (
                    "302 Found",
                    "Location: http://localhost:1/\r\n".into(),
                    String::new(),
                ),
                _ => (
                    "200 OK",
                    String::new(),
                    format!("hello from {path} ({} bytes in)", body.len()),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n{extra}\r\n{payload}",
                payload.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn http_reaches_allowed_hosts_only_within_limits() {
    let dir = scratch("cap-http");
    let (port, seen) = serve(3);
    let f = flow(
        &dir,
        "id: fetch\nnodes:\n  get:\n    component.exec: { component: http-fetch, input: { method: \"{{default in.method \\\"GET\\\"}}\", url: \"{{in.url}}\", body: \"{{default in.body \\\"\\\"}}\", timeout_ms: \"{{default in.timeout_ms 30000}}\" } }\n",
    );
    let profile = dir.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"http": {"allow": ["127.0.0.1:*"], "max_response_bytes": 1024, "timeout_ms": 1000}}"#,
    )
    .unwrap();
    let run = |input: serde_json::Value| {
        run_flow(
            &f,
            &[
                "--profile",
                profile.to_str().unwrap(),
                "--input",
                &input.to_string(),
            ],
        )
    };
    let ok = run(
        json!({"url": format!("http://127.0.0.1:{port}/hi"), "method": "POST", "body": "ping"}),
    );
    assert_eq!(ok.code, 0, "{ok}");
    assert_eq!(ok.json()["status"], json!(200));
    assert_eq!(ok.json()["body"], json!("hello from /hi (4 bytes in)"));
    // Over the response cap, and past the timeout: errors as values.
    let big = run(json!({"url": format!("http://127.0.0.1:{port}/big")}));
    assert_eq!(big.json()["error"]["code"], json!("too-large"), "{big}");
    let slow = run(json!({"url": format!("http://127.0.0.1:{port}/slow")}));
    assert_eq!(slow.json()["error"]["code"], json!("timeout"), "{slow}");
    // Another name for the same machine is another host: refused, never sent.
    let before = seen.lock().unwrap().len();
    let other = run(json!({"url": format!("http://localhost:{port}/hi")}));
    assert_eq!(other.json()["error"]["code"], json!("denied"), "{other}");
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "a refused request reached the server"
    );
    let scheme = run(json!({"url": "file:///etc/passwd"}));
    assert_eq!(
        scheme.json()["error"]["code"],
        json!("invalid-request"),
        "{scheme}"
    );
    // Without a profile that allows hosts, the component does not even start.
    let refused = run_flow(
        &f,
        &[
            "--input",
            &json!({"url": format!("http://127.0.0.1:{port}/")}).to_string(),
        ],
    );
    expect_failure(
        &refused,
        2,
        "does not allow outbound HTTP for `greentic.tests.http-fetch`",
    );
    // `--allow-host` adds to the profile.
    let (port2, _) = serve(1);
    let flag = run_flow(
        &f,
        &[
            "--allow-host",
            &format!("127.0.0.1:{port2}"),
            "--input",
            &json!({"url": format!("http://127.0.0.1:{port2}/flag")}).to_string(),
        ],
    );
    assert_eq!(flag.json()["status"], json!(200), "{flag}");
}

#[test]
fn assets_are_a_read_only_preopen() {
    let dir = scratch("cap-assets");
    std::fs::create_dir_all(dir.join("assets/cards")).unwrap();
    std::fs::write(dir.join("assets/cards/welcome.json"), "{\"title\": \"hi\"}").unwrap();
    let f = flow(
        &dir,
        "id: assets\nnodes:\n  read:\n    component.exec: { component: asset-reader, input: { path: cards/welcome.json } }\n  escape:\n    component.exec: { component: asset-reader, input: { path: ../flow.yaml } }\n  write:\n    component.exec: { component: asset-reader, operation: write, input: { path: new.txt } }\n  all:\n    component.exec: { component: echo, input: { read: \"{{node.read}}\", escape: \"{{node.escape}}\", write: \"{{node.write}}\" } }\n",
    );
    let out = run_flow(&f, &[]);
    assert_eq!(out.code, 0, "{out}");
    let got = out.json();
    assert_eq!(got["read"]["text"], json!("{\"title\": \"hi\"}"));
    assert!(
        got["escape"]["error"].is_string(),
        "left the preopen: {out}"
    );
    assert!(
        got["write"]["error"].is_string(),
        "wrote into assets: {out}"
    );
    assert!(!dir.join("assets/new.txt").exists());
    // A component whose manifest mounts nothing sees no /assets.
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::copy(built_component("asset-reader"), plain.join("reader.wasm")).unwrap();
    std::fs::create_dir_all(plain.join("assets")).unwrap();
    std::fs::write(plain.join("assets/a.txt"), "a").unwrap();
    let g = flow(
        &plain,
        "id: p\nnodes:\n  read:\n    component.exec: { component: ./reader.wasm, input: { path: a.txt } }\n",
    );
    let out = run_flow(&g, &[]);
    assert!(out.json()["error"].is_string(), "{out}");
}

/// A loopback server answering one request with `answer`; gives the request
/// it got (request line and headers, lower-cased names) through the receiver.
fn one_request(answer: String) -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let _ = stream.write_all(answer.as_bytes());
        let _ = tx.send(head);
    });
    (port, rx)
}

/// Every redirect hop is checked against the allow-list: `/redirect-out`
/// points at `localhost:1`, which is not allowed, so following it is denied
/// (nothing is sent there); without `follow` the 302 itself is the answer.
#[test]
fn a_redirect_to_a_host_not_allowed_is_refused_at_the_hop() {
    let dir = scratch("cap-http-redirect-out");
    let (port, seen) = serve(2);
    let f = flow(
        &dir,
        "id: out\nnodes:\n  get:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\", follow: \"{{in.follow}}\" } }\n",
    );
    let run_with = |follow: bool| {
        run_flow(
            &f,
            &[
                "--allow-host",
                &format!("127.0.0.1:{port}"),
                "--input",
                &json!({"url": format!("http://127.0.0.1:{port}/redirect-out"), "follow": follow})
                    .to_string(),
            ],
        )
    };
    // http-fetch answers the host's error as its output.
    let followed = run_with(true);
    assert_eq!(followed.code, 0, "{followed}");
    assert_eq!(
        followed.json(),
        json!({"error": {"code": "denied", "message": "localhost:1 is not in the profile's http.allow"}}),
        "{followed}"
    );
    let answered = run_with(false);
    assert_eq!(answered.code, 0, "{answered}");
    assert_eq!(answered.json()["status"], json!(302), "{answered}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["GET /redirect-out HTTP/1.1".to_string(); 2],
        "only the allowed host was asked"
    );
}

/// A followed redirect to another origin (here: another port) does not carry
/// the guest's credentials; other headers go on.
#[test]
fn a_redirect_to_another_origin_drops_credentials() {
    let dir = scratch("cap-http-redirect");
    let (landing, landed) = one_request(
        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nlanded".into(),
    );
    let (first, asked) = one_request(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{landing}/next\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let f = flow(
        &dir,
        "id: follow\nnodes:\n  get:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\", follow: true, headers: { authorization: \"Bearer s3cret\", cookie: \"sid=1\", x-trace: t-1 } } }\n",
    );
    let out = run_flow(
        &f,
        &[
            "--allow-host",
            "127.0.0.1:*",
            "--input",
            &json!({"url": format!("http://127.0.0.1:{first}/start")}).to_string(),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["body"], json!("landed"), "{out}");
    let asked = asked.recv().unwrap();
    assert!(asked.contains("authorization: bearer s3cret"), "{asked}");
    let landed = landed.recv().unwrap();
    assert!(landed.starts_with("get /next "), "{landed}");
    assert!(landed.contains("x-trace: t-1"), "{landed}");
    assert!(
        !landed.contains("authorization") && !landed.contains("cookie"),
        "credentials crossed to another origin: {landed}"
    );
}

/// An HTTPS server on loopback (Python's `ssl` over `http.server`), killed on
/// drop: `/ok` answers `secure`, `/down` redirects to `down_to`.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_server(cert: &Path, key: &Path, down_to: &str) -> HttpsServer {
    let handler = r#"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/down":
            self.send_response(302); self.send_header("location", args[0])
            self.send_header("content-length", "0"); self.end_headers()
        else:
            body = b"secure"
            self.send_response(200); self.send_header("content-length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
"#;
    let (child, port, _) = crate::tls::python_https(handler, cert, key, &[down_to.to_string()]);
    HttpsServer { child, port }
}

/// HTTPS is verified (an unknown CA is refused, `--http-ca` makes it known),
/// and a followed redirect never goes from https down to http.
#[test]
fn https_is_verified_against_the_trusted_cas_and_redirects_never_downgrade() {
    let dir = scratch("cap-https");
    let (ca, cert, key) = crate::tls::test_ca(&dir, "127.0.0.1", "IP:127.0.0.1");
    let (plain, _) = one_request(
        "HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nplaintext".into(),
    );
    let server = https_server(&cert, &key, &format!("http://127.0.0.1:{plain}/landed"));
    let f = flow(
        &dir,
        "id: tls\nnodes:\n  get:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\", follow: true } }\n",
    );
    let fetch = |path: &str, extra: &[&str]| {
        let input = json!({"url": format!("https://127.0.0.1:{}{path}", server.port)}).to_string();
        let mut args = vec!["--allow-host", "127.0.0.1:*", "--input", &input];
        args.extend_from_slice(extra);
        let out = run_flow(&f, &args);
        assert_eq!(out.code, 0, "{out}");
        out.json()
    };
    let ca_arg = ["--http-ca", ca.to_str().unwrap()];
    // Trusted through the operator's CA.
    assert_eq!(fetch("/ok", &ca_arg)["body"], json!("secure"));
    // `--ca-cert` trusts it besides the built-in roots.
    let extra = ["--ca-cert", ca.to_str().unwrap()];
    assert_eq!(fetch("/ok", &extra)["body"], json!("secure"));
    // The built-in roots do not know this CA: refused, not fetched.
    let unknown = fetch("/ok", &[]);
    assert_eq!(unknown["error"]["code"], json!("unavailable"), "{unknown}");
    assert!(unknown.get("body").is_none(), "{unknown}");
    // https -> http is refused, before anything is sent in the clear.
    let down = fetch("/down", &ca_arg);
    assert_eq!(down["error"]["code"], json!("denied"), "{down}");
    assert!(
        down["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no downgrade"),
        "{down}"
    );
    // A CA file that holds no certificate is a clear error at start.
    std::fs::write(dir.join("empty.pem"), "not a certificate\n").unwrap();
    let input = json!({"url": "https://127.0.0.1:1/"}).to_string();
    let out = run_flow(
        &f,
        &[
            "--http-ca",
            dir.join("empty.pem").to_str().unwrap(),
            "--input",
            &input,
        ],
    );
    expect_failure(&out, 2, "holds no PEM certificate");
}
