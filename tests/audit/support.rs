//! Helpers shared by the audit tests.

use meshguard_harness::{Host, HostBuilder, Outcome};
use meshguard_wasm_artifacts::{ABI_PROBE, AUDIT};
use serde_json::Value;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Filter-state key of the record, as Envoy names it.
pub const RECORD: &str = "wasm.meshguard.audit.record";

/// The audit filter alone.
pub fn audit(config: Value) -> HostBuilder {
    Host::builder(AUDIT)
        .name("audit")
        .plugin_config_json(config)
}

/// The abi-probe filter (driven per request by `x-probe-request_headers: op;op`, e.g.
/// `set_state:meshguard.authz.decision=deny;local_reply:403`) standing in for the earlier
/// filters, then the audit filter.
pub fn probe_then_audit(config: Value) -> HostBuilder {
    Host::builder(ABI_PROBE)
        .name("probe")
        .plugin_config_json(serde_json::json!({}))
        .then(AUDIT)
        .name("audit")
        .plugin_config_json(config)
}

/// The audit record the request left in filter state, parsed.
pub fn record(out: &Outcome) -> Value {
    let text = out
        .filter_state
        .get(RECORD)
        .unwrap_or_else(|| panic!("no audit record in {:?}", out.filter_state));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("record is not JSON ({e}): {text}"))
}

/// True for a lowercase UUID v4.
pub fn is_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a valid version-00 traceparent; returns (trace id, span id, flags).
pub fn traceparent_parts(value: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    };
    match parts.as_slice() {
        ["00", t, s, f]
            if hex(t, 32)
                && hex(s, 16)
                && hex(f, 2)
                && *t != "0".repeat(32)
                && *s != "0".repeat(16) =>
        {
            Some((t.to_string(), s.to_string(), f.to_string()))
        }
        _ => None,
    }
}

/// Asserts no VM trapped.
pub fn no_traps(host: &Host) {
    assert!(host.traps().is_empty(), "traps: {:?}", host.traps());
}
