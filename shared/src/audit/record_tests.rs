#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::audit::redact::{QueryMode, Redaction};
use crate::audit::stages::{verdict, DeniedBy};
use crate::audit::traceparent;
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

const NOW: u64 = 1_700_000_000_123_456_789;

fn verified() -> Handoff {
    Handoff {
        jwt_outcome: Some("verified".into()),
        jwt_subject: Some("alice".into()),
        jwt_issuer: Some("https://idp.example".into()),
        jwt_provider: Some("idp".into()),
        authz_decision: Some("allow".into()),
        authz_policy: Some("orders".into()),
        authz_rule: Some("read".into()),
        ratelimit_decision: Some("allow".into()),
        ratelimit_remaining: Some("9".into()),
        ratelimit_rule: Some("per-user".into()),
        ..Default::default()
    }
}

fn json(input: &RecordInput<'_>, redaction: &Redaction) -> Value {
    let text = build(input, redaction).to_json().unwrap();
    assert!(!text.contains('\n'), "one line");
    serde_json::from_str(&text).unwrap()
}

fn input<'a>(handoff: &'a Handoff, headers: &'a [(String, Vec<u8>)]) -> RecordInput<'a> {
    let tp =
        traceparent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    RecordInput {
        time_unix_nanos: NOW,
        request_id: "req-1",
        trace: Some((tp.context, TraceSource::W3c)),
        method: Some("GET"),
        authority: Some("api.example.com:8443"),
        path: Some("/orders/7?access_token=eyJsecret&page=2"),
        status: Some(200),
        duration_nanos: Some(12_345_678),
        source_address: Some("10.1.2.3:50000"),
        peer_principal: Some("spiffe://cluster.local/ns/web/sa/frontend"),
        handoff,
        verdict: verdict(true, handoff),
        request_headers: headers,
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn allowed_request_record_has_every_field() {
    let h = verified();
    let headers = vec![("authorization".to_string(), b"Bearer eyJsecret".to_vec())];
    let v = json(&input(&h, &headers), &Redaction::strict());
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123456789Z");
    assert_eq!(v["time_unix_nano"], "1700000000123456789");
    assert_eq!(v["severity_text"], "INFO");
    assert_eq!(v["severity_number"], 9);
    assert_eq!(v["event_name"], "meshguard.audit");
    assert_eq!(v["body"], "request allowed");
    assert_eq!(v["request_id"], "req-1");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["span_id"], "00f067aa0ba902b7");
    assert_eq!(v["trace_flags"], "01");
    let a = &v["attributes"];
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["server.address"], "api.example.com");
    assert_eq!(a["server.port"], 8443);
    assert_eq!(a["url.path"], "/orders/7");
    assert!(a.get("url.query").is_none(), "query stripped by default");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["client.address"], "10.1.2.3");
    assert_eq!(a["client.port"], 50000);
    assert_eq!(a["user.id"], "alice");
    assert_eq!(a["meshguard.decision"], "allow");
    assert!(a.get("meshguard.denied_by").is_none());
    assert_eq!(a["meshguard.duration_ms"], 12.345);
    assert_eq!(a["meshguard.trace_source"], "w3c");
    assert_eq!(
        a["meshguard.peer.principal"],
        "spiffe://cluster.local/ns/web/sa/frontend"
    );
    assert_eq!(a["meshguard.authn.outcome"], "verified");
    assert_eq!(a["meshguard.authn.issuer"], "https://idp.example");
    assert_eq!(a["meshguard.authn.provider"], "idp");
    assert_eq!(a["meshguard.authz.decision"], "allow");
    assert_eq!(a["meshguard.authz.policy"], "orders");
    assert_eq!(a["meshguard.authz.rule"], "read");
    assert_eq!(a["meshguard.ratelimit.decision"], "allow");
    assert_eq!(a["meshguard.ratelimit.remaining"], 9);
    assert_eq!(a["meshguard.ratelimit.rule"], "per-user");
    let text = v.to_string();
    assert!(!text.contains("eyJsecret"), "never the token: {text}");
    assert!(
        a.get("meshguard.token_digest").is_none(),
        "digest is opt-in"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn denied_request_record() {
    let h = Handoff {
        jwt_outcome: Some("failed".into()),
        jwt_reason: Some("expired".into()),
        jwt_subject: Some("mallory".into()),
        ..Default::default()
    };
    let mut i = input(&h, &[]);
    i.verdict = verdict(false, &h);
    i.status = Some(401);
    i.trace = None;
    let v = json(&i, &Redaction::strict());
    assert_eq!(v["severity_text"], "WARN");
    assert_eq!(v["severity_number"], 13);
    assert_eq!(v["body"], "request denied by jwt_authn");
    assert!(v.get("trace_id").is_none());
    let a = &v["attributes"];
    assert_eq!(a["meshguard.decision"], "deny");
    assert_eq!(a["meshguard.denied_by"], DeniedBy::JwtAuthn.as_str());
    assert_eq!(a["meshguard.authn.reason"], "expired");
    assert_eq!(a["http.response.status_code"], 401);
    assert!(
        a.get("user.id").is_none(),
        "an unverified sub is not a user id"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn upstream_error_is_an_allowed_error_record() {
    let h = verified();
    let mut i = input(&h, &[]);
    i.status = Some(503);
    let v = json(&i, &Redaction::strict());
    assert_eq!(v["severity_text"], "ERROR");
    assert_eq!(v["attributes"]["meshguard.decision"], "allow");
}

#[wasm_bindgen_test(unsupported = test)]
fn redaction_options() {
    let h = verified();
    let headers = vec![
        ("authorization".to_string(), b"Bearer abc".to_vec()),
        ("user-agent".to_string(), b"curl/8".to_vec()),
        ("x-api-key".to_string(), b"k-123".to_vec()),
    ];
    let redaction = Redaction {
        query: QueryMode::Keep,
        redact_query_params: vec!["access_token".into()],
        include_headers: vec![
            "user-agent".into(),
            "x-api-key".into(),
            "authorization".into(),
        ],
        redact_headers: vec!["authorization".into(), "x-api-key".into()],
        token_digest: true,
    };
    let v = json(&input(&h, &headers), &redaction);
    let a = &v["attributes"];
    assert_eq!(a["url.query"], "access_token=REDACTED&page=2");
    assert_eq!(
        a["http.request.header.user-agent"],
        serde_json::json!(["curl/8"])
    );
    assert_eq!(
        a["http.request.header.x-api-key"],
        serde_json::json!(["REDACTED"])
    );
    assert_eq!(
        a["http.request.header.authorization"],
        serde_json::json!(["REDACTED"])
    );
    assert_eq!(a["meshguard.token_digest"], "ba7816bf8f01cfea");
    let text = v.to_string();
    assert!(
        !text.contains("k-123") && !text.contains("Bearer"),
        "{text}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn hostile_strings_are_escaped_and_clipped() {
    let mut h = verified();
    h.jwt_subject = Some(format!("evil\r\n{{\"x\":1}}{}", "é".repeat(2000)));
    let i = input(&h, &[]);
    let record = build(&i, &Redaction::strict());
    let text = record.to_json().unwrap();
    assert!(!text.contains('\r') && !text.contains('\n'));
    let v: Value = serde_json::from_str(&text).unwrap();
    let user = v["attributes"]["user.id"].as_str().unwrap();
    assert!(user.len() <= MAX_FIELD_LEN && user.starts_with("evil\r\n"));
}

#[wasm_bindgen_test(unsupported = test)]
fn timestamps() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
    assert_eq!(rfc3339(NOW), "2023-11-14T22:13:20.123456789Z");
}
