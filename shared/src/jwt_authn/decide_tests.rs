use super::*;
use crate::jwt_authn::response::Refusal;
use crate::jwt_authn::test_support::*;
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

fn rule(requires: serde_json::Value) -> serde_json::Value {
    json!([
        {"match": {"path": "/health"}, "bypass": true},
        {"match": {"prefix": "/"}, "requires": requires}
    ])
}

fn run(cfg: &JwtAuthnConfig, headers: &[(&str, &str)]) -> Decision {
    let mut cache = Caches::new(10, 10);
    decide(cfg, &req(headers), &TestKeys::new(cfg), &mut cache, NOW)
}

fn token_a() -> String {
    token(
        SECRET_A,
        "https://a",
        "alice",
        json!({"aud": "api", "realm": {"roles": ["r1", "r2"]}}),
    )
}

fn token_b() -> String {
    token(SECRET_B, "https://b", "bob", json!({}))
}

fn allowed(d: &Decision) -> (&Outcome, &Allow) {
    match d {
        Decision::Allow(o, a) => (o, a),
        other => panic!("expected allow, got {other:?}"),
    }
}

fn denied(d: &Decision) -> (Refusal, u32) {
    match d {
        Decision::Deny(_, r, reply) => (*r, reply.status),
        other => panic!("expected deny, got {other:?}"),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn bearer_token_verified_with_outputs_and_stripping() {
    let cfg = two_providers(rule(json!({"provider_name": "a"})));
    let auth = format!("Bearer {}", token_a());
    let d = run(
        &cfg,
        &[
            (":method", "GET"),
            (":path", "/x"),
            ("authorization", &auth),
        ],
    );
    let (outcome, allow) = allowed(&d);
    let Outcome::Verified { provider, token } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(*provider, 0);
    assert_eq!(token.subject.as_deref(), Some("alice"));
    assert!(allow
        .set_headers
        .contains(&("x-sub".into(), "alice".into())));
    assert!(allow
        .set_headers
        .contains(&("x-roles".into(), "r1,r2".into())));
    assert!(allow.set_headers.iter().any(|(h, _)| h == "x-jwt-payload"));
    assert_eq!(
        allow.remove_headers,
        vec!["authorization"],
        "forward: false strips"
    );
    let handoff = outcome.handoff(&cfg);
    assert!(handoff.contains(&(crate::handoff::JWT_OUTCOME, b"verified".to_vec())));
    assert!(handoff.contains(&(crate::handoff::JWT_SUBJECT, b"alice".to_vec())));
    assert!(handoff.contains(&(crate::handoff::JWT_ISSUER, b"https://a".to_vec())));
    assert!(handoff.contains(&(crate::handoff::JWT_PROVIDER, b"a".to_vec())));
    assert!(handoff
        .iter()
        .any(|(k, v)| *k == crate::handoff::JWT_PAYLOAD
            && String::from_utf8_lossy(v).contains("\"sub\":\"alice\"")));
}

#[wasm_bindgen_test(unsupported = test)]
fn missing_invalid_and_wrong_issuer() {
    let cfg = two_providers(rule(json!({"provider_name": "a"})));
    let d = run(&cfg, &[(":method", "GET"), (":path", "/x")]);
    assert_eq!(denied(&d), (Refusal::Missing, 401));
    assert!(matches!(d, Decision::Deny(Outcome::Missing, ..)));
    let expired = token(
        SECRET_A,
        "https://a",
        "alice",
        json!({"aud": "api", "exp": NOW - 120}),
    );
    let d = run(
        &cfg,
        &[
            (":path", "/x"),
            ("authorization", &format!("Bearer {expired}")),
        ],
    );
    assert_eq!(denied(&d), (Refusal::Invalid("expired"), 401));
    assert!(matches!(d, Decision::Deny(Outcome::Failed("expired"), ..)));
    // A token of issuer b at a's location fails without a signature check.
    let d = run(
        &cfg,
        &[
            (":path", "/x"),
            ("authorization", &format!("Bearer {}", token_b())),
        ],
    );
    assert_eq!(denied(&d), (Refusal::Invalid("bad_issuer"), 401));
    let forged = token(SECRET_B, "https://a", "alice", json!({"aud": "api"}));
    let d = run(
        &cfg,
        &[
            (":path", "/x"),
            ("authorization", &format!("Bearer {forged}")),
        ],
    );
    assert_eq!(denied(&d), (Refusal::Invalid("bad_signature"), 401));
    let d = run(
        &cfg,
        &[(":path", "/x"), ("authorization", "Bearer not-a-jwt")],
    );
    assert_eq!(denied(&d), (Refusal::Invalid("malformed"), 401));
}

#[wasm_bindgen_test(unsupported = test)]
fn every_token_source_of_b() {
    let cfg = two_providers(rule(json!({"provider_name": "b"})));
    let t = token_b();
    let d = run(&cfg, &[(":path", "/x"), ("x-b-token", &t)]);
    assert_eq!(allowed(&d).1.remove_headers, vec!["x-b-token"]);
    let path = format!("/x?q=1&b_token={t}");
    let d = run(&cfg, &[(":path", &path)]);
    assert_eq!(allowed(&d).1.new_path.as_deref(), Some("/x?q=1"));
    let cookie = format!("a=1; b_session={t}");
    let d = run(&cfg, &[(":path", "/x"), ("cookie", &cookie)]);
    assert_eq!(allowed(&d).1.new_cookie.as_deref(), Some("a=1"));
    // The same token in two places is fine; two different tokens are refused with 400.
    let d = run(&cfg, &[(":path", &path), ("x-b-token", &t)]);
    assert!(matches!(d, Decision::Allow(Outcome::Verified { .. }, _)));
    let other = token(SECRET_B, "https://b", "eve", json!({}));
    let d = run(&cfg, &[(":path", &path), ("x-b-token", &other)]);
    assert_eq!(denied(&d), (Refusal::BadRequest("multiple_tokens"), 400));
}

#[wasm_bindgen_test(unsupported = test)]
fn duplicate_authorization_is_400() {
    let cfg = two_providers(rule(json!({"provider_name": "a"})));
    let auth = format!("Bearer {}", token_a());
    let d = run(
        &cfg,
        &[
            (":path", "/x"),
            ("authorization", &auth),
            ("authorization", &auth),
        ],
    );
    let (refusal, status) = denied(&d);
    assert_eq!(
        (refusal, status),
        (Refusal::BadRequest("duplicate_token_header"), 400)
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn requirement_kinds() {
    let a = format!("Bearer {}", token_a());
    let b = token_b();
    let any = two_providers(rule(json!({"requires_any": {"requirements": [
        {"provider_name": "a"}, {"provider_name": "b"}]}})));
    assert!(matches!(
        allowed(&run(&any, &[(":path", "/"), ("x-b-token", &b)])).0,
        Outcome::Verified { provider: 1, .. }
    ));
    assert_eq!(denied(&run(&any, &[(":path", "/")])).0, Refusal::Missing);
    let all = two_providers(rule(json!({"requires_all": {"requirements": [
        {"provider_name": "a"}, {"provider_name": "b"}]}})));
    let d = run(
        &all,
        &[(":path", "/"), ("authorization", &a), ("x-b-token", &b)],
    );
    let (_, allow) = allowed(&d);
    assert_eq!(allow.remove_headers, vec!["authorization", "x-b-token"]);
    assert_eq!(
        denied(&run(&all, &[(":path", "/"), ("authorization", &a)])).0,
        Refusal::Missing
    );
    let missing = two_providers(rule(json!({"allow_missing": {}})));
    assert_eq!(
        allowed(&run(&missing, &[(":path", "/")])).0,
        &Outcome::Missing
    );
    assert!(matches!(
        allowed(&run(&missing, &[(":path", "/"), ("authorization", &a)])).0,
        Outcome::Verified { provider: 0, .. }
    ));
    let bad = "Bearer x.y.z";
    assert_eq!(
        denied(&run(&missing, &[(":path", "/"), ("authorization", bad)])).0,
        Refusal::Invalid("malformed")
    );
    let failed_ok = two_providers(rule(json!({"allow_missing_or_failed": {}})));
    let d = run(&failed_ok, &[(":path", "/"), ("authorization", bad)]);
    let (outcome, allow) = allowed(&d);
    assert_eq!(outcome, &Outcome::Failed("malformed"));
    assert_eq!(
        allow.remove_headers,
        vec!["authorization"],
        "failed tokens are not forwarded"
    );
    assert!(allow.set_headers.is_empty());
    // Bypass rule and unmatched requests: no token looked at.
    assert_eq!(
        allowed(&run(&any, &[(":path", "/health"), ("authorization", bad)])).0,
        &Outcome::Bypassed
    );
    let narrow =
        two_providers(json!([{"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}}]));
    assert_eq!(
        allowed(&run(&narrow, &[(":path", "/other")])).0,
        &Outcome::Bypassed
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn allow_missing_with_shared_location_uses_the_matching_provider() {
    // Both providers read Authorization: a token of b must not fail because a rejects it.
    let cfg = config(json!({
        "providers": {
            "a": {"issuer": "https://a", "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)}},
            "b": {"issuer": "https://b", "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_B)}}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]
    }));
    let d = run(
        &cfg,
        &[
            (":path", "/"),
            ("authorization", &format!("Bearer {}", token_b())),
        ],
    );
    assert!(matches!(
        allowed(&d).0,
        Outcome::Verified { provider: 1, .. }
    ));
}

#[wasm_bindgen_test(unsupported = test)]
fn unsafe_claims_are_not_copied() {
    let cfg = two_providers(rule(json!({"provider_name": "a"})));
    let t = token(
        SECRET_A,
        "https://a",
        "alice\r\nx-admin: true",
        json!({"aud": "api", "realm": {"roles": [{"x": 1}]}}),
    );
    let d = run(
        &cfg,
        &[(":path", "/"), ("authorization", &format!("Bearer {t}"))],
    );
    let (_, allow) = allowed(&d);
    assert!(!allow
        .set_headers
        .iter()
        .any(|(h, _)| h == "x-sub" || h == "x-roles"));
    assert_eq!(allow.refused_claims, 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn cache_hits_and_key_states() {
    let cfg = two_providers(rule(json!({"provider_name": "a"})));
    let h = req(&[
        (":path", "/"),
        ("authorization", &format!("Bearer {}", token_a())),
    ]);
    let mut cache = Caches::new(10, 10);
    let keys = TestKeys::new(&cfg);
    assert!(matches!(
        decide(&cfg, &h, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert!(matches!(
        decide(&cfg, &h, &keys, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert_eq!((cache.verified.hits(), cache.verified.misses()), (1, 1));
    // After exp the entry is not used and validation says expired.
    let d = decide(&cfg, &h, &keys, &mut cache, NOW + 700);
    assert_eq!(denied(&d).0, Refusal::Invalid("expired"));
    let pending = TestKeys {
        pending: vec![0],
        ..TestKeys::new(&cfg)
    };
    assert_eq!(
        decide(&cfg, &h, &pending, &mut Caches::new(0, 0), NOW),
        Decision::Wait {
            provider: 0,
            unknown_kid: false
        }
    );
    // No token: no need to wait for keys.
    let none = req(&[(":path", "/")]);
    assert_eq!(
        denied(&decide(&cfg, &none, &pending, &mut cache, NOW)).0,
        Refusal::Missing
    );
    let gone = TestKeys {
        unavailable: vec![0],
        ..TestKeys::new(&cfg)
    };
    let d = decide(&cfg, &h, &gone, &mut Caches::new(0, 0), NOW);
    assert_eq!(denied(&d), (Refusal::KeysUnavailable, 401));
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_kid_waits_only_when_a_refetch_may_happen() {
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET_A);
    let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]});
    let cfg = config(json!({
        "providers": {"a": {"issuer": "https://a", "local_jwks": {"inline_string": jwks.to_string()},
            "allowed_algorithms": ["HS256"]}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]
    }));
    let signed = |kid: &str| {
        hs256_raw(
            SECRET_A,
            &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            &json!({"iss": "https://a", "exp": NOW + 60}),
        )
    };
    let known = req(&[
        (":path", "/"),
        ("authorization", &format!("Bearer {}", signed("k1"))),
    ]);
    let unknown = req(&[
        (":path", "/"),
        ("authorization", &format!("Bearer {}", signed("k2"))),
    ]);
    let refetch = TestKeys {
        may_refetch: true,
        ..TestKeys::new(&cfg)
    };
    let mut cache = Caches::new(0, 0);
    assert!(matches!(
        decide(&cfg, &known, &refetch, &mut cache, NOW),
        Decision::Allow(..)
    ));
    assert_eq!(
        decide(&cfg, &unknown, &refetch, &mut cache, NOW),
        Decision::Wait {
            provider: 0,
            unknown_kid: true
        }
    );
    let d = decide(&cfg, &unknown, &TestKeys::new(&cfg), &mut cache, NOW);
    assert_eq!(denied(&d), (Refusal::Invalid("unknown_kid"), 401));
}

#[wasm_bindgen_test(unsupported = test)]
fn cors_preflight_bypass() {
    let mut cfg = two_providers(rule(json!({"provider_name": "a"})));
    let pre = [
        (":method", "OPTIONS"),
        (":path", "/x"),
        ("origin", "https://app"),
        ("access-control-request-method", "POST"),
    ];
    assert_eq!(denied(&run(&cfg, &pre)).0, Refusal::Missing);
    cfg.bypass_cors_preflight = true;
    assert_eq!(allowed(&run(&cfg, &pre)).0, &Outcome::Bypassed);
    assert_eq!(
        denied(&run(&cfg, &[(":method", "OPTIONS"), (":path", "/x")])).0,
        Refusal::Missing
    );
}
