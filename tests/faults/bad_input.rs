//! Bad input on the compiled chain: every request-facing input is bounded and oversized or
//! malformed input gets a clear 4xx and a metric, never a 5xx or a trap. Token size
//! (`max_token_bytes`), claim nesting depth (`max_claim_depth`), header count and size (Envoy's
//! own limits — `max_request_headers_kb` 60, `max_headers_count` 100 — apply before any filter;
//! the filters are checked at those limits), non-UTF-8 bytes, and authz policy size (refused at
//! configure time).

use meshguard_harness::{HarnessError, Request};
use serde_json::{json, Value};

use crate::support::*;

fn denied(reason: &str) -> String {
    format!("meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.={reason};.;")
}

#[test]
fn an_oversized_token_is_a_401_too_large() {
    let host = Chain::default().build();
    let tok = token_at(
        "a",
        json!({"roles": ["reader"], "pad": "x".repeat(9000)}),
        NOW,
        NOW + 600,
    );
    assert!(tok.len() > 8192);
    let out = host.send(bearer(&tok)).unwrap();
    refused(&out, 401);
    assert_eq!(authn_reason(&out).as_deref(), Some("too_large"));
    assert_eq!(host.counter(&denied("too_large")), 1);
    assert!(host.traps().is_empty());
}

fn nested(depth: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 1..depth {
        v = json!({ "n": v });
    }
    v
}

#[test]
fn deeply_nested_claims_are_a_401_claims_too_deep() {
    let host = Chain::default().build();
    // Default max_claim_depth 16: a claim nested 16 deep passes, 17 does not.
    let ok = token_at(
        "a",
        json!({"roles": ["reader"], "x": nested(16)}),
        NOW,
        NOW + 600,
    );
    admitted(&host.send(bearer(&ok)).unwrap(), "a");
    let deep = token_at(
        "b",
        json!({"roles": ["reader"], "x": nested(17)}),
        NOW,
        NOW + 600,
    );
    let out = host.send(bearer(&deep)).unwrap();
    refused(&out, 401);
    assert_eq!(authn_reason(&out).as_deref(), Some("claims_too_deep"));
    assert_eq!(host.counter(&denied("claims_too_deep")), 1);
    // Deeper than serde_json's own cap (128): malformed, still a 401.
    let abyss = token_at("c", json!({"x": nested(300)}), NOW, NOW + 600);
    let out = host.send(bearer(&abyss)).unwrap();
    refused(&out, 401);
    assert!(host.traps().is_empty());
}

#[test]
fn headers_at_envoys_limits_and_binary_garbage_never_fail_the_chain() {
    let host = Chain::default().build();
    // 100 headers (Envoy's max_headers_count), ~59 KiB in total (max_request_headers_kb 60).
    let with_headers = |mut req: Request| {
        for i in 0..95 {
            req = req.header(&format!("x-filler-{i}"), "v".repeat(600));
        }
        req
    };
    admitted(&host.send(with_headers(bearer(&reader("a")))).unwrap(), "a");
    refused(
        &host
            .send(with_headers(Request::get("/api/orders")))
            .unwrap(),
        401,
    );
    // A 58 KiB authorization header: too large a token.
    let out = host
        .send(
            Request::get("/api/orders")
                .header("authorization", format!("Bearer {}", "a".repeat(58 * 1024))),
        )
        .unwrap();
    refused(&out, 401);
    // Non-UTF-8 and control bytes in the token header, the path and other headers.
    for value in [
        b"Bearer \xff\xfe\x00\x01".to_vec(),
        b"\xc3\x28".to_vec(),
        b"Bearer a.b.c".to_vec(),
        b"Bearer ..".to_vec(),
        b"Bearer".to_vec(),
        b"bearer    ".to_vec(),
    ] {
        let out = host
            .send(
                Request::get("/api/orders")
                    .header("authorization", &value)
                    .header("x-request-id", b"\xff\x00")
                    .header("cookie", b"\xff=\xfe"),
            )
            .unwrap();
        guard(&out);
        assert!(
            (400..500).contains(&out.status),
            "{:?}: {}",
            String::from_utf8_lossy(&value),
            out.status
        );
        assert!(out.upstream_headers.is_none());
    }
    // Duplicate authorization lines: 400 from jwt-authn.
    let tok = reader("b");
    let out = host
        .send(bearer(&tok).header("authorization", format!("Bearer {tok}")))
        .unwrap();
    refused(&out, 400);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn an_oversized_policy_set_is_refused_at_configure_time() {
    let policies: Vec<Value> = (0..257)
        .map(|i| json!({"name": format!("p{i}"), "action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}))
        .collect();
    let err = Chain {
        configs: vec![("authz", json!({ "policies": policies }))],
        ..Chain::default()
    }
    .builder()
    .build()
    .unwrap_err();
    match err {
        HarnessError::ConfigureRejected { filter, logs, .. } => {
            assert_eq!(filter, "authz");
            assert!(
                logs.iter()
                    .any(|l| l.contains("policies: 257 policies; at most 256 allowed")),
                "{logs:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
