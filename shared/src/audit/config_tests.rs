#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use wasm_bindgen_test::wasm_bindgen_test;

fn errors(json: &str) -> Vec<String> {
    match AuditConfig::parse(json.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn empty_object_is_the_default() {
    let c = AuditConfig::parse(b"{}").unwrap();
    assert_eq!(c, AuditConfig::default());
    assert_eq!(c.request_id_header, "x-request-id");
    assert!(c.echo_request_id);
    assert_eq!(c.upstream.subject.as_deref(), Some("x-meshguard-subject"));
    assert_eq!(c.record, RecordMode::All);
    assert_eq!(c.log_level, Some(LogLevel::Info));
    assert_eq!(c.redaction.query, QueryMode::Strip);
    assert!(c
        .redaction
        .redact_headers
        .iter()
        .any(|h| h == "authorization"));
}

#[wasm_bindgen_test(unsupported = test)]
fn full_config() {
    let c = AuditConfig::parse(
        br#"{
          "request_id": {"header": "x-req", "echo_in_response": false},
          "trace_context": {"new_trace_sampled": true},
          "upstream_headers": {"subject": "x-user", "peer": null, "unsafe_values": "drop"},
          "record": "denied_only", "sample_rate": 0.25, "log_level": null,
          "filter_state": false,
          "redaction": {"query": "keep", "redact_query_params": ["sig"],
                        "include_headers": ["user-agent"], "redact_headers": [],
                        "token_digest": true}
        }"#,
    )
    .unwrap();
    assert_eq!(c.request_id_header, "x-req");
    assert!(!c.echo_request_id && c.new_trace_sampled && !c.filter_state);
    assert_eq!(c.upstream.subject.as_deref(), Some("x-user"));
    assert_eq!(c.upstream.peer, None);
    assert_eq!(c.upstream.issuer.as_deref(), Some("x-meshguard-issuer"));
    assert_eq!(c.upstream.unsafe_values, UnsafeValuePolicy::Drop);
    for h in ["x-user", "x-meshguard-subject", "x-meshguard-peer"] {
        assert!(c.upstream.strip.iter().any(|s| s == h), "{h} stripped");
    }
    assert_eq!(c.record, RecordMode::DeniedOnly);
    assert_eq!(c.log_level, None);
    assert_eq!(c.redaction.redact_query_params, vec!["sig".to_string()]);
    assert!(
        c.redaction.redact_headers.iter().any(|h| h == "cookie"),
        "floor kept"
    );
    assert!(c.redaction.token_digest);
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_fields_and_bad_types_name_the_field() {
    assert_eq!(errors(r#"{"sample_rat": 1}"#).len(), 1);
    assert!(errors(r#"{"sample_rat": 1}"#)[0].contains("unknown field `sample_rat`"));
    assert!(errors(r#"{"upstream_headers": {"subjet": "x"}}"#)[0]
        .starts_with("upstream_headers.subjet: unknown field"));
    assert!(errors(r#"{"record": "some"}"#)[0].starts_with("record: unknown variant"));
    assert!(errors(r#"{"redaction": {"query": 1}}"#)[0].starts_with("redaction.query:"));
}

#[wasm_bindgen_test(unsupported = test)]
fn semantic_errors_are_collected_with_paths() {
    let e = errors(
        r#"{"request_id": {"header": "X-Bad"},
            "upstream_headers": {"subject": "authorization", "issuer": "x-a", "peer": "x-a"},
            "sample_rate": 1.5,
            "redaction": {"redact_query_params": ["a=b"], "include_headers": ["a b"]}}"#,
    );
    let expected = [
        "request_id.header: \"X-Bad\" is not a valid lowercase header name",
        "upstream_headers.subject: \"authorization\" is reserved for another purpose",
        "upstream_headers.peer: \"x-a\" is already used by another audit header",
        "sample_rate: 1.5 is not between 0 and 1",
        "redaction.redact_query_params[0]: \"a=b\" is not a query parameter name",
        "redaction.include_headers[0]: \"a b\" is not a valid lowercase header name",
    ];
    assert_eq!(e, expected);
    assert_eq!(errors(r#"{"sample_rate": -0.1}"#).len(), 1);
    assert_eq!(
        errors(r#"{"upstream_headers": {"ratelimit": "x-request-id"}}"#),
        ["upstream_headers.ratelimit: \"x-request-id\" is reserved for another purpose"]
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn schema_is_generated() {
    let schema = schemars::schema_for!(RawAuditConfig);
    let text = serde_json::to_string(&schema).unwrap();
    for field in [
        "sample_rate",
        "upstream_headers",
        "redact_query_params",
        "denied_only",
    ] {
        assert!(text.contains(field), "{field}");
    }
}
