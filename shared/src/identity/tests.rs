#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::structpb::encode_filter_metadata;
use super::*;
use crate::audit::stages::Handoff;
use crate::config::{parse_json, ConfigErrors};

/// A config document holding only a `claims_source`, as each filter's raw config does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    claims_source: ClaimsSourceRaw,
}

fn compile(json: Value) -> Result<ClaimsSource, ConfigErrors> {
    let doc: Doc = parse_json(json.to_string().as_bytes())?;
    let mut errors = ConfigErrors::default();
    let source = ClaimsSource::compile(&doc.claims_source, "claims_source", &mut errors);
    errors.into_result(source)
}

fn envoy(json: Value) -> EnvoyJwtAuthn {
    match compile(json!({"claims_source": {"envoy_jwt_authn": {"providers": json}}})).unwrap() {
        ClaimsSource::EnvoyJwtAuthn(e) => e,
        ClaimsSource::MeshguardJwtAuthn => panic!("wrong source"),
    }
}

fn keys(e: &EnvoyJwtAuthn) -> Vec<&str> {
    e.keys().collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn default_and_explicit_meshguard_source() {
    assert_eq!(compile(json!({})).unwrap(), ClaimsSource::MeshguardJwtAuthn);
    let explicit = compile(json!({"claims_source": {"meshguard_jwt_authn": {}}})).unwrap();
    assert!(explicit.is_meshguard());
}

#[wasm_bindgen_test(unsupported = test)]
fn providers_group_by_metadata_key() {
    let e = envoy(json!({
        "b": {"issuer": "https://b", "payload_in_metadata": "payload"},
        "a": {"issuer": "https://a", "payload_in_metadata": "payload"},
        "c": {"issuer": "https://c", "payload_in_metadata": "c_payload"}
    }));
    assert_eq!(keys(&e), ["payload", "c_payload"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_fields_and_variants_name_their_path() {
    let e = compile(json!({"claims_source": {"envoy_jwt_authn": {"providers": {
        "a": {"issuer": "https://a", "payload_in_metadata": "p", "audiences": ["x"]}}}}}))
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("claims_source.envoy_jwt_authn.providers.a"),
        "{text}"
    );
    assert!(text.contains("unknown field `audiences`"), "{text}");

    let e = compile(json!({"claims_source": {"istio": {}}})).unwrap_err();
    assert!(e.to_string().starts_with("claims_source"), "{e}");
    assert!(e.to_string().contains("unknown variant `istio`"), "{e}");

    let e = compile(json!({"claims_source": {"meshguard_jwt_authn": {"x": 1}}})).unwrap_err();
    assert!(e.to_string().contains("unknown field `x`"), "{e}");

    let e = compile(json!({"claims_source": {"envoy_jwt_authn": {"providers": {
        "a": {"issuer": "https://a"}}}}}))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("missing field `payload_in_metadata`"),
        "{e}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn semantic_errors_are_collected_with_paths() {
    let e = compile(json!({"claims_source": {"envoy_jwt_authn": {"providers": {}}}})).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].path, "claims_source.envoy_jwt_authn.providers");

    let e = compile(json!({"claims_source": {"envoy_jwt_authn": {"providers": {
        "a": {"issuer": "", "payload_in_metadata": "p"},
        "b": {"issuer": "https://b", "payload_in_metadata": ""},
        "c": {"issuer": "https://same", "payload_in_metadata": "payload"},
        "d": {"issuer": "https://same", "payload_in_metadata": "payload"},
        "e": {"issuer": "https://x\n", "payload_in_metadata": "q"}
    }}}}))
    .unwrap_err();
    let paths: Vec<&str> = e.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "claims_source.envoy_jwt_authn.providers.a.issuer",
            "claims_source.envoy_jwt_authn.providers.b.payload_in_metadata",
            "claims_source.envoy_jwt_authn.providers.d.issuer",
            "claims_source.envoy_jwt_authn.providers.e.issuer",
        ]
    );
    assert!(e.0[2].message.contains("provider \"c\""), "{e}");
}

/// The `["metadata"]` property with these jwt_authn keys (and another filter's namespace).
fn metadata(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let ns: serde_json::Map<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let lua = json!({"payload": {"iss": "https://kc", "sub": "lua-spoof"}});
    encode_filter_metadata(&[
        (JWT_AUTHN_METADATA_NAMESPACE, &ns),
        ("envoy.filters.http.lua", lua.as_object().unwrap()),
    ])
}

fn select<'e>(e: &'e EnvoyJwtAuthn, entries: Vec<(&str, Value)>) -> EnvoyClaims<'e> {
    let bytes = metadata(entries);
    // `select` borrows only the config, not the bytes.
    e.select(Some(&bytes))
}

fn istio_like() -> EnvoyJwtAuthn {
    envoy(json!({
        "auth0": {"issuer": "https://auth0", "payload_in_metadata": "payload"},
        "keycloak": {"issuer": "https://kc", "payload_in_metadata": "payload"},
        "legacy": {"issuer": "https://legacy", "payload_in_metadata": "legacy_payload"}
    }))
}

#[wasm_bindgen_test(unsupported = test)]
fn the_issuer_picks_the_provider() {
    let e = istio_like();
    let payload = json!({"iss": "https://kc", "sub": "alice", "roles": ["admin"]});
    let claims = select(&e, vec![("payload", payload)]);
    let v = claims.verified().unwrap();
    assert_eq!(v.provider, "keycloak");
    assert_eq!(v.issuer, "https://kc");
    assert_eq!(v.subject.as_deref(), Some("alice"));
    assert_eq!(v.payload["roles"], json!(["admin"]));

    // A payload under a provider's own key.
    let claims = select(
        &e,
        vec![("legacy_payload", json!({"iss": "https://legacy", "sub": 7}))],
    );
    let v = claims.verified().unwrap();
    assert_eq!(v.provider, "legacy");
    assert_eq!(v.subject, None, "a non-string sub is no subject");
}

#[wasm_bindgen_test(unsupported = test)]
fn wrong_issuer_missing_and_garbage_are_unauthenticated() {
    let e = istio_like();
    assert_eq!(e.select(None), EnvoyClaims::Missing);
    assert_eq!(e.select(Some(&[][..])), EnvoyClaims::Missing);
    assert_eq!(select(&e, vec![]), EnvoyClaims::Missing);
    // Only the other filter's namespace has a `payload`.
    let lua_only = encode_filter_metadata(&[(
        "envoy.filters.http.lua",
        json!({"payload": {"iss": "https://kc", "sub": "x"}})
            .as_object()
            .unwrap(),
    )]);
    assert_eq!(e.select(Some(&lua_only)), EnvoyClaims::Missing);
    // The legacy issuer written under the shared key: that provider writes elsewhere.
    let wrong = select(
        &e,
        vec![(
            "payload",
            json!({"iss": "https://legacy", "sub": "mallory"}),
        )],
    );
    assert_eq!(wrong, EnvoyClaims::Rejected(Rejection::IssuerNotAccepted));
    for payload in [json!({"sub": "x"}), json!({"iss": 1, "sub": "x"})] {
        assert_eq!(
            select(&e, vec![("payload", payload)]),
            EnvoyClaims::Rejected(Rejection::IssuerNotAccepted)
        );
    }
    assert_eq!(
        select(&e, vec![("payload", json!("{\"iss\":\"https://kc\"}"))]),
        EnvoyClaims::Rejected(Rejection::Undecodable)
    );
    assert_eq!(
        e.select(Some(&b"{\"iss\":\"https://kc\"}"[..])),
        EnvoyClaims::Rejected(Rejection::Undecodable)
    );
    // A rejected payload does not hide an accepted one under another key.
    let both = select(
        &e,
        vec![
            ("payload", json!({"iss": "https://evil"})),
            (
                "legacy_payload",
                json!({"iss": "https://legacy", "sub": "bob"}),
            ),
        ],
    );
    assert_eq!(both.verified().unwrap().subject.as_deref(), Some("bob"));
}

#[wasm_bindgen_test(unsupported = test)]
fn audit_handoff_takes_only_envoy_claims() {
    let e = istio_like();
    let spoofed = Handoff {
        jwt_outcome: Some("verified".into()),
        jwt_subject: Some("spoofed".into()),
        authz_decision: Some("allow".into()),
        ..Handoff::default()
    };
    let claims = select(
        &e,
        vec![("payload", json!({"iss": "https://auth0", "sub": "alice"}))],
    );
    let h = spoofed.clone().with_envoy_claims(&claims);
    assert_eq!(h.jwt_outcome.as_deref(), Some("verified"));
    assert_eq!(h.jwt_subject.as_deref(), Some("alice"));
    assert_eq!(h.jwt_issuer.as_deref(), Some("https://auth0"));
    assert_eq!(h.jwt_provider.as_deref(), Some("auth0"));
    assert_eq!(h.authz_decision.as_deref(), Some("allow"));

    let h = spoofed.clone().with_envoy_claims(&EnvoyClaims::Missing);
    assert_eq!(h.jwt_outcome.as_deref(), Some("missing"));
    assert_eq!(h.jwt_subject, None);
    let h = spoofed.with_envoy_claims(&EnvoyClaims::Rejected(Rejection::IssuerNotAccepted));
    assert_eq!(h.jwt_outcome.as_deref(), Some("failed"));
    assert_eq!(h.jwt_reason.as_deref(), Some("issuer_not_accepted"));
    assert_eq!(h.jwt_subject, None);
}
