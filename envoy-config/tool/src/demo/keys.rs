//! Demo signing keys (ES256, generated at start), their JWKS, and token minting.

use jwt_simple::prelude::{Claims, Duration, ECDSAP256KeyPairLike, ES256KeyPair};
use serde_json::{Map, Value};

/// Why a key could not be loaded or a token minted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The stored key is not a private EC P-256 JWK.
    #[error("invalid signing key: {0}")]
    InvalidKey(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An ES256 signing key with its `kid`.
pub struct SigningKey {
    kid: String,
    pair: ES256KeyPair,
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.to_string(),
            pair: ES256KeyPair::generate().with_key_id(kid),
        }
    }

    /// The key's id (`kid` in the JWT header and the JWK).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as a JWK (to store it between `meshguard demo` invocations).
    pub fn to_private_jwk(&self) -> String {
        self.pair.to_jwk()
    }

    /// Loads a key stored with [`SigningKey::to_private_jwk`].
    pub fn from_private_jwk(jwk: &str) -> Result<SigningKey, KeyError> {
        let pair = ES256KeyPair::from_jwk(jwk).map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        let kid = pair
            .key_id()
            .clone()
            .ok_or_else(|| KeyError::InvalidKey("the JWK has no kid".into()))?;
        Ok(SigningKey { kid, pair })
    }

    /// The public JWK, with `alg` and `use` set.
    pub fn public_jwk(&self) -> Value {
        let text = self.pair.public_key().to_jwk();
        let mut jwk: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("alg".into(), "ES256".into());
            obj.insert("use".into(), "sig".into());
            obj.insert("kid".into(), self.kid.clone().into());
        }
        jwk
    }

    /// Signs a token with `iss`, `sub`, `aud`, `iat`, `nbf`, `exp` = now + `ttl_secs`, plus
    /// `extra` claims.
    pub fn mint(
        &self,
        issuer: &str,
        subject: &str,
        audience: &str,
        ttl_secs: u64,
        extra: &Map<String, Value>,
    ) -> Result<String, KeyError> {
        let claims = Claims::with_custom_claims(extra.clone(), Duration::from_secs(ttl_secs))
            .with_issuer(issuer)
            .with_subject(subject)
            .with_audience(audience);
        self.pair
            .sign(claims)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// A JWKS document (`{"keys": [...]}`) with the public keys of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> String {
    let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Parses `name=value` claim arguments; values that are JSON (numbers, arrays, `true`) are
/// kept typed, anything else is a string.
pub fn parse_claims(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for arg in args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("claim {arg:?}: expected name=value"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn minted_tokens_carry_kid_and_claims() {
        let key = SigningKey::generate("k1");
        let extra = parse_claims(&["role=admin".into(), "n=3".into()]).unwrap();
        let token = key.mint("iss", "alice", "aud", 60, &extra).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], "k1");
        assert_eq!(header["alg"], "ES256");
        let payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["sub"], "alice");
        assert_eq!(payload["role"], "admin");
        assert_eq!(payload["n"], 3);
        assert!(payload["exp"].as_u64().unwrap() > payload["iat"].as_u64().unwrap());
    }

    #[test]
    fn private_jwk_round_trips_and_jwks_has_public_parts_only() {
        let key = SigningKey::generate("k2");
        let again = SigningKey::from_private_jwk(&key.to_private_jwk()).unwrap();
        assert_eq!(again.kid(), "k2");
        assert_eq!(again.public_jwk(), key.public_jwk());
        let set: Value = serde_json::from_str(&jwks(&[&key])).unwrap();
        let jwk = &set["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none());
    }
}
