//! Tests of `config.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use wasm_bindgen_test::wasm_bindgen_test;

fn errors(json: &str) -> Vec<String> {
    RateLimitConfig::parse(json.as_bytes())
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const TB: &str =
    r#"{"token_bucket": {"max_tokens": 10, "tokens_per_fill": 10, "fill_interval": "1m"}}"#;

#[wasm_bindgen_test(unsupported = test)]
fn full_config_compiles() {
    let json = format!(
        r#"{{"rules": [
          {{"name": "per_user", "match": {{"prefix": "/api/", "methods": ["GET", "POST"]}},
            "descriptors": [{{"jwt_claim": "sub"}}, "remote_address", {{"request_header": "X-Api-Key"}}, "method", "path", "mtls_principal"],
            "limits": [{TB}, {{"sliding_window": {{"requests": 1000, "window": "1h"}}}}],
            "limits_by_claim": {{"claim": "plan", "tiers": {{"gold": [{TB}], "free": [{TB}]}}}},
            "missing_descriptor": "skip", "max_keys": 50, "shadow_mode": true}},
          {{"name": "logins", "match": {{"path": "/login"}}, "limits": [{TB}],
            "count_on_response_statuses": [401, 401, 403]}}],
          "failure_mode": "allow", "max_cas_retries": 3, "xff_num_trusted_hops": 1,
          "status": 503, "body": "slow down", "enable_ratelimit_headers": false,
          "enable_x_ratelimit_headers": "DRAFT_VERSION_03", "headers_on_allowed": true}}"#
    );
    let c = RateLimitConfig::parse(json.as_bytes()).unwrap();
    assert_eq!(c.rules.len(), 2);
    let r = &c.rules[0];
    assert_eq!(r.descriptors.len(), 6);
    assert_eq!(
        r.descriptors[2],
        DescriptorSource::RequestHeader("x-api-key".into())
    );
    assert_eq!(r.tiers.len(), 3);
    assert_eq!(r.tiers[0].len(), 2);
    let (claim, values) = r.tier_claim.as_ref().unwrap();
    assert_eq!(claim.full, "plan");
    assert_eq!(values.len(), 2);
    assert!(r.shadow_mode);
    assert_eq!(r.missing, MissingDescriptor::Skip);
    assert_eq!(c.rules[1].count_on_response_statuses, vec![401, 403]);
    assert!(!c.rules[1].shadow_mode);
    assert_eq!(c.failure_mode, FailureMode::Allow);
    assert_eq!(c.response.status, 503);
    assert!(c.response.x_ratelimit_headers && !c.response.ietf_headers);
    assert!(r.route.matches("GET", "/api/x"));
    assert!(!r.route.matches("PUT", "/api/x"));
    assert!(!r.route.matches("GET", "/apix"));
    assert!(c.rules[1].route.matches("POST", "/login"));
    assert!(!c.rules[1].route.matches("POST", "/login/x"));
}

#[wasm_bindgen_test(unsupported = test)]
fn defaults() {
    let c = RateLimitConfig::parse(
        format!(r#"{{"rules":[{{"name":"a","limits":[{TB}]}}]}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(c.failure_mode, FailureMode::Deny);
    assert_eq!(c.max_cas_retries, 8);
    assert_eq!(c.response.status, 429);
    assert!(
        c.response.ietf_headers
            && !c.response.x_ratelimit_headers
            && !c.response.headers_on_allowed
    );
    assert_eq!(c.rules[0].max_keys, 10_000);
    assert_eq!(c.rules[0].missing, MissingDescriptor::Shared);
    let tb = r#"{"token_bucket": {"max_tokens": 5, "fill_interval": "1s"}}"#;
    let c = RateLimitConfig::parse(
        format!(r#"{{"rules":[{{"name":"a","limits":[{tb}]}}]}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        c.rules[0].tiers[0][0],
        Limit::TokenBucket(TokenBucket {
            max_tokens: 5,
            tokens_per_fill: 1,
            fill_interval_ms: 1000
        })
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn zero_negative_and_bad_limits_name_their_field() {
    let e = errors(
        r#"{"rules":[{"name":"a","limits":[{"token_bucket":{"max_tokens":0,"tokens_per_fill":0,"fill_interval":"5x"}}]}]}"#,
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("rules[0].limits[0].token_bucket.max_tokens: 0 is out of range"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("rules[0].limits[0].token_bucket.tokens_per_fill: 0"),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("rules[0].limits[0].token_bucket.fill_interval: invalid duration \"5x\""),
        "{e:?}"
    );
    let e = errors(
        r#"{"rules":[{"name":"a","limits":[{"sliding_window":{"requests":-1,"window":"1m"}}]}]}"#,
    );
    assert!(
        e[0].starts_with("rules[0].limits[0].sliding_window.requests: invalid value: integer `-1`"),
        "{e:?}"
    );
    let e = errors(
        r#"{"rules":[{"name":"a","limits":[{"token_bucket":{"max_tokens":1,"fill_interval":"10ms"}}]}]}"#,
    );
    assert!(
        e[0].contains("fill_interval: \"10ms\" is too short"),
        "{e:?}"
    );
    let e = errors(r#"{"rules":[{"name":"a","limits":[]}]}"#);
    assert_eq!(e, vec!["rules[0].limits: give 1 to 8 limits"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_sources_and_fields_are_refused() {
    let e = errors(&format!(
        r#"{{"rules":[{{"name":"a","limits":[{TB}],"descriptors":["remote_address",{{"cookie":"x"}}]}}]}}"#
    ));
    assert!(
        e[0].starts_with("rules[0].descriptors[1]: unknown variant `cookie`"),
        "{e:?}"
    );
    let e = errors(&format!(
        r#"{{"rules":[{{"name":"a","limits":[{TB}],"per_minute":3}}]}}"#
    ));
    assert!(
        e[0].starts_with("rules[0].per_minute: unknown field `per_minute`"),
        "{e:?}"
    );
    let e = errors(r#"{"rules":[{"name":"a","limits":[{"leaky_bucket":{}}]}]}"#);
    assert!(
        e[0].starts_with("rules[0].limits[0]: unknown variant `leaky_bucket`"),
        "{e:?}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn semantic_errors_are_all_collected() {
    let e = errors(&format!(
        r#"{{"rules":[
          {{"name":"a b","limits":[{TB}],"match":{{"path":"/x","prefix":"y","methods":["get"]}},
            "descriptors":[{{"jwt_claim":""}},{{"request_header":"bad header"}}],
            "count_on_response_statuses":[99], "max_keys": 0,
            "limits_by_claim":{{"claim":"plan","tiers":{{"gold":[]}}}}}},
          {{"name":"a b","limits":[{TB}]}}],
          "status": 200, "max_cas_retries": 100}}"#
    ));
    let expected = [
        "max_cas_retries: 100 is out of range",
        "status: 200 is not a 4xx or 5xx status",
        "rules[0].name: \"a b\"",
        "rules[0].match: set `path` or `prefix`, not both",
        "rules[0].match.prefix: \"y\" must start with '/'",
        "rules[0].match.methods[0]: \"get\" is not an upper-case method",
        "rules[0].descriptors[0].jwt_claim: \"\" is not a claim path",
        "rules[0].descriptors[1].request_header: \"bad header\" is not a header name",
        "rules[0].limits_by_claim.tiers.gold: give 1 to 8 limits",
        "rules[0].count_on_response_statuses[0]: 99 is not an HTTP status",
        "rules[0].max_keys: 0 is out of range",
        "rules[1].name: duplicate rule name \"a b\"",
    ];
    for want in expected {
        assert!(
            e.iter().any(|got| got.starts_with(want)),
            "missing {want:?} in {e:#?}"
        );
    }
    assert!(errors(r#"{"rules":[]}"#)[0].starts_with("rules: at least one rule"));
}

#[wasm_bindgen_test(unsupported = test)]
fn json_schema_describes_the_config() {
    let schema = schemars::schema_for!(super::super::raw::RawRateLimitConfig);
    let text = serde_json::to_string(&schema).unwrap();
    for word in [
        "token_bucket",
        "sliding_window",
        "fill_interval",
        "jwt_claim",
        "remote_address",
        "count_on_response_statuses",
        "DRAFT_VERSION_03",
    ] {
        assert!(text.contains(word), "{word} missing from the schema");
    }
    assert!(
        text.contains("\"additionalProperties\":false"),
        "unknown fields are refused"
    );
}
