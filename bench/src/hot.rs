//! B1, B2 and B4: the in-process figures, each contender measured
//! interleaved with its native baseline (see `measure`). One process measures
//! once (`bench --hot-child` prints JSON); the suite runs several processes
//! and reports the median of their medians with min–max (`hot_rows`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use host_shim::{Host, HostOptions, RunSettings, WarmRun};
use runner_core::{Flow, FlowSource, NodeCall, NodeFailure, RunOptions};
use serde_json::{Map, Value};

use crate::measure::{Contender, Plan, Samples, across_runs, interleaved};
use crate::{Row, fmt_ns, verdict};

/// Nodes of the B1/B2 chain.
pub const NODES: usize = 100;
/// Template expressions in the one node of a B4 flow.
pub const EXPRESSIONS: usize = 1000;
const INPUT: &str = "{\"n\": 1, \"v\": 7}";

/// A linear flow of `n` echo nodes, each with a small templated input.
pub fn chain_flow(n: usize) -> String {
    let mut yaml = String::from("id: chain\nmax_steps: 1000\nnodes:\n");
    for i in 0..n {
        yaml.push_str(&format!("  n{i}:\n    echo: {{ i: {i}, v: \"{{{{entry.n}}}}\", tag: \"step-{{{{state.step}}}}\" }}\n"));
    }
    yaml
}

/// One echo node with [`EXPRESSIONS`] variables set from `template` after it
/// runs (`vars_out`): nothing of them goes to the component or comes back,
/// so rendering dominates the run. The same with a literal is the reference
/// (what setting that many variables costs without templating).
fn vars_flow(template: &str) -> String {
    let mut yaml = String::from("id: vars\nnodes:\n  only:\n    echo:\n      vars_out:\n");
    for i in 0..EXPRESSIONS {
        yaml.push_str(&format!("        v{i}: {template}\n"));
    }
    yaml
}

/// The flow files and the composed chain the measurements use.
pub struct Files {
    chain: PathBuf,
    chain_app: PathBuf,
    b4: Vec<(&'static str, PathBuf)>,
}

/// The B4 flows: (key, template of every variable).
const B4_FLOWS: [(&str, &str); 4] = [
    ("typed", "\"{{entry.v}}\""),
    ("typed-literal", "7"),
    ("string", "\"id-{{entry.v}}-x\""),
    ("string-literal", "\"id-7-x\""),
];

/// Writes the flows under `scratch` and composes the chain with the release
/// `host-shim` at `bin` (the composition is B1's third contender).
pub fn prepare(root: &Path, bin: &Path, scratch: &Path) -> Result<Files> {
    let files = Files::in_scratch(scratch);
    std::fs::write(&files.chain, chain_flow(NODES))?;
    let status = Command::new(bin)
        .args(["compose", files.chain.to_str().unwrap(), "-o"])
        .arg(&files.chain_app)
        .arg("-q")
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("composing {} failed", files.chain.display());
    }
    for ((_, path), (_, template)) in files.b4.iter().zip(B4_FLOWS) {
        std::fs::write(path, vars_flow(template))?;
    }
    Ok(files)
}

impl Files {
    pub fn in_scratch(scratch: &Path) -> Files {
        Files {
            chain: scratch.join("chain.yaml"),
            chain_app: scratch.join("chain-app.wasm"),
            b4: B4_FLOWS
                .iter()
                .map(|(key, _)| (*key, scratch.join(format!("b4-{key}.yaml"))))
                .collect(),
        }
    }
}

/// A contender that runs `flow` natively: runner-core and a native echo.
fn native(flow: &Path) -> Result<Contender<'static>> {
    let flow = Flow::load(&FlowSource {
        name: flow.display().to_string(),
        yaml: std::fs::read_to_string(flow)?,
        ..Default::default()
    })?;
    let entry: Value = serde_json::from_str(INPUT)?;
    let options = RunOptions::default();
    Ok(Box::new(move |units| {
        let mut echo =
            |call: &NodeCall<'_>| -> Result<Value, NodeFailure> { Ok(call.input.clone()) };
        let started = Instant::now();
        for _ in 0..units {
            std::hint::black_box(flow.run(entry.clone(), &mut echo, &options)?);
        }
        Ok(started.elapsed())
    }))
}

/// A contender that runs a warm (planned, linked, instantiated once) flow.
fn warm(mut run: WarmRun) -> Contender<'static> {
    Box::new(move |units| {
        let started = Instant::now();
        for _ in 0..units {
            std::hint::black_box(run.run().map_err(|e| anyhow!("{e}"))?);
        }
        Ok(started.elapsed())
    })
}

/// A contender that runs the flow file as `host-shim run` and `serve` do per
/// request: reads and plans it, links and instantiates its nodes afresh, and
/// the runner too when the host makes one per run.
fn fresh<'a>(host: &'a mut Host, flow: &'a Path, settings: &'a RunSettings) -> Contender<'a> {
    Box::new(move |units| {
        let started = Instant::now();
        for _ in 0..units {
            let out = host.run_file(flow, INPUT, settings, 1).pop().unwrap();
            std::hint::black_box(out.map_err(|e| anyhow!("{e}"))?);
        }
        Ok(started.elapsed())
    })
}

/// Measures B1, B2 and B4 once; every figure's per-round samples summarised
/// (see [`Samples::summary`]), keyed by figure.
pub fn measure_once(files: &Files) -> Result<Map<String, Value>> {
    let settings = RunSettings::default();
    let mut host = Host::new(HostOptions {
        quiet: true,
        ..Default::default()
    })?;
    let mut all_fresh = Host::new(HostOptions {
        quiet: true,
        fresh_runner_per_run: true,
        ..Default::default()
    })?;
    let mut pooled = Host::new(HostOptions {
        quiet: true,
        fresh_runner_per_run: true,
        pooling_allocator: true,
        ..Default::default()
    })?;
    let mut out = Map::new();
    let plan = Plan::default();

    // B1 and B2: per run of the 100-node chain.
    let host_warm = host
        .warm_run(&files.chain, INPUT, &settings)
        .map_err(|e| anyhow!("{e}"))?;
    let composed = host
        .warm_composed(&files.chain_app, &files.chain, INPUT, &settings)
        .map_err(|e| anyhow!("{e}"))?;
    let runs = {
        let mut contenders = vec![
            native(&files.chain)?,
            warm(host_warm),
            warm(composed),
            fresh(&mut host, &files.chain, &settings),
            fresh(&mut all_fresh, &files.chain, &settings),
            fresh(&mut pooled, &files.chain, &settings),
        ];
        interleaved(&plan, &mut contenders)?
    };
    let [
        native_run,
        host_run,
        composed_run,
        fresh_run,
        all_fresh_run,
        pooled_run,
    ] = <[Samples; 6]>::try_from(runs).unwrap();
    let per_node = |s: &Samples| s.scaled(1.0 / NODES as f64);
    let rate = |s: &Samples| s.inverse(NODES as f64 * 1e9);
    let mut put = |key: &str, s: Samples| {
        out.insert(key.to_string(), s.summary());
    };
    put("b1.native", per_node(&native_run));
    put("b1.host", per_node(&host_run));
    put("b1.composed", per_node(&composed_run));
    put("b1.host-ratio", host_run.ratio_to(&native_run));
    put("b1.composed-ratio", composed_run.ratio_to(&native_run));
    put("b2.native", rate(&native_run));
    put("b2.reused", rate(&host_run));
    put("b2.fresh", rate(&fresh_run));
    put("b2.kept-runner-gain", all_fresh_run.ratio_to(&fresh_run));
    put("b2.fresh-runner", rate(&all_fresh_run));
    put("b2.fresh-runner-pooled", rate(&pooled_run));
    put("b2.pooled-gain", all_fresh_run.ratio_to(&pooled_run));

    // B4: per expression of a flow where templating dominates, and the
    // same flow with literals for reference.
    for pair in files.b4.chunks(2) {
        let (key, templated) = (&pair[0].0, &pair[0].1);
        let literal = &pair[1].1;
        let mut contenders = vec![
            native(templated)?,
            warm(
                host.warm_run(templated, INPUT, &settings)
                    .map_err(|e| anyhow!("{e}"))?,
            ),
            native(literal)?,
            warm(
                host.warm_run(literal, INPUT, &settings)
                    .map_err(|e| anyhow!("{e}"))?,
            ),
        ];
        let s = interleaved(&plan, &mut contenders)?;
        let each = |s: &Samples| s.scaled(1.0 / EXPRESSIONS as f64);
        put(&format!("b4.{key}.native"), each(&s[0]));
        put(&format!("b4.{key}.wasm"), each(&s[1]));
        put(&format!("b4.{key}.ratio"), s[1].ratio_to(&s[0]));
        put(&format!("b4.{key}.literal-native"), each(&s[2]));
        put(&format!("b4.{key}.literal-wasm"), each(&s[3]));
    }
    Ok(out)
}

/// Runs one contender alone for `time` (`b1-native`, `b1-host`,
/// `b1-composed`, `b2-fresh`, `b2-fresh-runner[-pooled]`, `b4-string-native`...) for a profiler; returns the time per run.
pub fn profile(
    files: &Files,
    what: &str,
    time: std::time::Duration,
) -> Result<std::time::Duration> {
    let settings = RunSettings::default();
    let mut host = Host::new(HostOptions {
        quiet: true,
        fresh_runner_per_run: what.starts_with("b2-fresh-runner"),
        pooling_allocator: what == "b2-fresh-runner-pooled",
        ..Default::default()
    })?;
    let mut run = match what {
        "b1-native" => native(&files.chain)?,
        "b1-host" => warm(
            host.warm_run(&files.chain, INPUT, &settings)
                .map_err(|e| anyhow!("{e}"))?,
        ),
        "b1-composed" => warm(
            host.warm_composed(&files.chain_app, &files.chain, INPUT, &settings)
                .map_err(|e| anyhow!("{e}"))?,
        ),
        "b2-fresh" | "b2-fresh-runner" | "b2-fresh-runner-pooled" => {
            fresh(&mut host, &files.chain, &settings)
        }
        other => {
            let b4 = |key: &str| files.b4.iter().find(|(k, _)| *k == key).map(|(_, p)| p);
            match other.strip_prefix("b4-").and_then(|k| k.rsplit_once('-')) {
                Some((key, "native")) if b4(key).is_some() => native(b4(key).unwrap())?,
                Some((key, "host")) if b4(key).is_some() => warm(
                    host.warm_run(b4(key).unwrap(), INPUT, &settings)
                        .map_err(|e| anyhow!("{e}"))?,
                ),
                _ => bail!(
                    "--profile {other}: b1-native, b1-host, b1-composed, b2-fresh, b2-fresh-runner, b2-fresh-runner-pooled or b4-<flow>-native|host (flows: typed, typed-literal, string, string-literal)"
                ),
            }
        }
    };
    let (mut runs, mut busy) = (0u64, std::time::Duration::ZERO);
    while busy < time {
        busy += run(100)?;
        runs += 100;
    }
    Ok(busy / runs as u32)
}

/// Runs `--hot-child` `processes` times and turns their figures into rows:
/// each figure is the median of the processes' medians, with their min–max.
pub fn hot_rows(bench: &Path, processes: usize) -> Result<Vec<Row>> {
    let mut runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut inner: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..processes {
        eprintln!("B1/B2/B4: process {} of {processes}", i + 1);
        let out = Command::new(bench).arg("--hot-child").output()?;
        if !out.status.success() {
            bail!(
                "bench --hot-child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let figures: Map<String, Value> = serde_json::from_slice(&out.stdout)?;
        for (key, summary) in figures {
            let get = |f: &str| summary[f].as_f64().unwrap_or(f64::NAN);
            runs.entry(key.clone()).or_default().push(get("median"));
            // The spread inside one process: the interquartile range relative to its median.
            inner
                .entry(key)
                .or_default()
                .push((get("q3") - get("q1")) / get("median"));
        }
    }
    let fig = |key: &str| -> Result<(f64, f64, f64)> {
        runs.get(key)
            .map(|m| across_runs(m))
            .ok_or_else(|| anyhow!("no figure {key}"))
    };
    let iqr = |key: &str| {
        inner
            .get(key)
            .map(|v| across_runs(v).0 * 100.0)
            .unwrap_or(f64::NAN)
    };
    let time = |key: &str| -> Result<String> {
        let (m, lo, hi) = fig(key)?;
        Ok(format!(
            "{} ({}–{}; IQR in a run ±{:.0}%)",
            fmt_ns(m),
            fmt_ns(lo),
            fmt_ns(hi),
            iqr(key) / 2.0
        ))
    };
    let times = |key: &str| -> Result<(String, f64)> {
        let (m, lo, hi) = fig(key)?;
        Ok((format!("{m:.2}× ({lo:.2}–{hi:.2})"), m))
    };
    let per_s = |key: &str| -> Result<(String, f64)> {
        let (m, lo, hi) = fig(key)?;
        Ok((format!("{m:.0}/s ({lo:.0}–{hi:.0})"), m))
    };
    let mut rows = Vec::new();
    rows.push(Row::new(
        "B1",
        "warm per-node cost, native runner-core + native echo",
        time("b1.native")?,
        "baseline",
        "",
    ));
    for (key, what) in [
        (
            "host",
            "warm per-node cost, host-shim (runner component + echo component, host in between)",
        ),
        (
            "composed",
            "warm per-node cost, composed (runner and echo wired directly, `run --composed`)",
        ),
    ] {
        let (ratio, m) = times(&format!("b1.{key}-ratio"))?;
        rows.push(Row::new(
            "B1",
            what,
            format!("{}; {ratio} native", time(&format!("b1.{key}"))?),
            "≤ 3× native",
            verdict(m <= 3.0),
        ));
    }
    let (native, _) = per_s("b2.native")?;
    rows.push(Row::new(
        "B2",
        "node invocations/s, native baseline",
        native,
        "baseline",
        "",
    ));
    for (key, what, target, floor) in [
        (
            "reused",
            "instances reused across runs",
            "≥ 20,000",
            20_000.0,
        ),
        (
            "fresh",
            "fresh node instances per run, the runner instance kept (default)",
            "≥ 50,000",
            50_000.0,
        ),
        (
            "fresh-runner",
            "fresh runner and node instances per run (`HostOptions::fresh_runner_per_run`)",
            "≥ 50,000",
            50_000.0,
        ),
    ] {
        let (mut figure, m) = per_s(&format!("b2.{key}"))?;
        if key == "fresh" {
            let (gain, _) = times("b2.kept-runner-gain")?;
            figure = format!("{figure}; {gain} the rate with a fresh runner too");
        }
        rows.push(Row::new(
            "B2",
            &format!("node invocations/s, host-shim, {what}"),
            figure,
            target,
            verdict(m >= floor),
        ));
    }
    let (figure, m) = per_s("b2.fresh-runner-pooled")?;
    let (gain, _) = times("b2.pooled-gain")?;
    rows.push(Row::new(
        "B2",
        "node invocations/s, host-shim, the same with the pooling allocator (`HostOptions::pooling_allocator`)",
        format!("{figure}; {gain} the rate without it"),
        "≥ 50,000",
        verdict(m >= 50_000.0),
    ));
    for (key, what, limit) in [
        ("typed", "typed insertion `\"{{entry.v}}\"`", 2.0),
        ("string", "string templating `\"id-{{entry.v}}-x\"`", 2.0),
    ] {
        rows.push(Row::new(
            "B4",
            &format!("{what}, per expression ({EXPRESSIONS} `vars_out` of one node), native"),
            time(&format!("b4.{key}.native"))?,
            "baseline",
            "",
        ));
        let (ratio, m) = times(&format!("b4.{key}.ratio"))?;
        rows.push(Row::new(
            "B4",
            &format!("{what}, per expression, in the runner component"),
            format!("{}; {ratio} native", time(&format!("b4.{key}.wasm"))?),
            &format!("≤ {limit}× native"),
            verdict(m <= limit),
        ));
        rows.push(Row::new(
            "B4",
            "the same with literals (no templating), per expression: native / component",
            format!(
                "{} / {}",
                time(&format!("b4.{key}.literal-native"))?,
                time(&format!("b4.{key}.literal-wasm"))?
            ),
            "—",
            "",
        ));
    }
    Ok(rows)
}
