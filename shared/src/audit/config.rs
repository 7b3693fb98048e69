//! The audit filter's configuration: the JSON shape ([`RawAuditConfig`]) and its validated form
//! ([`AuditConfig`]). Every field has a default, so `{}` is a complete config.
//!
//! ```json
//! {
//!   "request_id": { "header": "x-request-id", "echo_in_response": true },
//!   "trace_context": { "new_trace_sampled": false },
//!   "upstream_headers": {
//!     "subject": "x-meshguard-subject", "issuer": "x-meshguard-issuer",
//!     "peer": "x-meshguard-peer", "authz_decision": "x-meshguard-authz-decision",
//!     "authz_policy": "x-meshguard-authz-policy", "ratelimit": "x-meshguard-ratelimit",
//!     "unsafe_values": "escape"
//!   },
//!   "record": "all", "sample_rate": 1.0, "log_level": "info", "filter_state": true,
//!   "redaction": {
//!     "query": "strip", "redact_query_params": ["access_token", "..."],
//!     "include_headers": [], "redact_headers": ["x-api-key"], "token_digest": false
//!   }
//! }
//! ```
//! An upstream header set to `null` is disabled (never set), but still removed from requests.

use serde::Deserialize;

use super::redact::{QueryMode, Redaction, ALWAYS_REDACTED_HEADERS};
use super::sampling::Sampler;
use super::upstream::UpstreamHeaders;
use crate::config::{parse_json, ConfigErrors, FilterConfig};
use crate::headers::{is_valid_name, UnsafeValuePolicy};

/// Which requests get an audit record (before sampling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    /// Every request. The default.
    #[default]
    All,
    /// Only requests denied by one of the meshguard filters (or otherwise not admitted).
    DeniedOnly,
}

/// The proxy log level the audit record is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info (the default)
    Info,
    /// warn
    Warn,
    /// error
    Error,
    /// critical
    Critical,
}

/// `request_id`: the request-id header.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawRequestId {
    /// Header carrying the request id. Default `x-request-id`.
    pub header: String,
    /// Echo the id on the response of admitted requests. Default true.
    pub echo_in_response: bool,
}

impl Default for RawRequestId {
    fn default() -> Self {
        RawRequestId {
            header: "x-request-id".into(),
            echo_in_response: true,
        }
    }
}

/// `trace_context`: W3C trace context handling.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawTraceContext {
    /// Set the `sampled` flag on traces this filter starts. Default false (the filter records no
    /// span, so it does not ask downstream tracers to keep the trace).
    pub new_trace_sampled: bool,
}

/// `upstream_headers`: the audit headers sent to the upstream. `null` disables one.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstreamHeaders {
    /// Verified JWT `sub`. Default `x-meshguard-subject`.
    pub subject: Option<String>,
    /// Verified JWT `iss`. Default `x-meshguard-issuer`.
    pub issuer: Option<String>,
    /// mTLS peer principal (URI SAN, e.g. a SPIFFE id). Default `x-meshguard-peer`.
    pub peer: Option<String>,
    /// Authz decision. Default `x-meshguard-authz-decision`.
    pub authz_decision: Option<String>,
    /// Authz policy that decided. Default `x-meshguard-authz-policy`.
    pub authz_policy: Option<String>,
    /// Rate-limit decision and remaining quota (`allow; remaining=4`). Default
    /// `x-meshguard-ratelimit`.
    pub ratelimit: Option<String>,
    /// Values with CR, LF, NUL, other control or non-ASCII bytes: `escape` (percent-encode,
    /// default) or `drop` (do not set the header).
    pub unsafe_values: UnsafeValuePolicy,
}

impl Default for RawUpstreamHeaders {
    fn default() -> Self {
        let name = |n: &str| Some(n.to_string());
        RawUpstreamHeaders {
            subject: name(DEFAULT_HEADERS[0]),
            issuer: name(DEFAULT_HEADERS[1]),
            peer: name(DEFAULT_HEADERS[2]),
            authz_decision: name(DEFAULT_HEADERS[3]),
            authz_policy: name(DEFAULT_HEADERS[4]),
            ratelimit: name(DEFAULT_HEADERS[5]),
            unsafe_values: UnsafeValuePolicy::Escape,
        }
    }
}

/// Default upstream audit header names. Always removed from incoming requests, even when renamed
/// or disabled, so an upstream that trusts the defaults cannot be fooled.
pub const DEFAULT_HEADERS: [&str; 6] = [
    "x-meshguard-subject",
    "x-meshguard-issuer",
    "x-meshguard-peer",
    "x-meshguard-authz-decision",
    "x-meshguard-authz-policy",
    "x-meshguard-ratelimit",
];

/// Header names an audit header may not take: they carry routing, framing, credentials or the
/// trace and request ids this filter manages.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "authorization",
    "proxy-authorization",
    "cookie",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-forwarded-for",
    "x-forwarded-client-cert",
    "x-envoy-original-path",
];

/// `redaction`: what the audit record leaves out or masks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawRedaction {
    /// The query string in `url.query`: `strip` (left out, default), `redact` (names kept, every
    /// value replaced by `REDACTED`) or `keep` (kept, values of `redact_query_params` replaced).
    pub query: QueryMode,
    /// Query parameters whose values are always replaced by `REDACTED` (exact, case-sensitive).
    pub redact_query_params: Vec<String>,
    /// Request headers copied into the record as `http.request.header.<name>` (lowercase).
    pub include_headers: Vec<String>,
    /// Included headers whose value is replaced by `REDACTED`. `authorization`,
    /// `proxy-authorization`, `cookie` and `set-cookie` are always redacted.
    pub redact_headers: Vec<String>,
    /// Add `meshguard.token_digest`: the first 16 hex digits of the SHA-256 of the bearer token
    /// in `authorization` (when still present at stream end). Default false.
    pub token_digest: bool,
}

impl Default for RawRedaction {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        RawRedaction {
            query: QueryMode::Strip,
            redact_query_params: strings(&[
                "access_token",
                "id_token",
                "refresh_token",
                "token",
                "code",
                "api_key",
                "apikey",
                "key",
                "password",
                "secret",
                "signature",
            ]),
            include_headers: Vec::new(),
            redact_headers: strings(&["x-api-key"]),
            token_digest: false,
        }
    }
}

/// The audit filter config as written in JSON.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuditConfig {
    /// The request-id header.
    pub request_id: RawRequestId,
    /// W3C trace context handling.
    pub trace_context: RawTraceContext,
    /// Audit headers sent to the upstream.
    pub upstream_headers: RawUpstreamHeaders,
    /// Which requests get a record: `all` (default) or `denied_only`.
    pub record: RecordMode,
    /// Fraction of the selected requests recorded, 0 to 1 (default 1). Decided on a hash of the
    /// request id, so every proxy that sees the same id makes the same choice.
    pub sample_rate: f64,
    /// Proxy log level of the record; `null` disables the log sink. Default `info`.
    pub log_level: Option<LogLevel>,
    /// Publish the record as filter state `wasm.meshguard.audit.record`. Default true.
    pub filter_state: bool,
    /// Redaction of the record.
    pub redaction: RawRedaction,
    /// Where the verified identity (subject, issuer) comes from: `{"meshguard_jwt_authn": {}}`
    /// (default) or `{"envoy_jwt_authn": {"providers": {...}}}` (Envoy's native jwt_authn; see
    /// the README).
    pub claims_source: crate::identity::ClaimsSourceRaw,
}

impl Default for RawAuditConfig {
    fn default() -> Self {
        RawAuditConfig {
            request_id: RawRequestId::default(),
            trace_context: RawTraceContext::default(),
            upstream_headers: RawUpstreamHeaders::default(),
            record: RecordMode::All,
            sample_rate: 1.0,
            log_level: Some(LogLevel::Info),
            filter_state: true,
            redaction: RawRedaction::default(),
            claims_source: crate::identity::ClaimsSourceRaw::default(),
        }
    }
}

/// The validated audit config, built once in `on_configure`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// Request-id header name.
    pub request_id_header: String,
    /// Echo the request id on responses.
    pub echo_request_id: bool,
    /// `sampled` flag of new traces.
    pub new_trace_sampled: bool,
    /// Audit headers to the upstream.
    pub upstream: UpstreamHeaders,
    /// Which requests are recorded.
    pub record: RecordMode,
    /// The sampling decision.
    pub sampler: Sampler,
    /// Log sink level, if any.
    pub log_level: Option<LogLevel>,
    /// Filter-state sink on or off.
    pub filter_state: bool,
    /// Record redaction.
    pub redaction: Redaction,
    /// Where the verified identity comes from.
    pub claims_source: crate::identity::ClaimsSource,
}

impl FilterConfig for AuditConfig {
    const FILTER: &'static str = "audit";
    type Raw = RawAuditConfig;

    fn parse(json: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawAuditConfig = parse_json(json)?;
        compile(raw)
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        // The default raw config is valid (checked by a test); the fallback cannot be reached.
        compile(RawAuditConfig::default()).unwrap_or_else(|_| AuditConfig {
            request_id_header: "x-request-id".into(),
            echo_request_id: true,
            new_trace_sampled: false,
            upstream: UpstreamHeaders::disabled(),
            record: RecordMode::All,
            sampler: Sampler::ALWAYS,
            log_level: Some(LogLevel::Info),
            filter_state: true,
            redaction: Redaction::strict(),
            claims_source: crate::identity::ClaimsSource::MeshguardJwtAuthn,
        })
    }
}

/// Validates a raw config; every problem is reported with its field path.
pub fn compile(raw: RawAuditConfig) -> Result<AuditConfig, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let request_id_header = raw.request_id.header.clone();
    check_name(&mut errors, "request_id.header", &request_id_header);
    if RESERVED_HEADERS.contains(&request_id_header.as_str()) {
        errors.push(
            "request_id.header",
            format!("{request_id_header:?} is reserved"),
        );
    }

    let u = &raw.upstream_headers;
    let slots = [
        ("subject", &u.subject),
        ("issuer", &u.issuer),
        ("peer", &u.peer),
        ("authz_decision", &u.authz_decision),
        ("authz_policy", &u.authz_policy),
        ("ratelimit", &u.ratelimit),
    ];
    let mut seen: Vec<&str> = Vec::new();
    for (field, name) in slots {
        let Some(name) = name else { continue };
        let path = format!("upstream_headers.{field}");
        check_name(&mut errors, &path, name);
        if RESERVED_HEADERS.contains(&name.as_str()) || *name == request_id_header {
            errors.push(&path, format!("{name:?} is reserved for another purpose"));
        }
        if seen.contains(&name.as_str()) {
            errors.push(
                &path,
                format!("{name:?} is already used by another audit header"),
            );
        }
        seen.push(name);
    }

    if !(raw.sample_rate.is_finite() && (0.0..=1.0).contains(&raw.sample_rate)) {
        errors.push(
            "sample_rate",
            format!("{} is not between 0 and 1", raw.sample_rate),
        );
    }

    let r = &raw.redaction;
    for (i, p) in r.redact_query_params.iter().enumerate() {
        if p.is_empty() || p.contains(['&', '=', '#']) {
            errors.push(
                format!("redaction.redact_query_params[{i}]"),
                format!("{p:?} is not a query parameter name"),
            );
        }
    }
    for (i, h) in r.include_headers.iter().enumerate() {
        check_name(&mut errors, &format!("redaction.include_headers[{i}]"), h);
    }
    for (i, h) in r.redact_headers.iter().enumerate() {
        check_name(&mut errors, &format!("redaction.redact_headers[{i}]"), h);
    }
    let mut redact_headers: Vec<String> = ALWAYS_REDACTED_HEADERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for h in &r.redact_headers {
        if !redact_headers.contains(h) {
            redact_headers.push(h.clone());
        }
    }

    let config = AuditConfig {
        request_id_header,
        echo_request_id: raw.request_id.echo_in_response,
        new_trace_sampled: raw.trace_context.new_trace_sampled,
        upstream: UpstreamHeaders::new(u),
        record: raw.record,
        sampler: Sampler::new(raw.sample_rate),
        log_level: raw.log_level,
        filter_state: raw.filter_state,
        redaction: Redaction {
            query: r.query,
            redact_query_params: r.redact_query_params.clone(),
            include_headers: r.include_headers.clone(),
            redact_headers,
            token_digest: r.token_digest,
        },
        claims_source: crate::identity::ClaimsSource::compile(
            &raw.claims_source,
            "claims_source",
            &mut errors,
        ),
    };
    errors.into_result(config)
}

fn check_name(errors: &mut ConfigErrors, path: &str, name: &str) {
    if !is_valid_name(name) {
        errors.push(
            path,
            format!("{name:?} is not a valid lowercase header name"),
        );
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
