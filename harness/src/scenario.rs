//! The declarative scenario format shared by the harness CLI and the real-Envoy runner.
//!
//! Everything here means the same on both hosts. Harness-only knobs are optional and ignored by
//! the Envoy runner: `workers`, `now` (a fake clock start; tokens in scenarios should carry
//! far-future or far-past fixed `exp` so they do not depend on it) and `expect.filter_state`
//! (Envoy exposes filter state only through access logs). See `harness/README.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::FailurePolicy;

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in results.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The filter chain, in order (the CLI's `--filter` flags replace it).
    #[serde(default)]
    pub filters: Vec<ScenarioFilter>,
    /// Clusters the filters may call (`proxy_http_call`), e.g. a remote JWKS; the Envoy runner
    /// serves each from a local HTTP server with this cluster name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, ScenarioUpstream>,
    /// Harness only, optional: fake clock start, Unix seconds.
    #[serde(default)]
    pub now: Option<u64>,
    /// Harness only, optional: number of worker VMs (requests go round-robin).
    #[serde(default)]
    pub workers: Option<usize>,
    /// The requests, sent in order.
    pub requests: Vec<ScenarioRequest>,
}

/// One filter of the chain.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFilter {
    /// Name (`jwt_authn`, `authz`, `ratelimit`, `audit`, `passthrough`, or any).
    pub name: String,
    /// Path of the `.wasm`, relative to the scenario file; default: the built artifact
    /// `meshguard_<name>.wasm`.
    #[serde(default)]
    pub wasm: Option<String>,
    /// Plugin configuration (JSON).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Plugin configuration file, relative to the scenario file (instead of `config`).
    #[serde(default)]
    pub config_file: Option<String>,
    /// Envoy `root_id`.
    #[serde(default)]
    pub root_id: Option<String>,
    /// Envoy `vm_id`.
    #[serde(default)]
    pub vm_id: Option<String>,
    /// `fail_closed` (default), `fail_open` or `fail_reload`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
}

/// Headers as an object (`{"name": "value"}`) or, to keep order and duplicates, a list of pairs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Headers {
    /// `{"name": "value"}`
    Map(BTreeMap<String, String>),
    /// `[["name", "value"], …]`
    List(Vec<(String, String)>),
}

impl Default for Headers {
    fn default() -> Headers {
        Headers::List(Vec::new())
    }
}

impl Headers {
    /// The pairs in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Headers::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Headers::List(l) => l.clone(),
        }
    }
}

/// How a cluster answers the filters' HTTP calls.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioUpstream {
    /// Status (default 200).
    #[serde(default = "ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: Headers,
    /// Body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as JSON (served with `content-type: application/json`).
    #[serde(default)]
    pub body_json: Option<serde_json::Value>,
    /// Delay before the answer, e.g. `"50ms"`.
    #[serde(default)]
    pub delay: Option<String>,
    /// Reset the connection instead of answering.
    #[serde(default)]
    pub fail: bool,
    /// Never answer (the caller's timeout fires).
    #[serde(default)]
    pub never_respond: bool,
}

fn ok() -> u16 {
    200
}

fn get() -> String {
    "GET".to_owned()
}

/// The client's TLS identity.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// URI SAN of the client certificate, e.g. `spiffe://cluster.local/ns/shop/sa/web`.
    pub spiffe_id: String,
}

/// What the application behind the chain answers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioResponse {
    /// Status (default 200).
    #[serde(default = "ok")]
    pub status: u16,
    /// Headers.
    #[serde(default)]
    pub headers: Headers,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRequest {
    /// Name shown in results.
    #[serde(default)]
    pub name: Option<String>,
    /// Method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Host / `:authority` (default `example.com`).
    #[serde(default)]
    pub authority: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: Headers,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// mTLS client identity; absent = plain connection.
    #[serde(default)]
    pub peer: Option<Peer>,
    /// Harness only, optional: set the fake clock (Unix seconds) before this request.
    #[serde(default)]
    pub now: Option<u64>,
    /// Send the same request this many times (default 1); expectations apply to each copy
    /// unless `expect_last` is given, which then applies to the last one.
    #[serde(default)]
    pub repeat: Option<u32>,
    /// The upstream application's answer (default 200, empty).
    #[serde(default)]
    pub response: Option<ScenarioResponse>,
    /// Expectations.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Expectations for the last copy of a repeated request.
    #[serde(default)]
    pub expect_last: Option<Expect>,
}

/// What must hold after a request. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status the client gets.
    #[serde(default)]
    pub status: Option<u16>,
    /// Whether the request reaches the upstream application.
    #[serde(default)]
    pub forwarded: Option<bool>,
    /// Headers the upstream gets, first value equal.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    /// Headers the upstream gets, any value.
    #[serde(default)]
    pub upstream_headers_present: Vec<String>,
    /// Headers the upstream must not get.
    #[serde(default)]
    pub upstream_headers_absent: Vec<String>,
    /// Response headers the client gets, first value equal.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// Response headers the client must not get.
    #[serde(default)]
    pub response_headers_absent: Vec<String>,
    /// Text the response body contains.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Metric changes over this request (name → delta), optional on both hosts.
    #[serde(default)]
    pub metrics: BTreeMap<String, i64>,
    /// Harness only (Envoy: via access log): filter state `wasm.<key>` → value.
    #[serde(default)]
    pub filter_state: BTreeMap<String, String>,
}

/// Parses `"500ms"`, `"5s"`, `"10m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scenario_and_rejects_unknown_fields() {
        let json = r#"{"requests":[{"path":"/","headers":{"a":"1"},"expect":{"status":200}}]}"#;
        let s: Scenario = serde_json::from_str(json).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(s.requests.len(), 1);
        assert_eq!(s.requests[0].method, "GET");
        let bad = r#"{"requests":[],"bogus":1}"#;
        assert!(serde_json::from_str::<Scenario>(bad).is_err());
        assert_eq!(parse_duration("50ms"), Some(Duration::from_millis(50)));
        assert_eq!(parse_duration("5x"), None);
    }
}
