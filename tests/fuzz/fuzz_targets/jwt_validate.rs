//! Fuzzes the JWS compact parser and the full validator (`token::parse`, `peek_kid`, `validate`)
//! against fixed settings and the fixed `main` JWKS of `tests/fixtures/jwt/cases.json` (RSA
//! RS256/RS512/PS256/any, EC P-256/P-384, Ed25519, oct HS256/HS512/any) plus an HMAC secret.
//!
//! Input: byte 0 selects a settings variant, the rest is the token (lossy UTF-8 is not used:
//! non-UTF-8 tokens are skipped, since the filter only ever passes `&str`).
//! Checked: no panic; a verified token's algorithm is allowed, its kid is what `peek_kid` saw,
//! and validation is deterministic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshguard_core::jwt::{peek_kid, token, validate, Algorithm, KeySet, ValidationSettings};

const CASES: &str = include_str!("../../fixtures/jwt/cases.json");
const NOW: i64 = 1_700_000_000;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cases: serde_json::Value = serde_json::from_str(CASES).unwrap_or_default();
        let jwks = cases
            .pointer("/keysets/main/jwks")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let mut set = match KeySet::from_jwks_json(jwks.as_bytes()) {
            Ok(set) => set,
            Err(e) => panic!("fixture JWKS does not parse: {e:?}"),
        };
        if let Ok(secret) = KeySet::from_hmac_secret(
            Algorithm::HS256,
            b"a-32-byte-long-hmac-secret-for-fuzzing!!",
        ) {
            set.merge(secret);
        }
        assert!(set.len() >= 10, "fixture JWKS lost keys: {}", set.len());
        set
    })
}

fn settings(variant: u8) -> ValidationSettings {
    let mut s = ValidationSettings {
        issuer: Some("https://issuer.example".to_owned()),
        audiences: vec!["api".to_owned()],
        ..ValidationSettings::default()
    };
    if variant & 1 != 0 {
        s.required_typ = Some("at+jwt".to_owned());
    }
    if variant & 2 != 0 {
        s.max_lifetime_seconds = Some(3600);
    }
    if variant & 4 != 0 {
        s.require_jti = true;
    }
    if variant & 8 != 0 {
        s.allowed_algorithms = vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    }
    if variant & 16 != 0 {
        s.require_exp = false;
        s.issuer = None;
        s.audiences.clear();
    }
    if variant & 32 != 0 {
        s.max_token_bytes = 256;
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let Some((&variant, rest)) = data.split_first() else {
        return;
    };
    let Ok(tok) = std::str::from_utf8(rest) else {
        return;
    };
    let settings = settings(variant);
    let parsed = token::parse(tok, settings.max_token_bytes);
    let kid = peek_kid(tok, settings.max_token_bytes);
    assert_eq!(parsed.is_ok(), kid.is_ok());
    if let Ok(p) = &parsed {
        let _ = token::decode_payload(p.payload_b64);
    }
    let first = validate(tok, &settings, keys(), NOW);
    let second = validate(tok, &settings, keys(), NOW);
    assert_eq!(first, second, "validation is not deterministic");
    match first {
        Ok(verified) => {
            assert!(settings.allowed_algorithms.contains(&verified.algorithm));
            assert!(tok.len() <= settings.max_token_bytes);
            assert_eq!(kid.ok().flatten(), verified.kid);
            if settings.issuer.is_some() {
                assert_eq!(verified.issuer, settings.issuer);
            }
        }
        Err(e) => {
            let _ = e.reason();
        }
    }
});
