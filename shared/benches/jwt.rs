//! `validate` per algorithm, natively, on the baseline fixture tokens (keys parsed once, outside
//! the loop), next to jwt-simple 0.15 verifying the same token for a same-run ratio.
//!
//! `cargo bench -p meshguard-core --bench jwt`

use std::collections::HashSet;

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use meshguard_core::jwt::{validate, KeySet, ValidationSettings};
use serde_json::Value;

const FIXTURES: &str = include_str!("../../tests/fixtures/jwt/cases.json");

struct Case {
    name: &'static str,
    token: String,
    jwk: Value,
}

fn load() -> (Value, Vec<Case>) {
    let f: Value = serde_json::from_str(FIXTURES).unwrap_or_default();
    let mut cases = Vec::new();
    for (name, id, kid) in [
        ("RS256", "row00-rs256-rsa-rs256", "rsa-rs256"),
        ("PS256", "row00-ps256-rsa-ps256", "rsa-ps256"),
        ("ES256", "row00-es256-ec-p256", "ec-p256"),
        ("ES384", "row00-es384-ec-p384", "ec-p384"),
        ("EdDSA", "row00-eddsa-ed", "ed"),
        ("HS256", "row00-hs256-oct-hs256", "oct-hs256"),
    ] {
        let token = f["token_cases"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == id))
            .and_then(|c| c["token"].as_str())
            .unwrap_or_default()
            .to_owned();
        let jwk = f["keysets"]["main"]["jwks"]["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
            .cloned()
            .unwrap_or_default();
        cases.push(Case { name, token, jwk });
    }
    (f, cases)
}

fn bench(c: &mut Criterion) {
    let (f, cases) = load();
    let now = f["now"].as_i64().unwrap_or_default();
    let settings = ValidationSettings {
        issuer: f["base_settings"]["issuer"].as_str().map(str::to_owned),
        audiences: vec!["api".into()],
        ..ValidationSettings::default()
    };
    let jwks = f["keysets"]["main"]["jwks"].to_string();
    let keys = match KeySet::from_jwks_json(jwks.as_bytes()) {
        Ok(keys) => keys,
        Err(e) => return eprintln!("fixture JWKS: {e}"),
    };
    let opts = VerificationOptions {
        time_tolerance: Some(Duration::from_secs(60)),
        artificial_time: Some(UnixTimeStamp::from_secs(now as u64)),
        allowed_issuers: settings.issuer.clone().map(|i| HashSet::from([i])),
        allowed_audiences: Some(HashSet::from(["api".to_string()])),
        ..VerificationOptions::default()
    };
    let mut group = c.benchmark_group("jwt_validate");
    for case in &cases {
        if validate(&case.token, &settings, &keys, now).is_err() {
            eprintln!("{}: fixture token does not validate; skipped", case.name);
            continue;
        }
        group.bench_function(format!("meshguard/{}", case.name), |b| {
            b.iter(|| validate(std::hint::black_box(&case.token), &settings, &keys, now))
        });
        let jwk = case.jwk.to_string();
        let token = case.token.as_str();
        let o = || Some(opts.clone());
        macro_rules! js {
            ($key:expr) => {
                if let Ok(key) = $key {
                    group.bench_function(format!("jwt-simple/{}", case.name), |b| {
                        b.iter(|| {
                            key.verify_token::<NoCustomClaims>(std::hint::black_box(token), o())
                        })
                    });
                }
            };
        }
        match case.name {
            "RS256" => js!(RS256PublicKey::from_jwk(&jwk)),
            "PS256" => js!(PS256PublicKey::from_jwk(&jwk)),
            "ES256" => js!(ES256PublicKey::from_jwk(&jwk)),
            "ES384" => js!(ES384PublicKey::from_jwk(&jwk)),
            "EdDSA" => js!(Ed25519PublicKey::from_jwk(&jwk)),
            "HS256" => {
                let k = case.jwk["k"].as_str().unwrap_or_default();
                js!(Base64UrlSafeNoPadding::decode_to_vec(k, None)
                    .map(|k| HS256Key::from_bytes(&k)))
            }
            _ => {}
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
