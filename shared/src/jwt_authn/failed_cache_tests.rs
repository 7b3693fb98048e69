//! The failed-verdict cache through `decide`: which refusals are cached, that a cached answer is
//! the very decision validation gives, how long it holds (`exp` + skew, key generation, a clock
//! stepped back), and that invalid tokens never evict verified ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{HS256Key, MACLike};
use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::cache::Caches;
use super::compile::JwtAuthnConfig;
use super::decide::{decide, decide_with, Decision, KeyView, ProviderKeys};
use super::replay::{prepare, MemoryStore, StoreGuard};
use super::response::Refusal;
use super::test_support::*;
use crate::jwt::{Algorithm, KeySet};

/// Provider `a`: HS256 with [`SECRET_A`], issuer `https://a`, audience `api`, lifetimes up to
/// an hour, claims nested at most 2 deep.
fn cfg() -> JwtAuthnConfig {
    config(json!({
        "providers": {"a": {
            "issuer": "https://a", "audiences": ["api"],
            "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)},
            "max_lifetime_seconds": 3600, "max_claim_depth": 2
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]
    }))
}

/// A token of `a` (signed with `secret`) with `claims` over a valid default payload; a `null`
/// claim removes it.
fn tok(secret: &[u8], claims: Value) -> String {
    let mut p = json!({"iss": "https://a", "aud": "api", "sub": "alice",
                       "iat": NOW - 10, "exp": NOW + 600});
    for (k, v) in claims.as_object().cloned().unwrap_or_default() {
        match v {
            Value::Null => {
                p.as_object_mut().unwrap().remove(&k);
            }
            v => p[k] = v,
        }
    }
    hs256_raw(secret, &json!({"alg": "HS256", "typ": "JWT"}), &p)
}

/// A correctly signed token whose payload is `payload` verbatim (not necessarily JSON).
fn signed_raw_payload(payload: &str) -> String {
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = HS256Key::from_bytes(SECRET_A).authentication_tag(signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn headers(token: &str) -> Vec<(String, Vec<u8>)> {
    req(&[
        (":method", "GET"),
        (":path", "/"),
        ("authorization", &format!("Bearer {token}")),
    ])
}

fn reason(d: &Decision) -> &'static str {
    match d {
        Decision::Deny(_, Refusal::Invalid(r), _) => r,
        other => panic!("expected an invalid-token refusal, got {other:?}"),
    }
}

/// Keys of any provider = `keys` under `generation`.
struct Generation<'a> {
    keys: &'a KeySet,
    generation: u64,
}

impl KeyView for Generation<'_> {
    fn keys(&self, _: usize) -> ProviderKeys<'_> {
        ProviderKeys::Ready {
            keys: self.keys,
            generation: self.generation,
            may_refetch: false,
        }
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn stable_refusals_are_served_from_the_cache_as_validation_gives_them() {
    let cfg = cfg();
    let keys = TestKeys::new(&cfg);
    let cases = [
        ("bad_signature", tok(SECRET_B, json!({}))),
        (
            "expired",
            tok(SECRET_A, json!({"iat": NOW - 700, "exp": NOW - 100})),
        ),
        ("bad_audience", tok(SECRET_A, json!({"aud": "other"}))),
        ("bad_issuer", tok(SECRET_A, json!({"iss": null}))), // no iss: the peek cannot skip it
        ("malformed", "a.b.c".to_string()),
        ("malformed", signed_raw_payload("not json")),
        ("bad_claim", tok(SECRET_A, json!({"exp": "soon"}))),
        ("missing_exp", tok(SECRET_A, json!({"exp": null}))),
        (
            "lifetime_too_long",
            tok(SECRET_A, json!({"exp": NOW + 7200})),
        ),
        (
            "claims_too_deep",
            tok(SECRET_A, json!({"x": {"y": {"z": 1}}})),
        ),
        (
            "algorithm_not_allowed",
            hs256_raw(SECRET_A, &json!({"alg": "HS512"}), &json!({})),
        ),
    ];
    let mut cache = Caches::new(10, 100);
    for (i, (want, t)) in cases.iter().enumerate() {
        let h = headers(t);
        let uncached = decide(&cfg, &h, &keys, &mut Caches::new(10, 0), NOW);
        assert_eq!(reason(&uncached), *want);
        let first = decide(&cfg, &h, &keys, &mut cache, NOW);
        let again = decide(&cfg, &h, &keys, &mut cache, NOW + 1);
        assert_eq!(first, uncached, "{want}");
        // Same outcome (hand-off), refusal (metric reason) and reply, byte for byte.
        assert_eq!(again, uncached, "{want}: served from the cache");
        assert_eq!(cache.failed.hits(), i as u64 + 1, "{want}: a cache hit");
    }
    assert_eq!(cache.failed.len(), cases.len());
    assert_eq!(cache.verified.len(), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn refusals_that_can_change_are_not_cached() {
    let cfg = cfg();
    let mut cache = Caches::new(10, 100);
    let keys = TestKeys::new(&cfg);
    for (want, t) in [
        ("not_yet_valid", tok(SECRET_A, json!({"nbf": NOW + 600}))),
        ("issued_in_future", tok(SECRET_A, json!({"iat": NOW + 300}))),
        // Refused by the unverified `iss` alone: would fill the cache with other providers'
        // valid tokens under requires_any.
        ("bad_issuer", tok(SECRET_A, json!({"iss": "https://b"}))),
    ] {
        for _ in 0..2 {
            assert_eq!(
                reason(&decide(&cfg, &headers(&t), &keys, &mut cache, NOW)),
                want
            );
        }
    }
    let gone = TestKeys {
        unavailable: vec![0],
        ..TestKeys::new(&cfg)
    };
    let t = tok(SECRET_B, json!({}));
    for _ in 0..2 {
        let d = decide(&cfg, &headers(&t), &gone, &mut cache, NOW);
        assert!(matches!(d, Decision::Deny(_, Refusal::KeysUnavailable, _)));
    }
    assert_eq!((cache.failed.len(), cache.failed.hits()), (0, 0));
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_kid_and_replays_are_not_cached() {
    let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
                                "k": URL_SAFE_NO_PAD.encode(SECRET_A)}]});
    let cfg = config(json!({
        "providers": {"a": {"issuer": "https://a", "allowed_algorithms": ["HS256"],
            "local_jwks": {"inline_string": jwks.to_string()},
            "jti_replay": {"max_entries": 64}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]
    }));
    let keys = TestKeys::new(&cfg);
    let mut cache = Caches::new(10, 100);
    let payload = json!({"iss": "https://a", "exp": NOW + 60, "jti": "j1"});
    let unknown = hs256_raw(SECRET_A, &json!({"alg": "HS256", "kid": "k2"}), &payload);
    for _ in 0..2 {
        let d = decide(&cfg, &headers(&unknown), &keys, &mut cache, NOW);
        assert_eq!(reason(&d), "unknown_kid");
    }
    let mut guard = StoreGuard::<MemoryStore>::default();
    prepare(&mut guard.store, cfg.providers[0].replay.as_ref().unwrap()).unwrap();
    let known = hs256_raw(SECRET_A, &json!({"alg": "HS256", "kid": "k1"}), &payload);
    let h = headers(&known);
    assert!(matches!(
        decide_with(&cfg, &h, &keys, &mut cache, &mut guard, NOW),
        Decision::Allow(..)
    ));
    for _ in 0..2 {
        let d = decide_with(&cfg, &h, &keys, &mut cache, &mut guard, NOW);
        assert_eq!(reason(&d), "replayed");
    }
    assert_eq!((cache.failed.len(), cache.failed.hits()), (0, 0));
    assert_eq!(
        guard.stats.replayed, 2,
        "each replay was checked in the store"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_claim_refusal_holds_until_exp_plus_skew_then_the_token_is_expired() {
    let cfg = cfg();
    let keys = TestKeys::new(&cfg);
    let mut cache = Caches::new(10, 100);
    // exp = NOW + 600, skew 60: expired from NOW + 660.
    let h = headers(&tok(SECRET_A, json!({"aud": "other"})));
    assert_eq!(
        reason(&decide(&cfg, &h, &keys, &mut cache, NOW)),
        "bad_audience"
    );
    assert_eq!(
        reason(&decide(&cfg, &h, &keys, &mut cache, NOW + 659)),
        "bad_audience"
    );
    assert_eq!(cache.failed.hits(), 1);
    let at_end = decide(&cfg, &h, &keys, &mut cache, NOW + 660);
    assert_eq!(reason(&at_end), "expired");
    assert_eq!(
        at_end,
        decide(&cfg, &h, &keys, &mut Caches::new(10, 0), NOW + 660),
        "what validation says"
    );
    assert_eq!(cache.failed.hits(), 1, "not served at exp + skew");
    assert_eq!(
        reason(&decide(&cfg, &h, &keys, &mut cache, NOW + 661)),
        "expired"
    );
    assert_eq!(cache.failed.hits(), 2, "`expired` is cached in turn");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_bad_signature_is_forgotten_when_the_keys_change() {
    let cfg = cfg();
    let old = KeySet::from_hmac_secret(Algorithm::HS256, SECRET_A).unwrap();
    let new = KeySet::from_hmac_secret(Algorithm::HS256, SECRET_B).unwrap();
    let h = headers(&tok(SECRET_B, json!({})));
    let mut cache = Caches::new(10, 100);
    let view = |keys, generation| Generation { keys, generation };
    let d = decide(&cfg, &h, &view(&old, 1), &mut cache, NOW);
    assert_eq!(reason(&d), "bad_signature");
    // Same generation: the cached refusal is served (the cache, not the keys, answered).
    let d = decide(&cfg, &h, &view(&new, 1), &mut cache, NOW);
    assert_eq!(reason(&d), "bad_signature");
    assert_eq!(cache.failed.hits(), 1);
    // A new key generation (the JWKS changed): verified with the new keys.
    let d = decide(&cfg, &h, &view(&new, 2), &mut cache, NOW);
    assert!(matches!(d, Decision::Allow(..)), "{d:?}");
    assert_eq!(cache.failed.hits(), 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_cached_refusal_is_not_served_after_the_clock_went_back() {
    let cfg = cfg();
    let keys = TestKeys::new(&cfg);
    let mut cache = Caches::new(10, 100);
    let h = headers(&tok(SECRET_A, json!({"iat": NOW - 3000, "exp": NOW - 100})));
    assert_eq!(reason(&decide(&cfg, &h, &keys, &mut cache, NOW)), "expired");
    assert_eq!(reason(&decide(&cfg, &h, &keys, &mut cache, NOW)), "expired");
    assert_eq!(cache.failed.hits(), 1);
    // Half an hour back the token was valid: validated again, not refused from the cache.
    let d = decide(&cfg, &h, &keys, &mut cache, NOW - 1800);
    assert!(matches!(d, Decision::Allow(..)), "{d:?}");
    assert_eq!(cache.failed.hits(), 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_flood_of_invalid_tokens_never_evicts_a_verified_one() {
    let cfg = cfg();
    let keys = TestKeys::new(&cfg);
    let mut cache = Caches::new(2, 8);
    let good = headers(&tok(SECRET_A, json!({})));
    assert!(matches!(
        decide(&cfg, &good, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    for i in 0..100 {
        let junk = headers(&tok(SECRET_B, json!({ "sub": format!("junk-{i}") })));
        assert_eq!(
            reason(&decide(&cfg, &junk, &keys, &mut cache, NOW)),
            "bad_signature"
        );
    }
    assert_eq!(cache.failed.len(), 8, "bounded");
    assert_eq!(cache.verified.len(), 1);
    assert!(matches!(
        decide(&cfg, &good, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert_eq!(
        cache.verified.hits(),
        1,
        "the verified token is still cached"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn config_default_bound_and_field_path() {
    let cfg = cfg();
    assert_eq!(cfg.cache_max_failed_entries, 1_000);
    let with = |cache: Value| {
        JwtAuthnConfig::parse(
            json!({"providers": {"a": {"hmac_secret": {"algorithm": "HS256",
                "inline_base64": b64std(SECRET_A)}}}, "cache": cache})
            .to_string()
            .as_bytes(),
        )
    };
    use crate::config::FilterConfig;
    assert_eq!(
        with(json!({"max_failed_entries": 0}))
            .unwrap()
            .cache_max_failed_entries,
        0
    );
    let e = with(json!({"max_failed_entries": 100_001})).unwrap_err();
    assert!(
        e.to_string()
            .contains("cache.max_failed_entries: at most 100000"),
        "{e}"
    );
    let e = with(json!({"max_failed": 1})).unwrap_err();
    assert!(e.to_string().contains("max_failed"), "{e}");
}
