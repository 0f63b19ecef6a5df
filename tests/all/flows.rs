//! Golden cases: every folder of `tests/flows/` holds `flow.yaml` (plus an
//! optional `input.json`, resolve sidecars, flows it calls, and `args.txt`
//! with extra arguments, one per line) and either `expected.json` (the
//! output) or `error.txt` (`exit: N`, then lines that must appear in stderr).
//! `BLESS=1 cargo test` rewrites the expected files from what the runs produce.

use std::path::Path;

use crate::support::{host_shim, workspace};

#[test]
fn golden_flows() {
    let root = workspace().join("tests/flows");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus went missing");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(message) = check_case(case, bless) {
            failures.push(format!("{}: {message}", case.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn check_case(case: &Path, bless: bool) -> Result<(), String> {
    let rel = case.strip_prefix(workspace()).unwrap();
    let flow = rel.join("flow.yaml");
    let input = rel.join("input.json");
    let mut args = vec!["run".to_string(), flow.display().to_string(), "-q".into()];
    if workspace().join(&input).is_file() {
        args.extend(["--input".into(), format!("@{}", input.display())]);
    }
    if let Ok(extra) = std::fs::read_to_string(case.join("args.txt")) {
        args.extend(extra.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = host_shim(&args);
    let expected_json = case.join("expected.json");
    let error_txt = case.join("error.txt");
    if bless {
        let _ = std::fs::remove_file(&expected_json);
        let _ = std::fs::remove_file(&error_txt);
        if outcome.code == 0 {
            let pretty = serde_json::to_string_pretty(&outcome.json()).unwrap();
            std::fs::write(&expected_json, pretty + "\n").unwrap();
        } else {
            std::fs::write(
                &error_txt,
                format!("exit: {}\n{}\n", outcome.code, outcome.stderr),
            )
            .unwrap();
        }
        return Ok(());
    }
    if expected_json.is_file() {
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&expected_json).unwrap()).unwrap();
        if outcome.code != 0 {
            return Err(format!("expected success, got {outcome}"));
        }
        if outcome.json() != expected {
            return Err(format!("expected {expected}, got {outcome}"));
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(&error_txt)
        .map_err(|_| "no expected.json or error.txt".to_string())?;
    let mut lines = text.lines();
    let code: i32 = lines
        .next()
        .and_then(|l| l.strip_prefix("exit: "))
        .and_then(|c| c.parse().ok())
        .ok_or("error.txt must start with `exit: N`")?;
    if outcome.code != code {
        return Err(format!("expected exit {code}, got {outcome}"));
    }
    if !outcome.stdout.is_empty() {
        return Err(format!(
            "a failed run must print nothing on stdout, got {outcome}"
        ));
    }
    for needle in lines.filter(|l| !l.trim().is_empty()) {
        if !outcome.stderr.contains(needle) {
            return Err(format!("stderr lacks {needle:?}: {outcome}"));
        }
    }
    Ok(())
}
