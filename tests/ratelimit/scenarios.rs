//! Runs the scenario files of one area (`tests/scenarios/<area>/*.json`) on the harness, the
//! way `mg-harness run` does; the e2e suite replays the same files on a real Envoy.

use std::path::{Path, PathBuf};

use meshguard_harness::runner::{self, ChainOverride};
use meshguard_harness::scenario::Scenario;

fn scenario_dir(area: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(area)
}

/// Runs every scenario of `area` and fails with every failed expectation; returns how many
/// scenario files ran.
pub fn run_area(area: &str) -> usize {
    let dir = scenario_dir(area);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let scenario: Scenario =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let host = runner::build_host(&scenario, &dir, &ChainOverride::default())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut emit = |r: &runner::RequestResult| {
            if !r.failures.is_empty() {
                failures.push(format!(
                    "{} / {}: logs {:?}",
                    file.display(),
                    r.request,
                    r.logs
                ));
            }
            for f in &r.failures {
                failures.push(format!(
                    "{} / {} (copy {}): {f}",
                    file.display(),
                    r.request,
                    r.copy
                ));
            }
        };
        let (passed, failed) = runner::run(&host, &scenario, &mut emit)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if passed + failed == 0 {
            failures.push(format!("{}: no request ran", file.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    files.len()
}
