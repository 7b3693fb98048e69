//! authz → ratelimit → audit, all on Envoy jwt_authn's claims, on 2 workers.

use meshguard_harness::{Clock, Host, Outcome, Request};
use meshguard_wasm_artifacts::{AUDIT, AUTHZ, RATELIMIT};
use serde_json::{json, Value};

use super::{source, spoofed, with_payload};

fn chain() -> Host {
    Host::builder(AUTHZ)
        .plugin_config_json(json!({"claims_source": source(), "policies": [{"name": "readers",
            "rules": [{"from": [{"source": {"request_principals": ["*"]}}],
                       "when": [{"claim": "roles", "contains_any": ["reader"]}]}]}]}))
        .then(RATELIMIT)
        .plugin_config_json(json!({"claims_source": source(), "rules": [{"name": "per_user",
            "descriptors": [{"jwt_claim": "sub"}],
            "limits": [{"token_bucket": {"max_tokens": 2, "tokens_per_fill": 2, "fill_interval": "1h"}}]}]}))
        .then(AUDIT)
        .plugin_config_json(json!({"claims_source": source()}))
        .workers(2)
        .clock(Clock::fixed_unix(1_700_000_000))
        .build()
        .unwrap()
}

fn attrs(out: &Outcome) -> Value {
    let text = out
        .filter_state
        .get("wasm.meshguard.audit.record")
        .unwrap_or_else(|| panic!("no record: {:?}", out.filter_state));
    serde_json::from_str::<Value>(text).unwrap()["attributes"].clone()
}

#[test]
fn allowed_denied_limited_and_recorded() {
    let host = chain();
    let reader = |sub: &str| {
        with_payload(
            Request::get("/items"),
            "payload",
            json!({"iss": "https://idp.example.com", "sub": sub, "roles": ["reader"]}),
        )
    };
    let out = host.send(reader("alice")).unwrap();
    assert_eq!(out.status, 200);
    let a = attrs(&out);
    assert_eq!(a["user.id"], "alice");
    assert_eq!(a["meshguard.decision"], "allow");
    assert_eq!(a["meshguard.ratelimit.remaining"], 1);

    assert_eq!(host.send(reader("alice").on_worker(1)).unwrap().status, 200);
    let out = host.send(reader("alice")).unwrap();
    assert_eq!(out.status, 429);
    let a = attrs(&out);
    assert_eq!(a["meshguard.denied_by"], "ratelimit");
    assert_eq!(a["user.id"], "alice");

    let out = host.send(spoofed(Request::get("/items"))).unwrap();
    assert_eq!(out.status, 403);
    let a = attrs(&out);
    assert_eq!(a["meshguard.denied_by"], "authz");
    assert_eq!(a.get("user.id"), None);

    let writer = with_payload(
        Request::get("/items"),
        "payload",
        json!({"iss": "https://idp.example.com", "sub": "bob", "roles": ["writer"]}),
    );
    assert_eq!(host.send(writer).unwrap().status, 403);
}
