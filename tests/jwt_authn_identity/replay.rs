//! `jti` replay detection on the compiled filter: reuse refused (also when the token comes from
//! the verified-token cache), tokens without `jti`, the bounded store failing closed when full,
//! a `requires_all` request that spent its `jti` and resumed after a key fetch, and 2 / 4 workers
//! sending the same token at once (real threads, one per worker; the harness
//! locks shared data per hostcall, so their get / set-with-CAS pairs interleave freely).

use std::sync::Barrier;
use std::time::Duration;

use meshguard_harness::Request;
use serde_json::{json, Value};

use super::{denied, hs256, hs_provider, jwt_host, state};

fn replay_config(replay: Value) -> Value {
    json!({"providers": {"hs": hs_provider(json!({"jti_replay": replay}))},
           "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "hs"}}]})
}

fn replay_metric(result: &str) -> String {
    format!("meshguard_jwt_authn_jti_replay_total_result=.={result};.;")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn a_jti_is_used_once_even_when_the_token_is_cached() {
    let host = jwt_host(replay_config(json!({})), 1);
    let t = hs256(json!({"jti": "once-1"}));
    let send = |t: &str| {
        host.send(Request::get("/").header("authorization", bearer(t)))
            .unwrap()
    };
    assert_eq!(send(&t).status, 200);
    let out = send(&t);
    assert_eq!(out.status, 401);
    assert_eq!(
        host.counter("meshguard_jwt_authn_cache_total_result=.=hit;.;"),
        1,
        "the second use was served by the verified-token cache and still checked"
    );
    let reply = out.local_reply.as_ref().unwrap();
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="meshguard", error="invalid_token", error_description="replayed""#)
    );
    let body: Value = serde_json::from_str(&reply.body_text()).unwrap();
    assert_eq!(body["reason"], "replayed");
    assert_eq!(state(&out, "reason").as_deref(), Some("replayed"));
    assert_eq!(send(&hs256(json!({"jti": "once-2"}))).status, 200);
    let out = send(&hs256(json!({})));
    assert_eq!(out.status, 401, "required: no jti, no entry");
    assert_eq!(state(&out, "reason").as_deref(), Some("missing_jti"));
    assert_eq!(host.counter(&replay_metric("fresh")), 2);
    assert_eq!(host.counter(&replay_metric("replayed")), 1);
    assert_eq!(host.counter(&denied("replayed")), 1);
    assert_eq!(host.counter(&denied("missing_jti")), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn optional_jti_lets_tokens_without_one_through() {
    let host = jwt_host(replay_config(json!({"required": false})), 1);
    for _ in 0..2 {
        let out = host
            .send(Request::get("/").header("authorization", bearer(&hs256(json!({})))))
            .unwrap();
        assert_eq!(out.status, 200);
    }
    assert_eq!(host.counter(&replay_metric("skipped")), 2);
}

#[test]
fn a_full_store_fails_closed_until_records_expire() {
    // 8 entries = one bucket of 8: the 9th live token has no room.
    let host = jwt_host(replay_config(json!({"max_entries": 8})), 1);
    let send = |jti: &str| {
        host.send(Request::get("/").header("authorization", bearer(&hs256(json!({"jti": jti})))))
            .unwrap()
    };
    for i in 0..8 {
        assert_eq!(send(&format!("fill-{i}")).status, 200);
    }
    let out = send("one-too-many");
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "reason").as_deref(), Some("replay_cache_full"));
    assert_eq!(host.counter(&replay_metric("full")), 1);
    assert_eq!(host.counter(&denied("replay_cache_full")), 1);
    let keys = host.shared_data("", "meshguard.jwt_authn.jti.hs.1.0");
    assert_eq!(
        keys.map(|(v, _)| v.len()),
        Some(8 * 24),
        "bounded: 8 records"
    );
    assert!(host
        .shared_data("", "meshguard.jwt_authn.jti.hs.1.1")
        .is_none());
    // Tokens expire at NOW + 600, records at exp + 60 s skew: then the space is reused (the
    // refused token itself has expired too, so a fresh one is sent).
    host.advance(Duration::from_secs(661)).unwrap();
    let late = hs256(json!({"jti": "later", "iat": super::NOW + 650, "exp": super::NOW + 1300}));
    let out = host
        .send(Request::get("/").header("authorization", bearer(&late)))
        .unwrap();
    assert_eq!(out.status, 200, "{:?}", state(&out, "reason"));
}

#[test]
fn two_and_four_workers_racing_on_one_jti_admit_exactly_one() {
    for workers in [2usize, 4] {
        let host = jwt_host(replay_config(json!({"max_entries": 1024})), workers);
        for round in 0..25 {
            let token = hs256(json!({"jti": format!("race-{workers}-{round}")}));
            let barrier = Barrier::new(workers);
            let admitted: Vec<bool> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        let (host, token, barrier) = (&host, &token, &barrier);
                        scope.spawn(move || {
                            let mut s = host.stream_on(w).unwrap();
                            barrier.wait();
                            let step = s
                                .request_headers(
                                    [
                                        (":method", "GET"),
                                        (":path", "/"),
                                        (":authority", "api"),
                                        ("authorization", bearer(token).as_str()),
                                    ],
                                    true,
                                )
                                .unwrap();
                            step.local_reply.is_none()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                admitted.iter().filter(|a| **a).count(),
                1,
                "{workers} workers, round {round}: {admitted:?}"
            );
        }
        assert_eq!(host.counter(&replay_metric("fresh")), 25);
        assert_eq!(
            host.counter(&replay_metric("replayed")),
            25 * (workers as i64 - 1)
        );
        assert_eq!(host.counter(&replay_metric("failed")), 0);
        eprintln!(
            "{workers} workers: {} CAS conflicts over 25 rounds",
            host.counter("meshguard_jwt_authn_jti_replay_cas_conflicts_total")
        );
        assert!(host.traps().is_empty(), "{:?}", host.traps());
    }
}

/// `requires_all` of `hs` (jti_replay, header `x-hs-token`) and `idp` (remote JWKS, not loaded
/// yet): `hs` spends the token's `jti`, then the request pauses for `idp`'s keys.
fn paused_for_keys_host() -> meshguard_harness::Host {
    use base64::Engine;
    let fx: Value =
        serde_json::from_str(include_str!("../fixtures/jwt_authn/fixtures.json")).unwrap();
    let config = json!({
        "providers": {
            "hs": hs_provider(json!({"jti_replay": {}, "from_headers": [{"name": "x-hs-token"}]})),
            "idp": {"issuer": fx["issuer"], "audiences": ["api"],
                    "remote_jwks": {"http_uri": {"uri": "https://idp.example.com/jwks",
                                                 "cluster": "idp", "timeout": "2s"},
                                    "cold_start_timeout": "3s"}}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "hs"}, {"provider_name": "idp"}]}}}]
    });
    meshguard_harness::Host::builder(meshguard_wasm_artifacts::JWT_AUTHN)
        .plugin_config_json(config)
        .env(
            "JWT_HS_SECRET",
            &base64::engine::general_purpose::STANDARD.encode(super::SECRET),
        )
        .upstream("idp", meshguard_harness::Upstream::Manual)
        .clock(meshguard_harness::Clock::fixed_unix(super::NOW))
        .build()
        .unwrap()
}

#[test]
fn a_request_resumed_after_a_key_fetch_is_not_a_replay_of_itself() {
    let fx: Value =
        serde_json::from_str(include_str!("../fixtures/jwt_authn/fixtures.json")).unwrap();
    let host = paused_for_keys_host();
    let hs_token = hs256(json!({"jti": "resume-1"}));
    let idp_token = fx["tokens"]["valid_k1"].as_str().unwrap().to_string();
    let request = |host: &meshguard_harness::Host| {
        let mut s = host.stream_on(0).unwrap();
        s.request_headers(
            [
                (":method", "GET".to_string()),
                (":path", "/".to_string()),
                (":authority", "api".to_string()),
                ("x-hs-token", hs_token.clone()),
                ("authorization", bearer(&idp_token)),
            ],
            true,
        )
        .unwrap();
        s
    };
    let s = request(&host);
    assert_eq!(s.action(), meshguard_harness::Action::Pause);
    assert!(s.local_reply().is_none(), "waiting for idp's keys");
    assert_eq!(host.counter(&replay_metric("fresh")), 1, "hs spent the jti");
    let calls = host.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let jwks = meshguard_harness::HttpResponse::ok()
        .header("content-type", "application/json")
        .body(fx["jwks_k1"].as_str().unwrap().as_bytes().to_vec());
    host.deliver_http_call(calls[0].token, jwks).unwrap();
    assert!(
        s.is_resumed(),
        "decided again with idp's keys: {:?}",
        s.local_reply()
    );
    assert_eq!(s.request_header("x-hs-token"), None, "token stripped");
    assert_eq!(host.counter(&replay_metric("fresh")), 1);
    assert_eq!(host.counter(&replay_metric("replayed")), 0);
    // Another request with the same jti is refused (the keys are loaded: no pause).
    let other = request(&host);
    let reply = other.local_reply().expect("refused");
    assert_eq!(reply.status, 401);
    let body: Value = serde_json::from_str(&reply.body_text()).unwrap();
    assert_eq!(body["reason"], "replayed");
    assert_eq!(host.counter(&replay_metric("replayed")), 1);
    assert_eq!(host.counter(&denied("replayed")), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}
