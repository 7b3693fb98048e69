//! Verification keys: a [`KeySet`] of typed keys, each bound to one algorithm family (and to one
//! algorithm when its JWK declares `alg`), parsed once — at configure time or when a JWKS is
//! fetched — and never per request.
//!
//! Key selection for a token (`kid`, `alg`):
//! - a key only ever verifies an algorithm of its own family: an RSA, EC or OKP key can never
//!   verify an HS* token, whatever the allow-list says (catalogue row 4), and a key whose JWK
//!   declares `alg` verifies only that algorithm (row 5); P-256 ⇔ ES256, P-384 ⇔ ES384 (row 6);
//! - a token `kid` selects keys by exact, case-sensitive equality (row 19). Keys that carry no
//!   `kid` (e.g. an HMAC secret) match any token, as in Envoy. If no key has the token's `kid` and
//!   no kid-less key fits, the result is [`JwtError::UnknownKid`] — never a fallback to other keys;
//! - a token without `kid` is tried against every key that fits its algorithm;
//! - several keys with the same `kid` (row 23) are each tried, in JWKS order.

use std::fmt;

use serde_json::Value;

use super::json::parse_object;
use super::jwk::{self, hmac_min_secret};
use super::validate::JwtError;
use super::{verify, Algorithm};

/// Why a key or key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The JWKS document is not a strict JSON object with a `keys` array.
    #[error("invalid JWKS document: {0}")]
    InvalidJwks(String),
    /// No key in the JWKS could be used; each skipped key's reason is listed.
    #[error("no usable key in JWKS ({})", .0.join("; "))]
    NoUsableKeys(Vec<String>),
    /// The HMAC secret is shorter than the hash output of its algorithm (or empty).
    #[error("HMAC secret for {alg} must be at least {min} bytes, got {got}")]
    WeakSecret {
        /// The algorithm the secret is for.
        alg: Algorithm,
        /// Minimum length in bytes.
        min: usize,
        /// Length given.
        got: usize,
    },
    /// An HMAC secret was given for a non-HMAC algorithm.
    #[error("{0} is not an HMAC algorithm")]
    NotHmac(Algorithm),
}

/// Public key material (or an HMAC secret) in the form its verifier needs.
#[derive(Clone)]
pub(crate) enum Material {
    /// HMAC secret (HS*).
    Hmac(Vec<u8>),
    /// RSA public key (RS*, PS*).
    Rsa(Box<rsa::RsaPublicKey>),
    /// P-256 public key (ES256): uncompressed SEC1 point, on the curve.
    P256([u8; 65]),
    /// P-384 public key (ES384): uncompressed SEC1 point, on the curve.
    P384([u8; 97]),
    /// Ed25519 public key (EdDSA), known not to be of small order.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Material {
    /// Whether this key's family can verify `alg` at all.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Material::Hmac(secret) => hmac_min_secret(alg).is_some_and(|min| secret.len() >= min),
            Material::Rsa(_) => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Material::P256(_) => alg == ES256,
            Material::P384(_) => alg == ES384,
            Material::Ed25519(_) => alg == EdDSA,
        }
    }

    fn verify(&self, alg: Algorithm, input: &[u8], sig: &[u8]) -> bool {
        match self {
            Material::Hmac(secret) => verify::hmac(alg, secret, input, sig),
            Material::Rsa(key) => verify::rsa(alg, key, input, sig),
            Material::P256(key) => verify::es256(key, input, sig),
            Material::P384(key) => verify::es384(key, input, sig),
            Material::Ed25519(key) => verify::ed25519(key, input, sig),
        }
    }
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Material::Hmac(secret) => write!(f, "HMAC(<redacted, {} bytes>)", secret.len()),
            Material::Rsa(key) => write!(
                f,
                "RSA({} bits)",
                rsa::traits::PublicKeyParts::size(key.as_ref()) * 8
            ),
            Material::P256(_) => f.write_str("EC(P-256)"),
            Material::P384(_) => f.write_str("EC(P-384)"),
            Material::Ed25519(_) => f.write_str("OKP(Ed25519)"),
        }
    }
}

/// One verification key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: Material,
}

impl Key {
    pub(crate) fn new(kid: Option<String>, alg: Option<Algorithm>, material: Material) -> Self {
        Key { kid, alg, material }
    }

    /// Whether this key may verify `alg`: its family fits, and its declared `alg` (if any) is it.
    fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.material.fits(alg)
    }
}

/// A set of verification keys, parsed once (configure time or JWKS fetch), never per request.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    skipped: Vec<String>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys":[…]}`, strict JSON). Unusable keys are skipped, each with
    /// a reason in [`KeySet::skipped`]; fails only when the document is invalid or no key is usable.
    pub fn from_jwks_json(jwks: &[u8]) -> Result<KeySet, KeyError> {
        let (doc, _) =
            parse_object(jwks).map_err(|e| KeyError::InvalidJwks(e.detail().to_string()))?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(KeyError::InvalidJwks("missing \"keys\" array".into()));
        };
        let mut set = KeySet::default();
        for (i, entry) in entries.iter().enumerate() {
            match jwk::parse(entry) {
                Ok(key) => set.keys.push(key),
                Err(reason) => {
                    let kid = entry.get("kid").and_then(Value::as_str);
                    set.skipped.push(match kid {
                        Some(kid) => format!("keys[{i}] (kid {:?}): {reason}", truncate(kid)),
                        None => format!("keys[{i}]: {reason}"),
                    });
                }
            }
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoUsableKeys(set.skipped));
        }
        Ok(set)
    }

    /// One HMAC key (no `kid`, so it matches any token `kid`) bound to `alg`; the secret must be
    /// at least the hash size (32/48/64 bytes for HS256/384/512).
    pub fn from_hmac_secret(alg: Algorithm, secret: &[u8]) -> Result<KeySet, KeyError> {
        let min = hmac_min_secret(alg).ok_or(KeyError::NotHmac(alg))?;
        if secret.len() < min {
            return Err(KeyError::WeakSecret {
                alg,
                min,
                got: secret.len(),
            });
        }
        Ok(KeySet {
            keys: vec![Key::new(None, Some(alg), Material::Hmac(secret.to_vec()))],
            skipped: Vec::new(),
        })
    }

    /// Adds every key of `other` to this set (after this set's own keys).
    pub fn merge(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
        self.skipped.extend(other.skipped);
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The `kid` of each key that has one, in set order.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    /// Whether some key carries exactly this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Why keys were skipped while parsing (one line per key, never key material).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Verifies `sig` (the decoded third segment) over `input` (the received `header.payload`
    /// bytes) for a token with this `kid` and `alg` (selection rules in the module doc). Only the
    /// signature: [`super::validate`] is the whole check.
    pub fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        input: &[u8],
        sig: &[u8],
    ) -> Result<(), JwtError> {
        let kid_known = kid.is_none_or(|kid| self.contains_kid(kid));
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.kid.is_none() || k.kid.as_deref() == kid || kid.is_none())
            .filter(|k| k.fits(alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(if kid_known {
                JwtError::NoMatchingKey
            } else {
                JwtError::UnknownKid
            });
        }
        if candidates.any(|k| k.material.verify(alg, input, sig)) {
            Ok(())
        } else {
            Err(JwtError::BadSignature)
        }
    }
}

/// `kid`s come from a key document; keep the reason lines short.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    use wasm_bindgen_test::wasm_bindgen_test;

    const SECRET: [u8; 32] = [7; 32];

    fn tag(secret: &[u8], input: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(input);
        mac.finalize().into_bytes().to_vec()
    }

    fn oct_jwks(entries: &[(&str, &[u8], Option<&str>)]) -> KeySet {
        let keys: Vec<String> = entries
            .iter()
            .map(|(kid, k, alg)| {
                let alg = alg.map(|a| format!(r#","alg":"{a}""#)).unwrap_or_default();
                format!(
                    r#"{{"kty":"oct","kid":"{kid}","k":"{}"{alg}}}"#,
                    URL_SAFE_NO_PAD.encode(k)
                )
            })
            .collect();
        KeySet::from_jwks_json(format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes()).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hmac_secret_must_be_at_least_the_hash_size() {
        assert!(KeySet::from_hmac_secret(Algorithm::HS256, &[1; 32]).is_ok());
        assert_eq!(
            KeySet::from_hmac_secret(Algorithm::HS256, &[1; 31]).unwrap_err(),
            KeyError::WeakSecret {
                alg: Algorithm::HS256,
                min: 32,
                got: 31
            }
        );
        assert!(KeySet::from_hmac_secret(Algorithm::HS512, &[1; 48]).is_err());
        assert_eq!(
            KeySet::from_hmac_secret(Algorithm::RS256, &[1; 64]).unwrap_err(),
            KeyError::NotHmac(Algorithm::RS256)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn kid_selects_exactly_and_never_falls_back() {
        let set = oct_jwks(&[("a", &SECRET, Some("HS256")), ("b", &[9; 32], None)]);
        let sig = tag(&SECRET, b"input");
        assert_eq!(
            set.verify(Some("a"), Algorithm::HS256, b"input", &sig),
            Ok(())
        );
        // Right key material, wrong kid: "b" is tried (and fails), "a" never is.
        assert_eq!(
            set.verify(Some("b"), Algorithm::HS256, b"input", &sig),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            set.verify(Some("A"), Algorithm::HS256, b"input", &sig),
            Err(JwtError::UnknownKid)
        );
        // No kid: every key fitting the algorithm is tried.
        assert_eq!(set.verify(None, Algorithm::HS256, b"input", &sig), Ok(()));
        // "a" is bound to HS256: an HS384 token under its kid finds no key.
        assert_eq!(
            set.verify(Some("a"), Algorithm::HS384, b"input", &sig),
            Err(JwtError::NoMatchingKey)
        );
        assert_eq!(
            set.verify(None, Algorithm::RS256, b"input", &sig),
            Err(JwtError::NoMatchingKey)
        );
        assert_eq!(
            KeySet::default().verify(None, Algorithm::HS256, b"input", &sig),
            Err(JwtError::NoMatchingKey)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn kidless_keys_match_any_kid() {
        let set = KeySet::from_hmac_secret(Algorithm::HS256, &SECRET).unwrap();
        let sig = tag(&SECRET, b"x");
        assert_eq!(
            set.verify(Some("anything"), Algorithm::HS256, b"x", &sig),
            Ok(())
        );
        assert_eq!(set.verify(None, Algorithm::HS256, b"x", &sig), Ok(()));
        assert!(set.kids().is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn alg_less_oct_key_fits_only_hashes_it_is_long_enough_for() {
        let set = oct_jwks(&[("k", &[3; 48], None)]);
        assert!(set.keys[0].fits(Algorithm::HS256));
        assert!(set.keys[0].fits(Algorithm::HS384));
        assert!(!set.keys[0].fits(Algorithm::HS512));
        assert!(!set.keys[0].fits(Algorithm::RS256));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn merge_len_kids_and_skipped() {
        let mut set = oct_jwks(&[("a", &SECRET, None)]);
        let other = KeySet::from_jwks_json(
            br#"{"keys":[{"kty":"oct","kid":"b","k":"c2VjcmV0"},{"kty":"oct","kid":"c","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        )
        .unwrap();
        assert_eq!(other.skipped().len(), 1);
        assert!(other.skipped()[0].starts_with(r#"keys[0] (kid "b"): HMAC secret is 6 bytes"#));
        set.merge(other);
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert_eq!(set.kids(), vec!["a", "c"]);
        assert!(set.contains_kid("c") && !set.contains_kid("b"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn debug_never_shows_secrets() {
        let set = KeySet::from_hmac_secret(Algorithm::HS256, &[0xAB; 32]).unwrap();
        let shown = format!("{set:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_documents() {
        for doc in [
            &b"[]"[..],
            b"{}",
            br#"{"keys":{}}"#,
            b"x",
            br#"{"keys":[],"keys":[]}"#,
        ] {
            assert!(
                matches!(KeySet::from_jwks_json(doc), Err(KeyError::InvalidJwks(_))),
                "{doc:?}"
            );
        }
        assert_eq!(
            KeySet::from_jwks_json(br#"{"keys":[]}"#).unwrap_err(),
            KeyError::NoUsableKeys(vec![])
        );
    }
}
