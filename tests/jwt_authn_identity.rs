//! The compiled jwt-authn filter in the harness, identity sources of issue 10: API keys (alone
//! and in the jwt-authn → authz → ratelimit chain), HMAC secrets from the VM's environment, and
//! `jti` replay detection across 1, 2 and 4 workers. Tokens are HS256, minted here with
//! jwt-simple's HMAC (an implementation independent of the filter's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "jwt_authn_identity/replay.rs"]
mod replay;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::{HS256Key, MACLike};
use meshguard_harness::{Clock, HarnessError, Host, HostBuilder, Outcome, Request};
use meshguard_wasm_artifacts::{AUTHZ, JWT_AUTHN, RATELIMIT};
use serde_json::{json, Value};

/// The fake clock's "now".
pub const NOW: u64 = 1_700_000_000;
/// The HMAC secret (32 bytes); given to the VM through its environment.
pub const SECRET: &[u8; 32] = b"env-secret-0123456789abcdef-XYZ!";

/// SHA-256 of `key`, hex (what an operator stores: `printf %s "$KEY" | sha256sum`).
fn digest_hex(key: &str) -> String {
    meshguard_core::jwt::token_digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An HS256 token signed with [`SECRET`], issuer `https://hs.example.com`, valid at [`NOW`].
pub fn hs256(claims: Value) -> String {
    let mut payload = json!({"iss": "https://hs.example.com", "sub": "alice",
        "iat": NOW - 10, "exp": NOW + 600});
    for (k, v) in claims.as_object().unwrap() {
        payload[k] = v.clone();
    }
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let tag = HS256Key::from_bytes(SECRET).authentication_tag(signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The `hs` provider: secret from environment variable `JWT_HS_SECRET`.
pub fn hs_provider(extra: Value) -> Value {
    let mut p = json!({
        "issuer": "https://hs.example.com",
        "hmac_secret": {"algorithm": "HS256", "environment_variable": "JWT_HS_SECRET"}
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// jwt-authn alone with `config`, `JWT_HS_SECRET` set, on `workers` workers.
pub fn jwt_host(config: Value, workers: usize) -> Host {
    Host::builder(JWT_AUTHN)
        .plugin_config_json(config)
        .env("JWT_HS_SECRET", &STANDARD.encode(SECRET))
        .workers(workers)
        .clock(Clock::fixed_unix(NOW))
        .build()
        .unwrap()
}

fn require(provider: &str) -> Value {
    json!([{"match": {"prefix": "/"}, "requires": {"provider_name": provider}}])
}

fn api_keys_provider() -> Value {
    json!({
        "issuer": "partner-keys",
        "api_keys": {"consumers": [
            {"subject": "billing", "attributes": {"plan": "gold", "team": "finance"},
             "key_digests": [digest_hex("billing-key-2025"), digest_hex("billing-key-2026")]},
            {"subject": "reports", "attributes": {"plan": "free"},
             "key_digests": [{"environment_variable": "REPORTS_KEY_DIGEST"}]}
        ]},
        "from_headers": [{"name": "x-api-key"}],
        "from_params": ["apikey"],
        "claim_to_headers": [{"header_name": "x-consumer-plan", "claim_name": "plan"}]
    })
}

fn jwt_builder(config: Value) -> HostBuilder {
    Host::builder(JWT_AUTHN)
        .plugin_config_json(config)
        .env("REPORTS_KEY_DIGEST", &digest_hex("reports-key"))
        .clock(Clock::fixed_unix(NOW))
}

fn state(out: &Outcome, key: &str) -> Option<String> {
    out.filter_state
        .get(&format!("wasm.meshguard.jwt_authn.{key}"))
        .cloned()
}

fn denied(reason: &str) -> String {
    format!("meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.={reason};.;")
}

#[test]
fn api_keys_identify_consumers_and_are_stripped() {
    let host =
        jwt_builder(json!({"providers": {"keys": api_keys_provider()}, "rules": require("keys")}))
            .build()
            .unwrap();
    for key in ["billing-key-2025", "billing-key-2026"] {
        let out = host
            .send(
                Request::get("/invoices")
                    .header("x-api-key", key)
                    .header("x-consumer-plan", "platinum"),
            )
            .unwrap();
        assert_eq!(out.status, 200, "{key}: rotation, both digests work");
        assert_eq!(state(&out, "outcome").as_deref(), Some("verified"));
        assert_eq!(state(&out, "subject").as_deref(), Some("billing"));
        assert_eq!(state(&out, "issuer").as_deref(), Some("partner-keys"));
        assert_eq!(state(&out, "provider").as_deref(), Some("keys"));
        let payload: Value = serde_json::from_str(&state(&out, "payload").unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({"sub": "billing", "iss": "partner-keys", "plan": "gold", "team": "finance"})
        );
        assert_eq!(out.upstream_header("x-api-key"), None, "key stripped");
        assert_eq!(
            out.upstream_header("x-consumer-plan").as_deref(),
            Some("gold"),
            "client copy replaced"
        );
    }
    let out = host
        .send(Request::get("/r?x=1&apikey=reports-key"))
        .unwrap();
    assert_eq!(
        out.status, 200,
        "query parameter, digest from the environment"
    );
    assert_eq!(state(&out, "subject").as_deref(), Some("reports"));
    assert_eq!(out.upstream_header(":path").as_deref(), Some("/r?x=1"));
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn missing_and_unknown_keys_get_a_clear_401_that_never_echoes_the_key() {
    let host =
        jwt_builder(json!({"providers": {"keys": api_keys_provider()}, "rules": require("keys")}))
            .build()
            .unwrap();
    let out = host.send(Request::get("/")).unwrap();
    assert_eq!(out.status, 401);
    let body: Value = serde_json::from_str(&out.local_reply.as_ref().unwrap().body_text()).unwrap();
    assert_eq!(body, json!({"status": 401, "reason": "missing"}));
    let guess = "guessed-key-Zq81";
    let out = host
        .send(Request::get("/").header("x-api-key", guess))
        .unwrap();
    assert_eq!(out.status, 401);
    let reply = out.local_reply.as_ref().unwrap();
    let body: Value = serde_json::from_str(&reply.body_text()).unwrap();
    assert_eq!(
        body,
        json!({"status": 401, "error": "invalid_token", "reason": "unknown_api_key"})
    );
    assert!(!reply.body_text().contains(guess));
    assert!(!format!("{:?}", reply.headers).contains(guess));
    assert!(host.logs().iter().all(|l| !l.message.contains(guess)));
    assert_eq!(state(&out, "reason").as_deref(), Some("unknown_api_key"));
    assert_eq!(host.counter(&denied("unknown_api_key")), 1);
    assert_eq!(host.counter(&denied("missing")), 1);
}

#[test]
fn api_key_identity_drives_authz_and_ratelimit_unchanged() {
    let authz = json!({"policies": [{"name": "partners", "action": "ALLOW", "rules": [{
        "name": "billing-gold",
        "from": [{"source": {"request_principals": ["partner-keys/billing"]}}],
        "when": [{"claim": "plan", "equals": "gold"}]}]}]});
    let bucket = |n: u64| json!({"token_bucket": {"max_tokens": n, "tokens_per_fill": n, "fill_interval": "1m"}});
    let ratelimit = json!({"rules": [{"name": "plans", "descriptors": [{"jwt_claim": "sub"}],
        "limits": [bucket(1)],
        "limits_by_claim": {"claim": "plan", "tiers": {"gold": [bucket(3)]}}}]});
    let host =
        jwt_builder(json!({"providers": {"keys": api_keys_provider()}, "rules": require("keys")}))
            .then(AUTHZ)
            .plugin_config_json(authz)
            .then(RATELIMIT)
            .plugin_config_json(ratelimit)
            .build()
            .unwrap();
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            host.send(Request::get("/").header("x-api-key", "billing-key-2026"))
                .unwrap()
                .status
        })
        .collect();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "gold plan: 3 per minute"
    );
    let out = host
        .send(Request::get("/").header("x-api-key", "reports-key"))
        .unwrap();
    assert_eq!(out.status, 403, "authz: not billing / not gold");
}

#[test]
fn hmac_secret_comes_from_the_vm_environment() {
    let config = json!({"providers": {"hs": hs_provider(json!({}))}, "rules": require("hs")});
    let host = jwt_host(config.clone(), 1);
    let out = host
        .send(Request::get("/").header("authorization", format!("Bearer {}", hs256(json!({})))))
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(state(&out, "subject").as_deref(), Some("alice"));
    let secret_b64 = STANDARD.encode(SECRET);
    assert!(
        host.logs().iter().all(|l| !l.message.contains(&secret_b64)),
        "secret logged"
    );

    // Unset: refused at configure time, naming the variable and the field.
    let err = match Host::builder(JWT_AUTHN)
        .plugin_config_json(config.clone())
        .build()
    {
        Ok(_) => panic!("config must be refused"),
        Err(e) => e,
    };
    assert!(
        matches!(err, HarnessError::ConfigureRejected { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(
            "providers.hs.hmac_secret.environment_variable: environment variable JWT_HS_SECRET is not set"
        ),
        "{err}"
    );

    // Set but unusable: the error names the variable, never the value, nor do logs or metrics.
    for bad in ["dG9vLXNob3J0LXNlY3JldA==", "%%not*base64%%secret"] {
        let b = Host::builder(JWT_AUTHN)
            .plugin_config_json(config.clone())
            .env("JWT_HS_SECRET", bad);
        let err = match b.build() {
            Ok(_) => panic!("{bad}: config must be refused"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(
            text.contains("providers.hs.hmac_secret.environment_variable:"),
            "{text}"
        );
        assert!(
            !text.contains(bad) && !text.contains("secret\""),
            "value leaked: {text}"
        );
        let HarnessError::ConfigureRejected { logs, .. } = &err else {
            panic!()
        };
        assert!(logs.iter().all(|l| !l.contains(bad)), "{logs:?}");
    }
}

#[test]
fn digests_are_plain_sha256_of_the_key() {
    assert_eq!(
        digest_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// `envoy-config/examples/jwt_authn_identity.json` (documented in the jwt-authn README) is
/// accepted with its two environment variables and does what it says; without them it is
/// refused, naming the first missing variable.
#[test]
fn identity_example_config_works() {
    let example: Value = serde_json::from_str(include_str!(
        "../envoy-config/examples/jwt_authn_identity.json"
    ))
    .unwrap();
    let host = Host::builder(JWT_AUTHN)
        .plugin_config_json(example.clone())
        .env("JWT_HS_SECRET", &STANDARD.encode(SECRET))
        .env("REPORTS_KEY_DIGEST", &digest_hex("demo-reports-key"))
        .clock(Clock::fixed_unix(NOW))
        .build()
        .unwrap();
    let status = |r: Request| {
        let out = host.send(r).unwrap();
        assert!(host.traps().is_empty(), "{:?}", host.traps());
        out.status
    };
    assert_eq!(
        status(Request::get("/partners/x").header("x-api-key", "demo-partner-key-2025")),
        200
    );
    assert_eq!(
        status(Request::get("/partners/x").header("x-api-key", "demo-partner-key-2026")),
        200
    );
    assert_eq!(
        status(Request::get("/partners/x").header("x-api-key", "demo-reports-key")),
        200
    );
    assert_eq!(
        status(Request::get("/partners/x").header("x-api-key", "nope")),
        401
    );
    let t = {
        let mut claims =
            json!({"iss": "https://internal.meshguard.test", "aud": "demo-api", "jti": "ex-1"});
        claims["exp"] = json!(NOW + 600);
        hs256(claims)
    };
    assert_eq!(
        status(Request::get("/any").header("authorization", format!("Bearer {t}"))),
        200
    );
    assert_eq!(
        status(Request::get("/any").header("authorization", format!("Bearer {t}"))),
        401,
        "replayed"
    );
    assert_eq!(
        status(Request::get("/any").header("x-api-key", "demo-partner-key-2025")),
        200
    );
    let err = Host::builder(JWT_AUTHN)
        .plugin_config_json(example)
        .build()
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("REPORTS_KEY_DIGEST is not set"),
        "{err}"
    );
    assert!(
        err.to_string().contains("JWT_HS_SECRET is not set"),
        "{err}"
    );
}
