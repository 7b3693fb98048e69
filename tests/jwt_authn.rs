//! The compiled jwt-authn filter in the harness: token sources, requirements, outputs,
//! anti-spoofing, replies, caches (this file) and the remote-JWKS lifecycle (`jwt_authn/remote.rs`).
//! Tokens and keys come from `fixtures/jwt_authn/fixtures.json` (made by PyJWT, see
//! `make_fixtures.py`); the fake clock starts at the fixtures' `now`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "jwt_authn/remote.rs"]
mod remote;
#[path = "jwt_authn/workers.rs"]
mod workers;

use meshguard_harness::{Clock, HarnessError, HeaderCodec, Host, HostBuilder, Outcome, Request};
use meshguard_wasm_artifacts::JWT_AUTHN;
use serde_json::{json, Value};

const FIXTURES: &str = include_str!("fixtures/jwt_authn/fixtures.json");
const ALLOWED_VERIFIED: &str =
    "meshguard_jwt_authn_requests_total_outcome=.=allowed;.;_reason=.=verified;.;";

fn fx() -> Value {
    serde_json::from_str(FIXTURES).unwrap()
}

fn now() -> u64 {
    fx()["now"].as_u64().unwrap()
}

fn tok(name: &str) -> String {
    fx()["tokens"][name].as_str().unwrap().to_string()
}

fn bearer(name: &str) -> String {
    format!("Bearer {}", tok(name))
}

/// Provider `idp` with the k1 JWKS inline, claim headers, payload header.
fn idp_local() -> Value {
    json!({
        "issuer": fx()["issuer"],
        "audiences": ["api"],
        "local_jwks": {"inline_string": fx()["jwks_k1"]},
        "claim_to_headers": [
            {"header_name": "x-sub", "claim_name": "sub"},
            {"header_name": "x-roles", "claim_name": "roles"},
            {"header_name": "x-realm-roles", "claim_name": "realm_access.roles"},
            {"header_name": "x-tier", "claim_name": "tier"}
        ],
        "forward_payload_header": "x-jwt-payload"
    })
}

fn builder(config: Value) -> HostBuilder {
    Host::builder(JWT_AUTHN)
        .plugin_config_json(config)
        .clock(Clock::fixed_unix(now()))
}

fn local_host(rules: Value) -> Host {
    local_builder(rules).build().unwrap()
}

fn local_builder(rules: Value) -> HostBuilder {
    builder(json!({
        "providers": {
            "idp": idp_local(),
            "hmac": {
                "issuer": "https://hmac.example.com",
                "hmac_secret": {"algorithm": "HS256", "inline_base64": fx()["hmac_secret_base64"]},
                "from_headers": [{"name": "x-api-token", "value_prefix": "Token "}],
                "from_params": ["access_token"],
                "from_cookies": ["session"]
            }
        },
        "rules": rules
    }))
}

fn require_idp() -> Value {
    json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}])
}

fn state(out: &Outcome, key: &str) -> Option<String> {
    out.filter_state
        .get(&format!("wasm.meshguard.jwt_authn.{key}"))
        .cloned()
}

fn reply_header(out: &Outcome, name: &str) -> Option<String> {
    out.local_reply.as_ref().and_then(|r| r.header(name))
}

#[test]
fn valid_token_reaches_upstream_with_claims_handoff_and_without_token() {
    let host = local_host(require_idp());
    let out = host
        .send(Request::get("/orders").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.upstream_header("x-sub").as_deref(), Some("alice"));
    assert_eq!(out.upstream_header("x-roles").as_deref(), Some("admin,dev"));
    assert_eq!(
        out.upstream_header("x-realm-roles").as_deref(),
        Some("r1,r2")
    );
    assert_eq!(out.upstream_header("x-tier").as_deref(), Some("gold"));
    assert!(out.upstream_header("x-jwt-payload").is_some());
    assert_eq!(
        out.upstream_header("authorization"),
        None,
        "token stripped (forward: false)"
    );
    assert_eq!(state(&out, "outcome").as_deref(), Some("verified"));
    assert_eq!(state(&out, "subject").as_deref(), Some("alice"));
    assert_eq!(
        state(&out, "issuer").as_deref(),
        Some("https://idp.example.com")
    );
    assert_eq!(state(&out, "provider").as_deref(), Some("idp"));
    let payload: Value = serde_json::from_str(&state(&out, "payload").unwrap()).unwrap();
    assert_eq!(payload["sub"], "alice");
    assert_eq!(host.counter(ALLOWED_VERIFIED), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn rs256_and_hs256_verify() {
    let host = local_host(json!([
        {"match": {"prefix": "/h"}, "requires": {"provider_name": "hmac"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}
    ]));
    let out = host
        .send(Request::get("/").header("authorization", bearer("valid_rs256")))
        .unwrap();
    assert_eq!(out.status, 200);
    let out = host
        .send(Request::get("/h").header("x-api-token", format!("Token {}", tok("hs256"))))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(state(&out, "provider").as_deref(), Some("hmac"));
}

#[test]
fn missing_token_is_401_without_error_code() {
    let host = local_host(require_idp());
    let out = host.send(Request::get("/orders")).unwrap();
    assert_eq!(out.status, 401);
    assert_eq!(
        reply_header(&out, "www-authenticate").as_deref(),
        Some(r#"Bearer realm="meshguard""#)
    );
    assert_eq!(state(&out, "outcome").as_deref(), Some("missing"));
    assert_eq!(state(&out, "reason").as_deref(), Some("missing"));
    assert_eq!(out.action, meshguard_harness::Action::Pause);
    assert_eq!(
        host.counter("meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.=missing;.;"),
        1
    );
}

#[test]
fn invalid_tokens_are_401_invalid_token_and_never_echoed() {
    let host = local_host(require_idp());
    for (name, reason) in [
        ("expired_k1", "expired"),
        ("wrong_aud_k1", "bad_audience"),
        ("wrong_iss_k1", "bad_issuer"),
        ("forged_k1", "bad_signature"),
        ("unknown_kid", "unknown_kid"),
        ("alg_none", "malformed"), // `h.p.`: the empty signature fails the strict parse first
    ] {
        let out = host
            .send(Request::get("/").header("authorization", bearer(name)))
            .unwrap();
        assert_eq!(out.status, 401, "{name}");
        assert_eq!(
            reply_header(&out, "www-authenticate"),
            Some(format!(
                r#"Bearer realm="meshguard", error="invalid_token", error_description="{reason}""#
            )),
            "{name}"
        );
        let body = out.local_reply.as_ref().unwrap().body_text();
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["reason"], reason);
        assert!(
            !body.contains(&tok(name)) && !body.contains("eyJ"),
            "token echoed: {body}"
        );
        assert_eq!(state(&out, "outcome").as_deref(), Some("failed"));
        assert_eq!(state(&out, "reason").as_deref(), Some(reason));
    }
    assert!(host.traps().is_empty());
}

#[test]
fn custom_failure_status_and_body() {
    let host = builder(json!({
        "providers": {"idp": idp_local()},
        "rules": require_idp(),
        "failure": {"status": 403, "body": "no: {reason}", "content_type": "text/plain", "realm": "orders"}
    }))
    .build()
    .unwrap();
    let out = host
        .send(Request::get("/").header("authorization", bearer("expired_k1")))
        .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(out.local_reply.as_ref().unwrap().body_text(), "no: expired");
    assert!(reply_header(&out, "www-authenticate")
        .unwrap()
        .starts_with(r#"Bearer realm="orders""#));
}

#[test]
fn every_token_source() {
    let host =
        local_host(json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "hmac"}}]));
    let t = tok("hs256");
    let out = host
        .send(Request::get("/a").header("x-api-token", format!("token {t}")))
        .unwrap();
    assert_eq!(out.status, 200, "custom header, prefix case-insensitive");
    assert_eq!(out.upstream_header("x-api-token"), None);
    let out = host
        .send(Request::get(&format!("/a?x=1&access_token={t}&y=2")))
        .unwrap();
    assert_eq!(out.status, 200, "query parameter");
    assert_eq!(
        out.upstream_header(":path").as_deref(),
        Some("/a?x=1&y=2"),
        "param stripped"
    );
    let out = host
        .send(Request::get("/a").header("cookie", format!("theme=dark; session={t}")))
        .unwrap();
    assert_eq!(out.status, 200, "cookie");
    assert_eq!(
        out.upstream_header("cookie").as_deref(),
        Some("theme=dark"),
        "cookie stripped"
    );
    let out = host
        .send(Request::get("/a").header("authorization", format!("Bearer {t}")))
        .unwrap();
    assert_eq!(
        out.status, 401,
        "Authorization is not a location of this provider"
    );
}

#[test]
fn forward_true_keeps_the_token() {
    let mut idp = idp_local();
    idp["forward"] = json!(true);
    let host = builder(json!({"providers": {"idp": idp}, "rules": require_idp()}))
        .build()
        .unwrap();
    let out = host
        .send(Request::get("/").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(
        out.upstream_header("authorization"),
        Some(bearer("valid_k1"))
    );
}

#[test]
fn duplicate_authorization_and_two_tokens_are_400() {
    let rules = json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
        {"provider_name": "idp"}, {"provider_name": "hmac"}]}}}]);
    // Both forms: Envoy's (two lines joined with ',' into one value, the harness default) and
    // raw duplicate entries (a host that does not merge).
    for codec in [HeaderCodec::Http1, HeaderCodec::Http2, HeaderCodec::Raw] {
        let host = local_builder(rules.clone())
            .header_codec(codec)
            .build()
            .unwrap();
        let out = host
            .send(
                Request::get("/")
                    .header("authorization", bearer("valid_k1"))
                    .header("authorization", bearer("valid_k1")),
            )
            .unwrap();
        assert_eq!(out.status, 400, "{codec:?}");
        assert!(reply_header(&out, "www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_request""#));
        assert_eq!(
            state(&out, "reason").as_deref(),
            Some("duplicate_token_header"),
            "{codec:?}"
        );
    }
    let host = local_host(rules);
    // The joined form sent as one line is refused the same way.
    let merged = format!("{},{}", bearer("valid_k1"), bearer("valid_k1"));
    let out = host
        .send(Request::get("/").header("authorization", merged))
        .unwrap();
    assert_eq!(out.status, 400);
    assert_eq!(
        state(&out, "reason").as_deref(),
        Some("duplicate_token_header")
    );
    let t = tok("hs256");
    let out = host
        .send(
            Request::get(&format!("/?access_token={t}"))
                .header("x-api-token", format!("Token {}", tok("valid_k1"))),
        )
        .unwrap();
    assert_eq!(out.status, 400);
    assert_eq!(state(&out, "reason").as_deref(), Some("multiple_tokens"));
}

#[test]
fn requirement_kinds_per_route() {
    let host = local_host(json!([
        {"match": {"path": "/health", "methods": ["GET"]}, "bypass": true},
        {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "idp"}, {"provider_name": "hmac"}]}}},
        {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "idp"}, {"provider_name": "hmac"}]}}},
        {"match": {"path_template": "/users/{id}/profile"}, "requires": {"allow_missing": {}}},
        {"match": {"prefix": "/soft"}, "requires": {"allow_missing_or_failed": {}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}
    ]));
    let status = |r: Request| host.send(r).unwrap().status;
    let hmac = format!("Token {}", tok("hs256"));
    assert_eq!(status(Request::get("/health")), 200);
    assert_eq!(
        status(Request::new("POST", "/health")),
        401,
        "method not in the bypass rule"
    );
    assert_eq!(
        status(Request::get("/any").header("x-api-token", &hmac)),
        200
    );
    assert_eq!(
        status(Request::get("/any").header("authorization", bearer("valid_k1"))),
        200
    );
    assert_eq!(status(Request::get("/any")), 401);
    assert_eq!(
        status(Request::get("/all").header("x-api-token", &hmac)),
        401
    );
    assert_eq!(
        status(
            Request::get("/all")
                .header("x-api-token", &hmac)
                .header("authorization", bearer("valid_k1"))
        ),
        200
    );
    assert_eq!(status(Request::get("/users/7/profile")), 200);
    assert_eq!(
        status(Request::get("/users/7/profile").header("authorization", bearer("valid_k1"))),
        200
    );
    assert_eq!(
        status(Request::get("/users/7/profile").header("authorization", bearer("expired_k1"))),
        401
    );
    let out = host
        .send(Request::get("/soft").header("authorization", bearer("expired_k1")))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(state(&out, "outcome").as_deref(), Some("failed"));
    assert_eq!(
        out.upstream_header("authorization"),
        None,
        "a failed token is not forwarded either"
    );
    let out = host.send(Request::get("/health")).unwrap();
    assert_eq!(state(&out, "outcome").as_deref(), Some("bypassed"));
}

#[test]
fn client_copies_of_output_headers_never_reach_upstream() {
    let host = local_host(json!([{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]));
    let spoof = |r: Request| {
        r.header("x-sub", "admin")
            .header("x-roles", "root")
            .header("x-jwt-payload", "e30")
            .header("x-tier", "platinum")
    };
    let out = host.send(spoof(Request::get("/"))).unwrap();
    assert_eq!(out.status, 200);
    for h in ["x-sub", "x-roles", "x-jwt-payload", "x-tier"] {
        assert_eq!(out.upstream_header(h), None, "{h} spoofed");
    }
    let out = host
        .send(spoof(Request::get("/")).header("authorization", bearer("valid_k1")))
        .unwrap();
    let up = out.upstream_headers.clone().unwrap();
    assert_eq!(up.get_all("x-sub"), vec!["alice"]);
    assert_eq!(up.get_all("x-tier"), vec!["gold"]);
}

#[test]
fn unsafe_claim_values_are_not_copied_raw() {
    let host = local_host(require_idp());
    let out = host
        .send(Request::get("/").header("authorization", bearer("crlf_sub_k1")))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.upstream_header("x-sub"), None, "CR/LF claim refused");
    assert_eq!(
        out.upstream_header("x-tier"),
        None,
        "non-ASCII claim refused"
    );
    assert_eq!(out.upstream_header("x-admin"), None);
    assert_eq!(
        host.counter("meshguard_jwt_authn_claim_headers_refused_total"),
        2
    );
}

#[test]
fn verified_token_cache_hits_then_expires_with_the_clock() {
    let host = local_host(require_idp());
    let hit = "meshguard_jwt_authn_cache_total_result=.=hit;.;";
    let miss = "meshguard_jwt_authn_cache_total_result=.=miss;.;";
    let send = || {
        host.send(Request::get("/").header("authorization", bearer("short_k1")))
            .unwrap()
    };
    assert_eq!(send().status, 200);
    assert_eq!(send().status, 200);
    assert_eq!((host.counter(hit), host.counter(miss)), (1, 1));
    // exp = now + 300: the entry is not used from exp on (validation then applies the skew).
    host.advance(std::time::Duration::from_secs(300)).unwrap();
    assert_eq!(send().status, 200, "within clock skew");
    assert_eq!((host.counter(hit), host.counter(miss)), (1, 2));
    host.advance(std::time::Duration::from_secs(61)).unwrap();
    let out = send();
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "reason").as_deref(), Some("expired"));
}

#[test]
fn repeated_invalid_tokens_are_refused_from_the_failed_verdict_cache() {
    let failed_hit = "meshguard_jwt_authn_failed_cache_total_result=.=hit;.;";
    let failed_miss = "meshguard_jwt_authn_failed_cache_total_result=.=miss;.;";
    let denied =
        |r: &str| format!("meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.={r};.;");
    // What the reply, the hand-off and the reason look like: all must repeat exactly.
    let seen = |out: &Outcome| {
        let reply = out.local_reply.as_ref().unwrap();
        (
            out.status,
            reply.header("www-authenticate"),
            reply.body_text(),
            state(out, "outcome"),
            state(out, "reason"),
        )
    };
    let host = local_host(require_idp());
    let off = builder(json!({
        "providers": {"idp": idp_local()},
        "rules": require_idp(),
        "cache": {"max_failed_entries": 0}
    }))
    .build()
    .unwrap();
    let cases = [
        ("forged_k1", "bad_signature"),
        ("expired_k1", "expired"),
        ("wrong_aud_k1", "bad_audience"),
    ];
    for (i, (name, reason)) in cases.iter().enumerate() {
        let send = |h: &Host| {
            h.send(Request::get("/").header("authorization", bearer(name)))
                .unwrap()
        };
        let first = send(&host);
        assert_eq!(first.status, 401, "{name}");
        assert_eq!(state(&first, "reason").as_deref(), Some(*reason));
        assert_eq!(
            host.counter(failed_hit),
            i as i64,
            "{name}: first is validated"
        );
        let again = send(&host);
        assert_eq!(
            host.counter(failed_hit),
            i as i64 + 1,
            "{name}: from the cache"
        );
        assert_eq!(seen(&again), seen(&first), "{name}");
        assert_eq!(
            seen(&send(&off)),
            seen(&first),
            "{name}: as without the cache"
        );
        assert_eq!(host.counter(&denied(reason)), 2, "{name}");
    }
    assert_eq!(host.counter(failed_miss), cases.len() as i64);
    assert_eq!(
        off.counter(failed_hit),
        0,
        "max_failed_entries: 0 turns it off"
    );
    // A token of the cache's own kind that can change is validated every time.
    let unknown = || {
        host.send(Request::get("/").header("authorization", bearer("unknown_kid")))
            .unwrap()
    };
    assert_eq!(state(&unknown(), "reason").as_deref(), Some("unknown_kid"));
    assert_eq!(state(&unknown(), "reason").as_deref(), Some("unknown_kid"));
    assert_eq!(host.counter(failed_hit), cases.len() as i64);
    // Valid tokens still verify (and hit their own cache).
    let ok = host
        .send(Request::get("/").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn hostile_input_never_traps() {
    let host = local_host(require_idp());
    let huge = format!("Bearer {}", "a".repeat(100_000));
    for value in [
        huge.as_bytes(),
        b"Bearer \xff\xfe\x00.x.y".as_slice(),
        b"Bearer ....",
        b"Bearer ",
    ] {
        let out = host
            .send(Request::get("/").header("authorization", value))
            .unwrap();
        assert_eq!(out.status, 401);
    }
    let out = host
        .send(Request::get("/?access_token=%ff%fe").header("cookie", "\u{1}=;;="))
        .unwrap();
    assert_eq!(out.status, 401);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn bad_config_is_refused_with_the_field_path() {
    let err = match builder(json!({"providers": {"idp": {"remote_jwks": {
        "http_uri": {"uri": "https://idp/jwks", "cluster": "idp", "timeout": "5x"}}}}}))
    .build()
    {
        Ok(_) => panic!("config must be refused"),
        Err(e) => e,
    };
    assert!(
        matches!(err, HarnessError::ConfigureRejected { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("providers.idp.remote_jwks.http_uri.timeout: invalid duration"),
        "{err}"
    );
    let short = builder(json!({"providers": {"h": {"hmac_secret": {"algorithm": "HS256", "inline_base64": "c2hvcnQ="}}}}))
        .build();
    assert!(short.is_err(), "short HMAC secret must be refused");
    let unknown = builder(json!({"providers": {"idp": idp_local()}, "rulez": []})).build();
    assert!(unknown.is_err(), "unknown field must be refused");
}
