//! ratelimit keyed on claims Envoy's jwt_authn verified.

use meshguard_harness::{Clock, Host, Request};
use meshguard_wasm_artifacts::RATELIMIT;
use serde_json::json;

use super::{source, spoofed, with_payload};

fn host() -> Host {
    let bucket = |n: u64| json!({"token_bucket": {"max_tokens": n, "tokens_per_fill": n, "fill_interval": "1h"}});
    Host::builder(RATELIMIT)
        .plugin_config_json(json!({
            "claims_source": source(),
            "rules": [{"name": "per_user", "descriptors": [{"jwt_claim": "sub"}],
                "limits": [bucket(2)],
                "limits_by_claim": {"claim": "plan", "tiers": {"gold": [bucket(4)]}},
                "missing_descriptor": "skip"}]
        }))
        .workers(2)
        .clock(Clock::fixed_unix(1_700_000_000))
        .build()
        .unwrap()
}

fn user(sub: &str, plan: &str) -> Request {
    with_payload(
        Request::get("/"),
        "payload",
        json!({"iss": "https://idp.example.com", "sub": sub, "plan": plan}),
    )
}

#[test]
fn limits_follow_the_native_subject_and_tier() {
    let host = host();
    let statuses = |sub: &str, plan: &str, n: usize| -> Vec<u16> {
        (0..n)
            .map(|i| host.send(user(sub, plan).on_worker(i % 2)).unwrap().status)
            .collect()
    };
    assert_eq!(statuses("alice", "free", 3), [200, 200, 429]);
    // Another subject has its own bucket; a gold one a bigger bucket.
    assert_eq!(statuses("bob", "free", 2), [200, 200]);
    assert_eq!(statuses("carol", "gold", 5), [200, 200, 200, 200, 429]);
    // The same subject from an issuer no provider accepts: no claims, rule skipped.
    let evil = with_payload(
        Request::get("/"),
        "payload",
        json!({"iss": "https://evil.example.com", "sub": "alice"}),
    );
    assert_eq!(host.send(evil).unwrap().status, 200);
    // Spoofed headers and hand-off do not make a request alice's either.
    for _ in 0..3 {
        assert_eq!(host.send(spoofed(Request::get("/"))).unwrap().status, 200);
    }
    // alice is still limited.
    assert_eq!(host.send(user("alice", "free")).unwrap().status, 429);
}
