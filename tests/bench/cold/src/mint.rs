//! Keys and tokens, minted natively by jwt-simple (the same independent signer as the tests).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::json;

pub const ISSUER: &str = "https://issuer.bench.local";
pub const AUDIENCE: &str = "bench-api";

fn claims(i: usize) -> JWTClaims<serde_json::Value> {
    let sub = format!("user-{i:06}");
    Claims::with_custom_claims(
        json!({"role": "reader", "scope": "bench:read bench:list"}),
        Duration::from_hours(1),
    )
    .with_issuer(ISSUER)
    .with_audience(AUDIENCE)
    .with_subject(&sub)
    .with_jwt_id(&sub)
}

/// `mint FILE N`.
pub fn mint(args: &[String]) -> Result<(), String> {
    let (Some(file), Some(n)) = (args.first(), args.get(1)) else {
        return Err("usage: coldbench mint FILE N".into());
    };
    let n: usize = n.parse().map_err(|_| "N must be a number")?;
    let e = |e: jwt_simple::Error| e.to_string();
    let rs = RS256KeyPair::generate(2048).map_err(e)?.with_key_id("rs");
    let es = ES256KeyPair::generate().with_key_id("es");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    // HS256: a signature check of ~3 µs, so `decide` on it is nearly all non-signature work.
    let hs = HS256Key::generate().with_key_id("hs");
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let rsa = rs.public_key().to_components();
    let point = es.public_key().public_key().to_bytes_uncompressed();
    let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(&rsa.n), "e": b64(&rsa.e)},
        {"kty": "EC", "kid": "es", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(x), "y": b64(y)},
        {"kty": "OKP", "kid": "ed", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(&ed.public_key().to_bytes())},
        {"kty": "oct", "kid": "hs", "alg": "HS256", "use": "sig", "k": b64(&hs.to_bytes())},
    ]});
    let mut tokens = serde_json::Map::new();
    let mut list = |alg: &str, sign: &dyn Fn(usize) -> Result<String, jwt_simple::Error>| {
        let all: Result<Vec<String>, String> = (0..n).map(|i| sign(i).map_err(e)).collect();
        all.map(|all| tokens.insert(alg.to_string(), json!(all)))
    };
    list("RS256", &|i| rs.sign(claims(i)))?;
    list("ES256", &|i| es.sign(claims(i)))?;
    list("EdDSA", &|i| ed.sign(claims(i)))?;
    list("HS256", &|i| hs.authenticate(claims(i)))?;
    let now = Clock::now_since_epoch().as_secs() as i64 + 1;
    let doc =
        json!({"now": now, "issuer": ISSUER, "audience": AUDIENCE, "jwks": jwks, "tokens": tokens});
    std::fs::write(file, doc.to_string()).map_err(|e| format!("{file}: {e}"))
}
