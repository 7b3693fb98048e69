//! The JWKS endpoint misbehaving — down, slow past the timeout, garbage, a huge body, keys that
//! all fail to parse — at cold start (requests fail closed with 401 `keys_unavailable`, the
//! documented default; `failure.keys_unavailable_status` may make it 503) and at refresh (the
//! last good keys keep serving until `cache_duration + max_stale`, then 401).

use std::time::Duration;

use meshguard_harness::{HttpResponse, Request, Upstream};
use serde_json::json;

use crate::support::*;

#[derive(Debug, Clone, Copy)]
enum Fault {
    Down,
    Slow,
    Garbage,
    Huge,
    BadKeys,
}

const ALL: [Fault; 5] = [
    Fault::Down,
    Fault::Slow,
    Fault::Garbage,
    Fault::Huge,
    Fault::BadKeys,
];

/// A body over the default `max_body_bytes` (256 KiB): a valid JWKS padded with a long member,
/// so only its size can be the reason it is refused.
fn huge_body() -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_str(&jwks()).unwrap();
    doc["padding"] = json!("x".repeat(300 * 1024));
    doc.to_string().into_bytes()
}

fn upstream(fault: Fault) -> Upstream {
    match fault {
        Fault::Down => Upstream::fail(),
        // The example's http_uri.timeout is 2s.
        Fault::Slow => Upstream::respond_after(jwks_response(), Duration::from_secs(3)),
        Fault::Garbage => Upstream::respond(
            HttpResponse::ok()
                .header("content-type", "text/html")
                .body(b"<html>502 bad gateway</html>\0\xff".to_vec()),
        ),
        Fault::Huge => Upstream::respond(
            HttpResponse::ok()
                .header("content-type", "application/json")
                .body(huge_body()),
        ),
        Fault::BadKeys => Upstream::respond(HttpResponse::ok().body(
            json!({"keys": [
                {"kty": "RSA", "kid": "demo-1", "alg": "RS256", "n": "!!not-base64!!", "e": "AQAB"},
                {"kty": "EC", "kid": "demo-1", "crv": "P-256", "x": "AA", "y": "AA"},
                {"kty": "oct", "kid": "demo-1", "k": "c2VjcmV0"},
                {"kty": "OKP", "crv": "X25519", "x": "AA"}
            ]})
            .to_string()
            .into_bytes(),
        )),
    }
}

/// The counter a failed fetch of this kind increments.
fn failure_counter(fault: Fault) -> &'static str {
    match fault {
        Fault::Huge => FETCH_TOO_LARGE,
        _ => FETCH_FAILED,
    }
}

#[test]
fn cold_start_with_a_broken_jwks_endpoint_fails_closed_with_401_then_recovers() {
    for fault in ALL {
        let host = Chain {
            jwks: upstream(fault),
            ..Chain::default()
        }
        .build();
        let memory_before = host.memory_sizes()[0][0];
        let out = host.send(bearer(&reader("alice"))).unwrap();
        refused(&out, 401);
        assert_eq!(
            authn_reason(&out).as_deref(),
            Some("keys_unavailable"),
            "{fault:?}"
        );
        let challenge = out
            .local_reply
            .as_ref()
            .and_then(|r| r.header("www-authenticate"))
            .unwrap_or_default();
        assert!(
            challenge.contains("invalid_token"),
            "{fault:?}: {challenge}"
        );
        assert_eq!(host.counter(failure_counter(fault)), 1, "{fault:?}");
        assert_eq!(host.counter(FETCH_OK), 0, "{fault:?}");
        if let Fault::Huge = fault {
            let grown = host.memory_sizes()[0][0] - memory_before;
            assert!(
                grown < 300 * 1024,
                "the huge body was read into the VM ({grown} bytes more)"
            );
            assert!(out
                .logs
                .iter()
                .any(|l| l.message.contains("exceeds max_body_bytes")));
        }
        // Requests without a token and the bypassed health check are not affected.
        refused(&host.send(Request::get("/api/orders")).unwrap(), 401);
        let health = host.send(Request::get("/healthz")).unwrap();
        guard(&health);
        assert_eq!(health.status, 200, "{fault:?}");
        // The endpoint comes back: after the back-off the next request loads the keys.
        host.set_upstream(JWKS_CLUSTER, Upstream::respond(jwks_response()));
        host.advance(Duration::from_secs(2)).unwrap();
        admitted(&host.send(bearer(&reader("bob"))).unwrap(), "bob");
        assert_eq!(host.counter(FETCH_OK), 1, "{fault:?}");
        assert!(host.traps().is_empty(), "{fault:?}: {:?}", host.traps());
    }
}

#[test]
fn keys_unavailable_can_be_503_by_config_and_nothing_else_is() {
    let mut jwt = example("jwt_authn");
    jwt["failure"] = json!({"keys_unavailable_status": 503});
    let host = Chain {
        jwks: Upstream::fail(),
        configs: vec![("jwt_authn", jwt)],
        ..Chain::default()
    }
    .build();
    let out = host.send(bearer(&reader("alice"))).unwrap();
    assert!(!out.stuck);
    assert_eq!(out.status, 503);
    assert!(out.upstream_headers.is_none());
    assert_eq!(authn_reason(&out).as_deref(), Some("keys_unavailable"));
    // No token is still a 401, not a 503.
    refused(&host.send(Request::get("/api/orders")).unwrap(), 401);
}

#[test]
fn refresh_failures_serve_the_last_good_keys_until_max_stale_then_fail_closed() {
    // Example: cache_duration 5m, max_stale 1h.
    for fault in ALL {
        let host = Chain::default().build();
        admitted(&host.send(bearer(&reader("alice"))).unwrap(), "alice");
        assert_eq!(host.counter(FETCH_OK), 1);
        host.set_upstream(JWKS_CLUSTER, upstream(fault));
        // Past the refresh point and past cache_duration: refreshes fail, stale keys serve.
        let mut sub = 0;
        for minutes in [4, 6, 30, 60] {
            host.clock().set_unix_secs(NOW + minutes * 60);
            // Long enough for a refresh to be dispatched and to time out (2 s).
            host.advance(Duration::from_millis(2_500)).unwrap();
            sub += 1;
            let name = format!("u{sub}");
            let tok = token_at(
                &name,
                json!({"roles": ["reader"]}),
                NOW + minutes * 60 - 5,
                NOW + 7200,
            );
            admitted(&host.send(bearer(&tok)).unwrap(), &name);
        }
        assert!(
            host.counter(failure_counter(fault)) >= 1,
            "{fault:?}: a refresh was attempted and failed"
        );
        assert_eq!(
            host.counter(FETCH_OK),
            1,
            "{fault:?}: no bad document replaced the keys"
        );
        // Past cache_duration + max_stale after the last success: fail closed.
        host.clock().set_unix_secs(NOW + 66 * 60);
        host.advance(Duration::from_millis(200)).unwrap();
        let tok = token_at(
            "late",
            json!({"roles": ["reader"]}),
            NOW + 66 * 60 - 5,
            NOW + 7200,
        );
        let out = host.send(bearer(&tok)).unwrap();
        refused(&out, 401);
        assert_eq!(
            authn_reason(&out).as_deref(),
            Some("keys_unavailable"),
            "{fault:?}"
        );
        assert!(host.traps().is_empty(), "{fault:?}: {:?}", host.traps());
    }
}
