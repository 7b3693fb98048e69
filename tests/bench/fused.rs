//! The fused module (`filters/fused`) in the harness: every chain scenario under
//! `tests/scenarios/` whose filters are meshguard stages runs through one fused filter, configured
//! with the same filter configs side by side, and must meet the same expectations (statuses,
//! replies, upstream and response headers, metrics, filter state). Plus config errors named by
//! the section's field path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuse.rs"]
mod fuse;

use std::path::{Path, PathBuf};

use meshguard_harness::runner::{self, ChainOverride};
use meshguard_harness::scenario::Scenario;
use meshguard_harness::{HarnessError, Host, HostEvent};
use serde_json::{json, Value};

use fuse::{fuse, scenario_files};

#[test]
fn chain_scenarios_pass_through_the_fused_module() {
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for path in scenario_files() {
        let Some(fused) = fuse(&path) else { continue };
        let scenario: Scenario = serde_json::from_value(fused).unwrap();
        let host = runner::build_host(&scenario, path.parent().unwrap(), &ChainOverride::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut emit = |r: &runner::RequestResult| {
            if !r.passed {
                failures.push(format!(
                    "{} / {}: {:?}",
                    path.display(),
                    r.request,
                    r.failures
                ));
            }
        };
        let (passed, failed) = runner::run(&host, &scenario, &mut emit).unwrap();
        println!("{}: {passed} passed, {failed} failed", path.display());
        ran.push(path);
    }
    assert!(
        ran.iter().any(|p| p.ends_with("audit/full_chain.json")),
        "the full-chain scenario must be among those run: {ran:?}"
    );
    assert!(
        ran.len() >= 8,
        "only {} scenarios fused: {ran:?}",
        ran.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn config_errors_name_the_section() {
    let config = json!({"ratelimit": {"rules": [{"name": "r", "limits": "x"}]}, "bogus": {}});
    let built = Host::builder(meshguard_wasm_artifacts::FUSED)
        .name("fused")
        .plugin_config_json(config)
        .build();
    match built {
        Err(HarnessError::ConfigureRejected { logs, .. }) => {
            let all = logs.join("\n");
            assert!(all.contains("bogus: unknown field"), "{all}");
            assert!(all.contains("ratelimit.rules[0].limits"), "{all}");
        }
        other => panic!("expected the config to be refused: {:?}", other.err()),
    }
}

/// The full-chain scenario (`audit/full_chain.json`).
fn full_chain_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/audit/full_chain.json")
}

/// Runs only the first request of `scenario` (a scenario under `scenarios/audit/`, as JSON) on
/// one worker and returns the host events it caused.
fn first_request_events(mut scenario: Value) -> Vec<HostEvent> {
    scenario["requests"] = json!([scenario["requests"][0].clone()]);
    let scenario: Scenario = serde_json::from_value(scenario).unwrap();
    let path = full_chain_path();
    let host = runner::build_host(
        &scenario,
        path.parent().unwrap(),
        &ChainOverride {
            workers: Some(1),
            ..ChainOverride::default()
        },
    )
    .unwrap();
    let before = host.events().len();
    let (passed, _) = runner::run(&host, &scenario, &mut |_| {}).unwrap();
    assert_eq!(passed, 1);
    host.events().into_iter().skip(before).collect()
}

/// One callback per phase instead of one per filter and phase.
#[test]
fn one_filter_callback_per_phase() {
    let events = first_request_events(fuse(&full_chain_path()).unwrap());
    let callbacks = events
        .iter()
        .filter(|e| matches!(e, HostEvent::Callback { name, .. } if name.starts_with("proxy_on_")))
        .count();
    println!("fused: {callbacks} callbacks for one request (the four-filter chain: 4x)");
    assert!(callbacks <= 8, "{callbacks}");
}

/// The stages' hand-off is answered in memory: no `proxy_get_property` of a key a stage of the
/// module publishes (`meshguard.*`), while every `proxy_set_property` still reaches the host; so
/// one full-chain request takes fewer hostcalls fused than through the four filters.
#[test]
fn hand_off_between_stages_takes_no_hostcall() {
    let path = full_chain_path();
    let hostcalls = |scenario: Value| {
        first_request_events(scenario)
            .into_iter()
            .filter_map(|e| match e {
                HostEvent::Hostcall { name, args, .. } => Some((name, args)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let fused_calls = hostcalls(fuse(&path).unwrap());
    let chain: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let chain_calls = hostcalls(chain);

    let handoff_reads = |calls: &[(&str, String)]| {
        calls
            .iter()
            .filter(|(n, a)| *n == "proxy_get_property" && a.contains("meshguard."))
            .count()
    };
    let count =
        |calls: &[(&str, String)], name: &str| calls.iter().filter(|(n, _)| *n == name).count();
    println!(
        "one request: chain {} hostcalls ({} hand-off reads), fused {} ({} hand-off reads)",
        chain_calls.len(),
        handoff_reads(&chain_calls),
        fused_calls.len(),
        handoff_reads(&fused_calls)
    );
    assert!(handoff_reads(&chain_calls) > 0, "{chain_calls:?}");
    assert_eq!(handoff_reads(&fused_calls), 0, "{fused_calls:?}");
    assert_eq!(
        count(&fused_calls, "proxy_set_property"),
        count(&chain_calls, "proxy_set_property")
    );
    assert!(fused_calls.len() < chain_calls.len());
}
