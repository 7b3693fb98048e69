//! The hand-off between filters: filter-state keys and their formats.
//!
//! A filter publishes what it decided with proxy `set_property([key])`; Envoy stores it as the
//! filter state `wasm.<key>` (readable in access logs as `%FILTER_STATE(wasm.<key>:PLAIN)%`) and a
//! later filter reads it back with `get_property([key])`. Filter state cannot be set by a client,
//! unlike request headers, so identity is only ever taken from here.

/// Prefix of every key the jwt-authn filter publishes.
pub const JWT_PREFIX: &str = "meshguard.jwt_authn.";
/// Prefix of every key the authz filter publishes.
pub const AUTHZ_PREFIX: &str = "meshguard.authz.";
/// Prefix of every key the ratelimit filter publishes.
pub const RATELIMIT_PREFIX: &str = "meshguard.ratelimit.";
/// Prefix of every key the audit filter publishes.
pub const AUDIT_PREFIX: &str = "meshguard.audit.";

/// Outcome of the jwt-authn filter: `verified`, `missing`, `failed`, `bypassed`.
pub const JWT_OUTCOME: &str = "meshguard.jwt_authn.outcome";
/// Verified JWT payload, as the compact JSON object that was signed (only set when verified).
pub const JWT_PAYLOAD: &str = "meshguard.jwt_authn.payload";
/// `iss` of the verified token.
pub const JWT_ISSUER: &str = "meshguard.jwt_authn.issuer";
/// `sub` of the verified token.
pub const JWT_SUBJECT: &str = "meshguard.jwt_authn.subject";
/// Name of the provider that verified the token.
pub const JWT_PROVIDER: &str = "meshguard.jwt_authn.provider";
/// Why verification failed (a stable reason code), when it did.
pub const JWT_REASON: &str = "meshguard.jwt_authn.reason";

/// Authz decision: `allow`, `deny`, `dry_run_deny`.
pub const AUTHZ_DECISION: &str = "meshguard.authz.decision";
/// Name of the policy that decided.
pub const AUTHZ_POLICY: &str = "meshguard.authz.policy";
/// Name of the rule that matched.
pub const AUTHZ_RULE: &str = "meshguard.authz.rule";
/// Name of the first AUDIT policy that matched the request (set only when one did).
pub const AUTHZ_AUDIT: &str = "meshguard.authz.audit";

/// Rate-limit decision: `allow`, `limited`, `shadow_limited`.
pub const RATELIMIT_DECISION: &str = "meshguard.ratelimit.decision";
/// Remaining quota of the tightest limit after this request.
pub const RATELIMIT_REMAINING: &str = "meshguard.ratelimit.remaining";
/// Name of the rule that applied.
pub const RATELIMIT_RULE: &str = "meshguard.ratelimit.rule";

/// The audit record of the request (one JSON object).
pub const AUDIT_RECORD: &str = "meshguard.audit.record";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_starts_with_its_filters_prefix() {
        let jwt = [
            JWT_OUTCOME,
            JWT_PAYLOAD,
            JWT_ISSUER,
            JWT_SUBJECT,
            JWT_PROVIDER,
            JWT_REASON,
        ];
        let authz = [AUTHZ_DECISION, AUTHZ_POLICY, AUTHZ_RULE, AUTHZ_AUDIT];
        let ratelimit = [RATELIMIT_DECISION, RATELIMIT_REMAINING, RATELIMIT_RULE];
        for (prefix, keys) in [
            (JWT_PREFIX, &jwt[..]),
            (AUTHZ_PREFIX, &authz[..]),
            (RATELIMIT_PREFIX, &ratelimit[..]),
            (AUDIT_PREFIX, &[AUDIT_RECORD][..]),
        ] {
            for key in keys {
                assert!(key.starts_with(prefix), "{key} outside {prefix}");
            }
        }
    }
}
