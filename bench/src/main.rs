//! The benchmark suite: every figure next to its native baseline and target,
//! measured in one run.
//!
//! ```text
//! cargo build --release -p host-shim && cargo run --release -p greentic-bench [-- --write]
//! ```
//!
//! - B1 warm per-node cost: a 100-node linear flow of `echo` nodes with small
//!   templated inputs, runner-core natively with a native echo vs host-shim
//!   (runner component + echo component) vs the same flow composed;
//! - B2 throughput: node invocations per second with instances reused across
//!   runs, fresh node instances per run on a kept runner (the default), and a
//!   fresh runner too (with and without the pooling allocator);
//! - B3 whole processes: `host-shim run examples/hello/flow.yaml` with the
//!   compiled-artifact cache warm, first runs with nothing cached (Winch /
//!   Cranelift, and as before the build precompiled the runner), first runs of
//!   1 and 5 distinct new node components, peak RSS (`--only-b3`: just these);
//! - B4 templating per expression (1000 `vars_out` of one node, where
//!   rendering dominates), typed insertion and string templating, natively vs
//!   inside the runner component;
//! - B5 a composed flow, one run (a whole process) under Wasmtime (host-shim),
//!   V8 (jco, Node.js) and wasmtime-py;
//! - B6 `host-shim serve` under load (wrk when installed), and (when a
//!   `wasmtime` CLI is found) the same flow composed with `--http` under
//!   `wasmtime serve` (`serve_load.rs`);
//! - B8 one more node in a one-shot `host-shim run` (plan and run), and in
//!   planning alone (`one_shot.rs`).
//!
//! `--write` also writes the table to `bench/RESULTS.md`; `bench --help` lists the rest.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

mod hot;
mod measure;
mod one_shot;
mod serve_load;

/// Benchmarks of the runner against the native runner-core baseline.
#[derive(clap::Parser)]
#[command(name = "bench", about, long_about = None)]
struct Args {
    /// Also write the table to bench/RESULTS.md.
    #[arg(long)]
    write: bool,
    /// Separate processes for B1, B2 and B4; a figure is the median of theirs.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    processes: u32,
    /// Only B1, B2 and B4.
    #[arg(long, conflicts_with_all = ["only_b3", "only_b6", "only_b8", "profile"])]
    only_hot: bool,
    /// Only B3 (whole processes of the release binary).
    #[arg(long, conflicts_with_all = ["only_b6", "only_b8", "profile"])]
    only_b3: bool,
    /// Only B6 (`serve` under load).
    #[arg(long, conflicts_with_all = ["only_b8", "profile"])]
    only_b6: bool,
    /// Only B8 (one more node in a one-shot run).
    #[arg(long, conflicts_with = "profile")]
    only_b8: bool,
    /// Runs one contender alone for 20 s, for `perf record`: b1-native,
    /// b1-host, b1-composed, b2-fresh, b2-fresh-runner, b2-fresh-runner-pooled or
    /// b4-<typed|typed-literal|string|string-literal>-<native|host>.
    #[arg(long, value_name = "CONTENDER")]
    profile: Option<String>,
    /// One process's B1/B2/B4 figures as JSON (what `--processes` runs).
    #[arg(long, hide = true)]
    hot_child: bool,
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    steady_heap();
    let write = args.write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let scratch = root.join("target/bench");
    std::fs::create_dir_all(&scratch)?;
    let mut rows: Vec<Row> = Vec::new();
    if args.hot_child {
        let figures = hot::measure_once(&hot::Files::in_scratch(&scratch))?;
        println!("{}", Value::Object(figures));
        return Ok(());
    }
    if args.only_b3 {
        let bin = root.join("target/release/host-shim");
        rows.extend(b3(&root, &bin, &scratch)?);
        println!("{}", render(&rows));
        return Ok(());
    }
    if args.only_b8 {
        let bin = root.join("target/release/host-shim");
        rows.extend(one_shot::b8(&root, &bin, &scratch)?);
        println!("{}", render(&rows));
        return Ok(());
    }
    if args.only_b6 {
        let bin = root.join("target/release/host-shim");
        rows.extend(serve_load::b6(&root, &bin, &scratch)?);
        println!("{}", render(&rows));
        return Ok(());
    }

    let bin = root.join("target/release/host-shim");
    let files = hot::prepare(&root, &bin, &scratch)?;
    if let Some(what) = args.profile.as_deref() {
        // One contender alone, long enough for `perf record`.
        let seconds = 20;
        let per_run = hot::profile(&files, what, std::time::Duration::from_secs(seconds))?;
        println!("{what}: {} per run", fmt_dur(per_run));
        return Ok(());
    }
    // B1, B2, B4: each a separate process, the figure the median of theirs.
    let processes = args.processes as usize;
    rows.extend(hot::hot_rows(&std::env::current_exe()?, processes)?);
    if args.only_hot {
        println!("{}", render(&rows));
        return Ok(());
    }

    // B3: whole processes of the release binary.
    rows.extend(b3(&root, &bin, &scratch)?);

    // B8: one more node in a one-shot run.
    match one_shot::b8(&root, &bin, &scratch) {
        Ok(figures) => rows.extend(figures),
        Err(e) => rows.push(Row::new(
            "B8",
            "one-shot per node",
            format!("not measured: {e:#}"),
            "—",
            "",
        )),
    }

    // B5: one composed flow, one process per engine.
    match b5(&root, &bin, &scratch) {
        Ok(figures) => {
            for (engine, t) in figures {
                rows.push(Row::new(
                    "B5",
                    &format!("composed hello, one run (process), {engine}"),
                    fmt_dur(t),
                    "—",
                    "",
                ));
            }
        }
        Err(e) => rows.push(Row::new(
            "B5",
            "composed hello",
            format!("not measured: {e:#}"),
            "—",
            "",
        )),
    }

    match serve_load::b6(&root, &bin, &scratch) {
        Ok(figures) => rows.extend(figures),
        Err(e) => rows.push(Row::new(
            "B6",
            "serve",
            format!("not measured: {e:#}"),
            "—",
            "",
        )),
    }

    rows.push(b7());
    let table = render(&rows);
    println!("{table}");
    if write {
        let machine = machine();
        let date = Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let doc = format!(
            "# Benchmark results\n\nMeasured {date} on {machine}, by `cargo build --release -p host-shim -p greentic-bench && target/release/bench --write`, all in one run. B1, B2 and B4: {processes} processes, each sampling every contender 30 times interleaved with its native baseline (paired ratios per round); a figure is the median of the processes' medians, (min–max) of those medians, and the interquartile range inside a process; B3 medians with min–max; B5 the best of three processes; B6 the median of three 2-second runs with their min–max, the load generator (wrk when installed, this process's own as a cross-check) on the same 2 cores as the server.\n\n{table}\nThe native baseline is the same flow run by `runner-core` compiled natively, with a native echo. host-shim figures use its library in-process (B1, B2, B4) or its release binary (B3, B5).\n"
        );
        std::fs::write(root.join("bench/RESULTS.md"), doc)?;
        eprintln!("wrote bench/RESULTS.md");
    }
    Ok(())
}

struct Row {
    id: &'static str,
    what: String,
    value: String,
    target: String,
    verdict: String,
}

impl Row {
    fn new(id: &'static str, what: &str, value: String, target: &str, verdict: &str) -> Row {
        Row {
            id,
            what: what.to_string(),
            value,
            target: target.to_string(),
            verdict: verdict.to_string(),
        }
    }
}

fn render(rows: &[Row]) -> String {
    let mut out =
        String::from("| | measurement | figure | target | met |\n|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.id, r.what, r.value, r.target, r.verdict
        ));
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

fn fmt_dur(d: Duration) -> String {
    fmt_ns(d.as_nanos() as f64)
}

fn fmt_ns(ns: f64) -> String {
    // A difference of two timings can be negative; the unit follows its size.
    let size = ns.abs();
    if size < 10_000.0 {
        format!("{ns:.0} ns")
    } else if size < 10_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// glibc hands the top of its heap back to the kernel once 128 KiB of it are
/// free, and serves large blocks by `mmap`: a run that frees what it built
/// then faults its pages in again on the next run. Measured natively that was
/// over half of a B4 run's time (kernel page clearing), noise that is not
/// runner-core's. Fixed thresholds, as a long-running process would set,
/// keep the heap: every contender of this process (native and host side) gets them.
fn steady_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's malloc tunables; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// Median and min–max of `v`, formatted.
fn spread(v: &[Duration]) -> String {
    let mut v = v.to_vec();
    v.sort();
    format!(
        "{} (min–max {}–{}, n={})",
        fmt_dur(v[v.len() / 2]),
        fmt_dur(v[0]),
        fmt_dur(v[v.len() - 1]),
        v.len()
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs a process; returns its wall time and peak RSS (KiB).
fn run_process(bin: &Path, args: &[&str], cwd: &Path, cache: &Path) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("GREENTIC_CACHE_DIR", cache)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills `usage`; `child` is not waited on again.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let _ = child.kill();
        bail!("{} {:?} failed", bin.display(), args);
    }
    std::mem::forget(child);
    Ok((elapsed, usage.ru_maxrss as u64))
}

/// B3: whole `host-shim run` processes, first runs (nothing compiled for
/// this machine yet but what the build precompiled) and warm ones.
fn b3(root: &Path, bin: &Path, scratch: &Path) -> Result<Vec<Row>> {
    if !bin.is_file() {
        bail!("build the release binary first: cargo build --release -p host-shim");
    }
    const COLD_RUNS: usize = 7;
    let mut rows = Vec::new();
    let hello = [
        "run",
        "examples/hello/flow.yaml",
        "--input",
        "@examples/hello/input.json",
        "-q",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        hello.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let runs = |args: &[String], cache: &Path, n: usize| -> Result<Vec<(Duration, u64)>> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (0..n)
            .map(|_| run_process(bin, &args, root, cache))
            .collect()
    };
    let times = |r: &[(Duration, u64)]| r.iter().map(|x| x.0).collect::<Vec<_>>();
    let scratch_cache = scratch.join("b3-cache");

    // Empty cache directory: each run starts empty; its background compile
    // is waited out (and the directory emptied) before the next run.
    let mut empty = Vec::new();
    for _ in 0..COLD_RUNS {
        let _ = std::fs::remove_dir_all(&scratch_cache);
        empty.push(run_process(bin, &hello, root, &scratch_cache)?);
        wait_for_background_compile(&scratch_cache, 2)?;
    }
    let no_cache = runs(&with(&["--no-cache"]), &scratch_cache, COLD_RUNS)?;
    // Before this issue: Cranelift for everything, the runner included (a
    // runner whose bytes differ from the build's, so its artifact is not used).
    let foreign_runner = scratch.join("runner-unprecompiled.wasm");
    let mut bytes = std::fs::read(host_shim::BUILT_RUNNER)?;
    bytes.extend(custom_section("bench", b"not the build's runner"));
    std::fs::write(&foreign_runner, bytes)?;
    let before = runs(
        &with(&[
            "--no-cache",
            "--compiler",
            "cranelift",
            "--runner",
            foreign_runner.to_str().unwrap(),
        ]),
        &scratch_cache,
        3,
    )?;
    let cranelift_nodes = runs(
        &with(&["--no-cache", "--compiler", "cranelift"]),
        &scratch_cache,
        COLD_RUNS,
    )?;
    let warm_cache = scratch.join("warm-cache");
    run_process(
        bin,
        &with(&["--compiler", "cranelift"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        root,
        &warm_cache,
    )?;
    let warm = runs(&with(&[]), &warm_cache, 10)?;
    let cold_med = median(times(&no_cache));
    rows.push(Row::new(
        "B3",
        "`host-shim run examples/hello/flow.yaml`, cache warm",
        spread(&times(&warm)),
        "≤ 30 ms",
        verdict(median(times(&warm)) <= Duration::from_millis(30)),
    ));
    rows.push(Row::new(
        "B3",
        "same, first run, `--no-cache` (build's runner, Winch for the 2 node components)",
        spread(&times(&no_cache)),
        "≤ 150 ms",
        verdict(cold_med <= Duration::from_millis(150)),
    ));
    rows.push(Row::new(
        "B3",
        "same, first run on an empty cache directory (and Cranelift in the background)",
        spread(&times(&empty)),
        "≤ 150 ms",
        verdict(median(times(&empty)) <= Duration::from_millis(150)),
    ));
    rows.push(Row::new(
        "B3",
        "same, `--no-cache --compiler cranelift` (build's runner, Cranelift for the nodes)",
        spread(&times(&cranelift_nodes)),
        "—",
        "",
    ));
    rows.push(Row::new(
        "B3",
        "same, before: Cranelift for the runner and the nodes",
        spread(&times(&before)),
        "—",
        "",
    ));
    // 1 and 5 distinct node components never seen before: copies of echo
    // made distinct by a custom section, in a linear flow.
    let dir = scratch.join("b3-distinct");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let echo = std::fs::read(Path::new(host_shim::BUILT_COMPONENTS_DIR).join("echo.wasm"))?;
    for i in 0..5 {
        let mut copy = echo.clone();
        copy.extend(custom_section("bench-copy", format!("{i}").as_bytes()));
        std::fs::write(dir.join(format!("c{i}.wasm")), copy)?;
    }
    for n in [1usize, 5] {
        let flow = dir.join(format!("distinct-{n}.yaml"));
        let mut yaml = format!("id: distinct{n}\nnodes:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  n{i}:\n    c{i}: {{ v: \"{{{{entry.v}}}}\" }}\n"
            ));
        }
        std::fs::write(&flow, yaml)?;
        let base = [
            "run".to_string(),
            flow.display().to_string(),
            "-c".into(),
            dir.display().to_string(),
            "--input".into(),
            "{\"v\": 1}".into(),
            "-q".into(),
            "--no-cache".into(),
        ];
        let winch = runs(&base, &scratch_cache, COLD_RUNS)?;
        let mut cranelift = base.to_vec();
        cranelift.extend(["--compiler".into(), "cranelift".into()]);
        let cranelift = runs(&cranelift, &scratch_cache, COLD_RUNS)?;
        rows.push(Row::new(
            "B3",
            &format!("first run, {n} distinct new node component(s) (echo copies), `--no-cache`: Winch / Cranelift"),
            format!("{} / {}", spread(&times(&winch)), spread(&times(&cranelift))),
            "—",
            "",
        ));
    }
    let cold_rss = no_cache
        .iter()
        .chain(&empty)
        .map(|r| r.1)
        .max()
        .unwrap_or(0);
    let before_rss = before.iter().map(|r| r.1).max().unwrap_or(0);
    let warm_rss = warm.iter().map(|r| r.1).max().unwrap_or(0);
    rows.push(Row::new(
        "B3",
        "peak RSS (first runs / before / warm runs)",
        format!(
            "{} / {} / {} MB",
            cold_rss / 1024,
            before_rss / 1024,
            warm_rss / 1024
        ),
        "≤ 60 MB",
        verdict(cold_rss.max(warm_rss) / 1024 <= 60),
    ));
    Ok(rows)
}

/// B7, the peer runner on the same chain: greentic users run flows with
/// `greentic-runner-cli --pack X.gtpack` (crates.io `greentic-runner` 1.x).
/// Running it needs the chain packed as a `.gtpack` with a component
/// manifest; that is not written yet, so a found peer is reported, not timed.
fn b7() -> Row {
    let found = ["greentic-runner-cli", "greentic-runner"]
        .iter()
        .find_map(|name| which(name));
    match found {
        Some(peer) => Row::new(
            "B7",
            &format!(
                "the peer, found at {}: not timed by this suite yet",
                peer.display()
            ),
            "—".into(),
            "—",
            "",
        ),
        None => Row::new(
            "B7",
            "the peer (`greentic-runner-cli`) on the same chain: skipped, not on PATH (`cargo install --locked greentic-runner --version 1.2.2 --features legacy-gen-bindings`, ~50 min on 2 cores)",
            "—".into(),
            "—",
            "",
        ),
    }
}

/// Waits (at most a minute) until the background compile a run started has
/// left `count` artifacts and no lock in `cache`.
fn wait_for_background_compile(cache: &Path, count: usize) -> Result<()> {
    for _ in 0..1200 {
        let names: Vec<String> = std::fs::read_dir(cache)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let artifacts = names.iter().filter(|n| n.ends_with(".cwasm")).count();
        if artifacts >= count && !names.iter().any(|n| n.ends_with(".lock")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the background compile did not fill {}", cache.display())
}

/// A component-level custom section: makes a component's bytes (and so its
/// cache key) distinct without changing what it does.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut section = vec![0u8];
    leb(body.len(), &mut section);
    section.extend(body);
    section
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// The composed hello flow under three engines: wall time of one process each.
fn b5(root: &Path, bin: &Path, scratch: &Path) -> Result<Vec<(&'static str, Duration)>> {
    let app = scratch.join("hello-app.wasm");
    let status = Command::new(bin)
        .args([
            "compose",
            "examples/hello/flow.yaml",
            "-o",
            app.to_str().unwrap(),
            "-q",
        ])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("compose failed");
    }
    let cache = scratch.join("warm-cache");
    // "Artifact cached": compiled with Cranelift into the cache first (a
    // first run would use Winch and leave Cranelift to a background process).
    let compiled = Command::new(bin)
        .args(["compile", app.to_str().unwrap(), "-q"])
        .current_dir(root)
        .env("GREENTIC_CACHE_DIR", &cache)
        .status()?;
    if !compiled.success() {
        bail!("host-shim compile failed");
    }
    let run = |program: &Path, args: &[&str]| -> Result<Duration> {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let out = Command::new(program)
                .args(args)
                .current_dir(root)
                .env("GREENTIC_CACHE_DIR", &cache)
                .output()?;
            if !out.status.success() {
                bail!(
                    "{} failed: {}",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            best = best.min(started.elapsed());
        }
        Ok(best)
    };
    let flow = ["examples/hello/flow.yaml", "examples/hello/input.json"];
    let wasmtime = run(
        bin,
        &[
            "run",
            flow[0],
            "--composed",
            app.to_str().unwrap(),
            "--input",
            "@examples/hello/input.json",
            "-q",
        ],
    )?;
    let js_dir = root.join("tests/portability/.out/bench-hello");
    let jco = root.join("tests/portability/node_modules/.bin/jco");
    if !jco.is_file() {
        bail!("jco missing: run tests/run once");
    }
    Command::new(&jco)
        .args([
            "transpile",
            app.to_str().unwrap(),
            "-o",
            js_dir.to_str().unwrap(),
            "--name",
            "app",
            "-q",
        ])
        .status()?;
    let v8 = run(
        Path::new("node"),
        &[
            "tests/portability/run.mjs",
            js_dir.to_str().unwrap(),
            flow[0],
            flow[1],
        ],
    )?;
    let python = root.join("target/portability-venv/bin/python");
    let py = run(
        &python,
        &[
            "tests/portability/run.py",
            app.to_str().unwrap(),
            flow[0],
            flow[1],
        ],
    )?;
    let size = std::fs::metadata(&app).context("composed app")?.len();
    eprintln!("B5: composed hello app.wasm is {size} bytes");
    Ok(vec![
        ("Wasmtime (host-shim, artifact cached)", wasmtime),
        ("V8 (jco + Node.js)", v8),
        ("wasmtime-py", py),
    ])
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {}", std::env::consts::OS)
}
