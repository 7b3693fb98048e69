//! One JWK (RFC 7517/7518/8037) → one typed verification [`Key`], with key hygiene enforced at
//! load time so nothing is re-checked per request:
//! - `use`, if present, must be `sig`; `key_ops`, if present, must contain `verify`;
//! - `alg`, if present, must be a supported JWS algorithm of the key's family (it then binds the
//!   key to exactly that algorithm); encryption algorithms and `none` make the key unusable;
//! - RSA: modulus 2048–4096 bits, `e` = 65537 only (as jwt-simple);
//! - EC: `P-256` or `P-384`, full-length coordinates of a valid curve point (not the identity);
//! - OKP: `Ed25519` only, 32 bytes, not a small-order point;
//! - oct: at least the hash size of its algorithm (32 bytes when no `alg` is given);
//! - a key carrying private members (`d`, `p`, …) is refused: a published private key means anyone
//!   can sign.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rsa::{BoxedUint, RsaPublicKey};
use serde_json::{Map, Value};

use super::keys::{Key, Material};
use super::Algorithm;

/// Smallest accepted RSA modulus (RFC 7518 §3.3).
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest accepted RSA modulus (verification cost grows with size; jwt-simple's bound too).
pub(crate) const RSA_MAX_BITS: usize = 4096;

/// base64url for JWK members: issuers occasionally pad, which is harmless in a key document.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// The shortest HMAC secret accepted for `alg` (the hash output size, RFC 7518 §3.2).
pub(crate) fn hmac_min_secret(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::HS256 => Some(32),
        Algorithm::HS384 => Some(48),
        Algorithm::HS512 => Some(64),
        _ => None,
    }
}

/// Parses one JWK. The error is a one-line reason, without key material.
pub(crate) fn parse(jwk: &Value) -> Result<Key, String> {
    let Value::Object(jwk) = jwk else {
        return Err("not a JSON object".into());
    };
    let kid = optional_str(jwk, "kid")?.map(str::to_owned);
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Err("\"use\" is not \"sig\"".into());
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or_else(|| "\"key_ops\" is not an array".to_string())?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("\"key_ops\" does not allow \"verify\"".into());
        }
    }
    let alg = match optional_str(jwk, "alg")? {
        None => None,
        Some(name) => Some(
            name.parse::<Algorithm>()
                .map_err(|_| format!("\"alg\" {name:?} is not a supported JWS algorithm"))?,
        ),
    };
    if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
        return Err(format!(
            "contains private key member {member:?}; publish public keys only"
        ));
    }
    let material = match optional_str(jwk, "kty")? {
        Some("RSA") => rsa(jwk)?,
        Some("EC") => ec(jwk)?,
        Some("OKP") => okp(jwk)?,
        Some("oct") => oct(jwk, alg)?,
        Some(other) => return Err(format!("unsupported \"kty\" {other:?}")),
        None => return Err("missing \"kty\"".into()),
    };
    if let Some(alg) = alg {
        if !material.fits(alg) {
            return Err(format!("\"alg\" {alg} does not match the key type"));
        }
    }
    Ok(Key::new(kid, alg, material))
}

fn optional_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name:?} is not a string")),
    }
}

fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = optional_str(jwk, name)?.ok_or_else(|| format!("missing {name:?}"))?;
    JWK_B64
        .decode(text)
        .map_err(|_| format!("{name:?} is not base64url"))
}

fn rsa(jwk: &Map<String, Value>) -> Result<Material, String> {
    let n = bytes(jwk, "n")?;
    let e = bytes(jwk, "e")?;
    // A leading zero byte (two's-complement habit) is tolerated.
    let n = strip_leading_zeros(&n);
    if strip_leading_zeros(&e) != [1, 0, 1] {
        return Err("RSA exponent must be 65537".into());
    }
    let n = BoxedUint::from_be_slice_vartime(n);
    let bits = n.bits_vartime() as usize;
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!(
            "RSA modulus is {bits} bits; {RSA_MIN_BITS}–{RSA_MAX_BITS} required"
        ));
    }
    let key = RsaPublicKey::new_with_size_limits(
        n,
        BoxedUint::from(65_537u32),
        RSA_MIN_BITS..=RSA_MAX_BITS,
    )
    .map_err(|e| format!("invalid RSA key: {e}"))?;
    Ok(Material::Rsa(Box::new(key)))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn ec(jwk: &Map<String, Value>) -> Result<Material, String> {
    let crv = optional_str(jwk, "crv")?.ok_or("missing \"crv\"")?;
    let size = match crv {
        "P-256" => 32,
        "P-384" => 48,
        other => return Err(format!("unsupported EC curve {other:?}")),
    };
    let (x, y) = (bytes(jwk, "x")?, bytes(jwk, "y")?);
    if x.len() != size || y.len() != size {
        return Err(format!("{crv} coordinates must be {size} bytes each"));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * size);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    // RustCrypto checks the point (coordinates below p, on the curve, not the identity) once,
    // here; ring verifies with the same bytes and checks them again on every call.
    let invalid = || format!("not a valid {crv} point");
    let on_curve = if size == 32 {
        p256::PublicKey::from_sec1_bytes(&sec1).is_ok()
    } else {
        p384::PublicKey::from_sec1_bytes(&sec1).is_ok()
    };
    if !on_curve {
        return Err(invalid());
    }
    Ok(if size == 32 {
        Material::P256(sec1.try_into().map_err(|_| invalid())?)
    } else {
        Material::P384(sec1.try_into().map_err(|_| invalid())?)
    })
}

fn okp(jwk: &Map<String, Value>) -> Result<Material, String> {
    match optional_str(jwk, "crv")? {
        Some("Ed25519") => {}
        Some(other) => return Err(format!("unsupported OKP curve {other:?}")),
        None => return Err("missing \"crv\"".into()),
    }
    let x: [u8; 32] = bytes(jwk, "x")?
        .try_into()
        .map_err(|_| "Ed25519 \"x\" must be 32 bytes".to_string())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| "not a valid Ed25519 point".to_string())?;
    if key.is_weak() {
        return Err("Ed25519 key is a small-order point".into());
    }
    Ok(Material::Ed25519(key))
}

fn oct(jwk: &Map<String, Value>, alg: Option<Algorithm>) -> Result<Material, String> {
    let secret = bytes(jwk, "k")?;
    let min = match alg {
        Some(alg) => hmac_min_secret(alg)
            .ok_or_else(|| format!("\"alg\" {alg} does not match the key type"))?,
        None => 32,
    };
    if secret.len() < min {
        return Err(format!(
            "HMAC secret is {} bytes; at least {min} required",
            secret.len()
        ));
    }
    Ok(Material::Hmac(secret))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn reason(jwk: &str) -> String {
        parse(&serde_json::from_str(jwk).unwrap()).unwrap_err()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn degenerate_rsa_members_are_refused_not_a_panic() {
        for n in ["", "AA", "AAAA", "AQ"] {
            let r = reason(&format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#));
            assert!(r.contains("RSA modulus is"), "{n}: {r}");
        }
        assert!(reason(r#"{"kty":"RSA","n":"AQ","e":"Aw"}"#).contains("65537"));
        assert!(reason(r#"{"kty":"RSA","n":"AQ","e":""}"#).contains("65537"));
        assert!(reason(r#"{"kty":"RSA","e":"AQAB"}"#).contains(r#"missing "n""#));
        assert!(reason(r#"{"kty":"RSA","n":1,"e":"AQAB"}"#).contains("not a string"));
        assert!(reason(r#"{"kty":"RSA","n":"A+","e":"AQAB"}"#).contains("not base64url"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn member_rules() {
        assert!(reason(r#"{"k":"AA"}"#).contains(r#"missing "kty""#));
        assert!(reason(r#"{"kty":"oct","kid":5,"k":"AA"}"#).contains(r#""kid" is not a string"#));
        assert!(reason(r#"{"kty":"oct","use":"enc","k":"AA"}"#).contains("use"));
        assert!(reason(r#"{"kty":"oct","key_ops":"verify","k":"AA"}"#).contains("not an array"));
        assert!(reason(r#"{"kty":"oct","key_ops":["sign"],"k":"AA"}"#).contains("verify"));
        assert!(reason(r#"{"kty":"oct","alg":"HS256 ","k":"AA"}"#).contains("not a supported"));
        assert!(reason(r#"{"kty":"oct","alg":"RS256","k":"AA"}"#).contains("does not match"));
        assert!(reason(r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#).contains("P-521"));
        assert!(reason(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#).contains("32 bytes"));
        assert!(reason(r#"{"kty":"OKP","crv":"X25519","x":"AA"}"#).contains("X25519"));
        assert!(reason(r#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#).contains("32 bytes"));
        assert!(reason("[]").contains("not a JSON object"));
        let ok = format!(
            r#"{{"kty":"oct","key_ops":["verify"],"use":"sig","k":"{}"}}"#,
            "A".repeat(43)
        );
        assert!(parse(&serde_json::from_str(&ok).unwrap()).is_ok());
    }
}
