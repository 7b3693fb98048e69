//! Bounds on request-facing and fetched input: claim nesting depth (`max_claim_depth`) and the
//! size of a key-fetch response (`max_body_bytes`), with their config errors.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::cache::Caches;
use super::compile::{JwtAuthnConfig, KeySource};
use super::decide::{decide, Decision};
use super::providers::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CLAIM_DEPTH};
use super::reason;
use super::response::Refusal;
use super::test_support::*;
use crate::config::FilterConfig;
use crate::jwt::object_depth;

fn nested(depth: usize) -> Value {
    // depth 1 = a scalar claim; each level wraps it in an object.
    let mut v = json!("leaf");
    for _ in 1..depth {
        v = json!({ "n": v });
    }
    v
}

fn provider(extra: Value) -> Value {
    let mut p = json!({
        "issuer": "https://a",
        "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)}
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        p[k] = v;
    }
    json!({"providers": {"a": p}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]})
}

fn run(cfg: &JwtAuthnConfig, claim: Value) -> Decision {
    let auth = format!(
        "Bearer {}",
        token(SECRET_A, "https://a", "alice", json!({ "deep": claim }))
    );
    let mut cache = Caches::new(10, 10);
    let headers = req(&[(":method", "GET"), (":path", "/"), ("authorization", &auth)]);
    decide(cfg, &headers, &TestKeys::new(cfg), &mut cache, NOW)
}

fn errors(v: Value) -> String {
    match JwtAuthnConfig::parse(v.to_string().as_bytes()) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn object_depth_counts_objects_and_arrays() {
    let flat = json!({"a": 1, "b": "x"});
    assert_eq!(object_depth(flat.as_object().unwrap()), 1);
    let two = json!({"a": {"b": 1}, "c": [1, 2]});
    assert_eq!(object_depth(two.as_object().unwrap()), 2);
    let four = json!({"a": [[{"b": 1}]]});
    assert_eq!(object_depth(four.as_object().unwrap()), 4);
    let empty = json!({"a": {}});
    assert_eq!(object_depth(empty.as_object().unwrap()), 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_at_the_depth_bound_pass_and_one_deeper_is_refused() {
    let cfg = config(provider(json!({"max_claim_depth": 4})));
    assert!(matches!(run(&cfg, nested(4)), Decision::Allow(..)));
    match run(&cfg, nested(5)) {
        Decision::Deny(_, Refusal::Invalid(r), reply) => {
            assert_eq!(r, reason::CLAIMS_TOO_DEEP);
            assert_eq!(reply.status, 401);
        }
        other => panic!("expected a 401 claims_too_deep, got {other:?}"),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn default_claim_depth_allows_ordinary_claims_and_refuses_deep_ones() {
    let cfg = config(provider(json!({})));
    assert!(matches!(
        run(&cfg, json!({"roles": ["a", "b"]})),
        Decision::Allow(..)
    ));
    assert!(matches!(
        run(&cfg, nested(DEFAULT_MAX_CLAIM_DEPTH)),
        Decision::Allow(..)
    ));
    assert!(matches!(
        run(&cfg, nested(DEFAULT_MAX_CLAIM_DEPTH + 1)),
        Decision::Deny(_, Refusal::Invalid(reason::CLAIMS_TOO_DEEP), _)
    ));
    // Far deeper than serde_json's own cap (128): refused as malformed, never a stack overflow.
    assert!(matches!(
        run(&cfg, nested(200)),
        Decision::Deny(_, Refusal::Invalid(_), _)
    ));
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_too_deep_is_a_listed_reason() {
    assert!(reason::ALL_DENIAL_REASONS.contains(&reason::CLAIMS_TOO_DEEP));
}

#[wasm_bindgen_test(unsupported = test)]
fn claim_depth_config_is_checked() {
    let e = errors(provider(json!({"max_claim_depth": 0})));
    assert!(
        e.contains("providers.a.max_claim_depth: must be 1..=100"),
        "{e}"
    );
    let e = errors(provider(json!({"max_claim_depth": 101})));
    assert!(e.contains("providers.a.max_claim_depth"), "{e}");
}

fn remote(extra: Value) -> Value {
    let mut r = json!({"http_uri": {"uri": "https://idp/jwks", "cluster": "idp", "timeout": "2s"}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        r[k] = v;
    }
    json!({"providers": {"r": {"issuer": "https://r", "remote_jwks": r}},
           "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "r"}}]})
}

fn body_limit(cfg: &JwtAuthnConfig) -> usize {
    match cfg.providers.first().map(|p| &p.keys) {
        Some(KeySource::Remote(r)) => r.max_body_bytes,
        other => panic!("not remote: {other:?}"),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn key_fetch_body_limit_default_and_configured() {
    assert_eq!(
        body_limit(&config(remote(json!({})))),
        DEFAULT_MAX_BODY_BYTES
    );
    assert_eq!(DEFAULT_MAX_BODY_BYTES, 262_144);
    let cfg = config(remote(json!({"max_body_bytes": 4096})));
    assert_eq!(body_limit(&cfg), 4096);
    let discovery = config(json!({
        "providers": {"d": {"issuer": "https://d",
            "openid_discovery": {"cluster": "idp", "max_body_bytes": 1000}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "d"}}]
    }));
    assert_eq!(body_limit(&discovery), 1000);
}

#[wasm_bindgen_test(unsupported = test)]
fn key_fetch_body_limit_out_of_range_names_the_field() {
    let e = errors(remote(json!({"max_body_bytes": 0})));
    assert!(
        e.contains("providers.r.remote_jwks.max_body_bytes: must be 1..=16777216"),
        "{e}"
    );
    let e = errors(remote(json!({"max_body_bytes": 16 * 1024 * 1024 + 1})));
    assert!(e.contains("providers.r.remote_jwks.max_body_bytes"), "{e}");
}

#[wasm_bindgen_test(unsupported = test)]
fn remote_jwks_durations_are_reported_at_their_own_path() {
    let e = errors(remote(json!({"cache_duration": "5x"})));
    assert!(
        e.contains("providers.r.remote_jwks.cache_duration: invalid duration"),
        "{e}"
    );
    assert!(!e.contains("http_uri.cache_duration"), "{e}");
    let e = errors(remote(json!({"max_stale": "soon"})));
    assert!(e.contains("providers.r.remote_jwks.max_stale"), "{e}");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_cached_verification_is_not_served_after_the_clock_went_back() {
    let cfg = config(provider(json!({})));
    let auth = format!(
        "Bearer {}",
        token(SECRET_A, "https://a", "alice", json!({"nbf": NOW - 10}))
    );
    let headers = req(&[(":method", "GET"), (":path", "/"), ("authorization", &auth)]);
    let keys = TestKeys::new(&cfg);
    let mut cache = Caches::new(10, 10);
    assert!(matches!(
        decide(&cfg, &headers, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert!(matches!(
        decide(&cfg, &headers, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert_eq!(cache.verified.hits(), 1);
    // An hour back: before nbf/iat (skew 60 s). Validated again, and refused.
    match decide(&cfg, &headers, &keys, &mut cache, NOW - 3600) {
        Decision::Deny(_, Refusal::Invalid(r), _) => {
            assert!(r == "not_yet_valid" || r == "issued_in_future", "{r}")
        }
        other => panic!("served from before the token was valid: {other:?}"),
    }
}
