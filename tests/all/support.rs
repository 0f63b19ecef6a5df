//! Running the `host-shim` binary from tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a `host-shim` process did.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The stdout parsed as JSON; panics with the whole outcome otherwise.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The repository root; tests run from there so paths in messages are stable.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A scratch directory private to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scratch")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `host-shim` with `args` and a compiled-component cache shared by the tests.
pub fn host_shim(args: &[&str]) -> Outcome {
    host_shim_with_cache(args, &Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"))
}

/// Runs `host-shim` with `args` and the given cache directory.
pub fn host_shim_with_cache(args: &[&str], cache: &Path) -> Outcome {
    host_shim_with(args, cache, &[])
}

/// Runs `host-shim` with `args` and extra environment variables.
pub fn host_shim_env(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    host_shim_with(
        args,
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        env,
    )
}

fn host_shim_with(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_host-shim"))
        .args(args)
        .current_dir(workspace())
        .env("GREENTIC_CACHE_DIR", cache)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("host-shim runs");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

/// A built example component, e.g. `echo`.
pub fn built_component(name: &str) -> PathBuf {
    Path::new(host_shim::BUILT_COMPONENTS_DIR).join(format!("{name}.wasm"))
}

/// Runs `host-shim run FLOW -q` with `extra` arguments.
pub fn run_flow(flow: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", flow.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    host_shim(&args)
}

/// Asserts a failed run: its exit code, nothing on stdout, and `needle` on stderr.
pub fn expect_failure(out: &Outcome, code: i32, needle: &str) {
    assert_eq!(out.code, code, "{out}");
    assert!(
        out.stdout.is_empty(),
        "a failed run must print nothing on stdout: {out}"
    );
    assert!(
        out.stderr.contains(needle),
        "stderr lacks {needle:?}: {out}"
    );
}

/// A real `redis-server` on loopback, stopped on drop; or the server named
/// by `GREENTIC_TEST_REDIS_URL`, which must start empty (the tests use fixed
/// tenants and session ids and count from zero).
pub struct Redis {
    /// The server's URL.
    pub url: String,
    child: Option<std::process::Child>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn redis() -> Redis {
    if let Ok(url) = std::env::var("GREENTIC_TEST_REDIS_URL") {
        return Redis { url, child: None };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("redis-server is needed for the Redis backend tests ({e}): install it (Debian: apt-get install redis-server) or set GREENTIC_TEST_REDIS_URL")
        });
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Redis {
        url: format!("redis://127.0.0.1:{port}/"),
        child: Some(child),
    }
}

/// A `host-shim serve` process, killed on drop.
pub struct Served {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `host-shim serve TARGET EXTRA…` (EXTRA has `--addr`, port 0 for
/// any) and waits for the line saying where it listens.
pub fn serve(target: &Path, extra: &[&str]) -> Served {
    serve_env(target, extra, &[])
}

/// [`serve`] with more environment variables.
pub fn serve_env(target: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-shim"))
        .args(["serve", target.to_str().unwrap()])
        .args(extra)
        .envs(env.iter().copied())
        .current_dir(workspace())
        .env(
            "GREENTIC_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(at) = line.find("on http://") {
            let url = line[at + "on http://".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
    }
}

/// An HTTP client that returns every status as a response.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// Status, body and headers of an HTTP response.
pub type HttpReply = (u16, String, Vec<(String, String)>);

/// `method url` with `body` and `headers`: (status, body, response headers),
/// or `None` when no response came (connection refused or reset).
pub fn http(method: &str, url: &str, body: &str, headers: &[(&str, &str)]) -> Option<HttpReply> {
    try_http(method, url, body, headers).ok()
}

/// [`http`], saying why no response came.
pub fn try_http(
    method: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Result<HttpReply, String> {
    let agent = http_agent();
    let mut response = if method == "GET" {
        let mut r = agent.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call()
    } else {
        let mut r = agent.post(url);
        // serve takes JSON bodies only; a test may send another type itself.
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            r = r.header("content-type", "application/json");
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body)
    }
    .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok((status, text, headers))
}

/// Polls /metrics until it has `line` (bounded by a generous deadline).
pub fn wait_for_metric(server: &Served, line: &str) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text, _) =
            http("GET", &format!("{}/metrics", server.base), "", &[]).expect("a response");
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {line:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP server on loopback that answers its one request only when told.
pub fn gate() -> (u16, std::sync::mpsc::Sender<()>) {
    let (port, open, _arrived) = gate_seen();
    (port, open)
}

/// [`gate`], also telling when its request has arrived (the node calling
/// it is running).
pub fn gate_seen() -> (
    u16,
    std::sync::mpsc::Sender<()>,
    std::sync::mpsc::Receiver<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (open, opened) = std::sync::mpsc::channel::<()>();
    let (arrive, arrived) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = arrive.send(());
        let _ = opened.recv();
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nopen");
    });
    (port, open, arrived)
}

/// A `redis-server` of one test alone, keeping every write on disk (AOF,
/// fsync always) in `dir`, so it can be killed (`kill -9`) and started again
/// on the same port and data.
pub struct DurableRedis {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl DurableRedis {
    /// Starts one on a free port, its files in `dir`.
    pub fn start(dir: &Path) -> DurableRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        DurableRedis::start_on(dir, port)
    }

    fn start_on(dir: &Path, port: u16) -> DurableRedis {
        std::fs::create_dir_all(dir).unwrap();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (tests/run installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        DurableRedis {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A new server on the same port and files.
    pub fn restart(&mut self) {
        *self = DurableRedis::start_on(&self.dir, self.port);
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh scratch directory `name` holding a copy of `state-probe.wasm`
/// with a manifest that grants it state (flows there call
/// `./state-probe.wasm`).
pub fn probe_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::copy(built_component("state-probe"), dir.join("state-probe.wasm")).unwrap();
    std::fs::write(
        dir.join("state-probe.manifest.json"),
        r#"{"id": "test.state-probe", "name": "state-probe", "version": "0.1.0", "world": "greentic:component/component@0.6.0", "capabilities": {"host": {"state": {"read": true, "write": true, "delete": true}}}}"#,
    )
    .unwrap();
    dir
}

/// Which of `keys` the state-probe of a [`probe_dir`] holds for `tenant` in
/// the backend `state` (read by a flow run there).
pub fn probe_keys(dir: &Path, state: &str, tenant: &str, keys: &[String]) -> Vec<bool> {
    let mut flow = String::from("id: readback\nnodes:\n");
    for (i, key) in keys.iter().enumerate() {
        flow.push_str(&format!(
            "  k{i}:\n    component.exec: {{ component: ./state-probe.wasm, operation: read, input: {{ key: \"{key}\" }} }}\n"
        ));
    }
    let fields: Vec<String> = (0..keys.len())
        .map(|i| format!("k{i}: \"{{{{node.k{i}.ok}}}}\""))
        .collect();
    flow.push_str(&format!("  all:\n    echo: {{ {} }}\n", fields.join(", ")));
    let file = dir.join("readback.ygtc");
    std::fs::write(&file, flow).unwrap();
    let out = host_shim(&[
        "run",
        file.to_str().unwrap(),
        "--state",
        state,
        "--tenant",
        tenant,
    ]);
    assert_eq!(out.code, 0, "{out}");
    let v = out.json();
    (0..keys.len())
        .map(|i| v[format!("k{i}")] == serde_json::Value::Bool(true))
        .collect()
}

/// Requests `POST url {}` over and over until [`GreetingLoad::finish`],
/// recording each answer's status and `greeting` (a served pack swapped
/// under load).
pub struct GreetingLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u16, String)>>,
}

impl GreetingLoad {
    pub fn start(url: &str) -> GreetingLoad {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (url, stop) = (url.to_string(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (status, body, _) = http("POST", &url, "{}", &[]).expect("an answer");
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    seen.push((status, v["greeting"].as_str().unwrap_or("").to_string()));
                }
                seen
            })
        };
        GreetingLoad { stop, thread }
    }

    /// Stops the load; asserts every request was answered 200 with one of
    /// `order`'s greetings, switching only forward; returns the index of
    /// each answer's greeting.
    pub fn finish(self, order: &[&str]) -> Vec<usize> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = self.thread.join().unwrap();
        assert!(seen.len() > 10, "the load ran: {} requests", seen.len());
        assert!(
            seen.iter().all(|(status, _)| *status == 200),
            "a request failed: {seen:?}"
        );
        let versions: Vec<usize> = seen
            .iter()
            .map(|(_, g)| order.iter().position(|o| o == g).expect("a served version"))
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] <= w[1]),
            "answers switch in order: {versions:?}"
        );
        versions
    }
}

/// Waits until `POST url {}` answers with `greeting` in its body.
pub fn wait_for_greeting(url: &str, greeting: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body, _) = http("POST", url, "{}", &[]).unwrap();
        if body.contains(greeting) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served {greeting}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
