//! `claims_source: {"envoy_jwt_authn": …}` in the compiled authz, ratelimit and audit filters:
//! the verified payload Envoy's native jwt_authn wrote with `payload_in_metadata`, set here as the
//! stream property `["metadata"]` holding a serialized `envoy.config.core.v3.Metadata` whose
//! `filter_metadata["envoy.filters.http.jwt_authn"][<key>]` is the payload (what Envoy 1.40
//! serves; see `e2e_native.rs` for the real thing). The issuer must be a configured provider's; no payload means unauthenticated;
//! neither a client header nor the meshguard jwt-authn hand-off ever counts in its place.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "claims_source/audit.rs"]
mod audit;
#[path = "claims_source/chain.rs"]
mod chain;
#[path = "claims_source/ratelimit.rs"]
mod ratelimit;

use meshguard_core::handoff;
use meshguard_core::identity::structpb::encode_filter_metadata;
use meshguard_core::identity::{JWT_AUTHN_METADATA_NAMESPACE, METADATA_PROPERTY};
use meshguard_harness::{HarnessError, Host, Request};
use meshguard_wasm_artifacts::{AUDIT, AUTHZ, RATELIMIT};
use serde_json::{json, Value};

/// Istio's shape: every provider writes `payload`; `legacy` keeps its own key.
pub(crate) fn source() -> Value {
    json!({"envoy_jwt_authn": {"providers": {
        "idp": {"issuer": "https://idp.example.com", "payload_in_metadata": "payload"},
        "partner": {"issuer": "https://partner.example.com", "payload_in_metadata": "payload"},
        "legacy": {"issuer": "https://legacy.example.com", "payload_in_metadata": "legacy"}
    }}})
}

/// A request carrying `payload` under metadata key `key`, as Envoy's jwt_authn leaves it.
pub(crate) fn with_payload(request: Request, key: &str, payload: Value) -> Request {
    let namespace = json!({ key: payload });
    request.property(
        &METADATA_PROPERTY,
        encode_filter_metadata(&[(JWT_AUTHN_METADATA_NAMESPACE, namespace.as_object().unwrap())]),
    )
}

/// What a client or a misconfigured chain might present instead of real metadata.
pub(crate) fn spoofed(request: Request) -> Request {
    let payload = json!({"iss": "https://idp.example.com", "sub": "alice", "roles": ["admin"]});
    request
        .header("x-jwt-payload", payload.to_string())
        .header("x-meshguard-subject", "alice")
        .header("authorization", "Bearer not.a.token")
        // The meshguard hand-off is ignored when the Envoy source is configured.
        .property(&[handoff::JWT_OUTCOME], b"verified".to_vec())
        .property(&[handoff::JWT_PAYLOAD], payload.to_string().into_bytes())
        .property(&[handoff::JWT_ISSUER], b"https://idp.example.com".to_vec())
        .property(&[handoff::JWT_SUBJECT], b"alice".to_vec())
}

fn authz(policies: Value) -> Host {
    Host::builder(AUTHZ)
        .plugin_config_json(json!({"claims_source": source(), "policies": policies}))
        .workers(2)
        .build()
        .unwrap()
}

fn admins() -> Value {
    json!([{"name": "admins", "rules": [{
        "from": [{"source": {"request_principals": ["https://idp.example.com/*", "https://legacy.example.com/*"]}}],
        "when": [{"claim": "roles", "contains_any": ["admin"]}, {"claim": "level", "equals": 3}]
    }]}])
}

#[test]
fn authz_allows_and_denies_on_native_claims() {
    let host = authz(admins());
    let alice =
        json!({"iss": "https://idp.example.com", "sub": "alice", "roles": ["admin"], "level": 3});
    let out = host
        .send(with_payload(Request::get("/"), "payload", alice.clone()))
        .unwrap();
    assert_eq!(out.status, 200, "{:?}", out.logs);
    assert_eq!(
        out.filter_state
            .get("wasm.meshguard.authz.decision")
            .map(String::as_str),
        Some("allow")
    );
    // Under the provider's own key, on the other worker.
    let legacy =
        json!({"iss": "https://legacy.example.com", "sub": "bob", "roles": ["admin"], "level": 3});
    let out = host
        .send(with_payload(
            Request::get("/").on_worker(1),
            "legacy",
            legacy,
        ))
        .unwrap();
    assert_eq!(out.status, 200);

    // Claims that do not satisfy the rule.
    let reader =
        json!({"iss": "https://idp.example.com", "sub": "carol", "roles": ["reader"], "level": 3});
    let out = host
        .send(with_payload(Request::get("/"), "payload", reader))
        .unwrap();
    assert_eq!(out.status, 403);
    // A verified payload of an accepted provider that the policy does not name.
    let partner = json!({"iss": "https://partner.example.com", "sub": "dave", "roles": ["admin"], "level": 3});
    let out = host
        .send(with_payload(Request::get("/"), "payload", partner))
        .unwrap();
    assert_eq!(out.status, 403);
}

#[test]
fn authz_fails_closed_without_accepted_metadata() {
    let host = authz(admins());
    let alice =
        json!({"iss": "https://idp.example.com", "sub": "alice", "roles": ["admin"], "level": 3});
    let cases: Vec<(&str, Request)> = vec![
        ("no metadata", Request::get("/")),
        ("spoofed headers and hand-off", spoofed(Request::get("/"))),
        (
            "issuer of no provider",
            with_payload(
                Request::get("/"),
                "payload",
                json!({"iss": "https://evil.example.com", "sub": "alice", "roles": ["admin"], "level": 3}),
            ),
        ),
        (
            "issuer of a provider writing another key",
            with_payload(
                Request::get("/"),
                "payload",
                json!({"iss": "https://legacy.example.com", "sub": "alice", "roles": ["admin"], "level": 3}),
            ),
        ),
        (
            "an unconfigured key",
            with_payload(Request::get("/"), "jwt_payload", alice.clone()),
        ),
        (
            "JSON text instead of a Metadata message",
            Request::get("/").property(&METADATA_PROPERTY, alice.to_string().into_bytes()),
        ),
        (
            "the payload in another filter's namespace",
            Request::get("/").property(
                &METADATA_PROPERTY,
                encode_filter_metadata(&[(
                    "envoy.filters.http.lua",
                    json!({"payload": alice.clone()}).as_object().unwrap(),
                )]),
            ),
        ),
    ];
    for (what, request) in cases {
        let out = host.send(request).unwrap();
        assert_eq!(out.status, 403, "{what}");
    }
    // A DENY on an absent claim denies the unauthenticated request too (`not_request_principals`).
    let host = authz(json!([{"name": "need-jwt", "action": "DENY", "rules": [{
        "from": [{"source": {"not_request_principals": ["*"]}}]}]}]));
    assert_eq!(host.send(spoofed(Request::get("/"))).unwrap().status, 403);
    let out = host
        .send(with_payload(Request::get("/"), "payload", alice))
        .unwrap();
    assert_eq!(out.status, 200);
}

#[test]
fn the_default_source_ignores_metadata() {
    // Without `claims_source`, authz takes only the meshguard hand-off: metadata is not read.
    let host = Host::builder(AUTHZ)
        .plugin_config_json(json!({"policies": admins()}))
        .build()
        .unwrap();
    let alice =
        json!({"iss": "https://idp.example.com", "sub": "alice", "roles": ["admin"], "level": 3});
    let out = host
        .send(with_payload(Request::get("/"), "payload", alice))
        .unwrap();
    assert_eq!(out.status, 403, "{:?}", out.logs);
}

#[test]
fn bad_claims_source_configs_are_refused_with_paths() {
    let bad = [
        (
            json!({"envoy_jwt_authn": {"providers": {}}}),
            "claims_source.envoy_jwt_authn.providers: at least one provider",
        ),
        (
            json!({"envoy_jwt_authn": {"providers": {"a": {"issuer": "", "payload_in_metadata": "p"}}}}),
            "claims_source.envoy_jwt_authn.providers.a.issuer: issuer must not be empty",
        ),
        (
            json!({"envoy_jwt_authn": {"providers": {"a": {"issuer": "i", "payload_in_metadata": "p", "forward": true}}}}),
            "unknown field `forward`",
        ),
        (json!({"istio": {}}), "unknown variant `istio`"),
    ];
    for (filter, base) in [
        ("authz", json!({"allow_all": true})),
        (
            "ratelimit",
            json!({"rules": [{"name": "r", "limits": [{"token_bucket": {"max_tokens": 1, "tokens_per_fill": 1, "fill_interval": "1s"}}]}]}),
        ),
        ("audit", json!({})),
    ] {
        let wasm = match filter {
            "authz" => AUTHZ,
            "ratelimit" => RATELIMIT,
            _ => AUDIT,
        };
        for (source, expected) in &bad {
            let mut config = base.clone();
            config["claims_source"] = source.clone();
            let err = Host::builder(wasm)
                .plugin_config_json(config.clone())
                .build()
                .err()
                .unwrap_or_else(|| panic!("{filter} accepted {config}"));
            match err {
                HarnessError::ConfigureRejected { logs, .. } => assert!(
                    logs.iter().any(|l| l.contains(expected)),
                    "{filter}: {expected:?} not in {logs:?}"
                ),
                other => panic!("{filter}: {other:?}"),
            }
        }
        // The good shape is accepted.
        let mut config = base.clone();
        config["claims_source"] = source();
        Host::builder(wasm)
            .plugin_config_json(config)
            .build()
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
    }
}
