//! B8: what one more node costs a one-shot `host-shim run` (a whole process:
//! the runner plans the flow — YAML, templates — then runs it), and of that
//! what planning alone costs (`host-shim check`). Measured as the difference
//! between a 100-node and a 1-node echo chain, paired round by round so the
//! machine's drift cancels.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::hot::chain_flow;
use crate::{Row, fmt_ns, run_process, verdict};

const ROUNDS: usize = 41;
const LONG: usize = 100;

pub fn b8(root: &Path, bin: &Path, scratch: &Path) -> Result<Vec<Row>> {
    let dir = scratch.join("b8");
    std::fs::create_dir_all(&dir)?;
    let short = dir.join("chain1.yaml");
    let long = dir.join(format!("chain{LONG}.yaml"));
    std::fs::write(&short, chain_flow(1))?;
    std::fs::write(&long, chain_flow(LONG))?;
    let cache = scratch.join("warm-cache");
    let per_node = |command: &[&str]| -> Result<Vec<f64>> {
        let args = |flow: &Path| {
            let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
            args.insert(1, flow.display().to_string());
            args
        };
        let (short_args, long_args) = (args(&short), args(&long));
        let time = |args: &[String]| -> Result<Duration> {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok(run_process(bin, &args, root, &cache)?.0)
        };
        // One warm-up pair fills the artifact cache for echo.
        time(&short_args)?;
        time(&long_args)?;
        let mut figures = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            // Alternate which goes first, so whatever the first of a pair
            // pays (or saves) falls on both sides equally.
            let (a, b) = if round % 2 == 0 {
                let a = time(&short_args)?;
                (a, time(&long_args)?)
            } else {
                let b = time(&long_args)?;
                (time(&short_args)?, b)
            };
            figures.push((b.as_nanos() as f64 - a.as_nanos() as f64) / (LONG - 1) as f64);
        }
        figures.sort_by(f64::total_cmp);
        Ok(figures)
    };
    let run = per_node(&["run", "--input", "{\"n\": 1}", "-q"])?;
    let plan = per_node(&["check"])?;
    // Single rounds of whole processes swing by milliseconds, so the spread
    // shown is the middle half of the rounds (and the extremes after it).
    let spread = |v: &[f64]| {
        let n = v.len();
        format!(
            "{} (middle half {}–{}; all {}–{}; {ROUNDS} paired rounds)",
            fmt_ns(v[n / 2]),
            fmt_ns(v[n / 4]),
            fmt_ns(v[3 * n / 4]),
            fmt_ns(v[0]),
            fmt_ns(v[n - 1])
        )
    };
    Ok(vec![
        Row::new(
            "B8",
            &format!(
                "one-shot `host-shim run`, per node: ({LONG}-node echo chain − 1-node chain) / {}, whole processes",
                LONG - 1
            ),
            spread(&run),
            "≤ 12 µs",
            verdict(run[run.len() / 2] <= 12_000.0),
        ),
        Row::new(
            "B8",
            "of which planning (`host-shim check`, the same difference)",
            spread(&plan),
            "—",
            "",
        ),
    ])
}
