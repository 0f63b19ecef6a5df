//! Schedules: flows run on a cron clock, declared as greentic declares them
//! — the `timers` of a bindings file (greentic-runner's `TimerBinding`:
//! `flow_id`, `cron`, optional `schedule_id` defaulting to the flow id) —
//! and started with the entry greentic gives a timer run: `{"now": the tick
//! (RFC 3339, UTC), "schedule_id": …}`.
//!
//! Cron text is read by the `cron` crate, as greentic-runner reads it: five
//! fields (minute hour day-of-month month day-of-week) get a leading `0`
//! for seconds; six or seven fields are seconds first, an optional year
//! last. Day-of-week numbers follow that crate (1 = Sunday … 7 = Saturday;
//! names `Mon`…`Sun` are the safer spelling).
//!
//! Two keys greentic does not have: `timezone` (an IANA zone; greentic
//! fires in UTC, the default here) and `missed` (what a schedule does about
//! ticks that passed while no server ran: `skip`, the default and what
//! greentic does, or `catch-up`: the latest missed tick runs once, late).
//! Which process runs a tick is settled in the state backend ([`claims`]).

pub mod claims;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

/// What a schedule does about ticks missed while no server ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Forget them: the next run is the next tick.
    Skip,
    /// Run the latest missed one once, late (never more than one).
    CatchUp,
}

/// One declared schedule.
#[derive(Debug, Clone)]
pub struct Timer {
    /// Its id: what its ticks are claimed and counted under.
    pub schedule_id: String,
    /// The flow it runs.
    pub flow_id: String,
    /// The cron text as written.
    pub cron: String,
    /// The zone the cron fields are read in.
    pub timezone: Tz,
    /// Ticks missed while no server ran.
    pub missed: Missed,
    schedule: cron::Schedule,
}

/// The schedules of a bindings file and the tenant they run for.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    /// The bindings file read.
    pub file: Option<PathBuf>,
    /// The runs' tenant (greentic's `tenant`), if the file names one.
    pub tenant: Option<String>,
    /// The timers, in file order.
    pub timers: Vec<Timer>,
}

/// A bindings file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default(), timer.as_ref().map(|t| format!(": timer `{t}`")).unwrap_or_default())]
pub struct BindingsError {
    /// The bindings file.
    pub file: String,
    /// The line, where known.
    pub line: Option<usize>,
    /// The timer's schedule id, when the fault is one timer's.
    pub timer: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The parts of a (greentic) bindings file read here; the rest is ignored.
#[derive(Deserialize)]
struct BindingsFile {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    timers: Vec<TimerBinding>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimerBinding {
    flow_id: String,
    cron: String,
    #[serde(default)]
    schedule_id: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    missed: Option<String>,
}

/// The file a served directory or pack keeps its bindings in.
pub const BINDINGS_FILE: &str = "bindings.yaml";

impl Schedules {
    /// The schedules for serving `target`: of `explicit` when given, else of
    /// [`BINDINGS_FILE`] in the served directory (or pack root) if there is
    /// one, else none.
    pub fn for_target(target: &Path, explicit: Option<&Path>) -> Result<Schedules, BindingsError> {
        match explicit {
            Some(file) => Schedules::load(file),
            None if target.join(BINDINGS_FILE).is_file() => {
                Schedules::load(&target.join(BINDINGS_FILE))
            }
            None => Ok(Schedules::default()),
        }
    }

    /// Reads the `tenant` and `timers` of the bindings file at `path`.
    pub fn load(path: &Path) -> Result<Schedules, BindingsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| BindingsError {
            file: file.clone(),
            line: None,
            timer: None,
            message: format!("cannot read it: {e}"),
        })?;
        let mut schedules = Schedules::parse(&file, &text)?;
        schedules.file = Some(path.to_path_buf());
        Ok(schedules)
    }

    /// Parses bindings text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Schedules, BindingsError> {
        let bindings: BindingsFile = serde_yaml::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            // The position goes in front, as file:line.
            if let Some(cut) = message.find(" at line ") {
                message.truncate(cut);
            }
            BindingsError {
                file: file.to_string(),
                line: e.location().map(|l| l.line()),
                timer: None,
                message,
            }
        })?;
        let mut timers: Vec<Timer> = Vec::with_capacity(bindings.timers.len());
        for binding in bindings.timers {
            let id = binding
                .schedule_id
                .clone()
                .unwrap_or_else(|| binding.flow_id.clone());
            let fault = |message: String| BindingsError {
                file: file.to_string(),
                line: line_of(text, &binding.cron),
                timer: Some(id.clone()),
                message,
            };
            if crate::sessions::check_id(&id).is_err() {
                return Err(fault(
                    "a schedule id is 1 to 128 letters, digits, `.`, `_`, `-` or `@`".into(),
                ));
            }
            if timers.iter().any(|t| t.schedule_id == id) {
                return Err(fault(
                    "a second timer with this schedule id (give each its own `schedule_id`)".into(),
                ));
            }
            let schedule = parse_cron(&binding.cron).map_err(fault)?;
            let timezone = match &binding.timezone {
                None => Tz::UTC,
                Some(zone) => Tz::from_str(zone).map_err(|_| {
                    fault(format!(
                        "unknown time zone `{zone}` (an IANA name such as `Europe/Zurich`)"
                    ))
                })?,
            };
            let missed = match binding.missed.as_deref() {
                None | Some("skip") => Missed::Skip,
                Some("catch-up" | "catch_up") => Missed::CatchUp,
                Some(other) => {
                    return Err(fault(format!(
                        "`missed: {other}` is neither `skip` nor `catch-up`"
                    )));
                }
            };
            timers.push(Timer {
                schedule_id: id,
                flow_id: binding.flow_id,
                cron: binding.cron,
                timezone,
                missed,
                schedule,
            });
        }
        Ok(Schedules {
            file: None,
            tenant: bindings.tenant,
            timers,
        })
    }
}

impl Timer {
    /// The ticks after `after`, in order (as UTC instants).
    pub fn upcoming(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.schedule
            .after(&after.with_timezone(&self.timezone))
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest tick at or before `at`.
    pub fn latest(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `after` excludes its start: look from just after `at`, backwards.
        let from = at + chrono::Duration::milliseconds(1);
        self.schedule
            .after(&from.with_timezone(&self.timezone))
            .next_back()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The entry of the run for `tick`, as greentic-runner gives a timer run.
    pub fn entry(&self, tick: DateTime<Utc>) -> Value {
        json!({
            "now": tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "schedule_id": self.schedule_id,
        })
    }
}

/// Cron text as greentic reads it (five fields get seconds `0`).
fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let normalized = if fields == 5 {
        format!("0 {text}")
    } else {
        text.to_string()
    };
    if !(5..=7).contains(&fields) && !text.trim_start().starts_with('@') {
        return Err(format!(
            "cron `{text}` has {fields} fields: write 5 (minute hour day month weekday) or 6–7 (seconds first, optional year)"
        ));
    }
    // The crate's message only echoes the text: say what the fields hold.
    cron::Schedule::from_str(&normalized).map_err(|_| {
        format!(
            "cron `{text}` is not a valid schedule: a field is out of range or misspelt (seconds 0-59, minutes 0-59, hours 0-23, day 1-31, month 1-12 or Jan-Dec, weekday 1-7 with 1 = Sunday or Sun-Sat, year)"
        )
    })
}

/// The 1-based line where `needle` first appears.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn timers_read_as_greentic_declares_them() {
        let text = "tenant: acme\nflow_type_bindings: {}\ntimers:\n  - flow_id: digest\n    cron: \"30 9 * * *\"\n  - flow_id: digest\n    schedule_id: zurich\n    cron: \"0 0 9 * * *\"\n    timezone: Europe/Zurich\n    missed: catch-up\n";
        let s = Schedules::parse("b.yaml", text).unwrap();
        assert_eq!(s.tenant.as_deref(), Some("acme"));
        let [utc, zurich] = s.timers.as_slice() else {
            panic!("two timers")
        };
        assert_eq!(
            (utc.schedule_id.as_str(), utc.missed),
            ("digest", Missed::Skip)
        );
        let from = at("2026-12-03T10:00:00Z");
        let next: Vec<_> = utc.upcoming(from).take(2).collect();
        assert_eq!(
            next,
            [at("2026-12-04T09:30:00Z"), at("2026-12-05T09:30:00Z")]
        );
        // 09:00 in Zurich is 08:00 UTC in winter.
        assert_eq!(
            zurich.upcoming(from).next(),
            Some(at("2026-12-04T08:00:00Z"))
        );
        assert_eq!(zurich.missed, Missed::CatchUp);
        assert_eq!(utc.latest(from), Some(at("2026-12-03T09:30:00Z")));
        assert_eq!(
            utc.latest(at("2026-12-03T09:30:00Z")),
            Some(at("2026-12-03T09:30:00Z"))
        );
        assert_eq!(
            utc.entry(at("2026-12-04T09:30:00Z")),
            json!({"now": "2026-12-04T09:30:00Z", "schedule_id": "digest"})
        );
    }

    #[test]
    fn bad_timers_name_file_line_and_timer() {
        let cases = [
            (
                "timers:\n  - flow_id: a\n    cron: \"* * *\"\n",
                "b.yaml:3: timer `a`: cron `* * *` has 3 fields",
            ),
            (
                "timers:\n  - flow_id: a\n    cron: \"61 * * * *\"\n",
                "b.yaml:3: timer `a`: cron `61 * * * *`",
            ),
            (
                "timers:\n  - flow_id: a\n    cron: \"* * * * *\"\n    timezone: Mars/Olympus\n",
                "unknown time zone `Mars/Olympus`",
            ),
            (
                "timers:\n  - flow_id: a\n    cron: \"* * * * *\"\n    missed: twice\n",
                "`missed: twice`",
            ),
            (
                "timers:\n  - flow_id: a\n    cron: \"* * * * *\"\n  - flow_id: a\n    cron: \"0 * * * *\"\n",
                "a second timer",
            ),
            (
                "timers:\n  - flow: a\n    cron: \"* * * * *\"\n",
                "b.yaml:2: timers[0]: unknown field `flow`",
            ),
        ];
        for (text, needle) in cases {
            let e = Schedules::parse("b.yaml", text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
    }
}
