//! Helpers for this module's unit tests: HS256 tokens signed by an independent implementation
//! (jwt-simple's HMAC), and a key view over static keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{HS256Key, MACLike};
use serde_json::{json, Value};

use super::compile::{JwtAuthnConfig, KeySource};
use super::decide::{KeyView, ProviderKeys};
use crate::config::FilterConfig;

/// Secret of provider `a` (32 bytes).
pub const SECRET_A: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
/// Secret of provider `b` (32 bytes).
pub const SECRET_B: &[u8; 32] = b"fedcba9876543210fedcba9876543210";
/// "Now" of the tests.
pub const NOW: i64 = 1_700_000_000;

/// Base64 of a secret, for configs.
pub fn b64std(secret: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(secret)
}

/// An HS256 token with `header` and `payload` as given.
pub fn hs256_raw(secret: &[u8], header: &Value, payload: &Value) -> String {
    let key = HS256Key::from_bytes(secret);
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let tag = key.authentication_tag(signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// A valid-at-[`NOW`] HS256 token from issuer `iss` for subject `sub`, plus `extra` claims.
pub fn token(secret: &[u8], iss: &str, sub: &str, extra: Value) -> String {
    let mut payload = json!({"iss": iss, "sub": sub, "iat": NOW - 10, "exp": NOW + 600});
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    hs256_raw(secret, &json!({"alg": "HS256", "typ": "JWT"}), &payload)
}

/// Parses a config (panics on error: tests only).
pub fn config(v: Value) -> JwtAuthnConfig {
    match JwtAuthnConfig::parse(v.to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("config refused: {e}"),
    }
}

/// Two HMAC providers: `a` (Authorization: Bearer, issuer https://a, claim headers, payload
/// header) and `b` (header `x-b-token`, query `b_token`, cookie `b_session`, issuer https://b).
pub fn two_providers(rules: Value) -> JwtAuthnConfig {
    config(json!({
        "providers": {
            "a": {
                "issuer": "https://a",
                "audiences": ["api"],
                "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_A)},
                "claim_to_headers": [
                    {"header_name": "x-sub", "claim_name": "sub"},
                    {"header_name": "x-roles", "claim_name": "realm.roles"}
                ],
                "forward_payload_header": "x-jwt-payload"
            },
            "b": {
                "issuer": "https://b",
                "hmac_secret": {"algorithm": "HS256", "inline_base64": b64std(SECRET_B)},
                "from_headers": [{"name": "x-b-token"}],
                "from_params": ["b_token"],
                "from_cookies": ["b_session"]
            }
        },
        "rules": rules
    }))
}

/// Static keys of the config; providers listed in `pending` / `unavailable` answer so instead.
pub struct TestKeys<'a> {
    /// The config.
    pub cfg: &'a JwtAuthnConfig,
    /// Providers without keys yet.
    pub pending: Vec<usize>,
    /// Providers whose keys are unusable.
    pub unavailable: Vec<usize>,
    /// Unknown kid → wait.
    pub may_refetch: bool,
}

impl<'a> TestKeys<'a> {
    /// All static keys ready.
    pub fn new(cfg: &'a JwtAuthnConfig) -> Self {
        TestKeys {
            cfg,
            pending: vec![],
            unavailable: vec![],
            may_refetch: false,
        }
    }
}

impl KeyView for TestKeys<'_> {
    fn keys(&self, p: usize) -> ProviderKeys<'_> {
        if self.pending.contains(&p) {
            return ProviderKeys::Pending;
        }
        if self.unavailable.contains(&p) {
            return ProviderKeys::Unavailable;
        }
        match self.cfg.providers.get(p).map(|p| &p.keys) {
            Some(KeySource::Static(keys)) => ProviderKeys::Ready {
                keys,
                generation: 1,
                may_refetch: self.may_refetch,
            },
            _ => ProviderKeys::Unavailable,
        }
    }
}

/// Request headers from pairs.
pub fn req(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}
