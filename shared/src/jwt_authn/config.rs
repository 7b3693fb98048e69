//! The jwt_authn filter's JSON config as users write it (serde + schemars), named after Envoy's
//! `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` where Envoy has the field.
//!
//! These types only describe the document; [`super::compile`] turns one into the validated
//! [`super::JwtAuthnConfig`] (field-path errors, secrets checked, templates compiled).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::jwt::Algorithm;

/// The whole filter config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Named token issuers (name → provider). Names are `[A-Za-z0-9_-]`, at most 64 characters,
    /// because they appear in metric tags and filter state.
    pub providers: BTreeMap<String, RawProvider>,
    /// Ordered rules; the first whose `match` fits the request decides. A request no rule matches
    /// is not checked (Envoy semantics): add a catch-all `{"prefix": "/"}` rule to require a token
    /// everywhere.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// through without a token (Envoy `bypass_cors_preflight`; default false).
    #[serde(default)]
    pub bypass_cors_preflight: bool,
    /// How refused requests are answered.
    #[serde(default)]
    pub failure: Option<RawFailure>,
    /// The per-worker caches: verified tokens, and refusals that cannot change.
    #[serde(default)]
    pub cache: Option<RawCache>,
}

/// One token issuer: where its keys come from, where its tokens are found, what is checked and
/// what is passed on.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Required `iss` (exact match). Required with `openid_discovery`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted audiences; the token's `aud` (string or array) must contain one. Empty = any.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Keys given inline as a JWKS document.
    #[serde(default)]
    pub local_jwks: Option<RawLocalJwks>,
    /// Keys fetched from a JWKS URL through an Envoy cluster.
    #[serde(default)]
    pub remote_jwks: Option<RawRemoteJwks>,
    /// One HMAC secret (HS256/384/512).
    #[serde(default)]
    pub hmac_secret: Option<RawHmacSecret>,
    /// Not a JWT issuer: API keys (Kong key-auth style) mapped to consumers. The key is read from
    /// `from_headers` / `from_params` / `from_cookies` (default: header `x-api-key`, whole value)
    /// and handed off like a verified token's subject. JWT-only fields are refused with it.
    #[serde(default)]
    pub api_keys: Option<super::api_key::RawApiKeys>,
    /// `jti` replay detection across workers (NIST SP 800-204 MS-SS-08): each token's `jti` is
    /// admitted once within its lifetime. Requires `require_expiration` (the default).
    #[serde(default)]
    pub jti_replay: Option<super::replay::RawJtiReplay>,
    /// Keys found through `<issuer>/.well-known/openid-configuration` → `jwks_uri`.
    #[serde(default)]
    pub openid_discovery: Option<RawOpenIdDiscovery>,
    /// Headers carrying the token. Default (when no `from_*` is given):
    /// `[{"name": "authorization", "value_prefix": "Bearer "}]`.
    #[serde(default)]
    pub from_headers: Option<Vec<RawHeaderLocation>>,
    /// Query parameters carrying the token (URL-decoded).
    #[serde(default)]
    pub from_params: Option<Vec<String>>,
    /// Cookies carrying the token.
    #[serde(default)]
    pub from_cookies: Option<Vec<String>>,
    /// Keep the token in the request sent upstream (default false: it is removed from every
    /// location of this provider when the request is let through).
    #[serde(default)]
    pub forward: bool,
    /// Request header that receives the verified payload, base64url-encoded.
    #[serde(default)]
    pub forward_payload_header: Option<String>,
    /// Claims copied to request headers once the token is verified.
    #[serde(default)]
    pub claim_to_headers: Vec<RawClaimToHeader>,
    /// Tolerance for `exp`, `nbf`, `iat` (default 60).
    #[serde(default)]
    pub clock_skew_seconds: Option<u64>,
    /// Maximum `exp − iat` (requires `iat`).
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Refuse tokens without `exp` (default true).
    #[serde(default)]
    pub require_expiration: Option<bool>,
    /// Refuse tokens without a string `jti` (default false).
    #[serde(default)]
    pub require_jti: bool,
    /// Algorithms accepted. Default: the HMAC algorithm of `hmac_secret`, or every asymmetric
    /// algorithm for JWKS sources. `none` does not exist.
    #[serde(default)]
    pub allowed_algorithms: Option<Vec<Algorithm>>,
    /// Required header `typ` (e.g. `at+jwt`; case-insensitive, `application/` optional).
    #[serde(default)]
    pub required_typ: Option<String>,
    /// Longest token accepted, checked before decoding (default 8192).
    #[serde(default)]
    pub max_token_bytes: Option<usize>,
    /// Deepest nesting of objects/arrays accepted in the verified payload, 1 = flat claims
    /// (default 16, at most 100). Deeper payloads are refused with reason `claims_too_deep`.
    #[serde(default)]
    pub max_claim_depth: Option<usize>,
}

/// Envoy `local_jwks` (a `DataSource`; only `inline_string` is supported).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLocalJwks {
    /// The JWKS JSON document.
    pub inline_string: String,
}

/// Envoy `HttpUri`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    /// `http://` or `https://` URL (the host becomes `:authority`, the path `:path`).
    pub uri: String,
    /// Envoy cluster the request is sent through (in Istio e.g. `outbound|443||idp.example.com`).
    pub cluster: String,
    /// Fetch timeout (default "5s").
    #[serde(default)]
    pub timeout: Option<String>,
}

/// Envoy `remote_jwks`, plus the key-lifecycle knobs Envoy lacks.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    /// Where the JWKS is fetched from.
    pub http_uri: RawHttpUri,
    /// How long fetched keys are fresh (default "10m"); refreshed on tick before that.
    #[serde(default)]
    pub cache_duration: Option<String>,
    /// How long past `cache_duration` the last good keys are still used while refreshes fail
    /// (default "1h"); then requests fail closed.
    #[serde(default)]
    pub max_stale: Option<String>,
    /// Wait between a failed fetch and the next attempt (default "1s", Envoy
    /// `failed_refetch_duration`).
    #[serde(default)]
    pub failed_refetch_duration: Option<String>,
    /// Least time between two refetches caused by an unknown `kid` (default "30s").
    #[serde(default)]
    pub unknown_kid_refetch_interval: Option<String>,
    /// How long a request waits for keys (cold start or unknown-`kid` refetch) before it fails
    /// closed (default "5s").
    #[serde(default)]
    pub cold_start_timeout: Option<String>,
    /// Largest key-fetch response body accepted, in bytes (default 262144 = 256 KiB, at most
    /// 16777216). A bigger body is refused before it is read (the fetch counts as failed, metric
    /// result `too_large`).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// OpenID Connect discovery: the issuer's `/.well-known/openid-configuration` names the JWKS URL.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOpenIdDiscovery {
    /// Cluster serving the issuer URL.
    pub cluster: String,
    /// Cluster serving `jwks_uri` when it is on another host (default: `cluster`).
    #[serde(default)]
    pub jwks_cluster: Option<String>,
    /// Timeout of each of the two fetches (default "5s").
    #[serde(default)]
    pub timeout: Option<String>,
    /// As in `remote_jwks`.
    #[serde(default)]
    pub cache_duration: Option<String>,
    /// As in `remote_jwks`.
    #[serde(default)]
    pub max_stale: Option<String>,
    /// As in `remote_jwks`.
    #[serde(default)]
    pub failed_refetch_duration: Option<String>,
    /// As in `remote_jwks`.
    #[serde(default)]
    pub unknown_kid_refetch_interval: Option<String>,
    /// As in `remote_jwks`.
    #[serde(default)]
    pub cold_start_timeout: Option<String>,
    /// Largest key-fetch response body accepted, in bytes (default 262144 = 256 KiB, at most
    /// 16777216). A bigger body is refused before it is read (the fetch counts as failed, metric
    /// result `too_large`).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// An HMAC secret. The secret must be at least as long as the hash (32/48/64 bytes). Exactly one
/// of `inline_base64` and `environment_variable`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHmacSecret {
    /// HS256, HS384 or HS512.
    pub algorithm: Algorithm,
    /// The secret, standard base64 (padding optional).
    #[serde(default)]
    pub inline_base64: Option<String>,
    /// Name of an environment variable of the proxy holding the secret in standard base64, read
    /// once at configure time (Envoy `vm_config.environment_variables`, Istio WasmPlugin
    /// `vmConfig.env`). Unset → the config is refused, naming the variable.
    #[serde(default)]
    pub environment_variable: Option<String>,
}

/// Envoy `JwtHeader`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderLocation {
    /// Header name (case-insensitive).
    pub name: String,
    /// Text before the token, matched ASCII case-insensitively (e.g. `"Bearer "`). Empty = the
    /// whole value is the token.
    #[serde(default)]
    pub value_prefix: String,
}

/// Envoy `JwtClaimToHeader`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaimToHeader {
    /// Request header to set (any client-sent copy is removed first).
    pub header_name: String,
    /// Claim path, dot-separated for nested objects (`realm_access.roles`).
    pub claim_name: String,
}

/// One rule: which requests, and what they require.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Which requests.
    #[serde(rename = "match")]
    pub match_: RawRouteMatch,
    /// The requirement. Exactly one of `requires` and `bypass: true`.
    #[serde(default)]
    pub requires: Option<RawRequirement>,
    /// Let matching requests through without looking for a token.
    #[serde(default)]
    pub bypass: bool,
}

/// Envoy `RouteMatch` subset: exactly one of `path`, `prefix`, `path_template`; optional methods.
/// Paths are compared without the query string, case-sensitively.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRouteMatch {
    /// Exact path.
    #[serde(default)]
    pub path: Option<String>,
    /// Path prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Path template: `/users/{id}/orders/{**}`; `{name}` or `*` = one segment, `{**}`,
    /// `{name=**}` or `**` = the rest (last only).
    #[serde(default)]
    pub path_template: Option<String>,
    /// HTTP methods (any if empty).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// Envoy `JwtRequirement`: exactly one member.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    /// A valid token of this provider.
    #[serde(default)]
    pub provider_name: Option<String>,
    /// At least one of the requirements.
    #[serde(default)]
    pub requires_any: Option<RawRequirementList>,
    /// All of the requirements.
    #[serde(default)]
    pub requires_all: Option<RawRequirementList>,
    /// No token is fine; a token that is present must be valid.
    #[serde(default)]
    pub allow_missing: Option<RawEmpty>,
    /// Always let through; a valid token is still verified and its claims passed on.
    #[serde(default)]
    pub allow_missing_or_failed: Option<RawEmpty>,
}

/// Envoy `JwtRequirementOrList` / `JwtRequirementAndList`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequirementList {
    /// At least two requirements.
    pub requirements: Vec<RawRequirement>,
}

/// An empty object (`{}`), as in Envoy's `allow_missing: {}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmpty {}

/// The answer to refused requests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFailure {
    /// Status for a missing or invalid token (default 401; 400–599).
    #[serde(default)]
    pub status: Option<u32>,
    /// Status when keys are unavailable (cold-start timeout, keys too stale; default 401 like
    /// Envoy's "Jwks remote fetch is failed"; 503 is the other sensible choice).
    #[serde(default)]
    pub keys_unavailable_status: Option<u32>,
    /// Body template; `{reason}` is replaced by the reason code. Default: a JSON object.
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of a custom body (default `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// `realm` of the `WWW-Authenticate` challenge (default `meshguard`).
    #[serde(default)]
    pub realm: Option<String>,
}

/// Per-worker cache settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Verified tokens per worker (default 100, like Envoy's `jwt_cache_size`, at most 100000);
    /// 0 disables the cache.
    #[serde(default)]
    pub max_entries: Option<usize>,
    /// Refused tokens per worker whose refusal cannot change while the keys stay the same
    /// (bad signature, expired, wrong audience, malformed, …), answered again without a
    /// signature check (default 1000, at most 100000); 0 disables it. Kept apart from
    /// `max_entries`: invalid tokens never evict verified ones.
    #[serde(default)]
    pub max_failed_entries: Option<usize>,
}
