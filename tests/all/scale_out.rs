//! Scale-out on one machine, on engines that exist: three `host-shim serve`
//! processes on one Redis behind haproxy (round-robin, no stickiness), all on
//! loopback. A conversation whose turns land on different processes
//! completes; one process killed with SIGKILL under load loses no answered
//! request and the others keep serving; two tenants never see each other's state.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `host-shim serve DIR` on Redis, trusting tenant headers (loopback).
fn serve_on(dir: &Path, redis: &str) -> Served {
    serve(
        dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            redis,
            "--trust-tenant-headers",
            "--allow-host",
            "127.0.0.1:*",
            "-q",
        ],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn haproxy(dir: &Path, backends: &[u16]) -> (Process, u16) {
    let port = free_port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  server s{i} 127.0.0.1:{p} check inter 100ms fall 1 rise 2\n"))
        .collect();
    let config = format!(
        "global\n  maxconn 256\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  retries 3\n  option redispatch\n\
         frontend front\n  bind 127.0.0.1:{port}\n  default_backend flows\n\
         backend flows\n  balance roundrobin\n  option httpchk GET /healthz\n{servers}"
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let child = Command::new("haproxy")
        .args(["-f", file.to_str().unwrap(), "-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("haproxy is needed for the scale-out test ({e}): Debian `apt-get install haproxy` (tests/run does it)"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Process(child), port)
}

/// POST through the balancer: (status, JSON body), or None if no answer came.
fn post(port: u16, flow: &str, body: Value, headers: &[(&str, &str)]) -> Option<(u16, Value)> {
    let (status, text, _) = http(
        "POST",
        &format!("http://127.0.0.1:{port}/flows/{flow}"),
        &body.to_string(),
        headers,
    )?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn runs_served(port: u16, flow: &str) -> u64 {
    let Some((_, text, _)) = http("GET", &format!("http://127.0.0.1:{port}/metrics"), "", &[])
    else {
        return 0;
    };
    text.lines()
        .filter(|l| l.starts_with(&format!("greentic_runs_total{{flow=\"{flow}\",")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn three_servers_behind_haproxy_share_conversations_and_survive_a_kill() {
    let redis = redis();
    let dir = scratch("scale-out");
    std::fs::copy(
        workspace().join("examples/counter/flow.yaml"),
        dir.join("counter.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ask.ygtc"),
        "id: ask\nnodes:\n  wait:\n    session.wait: name\n    routing: [{ to: answer }]\n  answer:\n    component.exec: { component: echo, input: { hello: \"{{in.text}}\" } }\n",
    )
    .unwrap();
    // A run that waits on a gate: in flight for as long as the test says.
    std::fs::write(
        dir.join("hold.ygtc"),
        "id: hold\nnodes:\n  wait:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\" } }\n",
    )
    .unwrap();
    let mut backends: Vec<Served> = (0..3).map(|_| serve_on(&dir, &redis.url)).collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    let (_proxy, front) = haproxy(&dir, &ports);

    // Conversations: each turn goes to the next process in turn.
    for i in 0..4 {
        let session = format!("conv-{i}");
        let headers = [("x-greentic-session", session.as_str())];
        let (status, first) = post(front, "ask", json!({}), &headers).expect("first turn");
        assert_eq!(
            (status, first["status"].clone()),
            (200, json!("waiting")),
            "{first}"
        );
        let (status, second) = post(front, "ask", json!({"text": format!("user {i}")}), &headers)
            .expect("second turn");
        assert_eq!(
            (status, second.clone()),
            (200, json!({"hello": format!("user {i}")}))
        );
    }
    let serving: Vec<u64> = ports.iter().map(|p| runs_served(*p, "ask")).collect();
    assert!(
        serving.iter().filter(|n| **n > 0).count() >= 2,
        "turns were not spread over the processes: {serving:?}"
    );

    // Two tenants, each sending its requests one after the other; one
    // process is killed partway through, with a run in flight on it (one
    // waiting on a gate) and the tenants' requests still coming.
    let tenants = ["acme", "globex"];
    let per_tenant = 30;
    let victim_port = backends[1].port;
    let (gate_port, open, arrived) = crate::support::gate_seen();
    let held = std::thread::spawn(move || {
        let url = format!("http://127.0.0.1:{gate_port}/");
        post(victim_port, "hold", json!({ "url": url }), &[])
    });
    arrived
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the held run is in flight on the victim");
    let halfway = std::sync::Arc::new(std::sync::Barrier::new(3));
    let workers: Vec<_> = tenants
        .iter()
        .map(|tenant| {
            let tenant = tenant.to_string();
            let halfway = halfway.clone();
            std::thread::spawn(move || {
                let mut answered = 0u64;
                let mut counts = Vec::new();
                for i in 0..per_tenant {
                    if i == per_tenant / 2 {
                        halfway.wait();
                    }
                    if let Some((200, body)) = post(
                        front,
                        "counter",
                        json!({}),
                        &[("x-greentic-tenant", tenant.as_str())],
                    ) {
                        answered += 1;
                        assert_eq!(
                            body["tenant"],
                            json!(tenant),
                            "a run for another tenant: {body}"
                        );
                        counts.push(body["count"].as_u64().unwrap());
                    }
                }
                (tenant, answered, counts)
            })
        })
        .collect();
    halfway.wait();
    let mut victim = backends.remove(1);
    let before_kill = runs_served(victim.port, "counter");
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    assert!(before_kill > 0, "the killed process had served no load");
    // The run in flight on it dies with it: no answer, nothing else lost.
    assert_eq!(
        held.join().unwrap(),
        None,
        "the held run answered after the kill"
    );
    drop(open);
    for worker in workers {
        let (tenant, answered, counts) = worker.join().unwrap();
        // The others kept serving: (almost) every request was answered.
        assert!(
            answered >= per_tenant - 3,
            "{tenant}: only {answered} of {per_tenant} answered"
        );
        // Each answered run saw the one before it: counts go up by one; a
        // run answered is never lost (at most a run whose answer was lost
        // with the killed process counts once more).
        for pair in counts.windows(2) {
            assert!(
                pair[1] == pair[0] + 1 || pair[1] == pair[0] + 2,
                "{tenant}: {counts:?}"
            );
        }
        let last = *counts.last().unwrap();
        assert!(
            last >= answered && last <= per_tenant,
            "{tenant}: {answered} answered, count {last}: {counts:?}"
        );
    }
}
