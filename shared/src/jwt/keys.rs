//! Verification keys: JWKS/JWK parsing into typed keys, each bound to one algorithm family.

use super::Algorithm;

/// Why a key or key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The JWKS document is not a JSON object with a `keys` array.
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

/// A set of verification keys, parsed once (configure time or JWKS fetch), never per request.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    kids: Vec<Option<String>>,
    skipped: Vec<String>,
}

impl KeySet {
    /// Parses a JWKS document. Unusable keys are skipped (see [`KeySet::skipped`]); fails only
    /// when the document is invalid or no key is usable.
    pub fn from_jwks_json(jwks: &[u8]) -> Result<KeySet, KeyError> {
        let _ = jwks;
        Err(KeyError::InvalidJwks("not implemented yet".to_string()))
    }

    /// One HMAC key (no `kid`) bound to `alg`; the secret must be at least the hash size.
    pub fn from_hmac_secret(alg: Algorithm, secret: &[u8]) -> Result<KeySet, KeyError> {
        let _ = secret;
        Err(KeyError::NotHmac(alg))
    }

    /// Adds every key of `other` to this set.
    pub fn merge(&mut self, other: KeySet) {
        self.kids.extend(other.kids);
        self.skipped.extend(other.skipped);
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.kids.is_empty()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.kids.len()
    }

    /// The `kid` of each key that has one.
    pub fn kids(&self) -> Vec<&str> {
        self.kids.iter().filter_map(|k| k.as_deref()).collect()
    }

    /// Why keys were skipped while parsing (one line per key, never key material).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}
