//! The full chain as deployed: jwt-authn → authz → ratelimit → audit. One audit record per
//! request: allowed (200), denied by each earlier filter (401, 403, 429), and upstream error (503).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::{HS256Key, MACLike};
use meshguard_harness::{Clock, Host, HttpResponse, Request};
use meshguard_wasm_artifacts::{AUDIT, AUTHZ, JWT_AUTHN, RATELIMIT};
use serde_json::{json, Value};

use crate::support::*;

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn token(sub: &str, role: &str) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let payload = json!({
        "iss": "https://idp.example", "sub": sub, "aud": "api", "role": role,
        "iat": NOW - 10, "exp": NOW + 600
    });
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let tag = HS256Key::from_bytes(SECRET).authentication_tag(signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn chain() -> meshguard_harness::Result<Host> {
    Host::builder(JWT_AUTHN)
        .name("jwt_authn")
        .plugin_config_json(json!({
            "providers": {
                "idp": {
                    "issuer": "https://idp.example",
                    "audiences": ["api"],
                    "hmac_secret": {"algorithm": "HS256", "inline_base64": STANDARD.encode(SECRET)}
                }
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]
        }))
        .then(AUTHZ)
        .name("authz")
        .plugin_config_json(json!({
            "policies": [{
                "name": "orders-readers",
                "action": "ALLOW",
                "rules": [{
                    "name": "read",
                    "to": [{"operation": {"methods": ["GET"], "paths": ["/orders*"]}}],
                    "when": [{"claim": "role", "equals": "reader"}]
                }]
            }]
        }))
        .then(RATELIMIT)
        .name("ratelimit")
        .plugin_config_json(json!({
            "rules": [{
                "name": "per-subject",
                "descriptors": [{"jwt_claim": "sub"}],
                "limits": [{"token_bucket": {"max_tokens": 2, "tokens_per_fill": 2, "fill_interval": "1h"}}]
            }]
        }))
        .then(AUDIT)
        .name("audit")
        .plugin_config_json(json!({}))
        .clock(Clock::fixed_unix(NOW as u64))
        .build()
}

fn attributes(record: &Value) -> &Value {
    &record["attributes"]
}

#[test]
fn every_request_through_the_full_chain_gets_one_audit_record() -> TestResult {
    let host = chain()?;
    let reader = token("alice", "reader");

    // Allowed: every filter admits it; the audit headers reach the upstream.
    let ok = host.send(
        Request::get("/orders/1")
            .header("authorization", format!("Bearer {reader}"))
            .header("x-meshguard-subject", "spoofed")
            .header("x-request-id", "chain-ok"),
    )?;
    assert_eq!(ok.status, 200, "{:?}", ok.logs);
    assert_eq!(
        ok.upstream_header("x-meshguard-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(
        ok.upstream_header("x-meshguard-issuer").as_deref(),
        Some("https://idp.example")
    );
    assert_eq!(
        ok.upstream_header("x-meshguard-authz-decision").as_deref(),
        Some("allow")
    );
    assert_eq!(
        ok.upstream_header("x-meshguard-authz-policy").as_deref(),
        Some("orders-readers")
    );
    assert_eq!(
        ok.upstream_header("x-meshguard-ratelimit").as_deref(),
        Some("allow; remaining=1")
    );
    assert_eq!(
        ok.response_header("x-request-id").as_deref(),
        Some("chain-ok")
    );
    let r = record(&ok);
    let a = attributes(&r);
    assert_eq!(a["meshguard.decision"], "allow");
    assert_eq!(a["user.id"], "alice");
    assert_eq!(a["meshguard.authn.outcome"], "verified");
    assert_eq!(a["meshguard.authz.rule"], "read");
    assert_eq!(a["meshguard.ratelimit.rule"], "per-subject");
    assert!(
        !r.to_string().contains(&reader),
        "the token is never recorded"
    );

    // 401: no token.
    let r401 = host.send(Request::get("/orders/1").header("x-request-id", "chain-401"))?;
    assert_eq!(r401.status, 401);
    let r = record(&r401);
    assert_eq!(r["request_id"], "chain-401");
    assert_eq!(attributes(&r)["meshguard.denied_by"], "jwt_authn");
    assert_eq!(attributes(&r)["meshguard.authn.outcome"], "missing");
    assert_eq!(attributes(&r)["http.response.status_code"], 401);

    // 403: verified, but not a reader.
    let writer = token("bob", "writer");
    let r403 =
        host.send(Request::get("/orders/1").header("authorization", format!("Bearer {writer}")))?;
    assert_eq!(r403.status, 403);
    let r = record(&r403);
    assert_eq!(attributes(&r)["meshguard.denied_by"], "authz");
    assert_eq!(attributes(&r)["meshguard.authz.decision"], "deny");
    assert!(
        attributes(&r).get("user.id").is_some(),
        "the subject is known, and recorded"
    );

    // 429: alice's third request in the hour (the allowed one above was her first).
    let second =
        host.send(Request::get("/orders/2").header("authorization", format!("Bearer {reader}")))?;
    assert_eq!(second.status, 200);
    let r429 =
        host.send(Request::get("/orders/3").header("authorization", format!("Bearer {reader}")))?;
    assert_eq!(r429.status, 429);
    let r = record(&r429);
    assert_eq!(attributes(&r)["meshguard.denied_by"], "ratelimit");
    assert_eq!(attributes(&r)["meshguard.ratelimit.decision"], "limited");

    // Upstream error: admitted, the application fails.
    let carol = token("carol", "reader");
    let r503 = host.send(
        Request::get("/orders/9")
            .header("authorization", format!("Bearer {carol}"))
            .respond_with(HttpResponse::status(503)),
    )?;
    assert_eq!(r503.status, 503);
    let r = record(&r503);
    assert_eq!(r["severity_text"], "ERROR");
    assert_eq!(attributes(&r)["meshguard.decision"], "allow");
    assert_eq!(attributes(&r)["http.response.status_code"], 503);

    let count = |d: &str, c: &str| {
        host.counter(&format!(
            "meshguard_audit_requests_total_decision=.={d};.;_status_class=.={c};.;"
        ))
    };
    assert_eq!(count("allow", "2xx"), 2);
    assert_eq!(count("deny", "4xx"), 3);
    assert_eq!(count("allow", "5xx"), 1);
    no_traps(&host);
    Ok(())
}
