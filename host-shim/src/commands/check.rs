//! `host-shim check`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::setup::{Sources, host, optimize_later, target};
use crate::{CheckReport, Failure, Host};
use clap::Args;

use super::args::ComponentArgs;

/// `host-shim check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Flow (or a directory: every flow file under it), components and cache.
    #[command(flatten)]
    pub common: ComponentArgs,
    /// Print the result as JSON (for a directory: one record per flow).
    #[arg(long)]
    pub json: bool,
}

pub(super) fn check(args: CheckArgs) -> Result<(), Failure> {
    let mut host = host(&args.common)?;
    let checked = check_with(&mut host, args);
    optimize_later(&host);
    checked
}

pub(super) fn check_with(host: &mut Host, mut args: CheckArgs) -> Result<(), Failure> {
    match target(&args.common.flow, &Sources::of(&args.common)?)? {
        // A pack: every flow it lists.
        compose::pack::Target::Pack(pack, None) => {
            let files: Vec<PathBuf> = pack.flows.iter().map(|f| f.file.clone()).collect();
            return check_files(host, &files, &pack.root, args.json, args.common.quiet);
        }
        // A flow file, or a plain directory of flows.
        compose::pack::Target::Flow(path) => args.common.flow = path,
        target => args.common.flow = target.flow_file().map_err(|e| Failure::Invalid(e.into()))?,
    }
    if args.common.flow.is_dir() {
        return check_dir(host, &args.common.flow, args.json, args.common.quiet);
    }
    let report = host.check_file(&args.common.flow)?;
    if !args.common.quiet && !args.json {
        for note in &report.notes {
            eprintln!("note: {note}");
        }
        for stub in &report.stubbed {
            eprintln!("note: {stub}: not found; the echo component stands in");
        }
    }
    let record = report_json(&report);
    println!(
        "{}",
        serde_json::to_string_pretty(&record).expect("a JSON value serialises")
    );
    Ok(())
}

pub(super) fn report_json(report: &CheckReport) -> Value {
    let plan = &report.plan;
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({"id": n.id, "component": n.component, "operation": n.operation});
            if n.component.is_empty() {
                node = json!({"id": n.id, "native": n.operation});
            }
            if let Some(id) = &n.component_id {
                node["component_id"] = json!(id);
            }
            if let Some(digest) = &n.digest {
                node["digest"] = json!(digest);
            }
            node
        })
        .collect();
    let mut out =
        json!({"id": plan.id, "start": plan.start, "nodes": nodes, "components": plan.components});
    if !plan.calls.is_empty() {
        out["calls"] = json!(plan.calls);
    }
    if !report.missing_flows.is_empty() {
        out["missing_flows"] = json!(report.missing_flows);
    }
    if !report.notes.is_empty() {
        out["notes"] = json!(report.notes);
    }
    if !report.stubbed.is_empty() {
        out["stubbed"] = json!(report.stubbed);
    }
    out
}

/// `check DIR`: every flow file under `dir` (`*.ygtc`, `*.yaml`, `*.yml` with a
/// top-level `nodes:`), one line each and a summary; exit 2 if any failed.
pub(super) fn check_dir(
    host: &mut Host,
    dir: &Path,
    as_json: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let files = compose::pack::flow_files_in(dir)
        .map_err(|e| Failure::Invalid(anyhow::anyhow!("cannot read `{}`: {e}", dir.display())))?;
    check_files(host, &files, dir, as_json, quiet)
}

/// Checks `files` (of `dir`), one line each and a summary; exit 2 if any failed.
pub(super) fn check_files(
    host: &mut Host,
    files: &[PathBuf],
    dir: &Path,
    as_json: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut records = Vec::new();
    for file in files {
        match host.check_file(file) {
            Ok(report) => {
                ok += 1;
                let plan = &report.plan;
                if as_json {
                    let mut record = report_json(&report);
                    record["file"] = json!(file.display().to_string());
                    record["ok"] = json!(true);
                    records.push(record);
                } else {
                    let stubbed = if report.stubbed.is_empty() {
                        String::new()
                    } else {
                        format!(", {} stubbed", report.stubbed.len())
                    };
                    println!(
                        "ok    {}  ({}: {} nodes, {} components{stubbed})",
                        file.display(),
                        plan.id,
                        plan.nodes.len(),
                        plan.components.len()
                    );
                    if !quiet {
                        for note in &report.notes {
                            println!("      note: {note}");
                        }
                    }
                }
            }
            Err(failure) => {
                failed += 1;
                if as_json {
                    records.push(json!({"file": file.display().to_string(), "ok": false, "error": failure.to_string(), "exit": failure.exit_code()}));
                } else {
                    println!("FAIL  {}\n      {failure}", file.display());
                }
            }
        }
    }
    if as_json {
        let out = json!({"flows": records, "ok": ok, "failed": failed});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a JSON value serialises")
        );
    } else {
        println!("{} flows: {ok} ok, {failed} failed", files.len());
    }
    if failed > 0 {
        return Err(Failure::Invalid(anyhow::anyhow!(
            "{failed} of {} flows under `{}` failed the check",
            files.len(),
            dir.display()
        )));
    }
    Ok(())
}
