//! authz alone, with the jwt-authn hand-off set directly as stream properties (what jwt-authn
//! would have stored as filter state): scopes and `insufficient_scope`, typed claims no fixture
//! token carries, and hand-offs that must be ignored.

use meshguard_core::handoff::{JWT_ISSUER, JWT_OUTCOME, JWT_PAYLOAD, JWT_SUBJECT};
use meshguard_harness::{Host, Request};
use meshguard_wasm_artifacts::AUTHZ;
use serde_json::{json, Value};

use super::{decision, metric, state};

fn with_handoff(request: Request, outcome: &str, payload: &Value) -> Request {
    request
        .property(&[JWT_OUTCOME], outcome.as_bytes().to_vec())
        .property(&[JWT_PAYLOAD], payload.to_string().into_bytes())
        .property(&[JWT_ISSUER], b"https://idp".to_vec())
        .property(
            &[JWT_SUBJECT],
            payload["sub"].as_str().unwrap_or("").as_bytes().to_vec(),
        )
}

fn host(config: Value) -> Host {
    Host::builder(AUTHZ)
        .plugin_config_json(config)
        .build()
        .unwrap()
}

#[test]
fn scopes_and_insufficient_scope() {
    let host = host(json!({"policies": [{"name": "items", "rules": [
        {"name": "read", "to": [{"operation": {"methods": ["GET"]}}],
         "when": [{"scopes": {"all_of": ["items:read"]}}]},
        {"name": "write", "to": [{"operation": {"methods": ["POST"]}}],
         "when": [{"scopes": {"any_of": ["items:write", "admin"]}}]}
    ]}]}));
    let token = |scope: Value| json!({"sub": "alice", "scope": scope});
    let out = host
        .send(with_handoff(
            Request::get("/items"),
            "verified",
            &token(json!("items:read")),
        ))
        .unwrap();
    assert_eq!(out.status, 200);
    let out = host
        .send(with_handoff(
            Request::get("/items"),
            "verified",
            &token(json!("profile")),
        ))
        .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(out.body_text(), r#"{"error":"insufficient_scope"}"#);
    assert_eq!(
        out.response_header("www-authenticate").as_deref(),
        Some(r#"Bearer error="insufficient_scope", scope="items:read""#)
    );
    // `scp` as an array (Okta) works too.
    let okta = json!({"sub": "alice", "scp": ["admin"]});
    let out = host
        .send(with_handoff(
            Request::post("/items", "{}"),
            "verified",
            &okta,
        ))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(host.counter(&metric("items", "allowed")), 2);
}

#[test]
fn typed_claims_do_not_mix_types() {
    let host = host(json!({"policies": [{"name": "verified-emails", "rules": [
        {"when": [{"claim": "email_verified", "equals": true}, {"claim": "org.level", "equals": 3}]}]}]}));
    let send = |payload: Value| {
        host.send(with_handoff(Request::get("/"), "verified", &payload))
            .unwrap()
            .status
    };
    assert_eq!(
        send(json!({"email_verified": true, "org": {"level": 3}})),
        200
    );
    assert_eq!(
        send(json!({"email_verified": "true", "org": {"level": 3}})),
        403
    );
    assert_eq!(
        send(json!({"email_verified": true, "org": {"level": "3"}})),
        403
    );
}

#[test]
fn only_a_verified_handoff_counts() {
    let host = host(json!({"policies": [{"name": "alice", "rules": [
        {"from": [{"source": {"request_principals": ["https://idp/alice"]}}]}]}]}));
    let alice = json!({"sub": "alice"});
    let status = |outcome: &str| {
        host.send(with_handoff(Request::get("/"), outcome, &alice))
            .unwrap()
            .status
    };
    assert_eq!(status("verified"), 200);
    assert_eq!(status("failed"), 403);
    assert_eq!(status("missing"), 403);
    assert_eq!(status("bypassed"), 403);
    // A "verified" outcome whose payload is not a JSON object is treated as unauthenticated.
    let out = host
        .send(
            Request::get("/")
                .property(&[JWT_OUTCOME], b"verified".to_vec())
                .property(&[JWT_PAYLOAD], b"not json".to_vec())
                .property(&[JWT_ISSUER], b"https://idp".to_vec())
                .property(&[JWT_SUBJECT], b"alice".to_vec()),
        )
        .unwrap();
    assert_eq!(decision(&out).0, 403);
    assert_eq!(state(&out, "decision").as_deref(), Some("deny"));
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}
