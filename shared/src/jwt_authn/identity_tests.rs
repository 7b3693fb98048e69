//! The identity sources of issue 10 through `decide`: API-key providers, HMAC secrets from the
//! environment, and `jti` replay detection (including cached tokens).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasm_bindgen_test::wasm_bindgen_test;

use super::cache::Caches;
use super::compile::{compile_with_env, JwtAuthnConfig};
use super::config::RawConfig;
use super::decide::{decide, decide_with, Decision, Outcome};
use super::replay::{prepare, Consumed, MemoryStore, RequestGuard, StoreGuard};
use super::response::Refusal;
use super::test_support::*;
use crate::config::parse_json;
use crate::handoff;

fn hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn with_env(v: Value, env: &[(&str, &str)]) -> Result<JwtAuthnConfig, String> {
    let raw: RawConfig = parse_json(v.to_string().as_bytes()).map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    compile_with_env(&raw, &env).map_err(|e| e.to_string())
}

fn all(provider: &str) -> Value {
    json!([{"match": {"prefix": "/"}, "requires": {"provider_name": provider}}])
}

fn api_config(extra: Value) -> JwtAuthnConfig {
    let mut keys = json!({
        "issuer": "partner-keys",
        "api_keys": {"consumers": [
            {"subject": "billing", "attributes": {"plan": "gold"},
             "key_digests": [hex("k-old"), hex("k-new")]},
            {"subject": "reports", "key_digests": [hex("k-reports")]}
        ]},
        "claim_to_headers": [{"header_name": "x-plan", "claim_name": "plan"}]
    });
    if let (Some(k), Some(e)) = (keys.as_object_mut(), extra.as_object()) {
        for (n, v) in e {
            k.insert(n.clone(), v.clone());
        }
    }
    config(json!({"providers": {"keys": keys}, "rules": all("keys")}))
}

fn run(cfg: &JwtAuthnConfig, headers: &[(&str, &str)]) -> Decision {
    decide(
        cfg,
        &req(headers),
        &TestKeys::new(cfg),
        &mut Caches::new(10, 10),
        NOW,
    )
}

fn refusal(d: &Decision) -> Refusal {
    match d {
        Decision::Deny(_, r, _) => *r,
        other => panic!("expected deny, got {other:?}"),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn api_key_identity_is_handed_off_like_a_verified_subject() {
    let cfg = api_config(json!({}));
    for key in ["k-old", "k-new"] {
        let d = run(&cfg, &[(":path", "/x"), ("x-api-key", key)]);
        let Decision::Allow(outcome, allow) = &d else {
            panic!("{d:?}")
        };
        assert_eq!(outcome.as_str(), "verified");
        let h: HashMap<&str, Vec<u8>> = outcome.handoff(&cfg).into_iter().collect();
        assert_eq!(h[handoff::JWT_SUBJECT], b"billing");
        assert_eq!(h[handoff::JWT_ISSUER], b"partner-keys");
        assert_eq!(h[handoff::JWT_PROVIDER], b"keys");
        let payload: Value = serde_json::from_slice(&h[handoff::JWT_PAYLOAD]).unwrap();
        assert_eq!(
            payload,
            json!({"sub": "billing", "iss": "partner-keys", "plan": "gold"})
        );
        assert_eq!(
            allow.set_headers,
            vec![("x-plan".to_string(), "gold".to_string())]
        );
        assert_eq!(
            allow.remove_headers,
            vec!["x-api-key".to_string()],
            "key stripped"
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn missing_and_unknown_api_keys_are_refused_and_forward_keeps_the_key() {
    let cfg = api_config(json!({}));
    assert_eq!(refusal(&run(&cfg, &[(":path", "/")])), Refusal::Missing);
    assert_eq!(
        refusal(&run(&cfg, &[(":path", "/"), ("x-api-key", "guess")])),
        Refusal::Invalid("unknown_api_key")
    );
    assert_eq!(
        refusal(&run(
            &cfg,
            &[(":path", "/"), ("x-api-key", "k-old "), ("x-api-key", "x")]
        )),
        Refusal::BadRequest("duplicate_token_header")
    );
    let cfg = api_config(json!({"forward": true, "from_params": ["apikey"]}));
    let d = run(&cfg, &[(":path", "/a?apikey=k-reports")]);
    let Decision::Allow(Outcome::Verified { token, .. }, allow) = &d else {
        panic!("{d:?}")
    };
    assert_eq!(token.subject.as_deref(), Some("reports"));
    assert_eq!(allow.new_path, None, "forward: true keeps the parameter");
}

#[wasm_bindgen_test(unsupported = test)]
fn api_keys_mix_with_jwt_providers_in_requirements() {
    let mut v = serde_json::to_value(json!({
        "providers": {
            "a": {"issuer": "https://a", "audiences": ["api"],
                  "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)}},
            "keys": {"api_keys": {"consumers": [{"subject": "svc", "key_digests": [hex("k1")]}]}}
        }
    }))
    .unwrap();
    v["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
        {"provider_name": "a"}, {"provider_name": "keys"}]}}}]);
    let cfg = config(v);
    let jwt = token(SECRET_A, "https://a", "alice", json!({"aud": "api"}));
    let bearer = format!("Bearer {jwt}");
    for (headers, sub) in [
        (vec![("authorization", bearer.as_str())], "alice"),
        (vec![("x-api-key", "k1")], "svc"),
    ] {
        let mut h = vec![(":path", "/")];
        h.extend(headers);
        let d = run(&cfg, &h);
        let Decision::Allow(Outcome::Verified { token, .. }, _) = &d else {
            panic!("{d:?}")
        };
        assert_eq!(token.subject.as_deref(), Some(sub));
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn api_key_providers_refuse_jwt_settings() {
    let e = with_env(
        json!({"providers": {"k": {"audiences": ["x"], "jti_replay": {},
            "api_keys": {"consumers": [{"subject": "s", "key_digests": [hex("a")]}]}}}}),
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("providers.k.audiences: not used with `api_keys`"),
        "{e}"
    );
    assert!(
        e.contains("providers.k.jti_replay: not used with `api_keys`"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn hmac_secret_from_the_environment() {
    let doc = |var: &str| {
        json!({"providers": {"a": {"issuer": "https://a", "audiences": ["api"],
            "hmac_secret": {"algorithm": "HS256", "environment_variable": var}}},
            "rules": all("a")})
    };
    let cfg = with_env(
        doc("JWT_HS_SECRET"),
        &[("JWT_HS_SECRET", &b64std(SECRET_A))],
    )
    .unwrap();
    let jwt = token(SECRET_A, "https://a", "alice", json!({"aud": "api"}));
    let d = run(
        &cfg,
        &[(":path", "/"), ("authorization", &format!("Bearer {jwt}"))],
    );
    assert!(
        matches!(d, Decision::Allow(Outcome::Verified { .. }, _)),
        "{d:?}"
    );
    assert!(
        !format!("{cfg:?}").contains(&b64std(SECRET_A)),
        "secret in Debug"
    );

    let e = with_env(doc("JWT_HS_SECRET"), &[]).unwrap_err();
    assert!(
        e.contains("providers.a.hmac_secret.environment_variable: environment variable JWT_HS_SECRET is not set"),
        "{e}"
    );
    // A wrong value is reported without the value.
    for bad in ["c2hvcnQ=", "!!not-base64-secret!!"] {
        let e = with_env(doc("S"), &[("S", bad)]).unwrap_err();
        assert!(
            e.starts_with("providers.a.hmac_secret.environment_variable: "),
            "{e}"
        );
        assert!(
            !e.contains(bad) && !e.contains("not-base64"),
            "value leaked: {e}"
        );
    }
    let both = json!({"providers": {"a": {"hmac_secret": {"algorithm": "HS256",
        "inline_base64": b64std(SECRET_A), "environment_variable": "S"}}}});
    let e = with_env(both, &[("S", "x")]).unwrap_err();
    assert!(e.contains("providers.a.hmac_secret: exactly one of"), "{e}");
}

fn replay_config(replay: Value) -> JwtAuthnConfig {
    config(
        json!({"providers": {"a": {"issuer": "https://a", "audiences": ["api"],
        "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)},
        "jti_replay": replay}}, "rules": all("a")}),
    )
}

#[wasm_bindgen_test(unsupported = test)]
fn jti_is_admitted_once_even_from_the_verified_token_cache() {
    let cfg = replay_config(json!({"max_entries": 64}));
    let mut guard = StoreGuard::<MemoryStore>::default();
    prepare(&mut guard.store, cfg.providers[0].replay.as_ref().unwrap()).unwrap();
    let mut cache = Caches::new(10, 10);
    let keys = TestKeys::new(&cfg);
    let send = |jwt: &str, cache: &mut Caches, guard: &mut StoreGuard<MemoryStore>| {
        let h = req(&[(":path", "/"), ("authorization", &format!("Bearer {jwt}"))]);
        decide_with(&cfg, &h, &keys, cache, guard, NOW)
    };
    let t1 = token(
        SECRET_A,
        "https://a",
        "alice",
        json!({"aud": "api", "jti": "j-1"}),
    );
    assert!(matches!(
        send(&t1, &mut cache, &mut guard),
        Decision::Allow(..)
    ));
    let again = send(&t1, &mut cache, &mut guard);
    assert_eq!(
        cache.verified.hits(),
        1,
        "the second use came from the cache"
    );
    assert_eq!(refusal(&again), Refusal::Invalid("replayed"));
    let Decision::Deny(_, _, reply) = &again else {
        panic!()
    };
    assert_eq!(reply.status, 401);
    assert!(String::from_utf8_lossy(&reply.body).contains("\"reason\":\"replayed\""));
    let t2 = token(
        SECRET_A,
        "https://a",
        "alice",
        json!({"aud": "api", "jti": "j-2"}),
    );
    assert!(matches!(
        send(&t2, &mut cache, &mut guard),
        Decision::Allow(..)
    ));
    let no_jti = token(SECRET_A, "https://a", "alice", json!({"aud": "api"}));
    assert_eq!(
        refusal(&send(&no_jti, &mut cache, &mut guard)),
        Refusal::Invalid("missing_jti")
    );
    assert_eq!((guard.stats.fresh, guard.stats.replayed), (2, 1));
    // Without a replay store (plain `decide`), such providers fail closed.
    let d = decide(
        &cfg,
        &req(&[(":path", "/"), ("authorization", &format!("Bearer {t2}"))]),
        &keys,
        &mut Caches::new(0, 0),
        NOW,
    );
    assert_eq!(refusal(&d), Refusal::Invalid("replay_check_failed"));
}

#[wasm_bindgen_test(unsupported = test)]
fn jti_optional_and_config_errors() {
    let cfg = replay_config(json!({"required": false}));
    let mut guard = StoreGuard::<MemoryStore>::default();
    prepare(&mut guard.store, cfg.providers[0].replay.as_ref().unwrap()).unwrap();
    let no_jti = token(SECRET_A, "https://a", "alice", json!({"aud": "api"}));
    let h = req(&[
        (":path", "/"),
        ("authorization", &format!("Bearer {no_jti}")),
    ]);
    let keys = TestKeys::new(&cfg);
    for _ in 0..2 {
        let d = decide_with(&cfg, &h, &keys, &mut Caches::new(0, 0), &mut guard, NOW);
        assert!(matches!(d, Decision::Allow(..)), "{d:?}");
    }
    assert_eq!(guard.stats.skipped, 2);
    let e = with_env(
        json!({"providers": {"a": {"hmac_secret": {"algorithm": "HS256",
            "inline_base64": b64std(SECRET_A)}, "require_expiration": false,
            "jti_replay": {"max_entries": 0}}}}),
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("providers.a.jti_replay: requires `require_expiration: true`"),
        "{e}"
    );
    assert!(
        e.contains("providers.a.jti_replay.max_entries: must be 8..=4194304"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_request_decided_again_after_a_wait_is_not_a_replay_of_itself() {
    // requires_all: `a` (jti_replay) is checked first, then the request waits for `b`'s keys.
    let cfg = config(json!({
        "providers": {
            "a": {"issuer": "https://a", "audiences": ["api"],
                  "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)},
                  "jti_replay": {"max_entries": 64}},
            "b": {"issuer": "https://b", "from_headers": [{"name": "x-b-token"}],
                  "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_B)}}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "b"}]}}}]
    }));
    let mut guard = StoreGuard::<MemoryStore>::default();
    prepare(&mut guard.store, cfg.providers[0].replay.as_ref().unwrap()).unwrap();
    let ta = token(
        SECRET_A,
        "https://a",
        "alice",
        json!({"aud": "api", "jti": "j-1"}),
    );
    let tb = token(SECRET_B, "https://b", "svc", json!({}));
    let h = req(&[
        (":path", "/"),
        ("authorization", &format!("Bearer {ta}")),
        ("x-b-token", &tb),
    ]);
    let waiting = TestKeys {
        pending: vec![1],
        ..TestKeys::new(&cfg)
    };
    let ready = TestKeys::new(&cfg);
    let mut cache = Caches::new(10, 10);
    let mut mine = Consumed::default();
    let mut decide_as = |keys: &TestKeys, consumed: &mut Consumed, guard: &mut StoreGuard<_>| {
        let mut g = RequestGuard { guard, consumed };
        decide_with(&cfg, &h, keys, &mut cache, &mut g, NOW)
    };
    let wait = Decision::Wait {
        provider: 1,
        unknown_kid: false,
    };
    assert_eq!(decide_as(&waiting, &mut mine, &mut guard), wait);
    assert_eq!((guard.stats.fresh, mine.len()), (1, 1), "j-1 consumed");
    // Still waiting (decided again before the keys came): still its own jti.
    assert_eq!(decide_as(&waiting, &mut mine, &mut guard), wait);
    // The keys arrived: the same request is decided again and let through.
    let d = decide_as(&ready, &mut mine, &mut guard);
    assert!(matches!(d, Decision::Allow(..)), "{d:?}");
    assert_eq!((guard.stats.fresh, guard.stats.replayed), (1, 0));
    // Another request presenting the same jti is a replay.
    let d = decide_as(&ready, &mut Consumed::default(), &mut guard);
    assert_eq!(refusal(&d), Refusal::Invalid("replayed"));
    assert_eq!(guard.stats.replayed, 1);
    // Without the request's memory its own re-decision was refused (the bug this guards).
    let mut fresh = StoreGuard::<MemoryStore>::default();
    prepare(&mut fresh.store, cfg.providers[0].replay.as_ref().unwrap()).unwrap();
    let plain = |keys: &TestKeys, guard: &mut StoreGuard<MemoryStore>| {
        decide_with(&cfg, &h, keys, &mut Caches::new(10, 10), guard, NOW)
    };
    assert_eq!(plain(&waiting, &mut fresh), wait);
    assert_eq!(
        refusal(&plain(&ready, &mut fresh)),
        Refusal::Invalid("replayed")
    );
}
