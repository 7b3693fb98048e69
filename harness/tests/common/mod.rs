//! Helpers shared by the harness's integration tests.
#![allow(dead_code)]

use meshguard_harness::{Host, HostBuilder, HostEvent, LogEntry, Request};
use meshguard_wasm_artifacts::ABI_PROBE;

/// A builder over the abi-probe filter with `plan` as its plugin configuration.
pub fn probe(plan: serde_json::Value) -> HostBuilder {
    Host::builder(ABI_PROBE)
        .name("probe")
        .plugin_config_json(plan)
}

/// A GET whose probe ops per phase are given as `(phase, "op;op")`.
pub fn probe_request(ops: &[(&str, &str)]) -> Request {
    let mut r = Request::get("/probe").authority("api.example.com");
    for (phase, list) in ops {
        r = r.header(&format!("x-probe-{}", phase.replace('_', "-")), *list);
    }
    r
}

/// The result the probe logged for `op` in `phase` (first match).
pub fn result(logs: &[LogEntry], phase: &str, op: &str) -> Option<String> {
    let prefix = format!("probe {phase} {op} -> ");
    logs.iter()
        .find_map(|l| l.message.strip_prefix(&prefix).map(str::to_owned))
}

/// Callback names of `filter` on `worker`, in order.
pub fn callbacks(host: &Host, worker: Option<usize>, filter: usize) -> Vec<(&'static str, u32)> {
    host.events()
        .iter()
        .filter_map(|e| match e {
            HostEvent::Callback {
                name,
                worker: w,
                filter: f,
                context_id,
            } if *w == worker && *f == filter => Some((*name, *context_id)),
            _ => None,
        })
        .collect()
}

/// Turns any displayable error into a test failure message.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;
