//! Where authz, ratelimit and audit take the verified JWT claims from: the meshguard jwt-authn
//! hand-off (filter state, the default) or, configured explicitly, the payload Envoy's native
//! `envoy.filters.http.jwt_authn` (Istio RequestAuthentication) verified and wrote into dynamic
//! metadata with `payload_in_metadata`.
//!
//! The native path: the filter reads the property `["metadata"]` ([`METADATA_PROPERTY`]), which
//! Envoy serves as the serialized `envoy.config.core.v3.Metadata` ([`structpb`]), takes
//! `filter_metadata["envoy.filters.http.jwt_authn"][<payload_in_metadata>]`, and accepts the
//! payload only when its `iss` is the issuer of a provider configured for that key
//! ([`EnvoyJwtAuthn::select`]). Several providers may share a key (Istio writes every provider's
//! payload to `payload`): `iss` tells them apart. No payload, or one not accepted, means the
//! request is unauthenticated, exactly like a missing hand-off. Dynamic metadata cannot be set
//! by a client, and no header is ever read as a claim.

pub mod config;
mod select;
pub mod structpb;
#[cfg(test)]
mod tests;

pub use config::{ClaimsSource, ClaimsSourceRaw, EnvoyJwtAuthn, JWT_AUTHN_METADATA_NAMESPACE};
pub use select::{EnvoyClaims, Rejection, VerifiedClaims, METADATA_PROPERTY};

use crate::audit::stages::Handoff;

impl Handoff {
    /// Replaces the jwt-authn part of the hand-off with what Envoy's jwt_authn verified (the
    /// meshguard keys are ignored when this source is configured): `verified` with issuer,
    /// subject and provider; `missing`; or `failed` with the rejection reason.
    pub fn with_envoy_claims(mut self, claims: &EnvoyClaims<'_>) -> Handoff {
        let (outcome, reason) = match claims {
            EnvoyClaims::Verified(_) => ("verified", None),
            EnvoyClaims::Missing => ("missing", None),
            EnvoyClaims::Rejected(r) => ("failed", Some(r.as_str().to_owned())),
        };
        let verified = claims.verified();
        self.jwt_outcome = Some(outcome.to_owned());
        self.jwt_reason = reason;
        self.jwt_issuer = verified.map(|v| v.issuer.clone());
        self.jwt_subject = verified.and_then(|v| v.subject.clone());
        self.jwt_provider = verified.map(|v| v.provider.to_owned());
        self
    }
}
