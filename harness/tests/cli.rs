//! The `mg-harness` CLI end to end on the sample scenarios.

use std::path::PathBuf;
use std::process::Command;

use meshguard_wasm_artifacts::{ABI_PROBE, PASSTHROUGH};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mg-harness"))
        .args(args)
        .output()
        .unwrap_or_else(|e| unreachable!("cannot run mg-harness: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty() || out.status.code() != Some(0),
        "{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn passthrough_scenario_passes() {
    let scenario = examples().join("passthrough.scenario.json");
    let filter = format!("passthrough={PASSTHROUGH}");
    let (code, stdout) = run(&[
        "run",
        "--filter",
        &filter,
        scenario.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last().copied(), Some("2 passed, 0 failed"));
    let first: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| unreachable!("not JSON: {e}"));
    assert_eq!(first["status"], 200);
    assert_eq!(first["action"], "continue");
    assert!(first["upstream_headers"]
        .to_string()
        .contains("x-request-id"));
}

#[test]
fn probe_scenario_with_upstream_and_metrics_passes() {
    let scenario = examples().join("probe.scenario.json");
    let filter = format!("abi_probe={ABI_PROBE}");
    let (code, stdout) = run(&[
        "run",
        "--filter",
        &filter,
        scenario.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.lines().last(), Some("3 passed, 0 failed"));
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| unreachable!("not JSON: {e}"));
    assert_eq!(first["local_reply"]["status"], 403);
    assert_eq!(first["metrics"]["probe_requests_total"], 1);
}

#[test]
fn failed_expectation_exits_non_zero() {
    let scenario = examples().join("failing.scenario.json");
    let filter = format!("passthrough={PASSTHROUGH}");
    let (code, stdout) = run(&[
        "run",
        "--filter",
        &filter,
        scenario.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
    assert!(stdout.contains("status: expected 418, got 200"), "{stdout}");
}

#[test]
fn bad_usage_exits_2() {
    let (code, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
}
