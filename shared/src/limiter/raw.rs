//! The ratelimit filter's JSON config as written by the user (serde + schemars). Field names
//! follow Envoy `local_ratelimit` (`token_bucket.max_tokens`, `tokens_per_fill`, `fill_interval`,
//! `status`, `enable_x_ratelimit_headers`, `xff_num_trusted_hops`) where Envoy has one.
//!
//! ```json
//! {
//!   "rules": [{
//!     "name": "per_user",
//!     "match": {"prefix": "/api/"},
//!     "descriptors": [{"jwt_claim": "sub"}],
//!     "limits": [{"token_bucket": {"max_tokens": 60, "tokens_per_fill": 60, "fill_interval": "1m"}}],
//!     "limits_by_claim": {"claim": "plan", "tiers": {
//!       "gold": [{"token_bucket": {"max_tokens": 1000, "tokens_per_fill": 1000, "fill_interval": "1m"}}]}}
//!   }, {
//!     "name": "login_failures",
//!     "match": {"path": "/login", "methods": ["POST"]},
//!     "descriptors": ["remote_address"],
//!     "limits": [{"sliding_window": {"requests": 5, "window": "15m"}}],
//!     "count_on_response_statuses": [401]
//!   }]
//! }
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// The whole filter config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimitConfig {
    /// Rules, evaluated in order; every rule whose `match` matches counts the request.
    pub rules: Vec<RawRule>,
    /// Count and record, never block (every rule).
    #[serde(default)]
    pub shadow_mode: bool,
    /// What to do when the shared counters cannot be updated (host error, or `max_cas_retries`
    /// conflicting writes in a row): `deny` (default, fail closed) or `allow`.
    #[serde(default)]
    pub failure_mode: RawFailureMode,
    /// Compare-and-swap retries per counter update before `failure_mode` applies (0–64,
    /// default 8).
    #[serde(default = "default_cas_retries")]
    pub max_cas_retries: u32,
    /// Trusted proxies in front of this one, for the `remote_address` descriptor (Envoy
    /// semantics; 0 = use the connection's source address and ignore `x-forwarded-for`).
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
    /// Status of the local reply to a limited request (400–599, default 429).
    #[serde(default = "default_status")]
    pub status: u16,
    /// Body of that reply (default `rate limited`).
    #[serde(default = "default_body")]
    pub body: String,
    /// IETF `RateLimit` / `RateLimit-Policy` headers (default true).
    #[serde(default = "default_true")]
    pub enable_ratelimit_headers: bool,
    /// Envoy's `x-ratelimit-limit/remaining/reset` headers: `OFF` (default) or
    /// `DRAFT_VERSION_03`.
    #[serde(default)]
    pub enable_x_ratelimit_headers: RawXRateLimitHeaders,
    /// Also add the enabled headers to responses of allowed requests (default false: only on the
    /// limited reply).
    #[serde(default)]
    pub headers_on_allowed: bool,
    /// Where the verified JWT claims (`jwt_claim` descriptors, `tiers`) come from:
    /// `{"meshguard_jwt_authn": {}}` (default) or `{"envoy_jwt_authn": {"providers": {...}}}`
    /// (Envoy's native jwt_authn; see the README).
    #[serde(default)]
    pub claims_source: crate::identity::ClaimsSourceRaw,
}

/// Fail closed or open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawFailureMode {
    /// Reply as if limited.
    #[default]
    Deny,
    /// Let the request through.
    Allow,
}

/// Envoy's `enable_x_ratelimit_headers` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum RawXRateLimitHeaders {
    /// No `x-ratelimit-*` headers.
    #[default]
    #[serde(rename = "OFF")]
    Off,
    /// `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset`.
    #[serde(rename = "DRAFT_VERSION_03")]
    DraftVersion03,
}

/// One rule: which requests, keyed by what, limited how.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name: letters, digits, `_`, `-` (used in shared-data keys, metrics, headers).
    pub name: String,
    /// Which requests the rule applies to (default: all).
    #[serde(default, rename = "match")]
    pub route: Option<RawMatch>,
    /// What identifies a key; empty = one counter for every matching request.
    #[serde(default)]
    pub descriptors: Vec<RawDescriptor>,
    /// The limits (1–8); all must admit a request.
    pub limits: Vec<RawLimit>,
    /// Other limits for keys whose claim has a given value (e.g. `plan: gold`).
    #[serde(default)]
    pub limits_by_claim: Option<RawClaimTiers>,
    /// A request missing a descriptor value: `shared` (default: one counter for all such
    /// requests) or `skip` (the rule does not apply).
    #[serde(default)]
    pub missing_descriptor: RawMissingDescriptor,
    /// Count only responses with these statuses (e.g. 401 for failed logins); requests are still
    /// blocked once the key is over its limit. Empty (default) = count every request.
    #[serde(default)]
    pub count_on_response_statuses: Vec<u16>,
    /// Keys tracked at most (1–100000, default 10000): the rule's share of shared data.
    #[serde(default = "default_max_keys")]
    pub max_keys: u32,
    /// Count and record, never block (this rule).
    #[serde(default)]
    pub shadow_mode: bool,
}

/// Route match, after Envoy's `RouteMatch` (`path` exact, `prefix`) plus methods.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Exact path (query ignored).
    #[serde(default)]
    pub path: Option<String>,
    /// Path prefix (query ignored).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Methods (any when empty).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// A descriptor source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawDescriptor {
    /// A claim of the verified JWT (dotted path).
    JwtClaim(String),
    /// The mTLS peer principal.
    MtlsPrincipal,
    /// The client IP.
    RemoteAddress,
    /// A request header.
    RequestHeader(String),
    /// The path without query.
    Path,
    /// The method.
    Method,
}

/// A limit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawLimit {
    /// A token bucket.
    TokenBucket(RawTokenBucket),
    /// A sliding window.
    SlidingWindow(RawSlidingWindow),
}

/// Envoy's `TokenBucket`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTokenBucket {
    /// Capacity and initial tokens (1–1000000000).
    pub max_tokens: u64,
    /// Tokens added per fill (default 1, as in Envoy).
    #[serde(default = "default_tokens_per_fill")]
    pub tokens_per_fill: u64,
    /// Time between fills (≥ 50ms, as in Envoy), e.g. `"1s"`, `"1m"`.
    pub fill_interval: String,
}

/// A sliding window.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlidingWindow {
    /// Requests allowed per window (1–1000000000).
    pub requests: u64,
    /// Window length (≥ 100ms), e.g. `"1m"`, `"1h"`.
    pub window: String,
}

/// Limits chosen by the value of a claim.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaimTiers {
    /// Claim path (`plan`, `org.plan`).
    pub claim: String,
    /// Claim value → limits (1–8 each); other values and a missing claim get `limits`.
    pub tiers: BTreeMap<String, Vec<RawLimit>>,
}

/// What to do with a request that lacks a descriptor value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawMissingDescriptor {
    /// Count it against one counter shared by every such request.
    #[default]
    Shared,
    /// The rule does not apply.
    Skip,
}

fn default_cas_retries() -> u32 {
    8
}
fn default_status() -> u16 {
    429
}
fn default_body() -> String {
    "rate limited".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_max_keys() -> u32 {
    10_000
}
fn default_tokens_per_fill() -> u64 {
    1
}
