//! `host-shim schedules`: the schedules a served directory or pack declares,
//! with their next fire times, checked against the flows it holds.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;

use super::setup::{Sources, target};
use crate::Failure;
use crate::schedules::Schedules;

/// `host-shim schedules`.
#[derive(Debug, Args)]
pub struct SchedulesArgs {
    /// The directory of flows or pack `serve` would serve.
    pub target: PathBuf,
    /// The bindings file (default: `bindings.yaml` in TARGET).
    #[arg(long, value_name = "FILE")]
    pub bindings: Option<PathBuf>,
    /// Fire times to list per schedule.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 3)]
    pub count: usize,
    /// List fire times after this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
}

pub(super) fn schedules(args: SchedulesArgs) -> Result<(), Failure> {
    let invalid = |message: String| Failure::Invalid(anyhow::anyhow!(message));
    let from = match &args.from {
        None => crate::clock::now_utc(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| invalid(format!("--from `{text}`: {e}")))?
            .with_timezone(&Utc),
    };
    let root = match target(&args.target, &Sources::listing())? {
        compose::pack::Target::Pack(pack, _) => pack.root,
        compose::pack::Target::Flow(path) => path,
    };
    let schedules = Schedules::for_target(&root, args.bindings.as_deref())
        .map_err(|e| Failure::Invalid(e.into()))?;
    let Some(file) = &schedules.file else {
        return Err(invalid(format!(
            "no bindings file: give --bindings FILE or put `{}` in {}",
            crate::schedules::BINDINGS_FILE,
            root.display()
        )));
    };
    let flows: Vec<String> = target(&root, &Sources::listing())?
        .flow_files()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| compose::pack::flow_id_of(f))
        .collect();
    let missing: Vec<String> = schedules
        .timers
        .iter()
        .filter(|t| !flows.contains(&t.flow_id))
        .map(|t| format!("{} (flow `{}`)", t.schedule_id, t.flow_id))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "{}: schedules name flows {} does not hold: {}",
            file.display(),
            root.display(),
            missing.join(", ")
        )));
    }
    println!(
        "{} schedule(s) in {}{}",
        schedules.timers.len(),
        file.display(),
        schedules
            .tenant
            .as_ref()
            .map(|t| format!(", for tenant `{t}`"))
            .unwrap_or_default()
    );
    for timer in &schedules.timers {
        let missed = match timer.missed {
            crate::schedules::Missed::Skip => "skip",
            crate::schedules::Missed::CatchUp => "catch-up",
        };
        println!(
            "{}: flow `{}`, cron `{}`, {}, missed ticks: {missed}",
            timer.schedule_id, timer.flow_id, timer.cron, timer.timezone
        );
        for tick in timer.upcoming(from).take(args.count) {
            let local = tick.with_timezone(&timer.timezone);
            println!(
                "  {}  ({})",
                tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                local.format("%a %Y-%m-%d %H:%M:%S %Z")
            );
        }
    }
    Ok(())
}
