//! `serve` against hostile clients (issue: multi-tenant hardening): slow
//! headers and bodies, runs past their deadline, requests a web page could
//! forge. Each test passes on a loaded machine: it waits for what must
//! happen (with generous deadlines), never for a duration to be kept.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn flows(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::copy(
        workspace().join("examples/hello/flow.yaml"),
        dir.join("hello.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("spin.ygtc"),
        "id: spin\nnodes:\n  n:\n    component.exec: { component: faulty, operation: spin, input: {} }\n",
    )
    .unwrap();
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Served {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    serve(dir, &args)
}

fn hello(server: &Served) -> u16 {
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    http("POST", &format!("{}/flows/hello", server.base), &input, &[])
        .expect("a response")
        .0
}

fn healthz(server: &Served) -> u16 {
    http("GET", &format!("{}/healthz", server.base), "", &[])
        .expect("a response")
        .0
}

/// Sends `request` as written and reads the whole answer (the server closes).
fn raw(server: &Served, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"))
}

/// Waits until the server closes `stream` (EOF or reset); how long it took.
fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept a slow client open for 60 s")
            }
            Err(_) => return since.elapsed(),
        }
    }
}

#[test]
fn slow_headers_are_closed_at_the_header_timeout_and_healthz_answers_throughout() {
    let dir = flows("harden-slow-headers");
    let server = start(&dir, &["--header-timeout", "1s"]);
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(b"POST /flows/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    assert_eq!(healthz(&server), 200, "healthz while 200 clients dawdle");
    let mut longest = Duration::ZERO;
    for stream in &mut slow {
        longest = longest.max(closed_after(stream, opened));
    }
    assert!(
        longest >= Duration::from_secs(1),
        "closed before the timeout: {longest:?}"
    );
    eprintln!(
        "200 slow clients closed, the last after {} ms",
        longest.as_millis()
    );
    assert_eq!(healthz(&server), 200);
    assert_eq!(hello(&server), 200);
}

#[test]
fn at_the_connection_cap_new_clients_wait_instead_of_failing() {
    let dir = flows("harden-cap");
    let server = start(&dir, &["--max-connections", "2", "--header-timeout", "1s"]);
    // Two idle connections fill the cap; a third client is answered once the
    // header timeout has closed them, not refused or reset.
    let since = Instant::now();
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    assert_eq!(healthz(&server), 200);
    // Answered only once a slot was freed (a lower bound: a loaded machine
    // can only make it later).
    assert!(
        since.elapsed() >= Duration::from_secs(1),
        "a third connection was served beside two at a cap of 2"
    );
    drop(idle);
}

#[test]
fn accept_failures_at_the_fd_limit_are_backed_off_not_spun_on() {
    // A server with few descriptors: the cap keeps accept from hitting EMFILE,
    // and it does not burn a core while clients wait in the backlog.
    let dir = flows("harden-emfile");
    let exe = env!("CARGO_BIN_EXE_host-shim");
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 96; exec {exe} serve {} --addr 127.0.0.1:0 --header-timeout 30s",
                dir.display()
            ),
        ])
        .current_dir(workspace())
        .env(
            "GREENTIC_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("serve exited").unwrap();
        if let Some(at) = line.find("on http://") {
            let url = line[at + "on http://".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let held: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let ticks_before = cpu(child.id());
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu(child.id()) - ticks_before;
    let elapsed_ticks = wall.elapsed().as_millis() as u64 / 10;
    // A spinning accept loop takes about every tick it is given; an idle one none.
    assert!(
        used * 4 < elapsed_ticks,
        "the server used {used} of {elapsed_ticks} clock ticks while clients waited"
    );
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_slow_upload_holds_no_run_slot_and_gets_408() {
    let dir = flows("harden-slow-body");
    let server = start(&dir, &["--max-concurrent", "1", "--body-timeout", "2s"]);
    let mut uploads: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(
                b"POST /flows/hello HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"name\":",
            )
            .unwrap();
            s
        })
        .collect();
    // The one run slot is free for a client that sends its body.
    assert_eq!(hello(&server), 200);
    for s in &mut uploads {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert_eq!(status_of(&answer), 408, "{answer}");
    }
}

#[test]
fn a_run_past_its_timeout_is_stopped_and_frees_its_slot() {
    let dir = flows("harden-run-timeout");
    let server = start(&dir, &["--max-concurrent", "1", "--run-timeout", "1s"]);
    // `spin` loops forever; the node's own budget is 30 s.
    let (status, body, _) =
        http("POST", &format!("{}/flows/spin", server.base), "{}", &[]).expect("a response");
    assert_eq!(status, 504, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded its time limit of 1000 ms and was stopped"),
        "{body}"
    );
    // The slot is free at once: the run was stopped, not abandoned.
    wait_for_metric(&server, "greentic_runs_in_progress 0");
    assert_eq!(hello(&server), 200);
    wait_for_metric(
        &server,
        r#"greentic_runs_total{flow="spin",outcome="timeout"} 1"#,
    );
}

#[test]
fn requests_a_web_page_could_forge_are_refused() {
    let dir = flows("harden-forged");
    let server = start(&dir, &["--trust-tenant-headers"]);
    let input = std::fs::read_to_string(workspace().join("examples/hello/input.json")).unwrap();
    let body = input.trim();
    let post = |headers: &str| {
        raw(
            &server,
            &format!(
                "POST /flows/hello HTTP/1.1\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    // DNS rebinding: a page's own name resolved to loopback.
    let answer = post("Host: attacker.example:8080\r\ncontent-type: application/json\r\n");
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("does not answer to Host"), "{answer}");
    // A cross-site form post: no JSON content type, or a foreign Origin.
    let answer = post("Host: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\n");
    assert_eq!(status_of(&answer), 415, "{answer}");
    let answer = post("Host: 127.0.0.1\r\ncontent-type: text/plain\r\n");
    assert_eq!(status_of(&answer), 415, "{answer}");
    let answer = post(
        "Host: 127.0.0.1\r\norigin: https://attacker.example\r\ncontent-type: application/json\r\n",
    );
    assert_eq!(status_of(&answer), 403, "{answer}");
    // A gateway that appends its tenant header after the client's.
    let answer = post(
        "Host: 127.0.0.1\r\ncontent-type: application/json\r\nx-greentic-tenant: victim\r\nx-greentic-tenant: gateway-said\r\n",
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("more than once"), "{answer}");
    // What a real client sends still runs, from a loopback page too.
    let answer = post(
        "Host: localhost\r\norigin: http://localhost:3000\r\ncontent-type: application/json; charset=utf-8\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    // A name the operator allows.
    let allowed = start(&dir, &["--allowed-host", "bots.internal"]);
    let answer = raw(
        &allowed,
        "GET /healthz HTTP/1.1\r\nHost: bots.internal:8080\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}

fn metric_value(server: &Served, name: &str) -> u64 {
    let (_, text, _) = http("GET", &format!("{}/metrics", server.base), "", &[]).expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn unknown_flow_ids_do_not_rescan_the_served_flows_per_request() {
    let dir = flows("harden-catalog");
    for i in 0..300 {
        std::fs::write(
            dir.join(format!("f{i}.ygtc")),
            format!(
                "id: f{i}\nnodes:\n  n:\n    component.exec: {{ component: echo, input: {{}} }}\n"
            ),
        )
        .unwrap();
    }
    let server = start(&dir, &["--rescan-interval", "1h"]);
    for i in 0..50 {
        let (status, _, _) = http(
            "POST",
            &format!("{}/flows/nope-{i}", server.base),
            "{}",
            &[],
        )
        .expect("a response");
        assert_eq!(status, 404);
    }
    // The scan at start, none since.
    assert_eq!(metric_value(&server, "greentic_catalog_scans_total"), 1);
    drop(server);
    // With a short interval, a new file is found by a request for its id.
    let server = start(&dir, &["--rescan-interval", "10ms"]);
    std::fs::write(
        dir.join("late.ygtc"),
        "id: late\nnodes:\n  n:\n    component.exec: { component: echo, input: { late: true } }\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body, _) =
            http("POST", &format!("{}/flows/late", server.base), "{}", &[]).expect("a response");
        if status == 200 {
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["late"], true);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new flow was never found: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failed_run_tells_the_client_its_cause_without_the_servers_paths() {
    let dir = flows("harden-paths");
    std::fs::write(
        dir.join("missing.ygtc"),
        "id: missing\nnodes:\n  n:\n    component.exec: { component: no-such-thing, operation: x, input: {} }\n",
    )
    .unwrap();
    let server = start(&dir, &[]);
    let (status, body, _) =
        http("POST", &format!("{}/flows/missing", server.base), "{}", &[]).expect("a response");
    // The served flow names what the server lacks: the operator's fault.
    assert_eq!(status, 500, "{body}");
    let record: Value = serde_json::from_str(&body).unwrap();
    let message = record["error"]["message"].as_str().unwrap();
    // The cause, named as the operator wrote it...
    assert!(
        message.starts_with("missing.ygtc: node `n`: component `no-such-thing` not found"),
        "{message}"
    );
    assert!(message.contains("`no-such-thing.wasm`"), "{message}");
    // ...but nothing of where the server keeps its flows or its build.
    let served = dir.canonicalize().unwrap();
    for secret in [
        dir.to_string_lossy(),
        served.to_string_lossy(),
        workspace().to_string_lossy(),
    ] {
        assert!(!body.contains(secret.as_ref()), "{secret} in {body}");
    }
}
