//! Per request: decode the dynamic metadata, find the configured keys, accept only a
//! configured issuer.

use serde_json::Value;

use super::config::{EnvoyJwtAuthn, JWT_AUTHN_METADATA_NAMESPACE};
use super::structpb::decode_filter_metadata;

/// The property path of the stream's dynamic metadata (`envoy.config.core.v3.Metadata`).
pub const METADATA_PROPERTY: [&str; 1] = ["metadata"];

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
    /// The metadata was not a serialized `envoy.config.core.v3.Metadata`, or the key held no
    /// object.
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
    /// Picks the verified payload out of the `["metadata"]` property ([`METADATA_PROPERTY`];
    /// `None` when absent): the first configured key, in provider-name order, whose payload's
    /// `iss` is the issuer of a provider configured for that key.
    pub fn select(&self, metadata: Option<&[u8]>) -> EnvoyClaims<'_> {
        let namespace = match metadata.filter(|b| !b.is_empty()) {
            None => return EnvoyClaims::Missing,
            Some(bytes) => match decode_filter_metadata(bytes, JWT_AUTHN_METADATA_NAMESPACE) {
                Ok(Some(namespace)) => namespace,
                Ok(None) => return EnvoyClaims::Missing,
                Err(_) => return EnvoyClaims::Rejected(Rejection::Undecodable),
            },
        };
        let mut rejected = None;
        for key in &self.keys {
            let payload = match namespace.get(&key.key) {
                None => continue,
                Some(Value::Object(payload)) => payload,
                Some(_) => {
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
            return EnvoyClaims::Verified(VerifiedClaims {
                issuer: issuer.to_owned(),
                subject: payload
                    .get("sub")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                payload: Value::Object(payload.clone()),
                provider,
            });
        }
        rejected.map_or(EnvoyClaims::Missing, EnvoyClaims::Rejected)
    }
}
