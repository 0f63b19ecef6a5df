//! Schedules: a bindings file's `timers` run by `serve`, each tick exactly
//! once across servers sharing one Redis, and a tick whose server died
//! holding it run by another after the lease. Each tick's run writes the key
//! `tick-<now>` with create-if-absent: a second run of a tick finds it taken
//! and raises a `duplicate` mark instead, so "once" is checked tick by tick.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};

use crate::support::*;

const TICKS: i64 = 10;

/// A directory with the `tick` flow, a state-probe with a manifest, and a
/// bindings file whose one timer fires every second for [`TICKS`] seconds
/// from `first` (a seven-field cron: seconds first, the year last). Its runs
/// act for the tenant `name`: tests may share one Redis (CI's
/// `GREENTIC_TEST_REDIS_URL`), never one tenant.
fn scheduled_dir(name: &str, first: DateTime<Utc>) -> PathBuf {
    let dir = probe_dir(name);
    std::fs::write(
        dir.join("tick.ygtc"),
        "id: tick\nnodes:\n  mark:\n    component.exec: { component: ./state-probe.wasm, operation: write-if-absent, input: { key: \"tick-{{entry.now}}\", bytes: [1] } }\n    routing:\n      - to: again\n        condition: out.created == false\n      - out: true\n  again:\n    component.exec: { component: ./state-probe.wasm, operation: write, input: { key: duplicate, bytes: [1] } }\n",
    )
    .unwrap();
    let last = first + chrono::Duration::seconds(TICKS - 1);
    assert_eq!(
        first.minute(),
        last.minute(),
        "the window stays in one minute"
    );
    let cron = format!(
        "{}-{} {} {} {} {} * {}",
        first.second(),
        last.second(),
        first.minute(),
        first.hour(),
        first.day(),
        first.month(),
        first.year()
    );
    std::fs::write(
        dir.join("bindings.yaml"),
        format!("tenant: {name}\ntimers:\n  - flow_id: tick\n    schedule_id: every-second\n    cron: \"{cron}\"\n"),
    )
    .unwrap();
    dir
}

/// The first tick of a window starting `lead` from now, moved to the next
/// minute when the window would cross one.
fn window_start(lead: Duration) -> DateTime<Utc> {
    let first = (Utc::now() + chrono::Duration::from_std(lead).unwrap()).trunc_subsecs(0)
        + chrono::Duration::seconds(1);
    if first.second() as i64 + TICKS - 1 > 59 {
        first.with_second(0).unwrap() + chrono::Duration::minutes(1)
    } else {
        first
    }
}

fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}

fn serve_scheduled(dir: &Path, redis: &str, faults: Option<&str>) -> Served {
    let args = vec![
        "--addr",
        "127.0.0.1:0",
        "--state",
        redis,
        "--run-timeout",
        "2s",
        "--tick-lease",
        "3s",
        "-q",
    ];
    let env: Vec<(&str, &str)> = faults.map(|f| ("GREENTIC_FAULTS", f)).into_iter().collect();
    serve_env(dir, &args, &env)
}

/// What the window left in state: which ticks ran (by their keys), and
/// whether any tick ran twice.
fn outcome(dir: &Path, redis: &str, first: DateTime<Utc>) -> (Vec<bool>, bool) {
    let mut keys: Vec<String> = (0..TICKS)
        .map(|i| {
            let now = (first + chrono::Duration::seconds(i))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!("tick-{now}")
        })
        .collect();
    keys.push("duplicate".into());
    let tenant = dir.file_name().unwrap().to_str().unwrap();
    let mut ran = probe_keys(dir, redis, tenant, &keys);
    let duplicate = ran.pop().unwrap();
    (ran, duplicate)
}

#[test]
fn three_servers_on_one_redis_run_each_tick_once() {
    let redis = redis();
    let first = window_start(Duration::from_secs(5));
    let dir = scheduled_dir("schedules-three", first);
    let servers: Vec<Served> = (0..3)
        .map(|_| serve_scheduled(&dir, &redis.url, None))
        .collect();
    sleep_until(first + chrono::Duration::seconds(TICKS) + chrono::Duration::milliseconds(1500));
    drop(servers);
    let (ran, duplicate) = outcome(&dir, &redis.url, first);
    assert_eq!(ran, vec![true; TICKS as usize], "every tick ran");
    assert!(!duplicate, "and none twice");
}

#[test]
fn a_tick_whose_server_died_holding_it_runs_once_after_the_lease() {
    let redis = redis();
    let first = window_start(Duration::from_secs(3));
    let dir = scheduled_dir("schedules-died", first);
    // Alone, the doomed server claims the first tick and dies holding it.
    let mut doomed = serve_scheduled(&dir, &redis.url, Some("die-holding-tick=1"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = doomed.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the doomed server never claimed a tick"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // Two servers come up while that tick is still held.
    let up = Utc::now();
    let survivors: Vec<Served> = (0..2)
        .map(|_| serve_scheduled(&dir, &redis.url, None))
        .collect();
    let ready = Utc::now();
    assert!(
        ready - up < chrono::Duration::seconds(3),
        "servers took too long to start: the lease ran out first"
    );
    sleep_until(first + chrono::Duration::seconds(TICKS) + chrono::Duration::milliseconds(1500));
    drop(survivors);
    let (ran, duplicate) = outcome(&dir, &redis.url, first);
    assert!(ran[0], "the abandoned tick ran after its lease: {ran:?}");
    // Ticks after the survivors were up all ran; none twice.
    for (i, ran) in ran.iter().enumerate() {
        if first + chrono::Duration::seconds(i as i64) > ready {
            assert!(ran, "tick {i} ran: {ran:?}");
        }
    }
    assert!(!duplicate, "no tick ran twice");
}

#[test]
fn schedules_lists_fire_times_and_refuses_unknown_flows() {
    let dir = scratch("schedules-list");
    std::fs::write(
        dir.join("digest.ygtc"),
        "id: digest\nnodes:\n  a:\n    echo: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bindings.yaml"),
        "tenant: acme\ntimers:\n  - flow_id: digest\n    cron: \"30 9 * * Mon-Fri\"\n    timezone: Europe/Zurich\n",
    )
    .unwrap();
    let out = host_shim(&[
        "schedules",
        dir.to_str().unwrap(),
        "--from",
        "2026-12-04T12:00:00Z",
        "-n",
        "2",
    ]);
    assert_eq!(out.code, 0, "{out}");
    // Friday 4 December, then Monday 7 (09:30 in Zurich is 08:30 UTC).
    assert!(out.stdout.contains("2026-12-07T08:30:00Z"), "{out}");
    assert!(out.stdout.contains("2026-12-08T08:30:00Z"), "{out}");
    assert!(out.stdout.contains("for tenant `acme`"), "{out}");
    std::fs::write(
        dir.join("bindings.yaml"),
        "timers:\n  - flow_id: nightly\n    cron: \"0 2 * * *\"\n",
    )
    .unwrap();
    let out = host_shim(&["schedules", dir.to_str().unwrap()]);
    expect_failure(&out, 2, "schedules name flows");
    std::fs::write(
        dir.join("bindings.yaml"),
        "timers:\n  - flow_id: digest\n    cron: \"0 25 * * *\"\n",
    )
    .unwrap();
    let out = host_shim(&["schedules", dir.to_str().unwrap()]);
    expect_failure(
        &out,
        2,
        "bindings.yaml:3: timer `digest`: cron `0 25 * * *` is not a valid schedule",
    );
}

/// Missed ticks: with `missed: catch-up` the latest one runs once when a
/// server starts after them, with `skip` none does. Two servers one after
/// the other on one file store, their clocks set ahead (debug builds'
/// `clock-offset-ms`): the first stands a few seconds before a minute and runs its
/// tick; the second stands three and a half minutes later.
#[test]
fn missed_ticks_are_caught_up_once_or_skipped() {
    let dir = probe_dir("schedules-missed");
    std::fs::write(
        dir.join("tick.ygtc"),
        "id: tick\nnodes:\n  mark:\n    component.exec: { component: ./state-probe.wasm, operation: write-if-absent, input: { key: \"{{entry.schedule_id}}-{{entry.now}}\", bytes: [1] } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bindings.yaml"),
        "tenant: schedules-missed\ntimers:\n  - flow_id: tick\n    schedule_id: caught\n    cron: \"0 * * * * *\"\n    missed: catch-up\n  - flow_id: tick\n    schedule_id: skipped\n    cron: \"0 * * * * *\"\n",
    )
    .unwrap();
    let state = format!("file:{}", dir.join("state.redb").display());
    let real = Utc::now();
    let minute = real.with_second(0).unwrap().trunc_subsecs(0) + chrono::Duration::minutes(2);
    let ahead = |at: DateTime<Utc>| ((at - real).num_milliseconds().max(0)).to_string();
    let server = |offset_ms: String| {
        serve_env(
            &dir,
            &[
                "--addr",
                "127.0.0.1:0",
                "--state",
                &state,
                "--tick-lease",
                "90s",
                "-q",
            ],
            &[("GREENTIC_FAULTS", &format!("clock-offset-ms={offset_ms}"))],
        )
    };
    // Stands 6 s before `minute` (room to start): runs both schedules' tick at it.
    let first = server(ahead(minute - chrono::Duration::seconds(6)));
    for schedule in ["caught", "skipped"] {
        wait_for_metric(
            &first,
            &format!(
                "greentic_schedule_runs_total{{schedule=\"{schedule}\",outcome=\"completed\"}} 1"
            ),
        );
    }
    drop(first);
    // Three and a half minutes later: three ticks were missed.
    let second = server(ahead(minute + chrono::Duration::seconds(210)));
    wait_for_metric(
        &second,
        "greentic_schedule_runs_total{schedule=\"caught\",outcome=\"completed\"} 1",
    );
    drop(second);
    let at = |m: i64| {
        (minute + chrono::Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let keys = [
        format!("caught-{}", at(0)),
        format!("skipped-{}", at(0)),
        format!("caught-{}", at(1)),
        format!("caught-{}", at(2)),
        format!("caught-{}", at(3)),
        format!("skipped-{}", at(3)),
    ];
    let ran = probe_keys(&dir, &state, "schedules-missed", &keys);
    assert_eq!(
        ran,
        [true, true, false, false, true, false],
        "{keys:?}: both ran on time; only `caught` ran the latest missed tick, once"
    );
}
