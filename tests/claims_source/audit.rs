//! audit records the identity Envoy's jwt_authn verified.

use meshguard_harness::{Host, Outcome, Request};
use meshguard_wasm_artifacts::AUDIT;
use serde_json::{json, Value};

use super::{source, spoofed, with_payload};

fn host() -> Host {
    Host::builder(AUDIT)
        .plugin_config_json(json!({"claims_source": source()}))
        .build()
        .unwrap()
}

fn record(out: &Outcome) -> Value {
    let text = out
        .filter_state
        .get("wasm.meshguard.audit.record")
        .unwrap_or_else(|| panic!("no record: {:?}", out.filter_state));
    serde_json::from_str(text).unwrap()
}

#[test]
fn records_and_forwards_the_native_subject() {
    let host = host();
    let out = host
        .send(with_payload(
            Request::get("/orders").header("x-meshguard-subject", "mallory"),
            "payload",
            json!({"iss": "https://partner.example.com", "sub": "alice"}),
        ))
        .unwrap();
    assert_eq!(out.status, 200);
    let attrs = &record(&out)["attributes"];
    assert_eq!(attrs["user.id"], "alice");
    assert_eq!(attrs["meshguard.authn.outcome"], "verified");
    assert_eq!(
        attrs["meshguard.authn.issuer"],
        "https://partner.example.com"
    );
    assert_eq!(attrs["meshguard.authn.provider"], "partner");
    assert_eq!(
        out.upstream_header("x-meshguard-subject").as_deref(),
        Some("alice")
    );
}

#[test]
fn no_identity_without_accepted_metadata() {
    let host = host();
    let out = host.send(spoofed(Request::get("/"))).unwrap();
    assert_eq!(out.status, 200);
    let attrs = &record(&out)["attributes"];
    assert_eq!(attrs.get("user.id"), None, "{attrs}");
    assert_eq!(attrs["meshguard.authn.outcome"], "missing");
    assert_eq!(out.upstream_header("x-meshguard-subject"), None);

    let out = host
        .send(with_payload(
            Request::get("/"),
            "payload",
            json!({"iss": "https://evil.example.com", "sub": "alice"}),
        ))
        .unwrap();
    let attrs = &record(&out)["attributes"];
    assert_eq!(attrs.get("user.id"), None, "{attrs}");
    assert_eq!(attrs["meshguard.authn.outcome"], "failed");
    assert_eq!(attrs["meshguard.authn.reason"], "issuer_not_accepted");
}
