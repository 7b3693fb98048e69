//! Cross-check: every fixture token verified by jwt-simple 0.15 (pure Rust, an independent JWT
//! implementation with its own crypto stack: rsa 0.9, p256/p384 via superboring, ed25519-compact,
//! hmac-sha2 crates) with the same key set, issuer, audiences, skew, `typ` and `now`.
//!
//! jwt-simple has no `kid` selection and no oct JWK import, so this glue does the minimum around
//! it: keys whose `kid` fits the token's (exact, or kid-less on either side) are imported with
//! jwt-simple's own `from_jwk` for the header's algorithm (oct JWKs and configured secrets as raw
//! HMAC keys), and the token is accepted if any of them verifies it.
//!
//! The verdicts must agree, except in the cases the fixture marks `jwt_simple` with a reason —
//! each a deliberate difference (we are stricter: duplicate members, `crit: []`, exp required…).
//! A case we reject as `bad_signature` may never be marked: both stacks must always agree on
//! whether a signature is valid.

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{cases, fixtures, now, secret};

fn options(f: &Value, case: &Value) -> VerificationOptions {
    let s = super::settings(f, case);
    VerificationOptions {
        time_tolerance: Some(Duration::from_secs(s.clock_skew_seconds)),
        artificial_time: Some(UnixTimeStamp::from_secs(now(f) as u64)),
        allowed_issuers: s.issuer.map(|i| HashSet::from([i])),
        allowed_audiences: if s.audiences.is_empty() {
            None
        } else {
            Some(s.audiences.into_iter().collect())
        },
        required_signature_type: s.required_typ,
        ..VerificationOptions::default()
    }
}

/// Candidate keys of the set for a token `kid` (jwt-simple itself does no selection).
fn candidates<'a>(f: &'a Value, keyset: &str, kid: Option<&str>) -> Vec<&'a Value> {
    let def = &f["keysets"][keyset];
    let jwks = def
        .get("jwks")
        .and_then(|j| j["keys"].as_array())
        .into_iter()
        .flatten();
    jwks.filter(|jwk| match (kid, jwk.get("kid").and_then(Value::as_str)) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    })
    .chain(
        def.get("hmac")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    )
    .collect()
}

fn hmac_key(entry: &Value, alg: &str) -> Option<Vec<u8>> {
    if entry.get("secret_b64").is_some() {
        let (own, secret) = secret(entry);
        return (own.as_str() == alg).then_some(secret);
    }
    if entry["kty"] != "oct" || entry.get("alg").is_some_and(|a| a != alg) {
        return None;
    }
    Base64UrlSafeNoPadding::decode_to_vec(entry["k"].as_str()?, None).ok()
}

fn verify_one(entry: &Value, alg: &str, token: &str, opts: &VerificationOptions) -> bool {
    let jwk = entry.to_string();
    let o = || Some(opts.clone());
    macro_rules! with {
        ($key:ty) => {
            <$key>::from_jwk(&jwk)
                .map(|k| k.verify_token::<NoCustomClaims>(token, o()).is_ok())
                .unwrap_or(false)
        };
    }
    match alg {
        "HS256" => hmac_key(entry, alg).is_some_and(|k| {
            HS256Key::from_bytes(&k)
                .verify_token::<NoCustomClaims>(token, o())
                .is_ok()
        }),
        "HS384" => hmac_key(entry, alg).is_some_and(|k| {
            HS384Key::from_bytes(&k)
                .verify_token::<NoCustomClaims>(token, o())
                .is_ok()
        }),
        "HS512" => hmac_key(entry, alg).is_some_and(|k| {
            HS512Key::from_bytes(&k)
                .verify_token::<NoCustomClaims>(token, o())
                .is_ok()
        }),
        "RS256" => with!(RS256PublicKey),
        "RS384" => with!(RS384PublicKey),
        "RS512" => with!(RS512PublicKey),
        "PS256" => with!(PS256PublicKey),
        "PS384" => with!(PS384PublicKey),
        "PS512" => with!(PS512PublicKey),
        "ES256" => with!(ES256PublicKey),
        "ES384" => with!(ES384PublicKey),
        "EdDSA" | "Ed25519" => with!(Ed25519PublicKey),
        _ => false,
    }
}

/// jwt-simple's verdict on one fixture case.
fn jwt_simple_accepts(f: &Value, case: &Value) -> bool {
    let token = case["token"].as_str().unwrap_or_default();
    let Ok(meta) = Token::decode_metadata(token) else {
        return false;
    };
    let opts = options(f, case);
    candidates(
        f,
        case["keyset"].as_str().unwrap_or_default(),
        meta.key_id(),
    )
    .into_iter()
    .any(|entry| verify_one(entry, meta.algorithm(), token, &opts))
}

#[wasm_bindgen_test(unsupported = test)]
fn jwt_simple_agrees_on_every_fixture() {
    let f = fixtures();
    let mut failures = Vec::new();
    let mut agreed = 0;
    for case in cases(&f, "token_cases") {
        let id = case["id"].as_str().unwrap();
        let ours = case["expect"] == "accept";
        let marked = case.get("jwt_simple").and_then(Value::as_str);
        if marked.is_some() && case["reason"] == "bad_signature" {
            failures.push(format!(
                "{id}: a bad_signature case may not be marked as a difference"
            ));
        }
        let want = marked.map_or(ours, |m| m == "accept");
        let theirs = jwt_simple_accepts(&f, &case);
        if theirs != want {
            failures.push(format!(
                "{id}: jwt-simple {} (ours: {}, marked: {marked:?})",
                if theirs { "accepts" } else { "rejects" },
                case["expect"]
            ));
        } else if marked.is_none() {
            agreed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        agreed > 200,
        "only {agreed} cases compared without a marked difference"
    );
}
