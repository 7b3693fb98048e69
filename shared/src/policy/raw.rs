//! The authz config as written by users (JSON, snake_case, Istio AuthorizationPolicy field
//! names). [`super::Authorizer::parse`] compiles it; this is also the shape the JSON Schema
//! describes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The whole authz filter config.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfigRaw {
    /// Policies, evaluated as Istio does: any matching DENY denies; else, if there are ALLOW
    /// policies, one must match; else the request is allowed. AUDIT policies only record.
    #[serde(default)]
    pub policies: Vec<PolicyRaw>,
    /// Evaluate and record every policy, never enforce (a global dry-run).
    #[serde(default)]
    pub dry_run: bool,
    /// With no policies: allow every request (must be said explicitly).
    #[serde(default)]
    pub allow_all: bool,
    /// With no policies: deny every request (must be said explicitly).
    #[serde(default)]
    pub deny_all: bool,
    /// The response sent on deny unless the denying rule has its own. Default: 403,
    /// `{"error":"forbidden"}` (`{"error":"insufficient_scope"}` for missing scopes).
    #[serde(default)]
    pub deny_response: Option<DenyResponseRaw>,
    /// Where the verified JWT claims come from: `{"meshguard_jwt_authn": {}}` (default) or
    /// `{"envoy_jwt_authn": {"providers": {...}}}` (Envoy's native jwt_authn; see the README).
    #[serde(default)]
    pub claims_source: crate::identity::ClaimsSourceRaw,
}

/// One policy (Istio's AuthorizationPolicy `spec`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRaw {
    /// Unique name, used in metrics and filter state: 1-64 of `A-Z a-z 0-9 . _ -`, not starting
    /// with `_`.
    pub name: String,
    /// ALLOW (default, as in Istio), DENY or AUDIT.
    #[serde(default)]
    pub action: ActionRaw,
    /// Evaluate and record this policy's would-be decision without enforcing it.
    #[serde(default)]
    pub dry_run: bool,
    /// The policy matches when any rule matches. No rules: the policy never matches (so a lone
    /// ALLOW policy without rules denies everything, Istio's "allow-nothing").
    #[serde(default)]
    pub rules: Vec<RuleRaw>,
}

/// What a matching policy does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ActionRaw {
    /// Requests must match one ALLOW policy (when any exists).
    #[default]
    #[serde(rename = "ALLOW", alias = "allow")]
    Allow,
    /// Matching requests are denied.
    #[serde(rename = "DENY", alias = "deny")]
    Deny,
    /// Matching requests are recorded (filter state, metrics), never affected.
    #[serde(rename = "AUDIT", alias = "audit")]
    Audit,
}

/// One rule: matches when any `from` matches, any `to` matches and every `when` holds. A rule
/// with none of them matches every request.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRaw {
    /// Optional name, unique within the policy (default `rules[<index>]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Who is calling (any one must match).
    #[serde(default)]
    pub from: Vec<FromRaw>,
    /// What is called (any one must match).
    #[serde(default)]
    pub to: Vec<ToRaw>,
    /// Further conditions (all must hold).
    #[serde(default)]
    pub when: Vec<ConditionRaw>,
    /// The response when this rule denies (DENY policies only).
    #[serde(default)]
    pub deny_response: Option<DenyResponseRaw>,
}

/// A `from` entry.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromRaw {
    /// The source; all its set fields must match.
    #[serde(default)]
    pub source: SourceRaw,
}

/// Istio `Source`. Within a field values are OR-ed; `not_` fields match when no value matches.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRaw {
    /// mTLS peer identities, with or without `spiffe://` (`cluster.local/ns/a/sa/b`).
    #[serde(default)]
    pub principals: Vec<String>,
    /// Negation of `principals`.
    #[serde(default)]
    pub not_principals: Vec<String>,
    /// `iss/sub` of the verified JWT.
    #[serde(default)]
    pub request_principals: Vec<String>,
    /// Negation of `request_principals`.
    #[serde(default)]
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer's SPIFFE id.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Negation of `namespaces`.
    #[serde(default)]
    pub not_namespaces: Vec<String>,
    /// IPs or CIDR ranges of `source.address`.
    #[serde(default)]
    pub ip_blocks: Vec<String>,
    /// Negation of `ip_blocks`.
    #[serde(default)]
    pub not_ip_blocks: Vec<String>,
    /// Same address as `ip_blocks` (proxy-wasm exposes only `source.address`, which Envoy sets
    /// to the client address it detected, i.e. Istio's remote IP).
    #[serde(default)]
    pub remote_ip_blocks: Vec<String>,
    /// Negation of `remote_ip_blocks`.
    #[serde(default)]
    pub not_remote_ip_blocks: Vec<String>,
}

/// A `to` entry.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToRaw {
    /// The operation; all its set fields must match.
    #[serde(default)]
    pub operation: OperationRaw,
}

/// Istio `Operation`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationRaw {
    /// `:authority` values, matched case-insensitively (the port, if sent, is part of it).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Negation of `hosts`.
    #[serde(default)]
    pub not_hosts: Vec<String>,
    /// Destination ports.
    #[serde(default)]
    pub ports: Vec<PortRaw>,
    /// Negation of `ports`.
    #[serde(default)]
    pub not_ports: Vec<PortRaw>,
    /// HTTP methods (case-sensitive).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Negation of `methods`.
    #[serde(default)]
    pub not_methods: Vec<String>,
    /// Paths without the query: `/a`, `/a/*`, `*.json`, `*` or templates `/a/{*}/b/{**}`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Negation of `paths`.
    #[serde(default)]
    pub not_paths: Vec<String>,
}

/// A port, as Istio writes it (`"8080"`) or as a JSON number.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PortRaw {
    /// `8080`.
    Number(u64),
    /// `"8080"`.
    Text(String),
}

/// A `when` condition: one of
/// - Istio: `{key, values, not_values}`;
/// - typed claim: `{claim, equals | not_equals | contains_any | not_contains_any | contains_all
///   | not_contains_all | present}` (all given operators must hold);
/// - scopes: `{scopes: {all_of, any_of}}` or `{not_scopes: {…}}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionRaw {
    /// Istio attribute: `request.auth.claims[a][b]`, `request.headers[x]`, `source.ip`, …
    #[serde(default)]
    pub key: Option<String>,
    /// Istio: any may match.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Istio: none may match.
    #[serde(default)]
    pub not_values: Option<Vec<String>>,
    /// Typed: claim path (`realm_access.roles`, `[https://x/roles]`, `/a/0`).
    #[serde(default)]
    pub claim: Option<String>,
    /// Typed: the claim equals this string, number or bool.
    #[serde(default)]
    pub equals: Option<Value>,
    /// Typed: the claim is absent or differs.
    #[serde(default)]
    pub not_equals: Option<Value>,
    /// Typed: one of these is an element of the claim (a scalar claim is a one-element list).
    #[serde(default)]
    pub contains_any: Option<Vec<Value>>,
    /// Typed: none of these is an element of the claim.
    #[serde(default)]
    pub not_contains_any: Option<Vec<Value>>,
    /// Typed: all of these are elements of the claim.
    #[serde(default)]
    pub contains_all: Option<Vec<Value>>,
    /// Typed: not all of these are elements of the claim.
    #[serde(default)]
    pub not_contains_all: Option<Vec<Value>>,
    /// Typed: the claim is present and not null (`true`) or absent (`false`).
    #[serde(default)]
    pub present: Option<bool>,
    /// OAuth scopes the token must grant (`scope` string or `scp`).
    #[serde(default)]
    pub scopes: Option<ScopesRaw>,
    /// Negation of `scopes`.
    #[serde(default)]
    pub not_scopes: Option<ScopesRaw>,
}

/// Required scopes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopesRaw {
    /// Every one must be granted.
    #[serde(default)]
    pub all_of: Vec<String>,
    /// At least one must be granted.
    #[serde(default)]
    pub any_of: Vec<String>,
}

/// A deny response.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyResponseRaw {
    /// HTTP status, 200-599 (default 403).
    #[serde(default)]
    pub status: Option<u16>,
    /// Body: a JSON string is sent as text, anything else as compact JSON.
    #[serde(default)]
    pub body: Option<Value>,
    /// Extra response headers (names are lower-cased).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}
