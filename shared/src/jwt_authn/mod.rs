//! The jwt-authn filter's logic: config, token extraction, per-route requirements, remote-JWKS
//! lifecycle, verified-token cache, and the 401 answer — all plain Rust with an explicit `now`.
//!
//! The flow of one request ([`decide::decide`]):
//! 1. the filter removes every header it may set ([`JwtAuthnConfig::output_headers`]);
//! 2. the first rule whose `match` fits picks a requirement (or bypass);
//! 3. tokens are taken from the locations of the providers that requirement names
//!    ([`extract`]): duplicate token headers or two different tokens for one provider → 400;
//! 4. the requirement tree is evaluated over per-provider verdicts ([`requirements`]), validating
//!    each token once (caches first: verified tokens and stable refusals, [`cache`]);
//! 5. the result is an [`decide::Decision`]: let through (with claim headers, hand-off values and
//!    token stripping), refuse ([`response`]), or wait for keys ([`jwks`]).
//!
//! Config reference: [`config::RawConfig`]. Behaviour choices that differ from Envoy's
//! `jwt_authn` are listed in `filters/jwt-authn/README.md`.

pub mod api_key;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod bounds_tests;
pub mod cache;
pub mod compile;
pub mod config;
pub mod decide;
pub mod extract;
pub mod failed_cache;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod failed_cache_tests;
pub mod fetch;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod identity_tests;
pub mod jwks;
pub mod matcher;
pub mod outputs;
mod providers;
pub mod replay;
pub mod requirements;
pub mod response;
pub mod secret;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod test_support;

pub use compile::{
    ClaimToHeader, HeaderLocation, JwtAuthnConfig, KeySource, Provider, RemoteKeys, Rule,
    RuleAction,
};
pub use decide::{decide, Decision, KeyView, Outcome};
pub use requirements::Requirement;
pub use response::FailureSettings;

/// Stable reason codes this filter reports (metrics, filter state, `error_description`), besides
/// the validation reasons of [`crate::jwt::JwtError::reason`]. Every code is a fixed string, never
/// a value taken from the request.
pub mod reason {
    /// No token where one is required.
    pub const MISSING: &str = "missing";
    /// More than one `Authorization` (or other token) header line.
    pub const DUPLICATE_HEADER: &str = "duplicate_token_header";
    /// Two different tokens for one provider.
    pub const MULTIPLE_TOKENS: &str = "multiple_tokens";
    /// The token's issuer is not this provider's (decided from the unverified payload, no crypto).
    pub const ISSUER_MISMATCH: &str = "bad_issuer";
    /// Keys for the provider are not available (cold start timed out, or too stale).
    pub const KEYS_UNAVAILABLE: &str = "keys_unavailable";
    /// A hostcall failed while handling the request (fail closed).
    pub const INTERNAL: &str = "internal_error";
    /// An API key that matches no configured digest.
    pub const UNKNOWN_API_KEY: &str = "unknown_api_key";
    /// The token's `jti` was already used within its lifetime (`jti_replay`).
    pub const REPLAYED: &str = "replayed";
    /// The replay store's bucket for this token is full of live records (fail closed).
    pub const REPLAY_FULL: &str = "replay_cache_full";
    /// The replay store failed or stayed contended (fail closed).
    pub const REPLAY_FAILED: &str = "replay_check_failed";
    /// The verified payload nests objects/arrays deeper than the provider's `max_claim_depth`.
    pub const CLAIMS_TOO_DEEP: &str = "claims_too_deep";

    /// Every reason a denial can carry: this module's codes plus every
    /// [`crate::jwt::JwtError::reason`]. Metrics are defined once from this list.
    pub const ALL_DENIAL_REASONS: &[&str] = &[
        MISSING,
        DUPLICATE_HEADER,
        MULTIPLE_TOKENS,
        KEYS_UNAVAILABLE,
        INTERNAL,
        UNKNOWN_API_KEY,
        REPLAYED,
        REPLAY_FULL,
        REPLAY_FAILED,
        CLAIMS_TOO_DEEP,
        "too_large",
        "malformed",
        "unsupported_algorithm",
        "algorithm_not_allowed",
        "unknown_kid",
        "no_matching_key",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "lifetime_too_long",
        "missing_exp",
        "bad_issuer",
        "bad_audience",
        "bad_typ",
        "forbidden_header",
        "bad_claim",
        "missing_jti",
    ];
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::reason::ALL_DENIAL_REASONS;
    use crate::jwt::{Algorithm, JwtError};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Exhaustive over `JwtError` so a new variant breaks this test until its reason is listed
    /// (metrics are defined from the list at configure time).
    #[wasm_bindgen_test(unsupported = test)]
    fn every_jwt_error_reason_is_listed() {
        let all = [
            JwtError::TooLarge { limit: 1 },
            JwtError::Malformed("x"),
            JwtError::UnsupportedAlgorithm,
            JwtError::AlgorithmNotAllowed(Algorithm::HS256),
            JwtError::UnknownKid,
            JwtError::NoMatchingKey,
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::IssuedInFuture,
            JwtError::LifetimeTooLong,
            JwtError::MissingExp,
            JwtError::BadIssuer,
            JwtError::BadAudience,
            JwtError::BadTyp,
            JwtError::ForbiddenHeader("crit"),
            JwtError::BadClaim("exp"),
            JwtError::MissingJti,
        ];
        for e in &all {
            // The match is exhaustive: adding a variant fails to compile here.
            match e {
                JwtError::TooLarge { .. }
                | JwtError::Malformed(_)
                | JwtError::UnsupportedAlgorithm
                | JwtError::AlgorithmNotAllowed(_)
                | JwtError::UnknownKid
                | JwtError::NoMatchingKey
                | JwtError::BadSignature
                | JwtError::Expired
                | JwtError::NotYetValid
                | JwtError::IssuedInFuture
                | JwtError::LifetimeTooLong
                | JwtError::MissingExp
                | JwtError::BadIssuer
                | JwtError::BadAudience
                | JwtError::BadTyp
                | JwtError::ForbiddenHeader(_)
                | JwtError::BadClaim(_)
                | JwtError::MissingJti => {}
            }
            assert!(ALL_DENIAL_REASONS.contains(&e.reason()), "{}", e.reason());
        }
    }
}
