use super::*;
use crate::jwt_authn::test_support::{b64std, two_providers, SECRET_A};
use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

fn errors(v: Value) -> Vec<String> {
    match JwtAuthnConfig::parse(v.to_string().as_bytes()) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn hmac() -> Value {
    json!({"algorithm": "HS256", "inline_base64": b64std(SECRET_A)})
}

fn remote() -> Value {
    json!({"http_uri": {"uri": "https://idp/jwks", "cluster": "idp", "timeout": "2s"}})
}

fn has(errs: &[String], needle: &str) -> bool {
    errs.iter().any(|e| e.contains(needle))
}

#[wasm_bindgen_test(unsupported = test)]
fn defaults() {
    let cfg =
        two_providers(json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]));
    let a = &cfg.providers[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.settings.clock_skew_seconds, 60);
    assert!(a.settings.require_exp);
    assert_eq!(a.settings.max_token_bytes, 8192);
    assert_eq!(a.locations.headers[0].name, "authorization");
    assert_eq!(a.locations.headers[0].value_prefix, "Bearer ");
    assert!(!a.forward);
    assert_eq!(cfg.cache_max_entries, 100);
    assert_eq!(cfg.failure.status, 401);
    assert_eq!(
        cfg.output_headers,
        vec!["x-jwt-payload", "x-roles", "x-sub"]
    );
    assert_eq!(
        cfg.rules[0].action,
        RuleAction::Require(Requirement::Provider(0))
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn remote_jwks_defaults_and_shared_key() {
    let cfg = JwtAuthnConfig::parse(
        json!({"providers": {"r": {"issuer": "https://idp", "remote_jwks": remote()}}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let KeySource::Remote(r) = &cfg.providers[0].keys else {
        panic!("remote expected")
    };
    assert_eq!(r.policy.cache_duration_ms, 600_000);
    assert_eq!(r.policy.max_stale_ms, 3_600_000);
    assert_eq!(r.policy.unknown_kid_interval_ms, 30_000);
    assert_eq!(r.policy.fetch_timeout_ms, 2_000);
    assert!(r.shared_data_key.starts_with("meshguard.jwt_authn.jwks."));
    assert_eq!(r.fetch.first().path, "/jwks");
    // Remote keys never verify HMAC.
    assert!(!cfg.providers[0]
        .settings
        .allowed_algorithms
        .contains(&crate::jwt::Algorithm::HS256));
}

#[wasm_bindgen_test(unsupported = test)]
fn errors_name_the_field() {
    let e = errors(json!({"providers": {"a": {"remote_jwks": {
        "http_uri": {"uri": "https://idp/jwks", "cluster": "idp", "timeout": "5x"}}}}}));
    assert!(
        has(
            &e,
            "providers.a.remote_jwks.http_uri.timeout: invalid duration \"5x\""
        ),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"remote_jwks": remote(), "issuerr": "x"}}}));
    assert!(
        has(&e, "providers.a.issuerr: unknown field `issuerr`"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac()}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "zz"}}]}));
    assert!(
        has(
            &e,
            "rules[0].requires.provider_name: unknown provider \"zz\""
        ),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac()}},
        "rules": [{"match": {"prefix": "/"}}]}));
    assert!(has(&e, "rules[0]: set `requires`"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac()}},
        "rules": [{"match": {"prefix": "/", "path": "/x"}, "bypass": true}]}));
    assert!(has(&e, "rules[0].match: exactly one of"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac()}},
        "rules": [{"match": {"path_template": "/a/{**}/b"}, "bypass": true}]}));
    assert!(has(&e, "rules[0].match.path_template"), "{e:?}");
    let e = errors(
        json!({"providers": {"a": {"hmac_secret": hmac()}}, "rules": [
        {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "a", "allow_missing": {}}]}}}]}),
    );
    assert!(
        has(
            &e,
            "rules[0].requires.requires_any.requirements[1]: exactly one"
        ),
        "{e:?}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn key_sources_checked() {
    let e = errors(json!({"providers": {"a": {}}}));
    assert!(has(&e, "providers.a: exactly one of `local_jwks`"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac(), "remote_jwks": remote()}}}));
    assert!(has(&e, "providers.a: exactly one of"), "{e:?}");
    // Short secret refused, and the message never contains it.
    let e = errors(json!({"providers": {"a": {"hmac_secret":
        {"algorithm": "HS256", "inline_base64": b64std(b"short-secret")}}}}));
    assert!(has(&e, "providers.a.hmac_secret.inline_base64"), "{e:?}");
    assert!(!e
        .iter()
        .any(|m| m.contains("short-secret") || m.contains(&b64std(b"short-secret"))));
    let e = errors(json!({"providers": {"a": {"hmac_secret":
        {"algorithm": "HS512", "inline_base64": b64std(SECRET_A)}}}}));
    assert!(
        has(&e, "providers.a.hmac_secret.inline_base64"),
        "HS512 needs 64 bytes: {e:?}"
    );
    let e = errors(json!({"providers": {"a": {"hmac_secret":
        {"algorithm": "HS256", "inline_base64": "***"}}}}));
    assert!(has(&e, "not valid standard base64"), "{e:?}");
    let e = errors(
        json!({"providers": {"a": {"hmac_secret": hmac(), "allowed_algorithms": ["RS256"]}}}),
    );
    assert!(has(&e, "providers.a.allowed_algorithms"), "{e:?}");
    let e = errors(
        json!({"providers": {"a": {"hmac_secret": hmac(), "allowed_algorithms": ["none"]}}}),
    );
    assert!(has(&e, "providers.a.allowed_algorithms"), "{e:?}");
    let e = errors(
        json!({"providers": {"a": {"remote_jwks": remote(), "allowed_algorithms": ["HS256"]}}}),
    );
    assert!(
        has(&e, "HMAC algorithms are refused for remote keys"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"local_jwks": {"inline_string": "{}"}}}}));
    assert!(has(&e, "providers.a.local_jwks.inline_string"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"openid_discovery": {"cluster": "idp"}}}}));
    assert!(
        has(&e, "providers.a.issuer: required with `openid_discovery`"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"remote_jwks":
        {"http_uri": {"uri": "idp/jwks", "cluster": "idp"}}}}}));
    assert!(has(&e, "providers.a.remote_jwks.http_uri: uri"), "{e:?}");
}

#[wasm_bindgen_test(unsupported = test)]
fn names_and_headers_checked() {
    let e = errors(json!({"providers": {"bad name;": {"hmac_secret": hmac()}}}));
    assert!(has(&e, "provider names are"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac(),
        "claim_to_headers": [{"header_name": "x bad", "claim_name": "sub"}]}}}));
    assert!(
        has(&e, "providers.a.claim_to_headers[0].header_name"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac(),
        "claim_to_headers": [{"header_name": "authorization", "claim_name": "sub"}]}}}));
    assert!(has(&e, "cannot be an output header"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac(),
        "claim_to_headers": [{"header_name": "x-a", "claim_name": "a..b"}]}}}));
    assert!(
        has(&e, "providers.a.claim_to_headers[0].claim_name"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {
        "a": {"hmac_secret": hmac(), "from_headers": [{"name": "x-token"}]},
        "b": {"hmac_secret": hmac(), "forward_payload_header": "X-Token"}}}));
    assert!(
        has(
            &e,
            "providers.a.from_headers: header \"x-token\" carries tokens"
        ),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac(), "from_headers": []}}}));
    assert!(has(&e, "no token location"), "{e:?}");
    let e = errors(json!({"providers": {"a": {"hmac_secret": hmac()}},
        "failure": {"status": 200, "realm": "a\"b"}}));
    assert!(has(&e, "failure.status: 200"), "{e:?}");
    assert!(has(&e, "failure.realm"), "{e:?}");
    let e = errors(json!({"providers": {}}));
    assert!(has(&e, "providers: at least one provider"), "{e:?}");
}

#[wasm_bindgen_test(unsupported = test)]
fn requirement_tree_compiled() {
    let cfg = two_providers(json!([
        {"match": {"path": "/health", "methods": ["get"]}, "bypass": true},
        {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "b"},
            {"requires_all": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}},
            {"allow_missing_or_failed": {}}
        ]}}}
    ]));
    assert_eq!(cfg.rules[0].action, RuleAction::Bypass);
    assert_eq!(cfg.rules[0].matcher.methods, vec!["GET"]);
    assert_eq!(
        cfg.rules[1].action,
        RuleAction::Require(Requirement::Any(vec![
            Requirement::Provider(1),
            Requirement::All(vec![Requirement::Provider(0), Requirement::AllowMissing]),
            Requirement::AllowMissingOrFailed,
        ]))
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn schema_is_generated() {
    let schema = schemars::schema_for!(crate::jwt_authn::config::RawConfig);
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains("remote_jwks") && text.contains("requires_any"));
}
