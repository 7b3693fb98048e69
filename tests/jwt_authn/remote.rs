//! Remote JWKS lifecycle: cold start with paused requests, one fetch for all workers, failure,
//! timeout, refresh before expiry, stale-if-error then fail closed, rotation via unknown `kid`
//! (rate-limited), OpenID discovery.

use std::time::Duration;

use meshguard_harness::{Action, Host, HttpResponse, HttpStream, Upstream};
use serde_json::{json, Value};

use super::{bearer, builder, fx, require_idp, state};

const FETCH_OK: &str = "meshguard_jwt_authn_jwks_fetch_total_provider=.=idp;.;_result=.=ok;.;";
const FETCH_FAILED: &str =
    "meshguard_jwt_authn_jwks_fetch_total_provider=.=idp;.;_result=.=failed;.;";

fn remote_config(extra: Value) -> Value {
    let mut remote = json!({
        "http_uri": {"uri": "https://idp.example.com/jwks", "cluster": "idp", "timeout": "2s"},
        "cache_duration": "10m",
        "max_stale": "1h",
        "cold_start_timeout": "3s"
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        remote[k] = v;
    }
    json!({
        "providers": {"idp": {
            "issuer": fx()["issuer"],
            "audiences": ["api"],
            "remote_jwks": remote,
            "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]
        }},
        "rules": require_idp()
    })
}

pub(crate) fn jwks(name: &str) -> HttpResponse {
    HttpResponse::ok()
        .header("content-type", "application/json")
        .body(fx()[name].as_str().unwrap().as_bytes().to_vec())
}

fn host(workers: usize, upstream: Upstream, extra: Value) -> Host {
    builder(remote_config(extra))
        .workers(workers)
        .upstream("idp", upstream)
        .build()
        .unwrap()
}

pub(crate) fn request(host: &Host, worker: usize, token: &str) -> HttpStream {
    let mut s = host.stream_on(worker).unwrap();
    s.request_headers(
        [
            (":method", "GET".to_string()),
            (":path", "/orders".to_string()),
            (":authority", "api".to_string()),
            ("authorization", bearer(token)),
        ],
        true,
    )
    .unwrap();
    s
}

fn status(host: &Host, token: &str) -> u16 {
    host.send(meshguard_harness::Request::get("/").header("authorization", bearer(token)))
        .unwrap()
        .status
}

#[test]
fn cold_start_pauses_requests_until_keys_arrive() {
    let host = host(1, Upstream::Manual, json!({}));
    let s1 = request(&host, 0, "valid_k1");
    let s2 = request(&host, 0, "valid_k1_bob");
    assert_eq!(s1.action(), Action::Pause);
    assert_eq!(s2.action(), Action::Pause);
    assert!(
        s1.local_reply().is_none() && s2.local_reply().is_none(),
        "no burst of 401s"
    );
    let calls = host.pending_http_calls();
    assert_eq!(calls.len(), 1, "one fetch for both paused requests");
    let call = &calls[0];
    assert_eq!(call.upstream, "idp");
    assert_eq!(call.header(":path").as_deref(), Some("/jwks"));
    assert_eq!(
        call.header(":authority").as_deref(),
        Some("idp.example.com")
    );
    assert_eq!(call.header(":method").as_deref(), Some("GET"));
    assert_eq!(call.timeout, Some(Duration::from_secs(2)));
    host.deliver_http_call(call.token, jwks("jwks_k1")).unwrap();
    assert!(s1.is_resumed() && s2.is_resumed());
    assert_eq!(s1.request_header("x-sub").as_deref(), Some("alice"));
    assert_eq!(s2.request_header("x-sub").as_deref(), Some("bob"));
    assert_eq!(s1.request_header("authorization"), None);
    assert_eq!(host.counter(FETCH_OK), 1);
    // Later requests use the loaded keys without a fetch.
    assert_eq!(status(&host, "valid_k1"), 200);
    assert_eq!(host.http_calls().len(), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn two_workers_share_one_fetch() {
    let host = host(2, Upstream::Manual, json!({}));
    let s0 = request(&host, 0, "valid_k1");
    let s1 = request(&host, 1, "valid_k1_bob");
    assert_eq!((s0.action(), s1.action()), (Action::Pause, Action::Pause));
    let calls = host.pending_http_calls();
    assert_eq!(
        calls.len(),
        1,
        "the second worker saw the lease and did not fetch"
    );
    assert_eq!(calls[0].worker, 0);
    host.deliver_http_call(calls[0].token, jwks("jwks_k1"))
        .unwrap();
    assert!(s0.is_resumed());
    // Worker 1 learns about the keys from shared data on its next tick.
    host.advance(Duration::from_millis(200)).unwrap();
    assert!(s1.is_resumed());
    assert_eq!(s1.request_header("x-sub").as_deref(), Some("bob"));
    assert_eq!(host.http_calls().len(), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn fetch_failure_fails_paused_requests_closed() {
    let host = host(1, Upstream::fail(), json!({}));
    let out = host
        .send(meshguard_harness::Request::get("/").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "reason").as_deref(), Some("keys_unavailable"));
    let challenge = out
        .local_reply
        .as_ref()
        .unwrap()
        .header("www-authenticate")
        .unwrap();
    assert!(
        challenge.contains(r#"error_description="keys_unavailable""#),
        "{challenge}"
    );
    assert_eq!(host.counter(FETCH_FAILED), 1);
    // Back-off: within failed_refetch_duration (1 s) no new fetch, the request fails fast.
    assert_eq!(status(&host, "valid_k1"), 401);
    assert_eq!(host.http_calls().len(), 1);
    // After it, the IdP is back: the next request fetches and passes.
    host.set_upstream("idp", Upstream::respond(jwks("jwks_k1")));
    host.advance(Duration::from_millis(1_100)).unwrap();
    assert_eq!(status(&host, "valid_k1"), 200);
    assert_eq!(host.counter(FETCH_OK), 1);
}

#[test]
fn keys_unavailable_status_is_configurable() {
    let mut cfg = remote_config(json!({}));
    cfg["failure"] = json!({"keys_unavailable_status": 503});
    let host = builder(cfg)
        .upstream("idp", Upstream::fail())
        .build()
        .unwrap();
    assert_eq!(status(&host, "valid_k1"), 503);
}

#[test]
fn fetch_timeout_fails_closed() {
    let host = host(1, Upstream::Timeout, json!({}));
    let s = request(&host, 0, "valid_k1");
    assert_eq!(s.action(), Action::Pause);
    host.advance(Duration::from_millis(2_100)).unwrap();
    let reply = s.local_reply().expect("401 after the fetch timed out");
    assert_eq!(reply.status, 401);
    assert_eq!(host.counter(FETCH_FAILED), 1);
}

#[test]
fn cold_start_wait_is_bounded() {
    // The fetch never answers within the wait: the request fails closed at its deadline.
    let host = host(
        1,
        Upstream::Manual,
        json!({"http_uri": {
        "uri": "https://idp.example.com/jwks", "cluster": "idp", "timeout": "30s"}}),
    );
    let s = request(&host, 0, "valid_k1");
    host.advance(Duration::from_millis(2_900)).unwrap();
    assert!(s.local_reply().is_none());
    host.advance(Duration::from_millis(300)).unwrap();
    assert_eq!(s.local_reply().map(|r| r.status), Some(401));
}

#[test]
fn keys_refresh_before_expiry_then_serve_stale_then_fail_closed() {
    let host = host(1, Upstream::respond(jwks("jwks_k1")), json!({}));
    assert_eq!(status(&host, "valid_k1"), 200);
    assert_eq!(host.http_calls().len(), 1);
    // Refreshed in the background at 80 % of cache_duration (8 min), by a tick.
    host.advance(Duration::from_secs(8 * 60 + 2)).unwrap();
    assert_eq!(host.http_calls().len(), 2, "refreshed before expiry");
    // The IdP goes down: the last good keys keep working past cache_duration...
    host.set_upstream("idp", Upstream::fail());
    host.advance(Duration::from_secs(30 * 60)).unwrap();
    assert!(host.counter(FETCH_FAILED) > 0);
    assert_eq!(
        status(&host, "valid_k1"),
        200,
        "stale keys within max_stale"
    );
    // ...until cache_duration + max_stale after the last success, then requests fail closed.
    host.advance(Duration::from_secs(45 * 60)).unwrap();
    let out = host
        .send(meshguard_harness::Request::get("/").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "reason").as_deref(), Some("keys_unavailable"));
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn rotation_unknown_kid_refetches_once_rate_limited() {
    let host = host(1, Upstream::respond(jwks("jwks_k1")), json!({}));
    assert_eq!(status(&host, "valid_k1"), 200);
    // The IdP rotates to k2: a token with the new kid triggers a refetch and passes.
    host.set_upstream("idp", Upstream::respond(jwks("jwks_k1k2")));
    assert_eq!(status(&host, "valid_k2"), 200);
    assert_eq!(host.http_calls().len(), 2);
    // A kid nobody has: one refetch is allowed only after the interval (30 s).
    let out = host
        .send(meshguard_harness::Request::get("/").header("authorization", bearer("unknown_kid")))
        .unwrap();
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "reason").as_deref(), Some("unknown_kid"));
    assert_eq!(
        host.http_calls().len(),
        2,
        "within 30 s of the last kid refetch: none"
    );
    host.advance(Duration::from_secs(31)).unwrap();
    assert_eq!(status(&host, "unknown_kid"), 401);
    assert_eq!(host.http_calls().len(), 3, "one refetch after the interval");
    assert_eq!(status(&host, "unknown_kid"), 401);
    assert_eq!(host.http_calls().len(), 3, "and not again");
    assert_eq!(status(&host, "valid_k1"), 200);
}

#[test]
fn openid_discovery_finds_the_jwks_uri() {
    let issuer = fx()["issuer"].as_str().unwrap().to_string();
    let cfg = json!({
        "providers": {"idp": {
            "issuer": issuer,
            "openid_discovery": {"cluster": "idp", "jwks_cluster": "idp-keys", "timeout": "2s"}
        }},
        "rules": require_idp()
    });
    let discovery = json!({"issuer": issuer, "jwks_uri": "https://keys.example.com/certs"});
    let host = builder(cfg)
        .upstream(
            "idp",
            Upstream::respond(HttpResponse::ok().body(discovery.to_string().into_bytes())),
        )
        .upstream("idp-keys", Upstream::respond(jwks("jwks_k1")))
        .build()
        .unwrap();
    assert_eq!(status(&host, "valid_k1"), 200);
    let calls = host.http_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].header(":path").as_deref(),
        Some("/.well-known/openid-configuration")
    );
    assert_eq!(calls[1].upstream, "idp-keys");
    assert_eq!(
        calls[1].header(":authority").as_deref(),
        Some("keys.example.com")
    );
    assert_eq!(calls[1].header(":path").as_deref(), Some("/certs"));
}

#[test]
fn discovery_document_of_another_issuer_is_refused() {
    let issuer = fx()["issuer"].as_str().unwrap().to_string();
    let cfg = json!({
        "providers": {"idp": {"issuer": issuer, "openid_discovery": {"cluster": "idp"}}},
        "rules": require_idp()
    });
    let wrong =
        json!({"issuer": "https://evil.example.com", "jwks_uri": "https://evil.example.com/k"});
    let host = builder(cfg)
        .upstream(
            "idp",
            Upstream::respond(HttpResponse::ok().body(wrong.to_string().into_bytes())),
        )
        .build()
        .unwrap();
    assert_eq!(status(&host, "valid_k1"), 401);
    assert_eq!(
        host.http_calls().len(),
        1,
        "the evil jwks_uri is never fetched"
    );
    assert_eq!(host.counter(FETCH_FAILED), 1);
}
