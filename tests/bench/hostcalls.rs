//! Hostcalls per request, per filter and per hostcall, for the full chain scenario
//! (`tests/scenarios/audit/full_chain.json`) run through the compiled filters in the harness.
//!
//! Every hostcall crosses the wasm↔host boundary (in Envoy's V8: a call transition plus, for
//! properties and headers, a serialization). The table is printed (`--nocapture`); the test
//! asserts an upper bound per filter so that a change that adds hostcalls to the per-request path
//! is noticed (raise the bound deliberately, with the reason, if a feature needs more).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use meshguard_harness::runner::{self, ChainOverride};
use meshguard_harness::scenario::Scenario;
use meshguard_harness::HostEvent;

/// Counts per (filter index, hostcall name) of the first request of a scenario (the allowed one).
fn count(scenario: &Path) -> (Vec<String>, BTreeMap<(usize, &'static str), usize>) {
    let text = std::fs::read_to_string(scenario).unwrap();
    let mut scenario_value: Scenario = serde_json::from_str(&text).unwrap();
    scenario_value.requests.truncate(1);
    let names = scenario_value
        .filters
        .iter()
        .map(|f| f.name.clone())
        .collect::<Vec<_>>();
    let chain = ChainOverride {
        filters: meshguard_tests_artifacts(&names),
        configs: BTreeMap::new(),
        workers: Some(1),
    };
    let base = scenario.parent().unwrap();
    let host = runner::build_host(&scenario_value, base, &chain).unwrap();
    let before = host.events().len();
    let mut emit = |r: &runner::RequestResult| assert!(r.passed, "{:?}", r.failures);
    let (passed, failed) = runner::run(&host, &scenario_value, &mut emit).unwrap();
    assert_eq!((passed, failed), (1, 0));
    let mut counts = BTreeMap::new();
    for event in host.events().into_iter().skip(before) {
        if let HostEvent::Hostcall { filter, name, .. } = event {
            *counts.entry((filter, name)).or_insert(0) += 1;
        }
    }
    (names, counts)
}

/// The freshly built `.wasm` of each named filter.
fn meshguard_tests_artifacts(names: &[String]) -> Vec<(String, std::path::PathBuf)> {
    names
        .iter()
        .map(|name| {
            let path = match name.as_str() {
                "jwt_authn" => meshguard_wasm_artifacts::JWT_AUTHN,
                "authz" => meshguard_wasm_artifacts::AUTHZ,
                "ratelimit" => meshguard_wasm_artifacts::RATELIMIT,
                "audit" => meshguard_wasm_artifacts::AUDIT,
                other => panic!("no artifact for {other}"),
            };
            (name.clone(), std::path::PathBuf::from(path))
        })
        .collect()
}

fn scenario(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn hostcalls_per_request_in_the_full_chain() {
    let (names, counts) = count(&scenario("scenarios/audit/full_chain.json"));
    let mut totals = vec![0usize; names.len()];
    println!("hostcalls of one allowed request through the full chain:");
    for ((filter, name), n) in &counts {
        println!("  {:<10} {name:<40} {n}", names[*filter]);
        totals[*filter] += n;
    }
    for (name, total) in names.iter().zip(&totals) {
        println!("  {name:<10} total {total}");
    }
    // Upper bounds (see the module doc).
    // Measured in Envoy (envoy-config/bench/hostcalls.yaml), one hostcall costs about 1.5-6 µs of
    // CPU, so these are tight: today's counts plus a little room.
    let bounds = [
        ("jwt_authn", 12),
        ("authz", 8),
        ("ratelimit", 12),
        ("audit", 26),
    ];
    for (name, total) in names.iter().zip(&totals) {
        let bound = bounds.iter().find(|(n, _)| n == name).map_or(0, |b| b.1);
        assert!(*total <= bound, "{name}: {total} hostcalls > {bound}");
    }
}
