//! Per request: read the configured metadata keys, decode, accept only a configured issuer.

use serde_json::Value;

use super::config::EnvoyJwtAuthn;
use super::structpb::decode_struct;

/// A verified payload from Envoy's jwt_authn that a configured provider accounts for.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims<'c> {
    /// The payload, always a JSON object.
    pub payload: Value,
    /// Its `iss` (equal to the provider's configured issuer).
    pub issuer: String,
    /// Its `sub`, when that is a string.
    pub subject: Option<String>,
    /// The configured provider name that accepted it.
    pub provider: &'c str,
}

/// Why a payload found in metadata was not accepted. The request is then unauthenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The property was not a serialized `google.protobuf.Struct`.
    Undecodable,
    /// The payload's `iss` is missing, not a string, or not the issuer of any configured
    /// provider writing that key.
    IssuerNotAccepted,
}

impl Rejection {
    /// Stable reason code (logs, the audit record's `authn.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Undecodable => "payload_undecodable",
            Rejection::IssuerNotAccepted => "issuer_not_accepted",
        }
    }
}

/// What the request's metadata says.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvoyClaims<'c> {
    /// A configured provider's verified payload.
    Verified(VerifiedClaims<'c>),
    /// No configured key holds a payload: unauthenticated (no token, or jwt_authn allowed a
    /// missing/failed one).
    Missing,
    /// A payload was there but not accepted (the first reason met): unauthenticated.
    Rejected(Rejection),
}

impl<'c> EnvoyClaims<'c> {
    /// The verified claims, if any.
    pub fn verified(&self) -> Option<&VerifiedClaims<'c>> {
        match self {
            EnvoyClaims::Verified(v) => Some(v),
            EnvoyClaims::Missing | EnvoyClaims::Rejected(_) => None,
        }
    }

    /// Takes the verified claims, if any.
    pub fn into_verified(self) -> Option<VerifiedClaims<'c>> {
        match self {
            EnvoyClaims::Verified(v) => Some(v),
            EnvoyClaims::Missing | EnvoyClaims::Rejected(_) => None,
        }
    }
}

impl EnvoyJwtAuthn {
    /// Reads every configured key through `lookup` (the filter passes its `get_property`
    /// wrapper; `Ok(None)` = absent) and returns the first payload, in provider-name order of
    /// the keys, whose `iss` is the issuer of a provider configured for that key. A failing
    /// lookup is returned as is: the caller fails closed.
    pub fn select<E>(
        &self,
        mut lookup: impl FnMut(&[&str]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<EnvoyClaims<'_>, E> {
        let mut rejected = None;
        for key in &self.keys {
            let [a, b, c, d] = &key.path;
            let Some(bytes) = lookup(&[a, b, c, d])?.filter(|b| !b.is_empty()) else {
                continue;
            };
            let payload = match decode_struct(&bytes) {
                Ok(payload) => payload,
                Err(_) => {
                    rejected.get_or_insert(Rejection::Undecodable);
                    continue;
                }
            };
            let issuer = payload.get("iss").and_then(Value::as_str);
            let provider = issuer.and_then(|iss| key.providers.iter().find(|(_, i)| i == iss));
            let (Some(issuer), Some((provider, _))) = (issuer, provider) else {
                rejected.get_or_insert(Rejection::IssuerNotAccepted);
                continue;
            };
            let issuer = issuer.to_owned();
            let subject = payload
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Ok(EnvoyClaims::Verified(VerifiedClaims {
                payload: Value::Object(payload),
                issuer,
                subject,
                provider,
            }));
        }
        Ok(rejected.map_or(EnvoyClaims::Missing, EnvoyClaims::Rejected))
    }
}
