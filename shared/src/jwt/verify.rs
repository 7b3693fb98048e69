//! Signature verification backends, one per key family, chosen from the V8 measurements in
//! `shared/research/wasm-crypto.md` and `tests/bench/cold` (wasm32-wasip1, TurboFan as in Envoy):
//!
//! | family | crate | why |
//! |---|---|---|
//! | RSA (RS*/PS*) | `rsa` 0.10 (crypto-bigint), 32-bit limbs on wasm32 | fastest in V8: ~1.5× faster with `cpubits="32"` (`.cargo/config.toml`), ~4× faster than jwt-simple's rsa 0.9; `ring` is ~1.3× slower |
//! | ECDSA P-256/P-384 | `ring` 0.17 (C, built by clang for wasm32) | 1.1–1.2× faster than `p256` 0.14 in V8, and unaffected by the 32-bit limbs that slow `p256` down 1.3×; `p256`/`p384` (RustCrypto) only validate the point when a key is loaded |
//! | Ed25519 | `ed25519-dalek` 3 (`verify_strict`) | 2.1–2.6× faster than jwt-simple's ed25519-compact. `ring` is ~1.2× faster in V8 (`tests/bench/cold`) but does not refuse a small-order `R`, which `verify_strict` and jwt-simple do |
//! | HMAC | `hmac` 0.13 + `sha2` 0.11 | constant-time full-length tag compare |
//!
//! jwt-simple stays the independent cross-check in the tests (`shared/tests/adversarial.rs`).
//!
//! Every function verifies over the exact received `header.payload` bytes and returns `false` on
//! any failure: wrong length (ECDSA must be the fixed `r‖s` form, RSA the modulus length, HMAC the
//! full hash length), `r`/`s` out of `[1, n−1]`, Ed25519 `S ≥ L` or small-order `R`, or a mismatch.

use ed25519_dalek::Signature as EdSignature;
use hmac::{Hmac, KeyInit, Mac};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED};
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::Algorithm;

/// Verifies an HMAC tag (full length, constant-time compare).
pub(crate) fn hmac(alg: Algorithm, secret: &[u8], input: &[u8], tag: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(secret: &[u8], input: &[u8], tag: &[u8]) -> bool {
        match <M as KeyInit>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(input);
                mac.verify_slice(tag).is_ok()
            }
            Err(_) => false,
        }
    }
    match alg {
        Algorithm::HS256 => check::<Hmac<Sha256>>(secret, input, tag),
        Algorithm::HS384 => check::<Hmac<Sha384>>(secret, input, tag),
        Algorithm::HS512 => check::<Hmac<Sha512>>(secret, input, tag),
        _ => false,
    }
}

/// Verifies an RSASSA-PKCS1-v1_5 (RS*) or RSASSA-PSS (PS*, salt length = hash length) signature.
pub(crate) fn rsa(alg: Algorithm, key: &RsaPublicKey, input: &[u8], sig: &[u8]) -> bool {
    let result = match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input), sig),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input), sig),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input), sig),
        Algorithm::PS256 => key.verify(Pss::<Sha256>::new(), &Sha256::digest(input), sig),
        Algorithm::PS384 => key.verify(Pss::<Sha384>::new(), &Sha384::digest(input), sig),
        Algorithm::PS512 => key.verify(Pss::<Sha512>::new(), &Sha512::digest(input), sig),
        _ => return false,
    };
    result.is_ok()
}

/// Verifies an ES256 signature: exactly 64 bytes `r‖s`, SHA-256. `point` is the key's
/// uncompressed SEC1 encoding (`04‖x‖y`, 65 bytes), checked on the curve when it was loaded.
pub(crate) fn es256(point: &[u8; 65], input: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(input, sig)
        .is_ok()
}

/// Verifies an ES384 signature: exactly 96 bytes `r‖s`, SHA-384; `point` as for [`es256`]
/// (97 bytes).
pub(crate) fn es384(point: &[u8; 97], input: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
        .verify(input, sig)
        .is_ok()
}

/// Verifies an Ed25519 signature with RFC 8032 strictness (`S < L`, no small-order `R` or key).
pub(crate) fn ed25519(key: &ed25519_dalek::VerifyingKey, input: &[u8], sig: &[u8]) -> bool {
    EdSignature::from_slice(sig).is_ok_and(|sig| key.verify_strict(input, &sig).is_ok())
}
