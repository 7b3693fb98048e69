//! The audit record: one JSON object per request, in the OpenTelemetry log data model.
//!
//! Top-level fields are the OTel log record fields, flattened to snake_case as in OTLP/JSON
//! (`time_unix_nano` is a decimal string there, since it does not fit a JSON double):
//!
//! | field | meaning |
//! |---|---|
//! | `timestamp` | RFC 3339 UTC with nanoseconds (for humans and log shippers) |
//! | `time_unix_nano` | OTel `Timestamp`, decimal string |
//! | `severity_text` / `severity_number` | `INFO` 9 (allowed), `WARN` 13 (denied), `ERROR` 17 (allowed, 5xx) |
//! | `event_name` | `meshguard.audit` |
//! | `body` | `request allowed` / `request denied by <stage>` |
//! | `request_id` | the request id (`x-request-id`) |
//! | `trace_id` / `span_id` / `trace_flags` | OTel trace context (hex); `span_id` is the caller's span |
//! | `attributes` | below |
//!
//! Attributes use OTel semantic-convention names where one exists: `http.request.method`,
//! `server.address`, `server.port`, `url.path`, `url.query`, `http.response.status_code`,
//! `client.address`, `client.port`, `user.id` (verified JWT `sub`), `http.request.header.<name>`;
//! the rest are namespaced `meshguard.*`: `decision`, `denied_by`, `duration_ms`,
//! `trace_source`, `peer.principal`, `authn.{outcome,reason,issuer,provider}`,
//! `authz.{decision,policy,rule}`, `ratelimit.{decision,remaining,rule}`, `token_digest`.
//! Never the token, a cookie, or a redacted header value. Strings from clients are cut at
//! [`MAX_FIELD_LEN`] bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::props::split_host_port;
use super::redact::{included_headers, split_path, token_digest, Redaction};
use super::stages::{Decision, Handoff, Verdict};
use super::trace::TraceSource;
use super::traceparent::TraceContext;

/// Longest string copied into the record, in bytes (cut on a character boundary).
pub const MAX_FIELD_LEN: usize = 1024;

/// Everything the record is built from (read by the filter at `on_log`).
#[derive(Debug, Clone)]
pub struct RecordInput<'a> {
    /// Wall clock at `on_log`, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// The request id.
    pub request_id: &'a str,
    /// The trace context and where it came from, if any.
    pub trace: Option<(TraceContext, TraceSource)>,
    /// `:method`
    pub method: Option<&'a str>,
    /// `:authority`
    pub authority: Option<&'a str>,
    /// `:path` (query included; redacted here)
    pub path: Option<&'a str>,
    /// Response status.
    pub status: Option<u16>,
    /// Request duration in nanoseconds.
    pub duration_nanos: Option<u64>,
    /// `source.address` (`ip:port`).
    pub source_address: Option<&'a str>,
    /// `connection.uri_san_peer_certificate`.
    pub peer_principal: Option<&'a str>,
    /// The earlier filters' hand-off.
    pub handoff: &'a Handoff,
    /// The verdict.
    pub verdict: Verdict,
    /// Request headers as seen at `on_log` (for included headers and the token digest).
    pub request_headers: &'a [(String, Vec<u8>)],
}

/// The attributes of a record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attributes {
    #[serde(
        rename = "http.request.method",
        skip_serializing_if = "Option::is_none"
    )]
    method: Option<String>,
    #[serde(rename = "server.address", skip_serializing_if = "Option::is_none")]
    server_address: Option<String>,
    #[serde(rename = "server.port", skip_serializing_if = "Option::is_none")]
    server_port: Option<u16>,
    #[serde(rename = "url.path", skip_serializing_if = "Option::is_none")]
    url_path: Option<String>,
    #[serde(rename = "url.query", skip_serializing_if = "Option::is_none")]
    url_query: Option<String>,
    #[serde(
        rename = "http.response.status_code",
        skip_serializing_if = "Option::is_none"
    )]
    status_code: Option<u16>,
    #[serde(rename = "client.address", skip_serializing_if = "Option::is_none")]
    client_address: Option<String>,
    #[serde(rename = "client.port", skip_serializing_if = "Option::is_none")]
    client_port: Option<u16>,
    #[serde(rename = "user.id", skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(rename = "meshguard.decision")]
    decision: &'static str,
    #[serde(
        rename = "meshguard.denied_by",
        skip_serializing_if = "Option::is_none"
    )]
    denied_by: Option<&'static str>,
    #[serde(
        rename = "meshguard.duration_ms",
        skip_serializing_if = "Option::is_none"
    )]
    duration_ms: Option<f64>,
    #[serde(
        rename = "meshguard.trace_source",
        skip_serializing_if = "Option::is_none"
    )]
    trace_source: Option<&'static str>,
    #[serde(
        rename = "meshguard.peer.principal",
        skip_serializing_if = "Option::is_none"
    )]
    peer_principal: Option<String>,
    #[serde(
        rename = "meshguard.authn.outcome",
        skip_serializing_if = "Option::is_none"
    )]
    authn_outcome: Option<String>,
    #[serde(
        rename = "meshguard.authn.reason",
        skip_serializing_if = "Option::is_none"
    )]
    authn_reason: Option<String>,
    #[serde(
        rename = "meshguard.authn.issuer",
        skip_serializing_if = "Option::is_none"
    )]
    authn_issuer: Option<String>,
    #[serde(
        rename = "meshguard.authn.provider",
        skip_serializing_if = "Option::is_none"
    )]
    authn_provider: Option<String>,
    #[serde(
        rename = "meshguard.authz.decision",
        skip_serializing_if = "Option::is_none"
    )]
    authz_decision: Option<String>,
    #[serde(
        rename = "meshguard.authz.policy",
        skip_serializing_if = "Option::is_none"
    )]
    authz_policy: Option<String>,
    #[serde(
        rename = "meshguard.authz.rule",
        skip_serializing_if = "Option::is_none"
    )]
    authz_rule: Option<String>,
    #[serde(
        rename = "meshguard.ratelimit.decision",
        skip_serializing_if = "Option::is_none"
    )]
    ratelimit_decision: Option<String>,
    #[serde(
        rename = "meshguard.ratelimit.remaining",
        skip_serializing_if = "Option::is_none"
    )]
    ratelimit_remaining: Option<i64>,
    #[serde(
        rename = "meshguard.ratelimit.rule",
        skip_serializing_if = "Option::is_none"
    )]
    ratelimit_rule: Option<String>,
    #[serde(
        rename = "meshguard.token_digest",
        skip_serializing_if = "Option::is_none"
    )]
    token_digest: Option<String>,
    #[serde(flatten)]
    headers: BTreeMap<String, Vec<String>>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC timestamp.
    pub timestamp: String,
    /// OTel `Timestamp` as a decimal string of nanoseconds.
    pub time_unix_nano: String,
    /// OTel `SeverityText`.
    pub severity_text: &'static str,
    /// OTel `SeverityNumber`.
    pub severity_number: u8,
    /// OTel `EventName`.
    pub event_name: &'static str,
    /// OTel `Body`.
    pub body: String,
    /// The request id.
    pub request_id: String,
    /// OTel `TraceId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// OTel `SpanId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// OTel `TraceFlags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_flags: Option<String>,
    /// OTel `Attributes`.
    pub attributes: Attributes,
}

impl AuditRecord {
    /// The record as one line of JSON (control characters escaped, so it is log-safe).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Builds the record of a request.
pub fn build(input: &RecordInput<'_>, redaction: &Redaction) -> AuditRecord {
    let h = input.handoff;
    let (severity_text, severity_number) = match input.verdict.decision {
        Decision::Deny => ("WARN", 13),
        Decision::Allow if input.status.is_some_and(|s| s >= 500) => ("ERROR", 17),
        Decision::Allow => ("INFO", 9),
    };
    let body = match input.verdict.denied_by {
        Some(stage) => format!("request denied by {}", stage.as_str()),
        None => "request allowed".to_string(),
    };
    let (url_path, url_query) = match input.path {
        Some(path) => {
            let (p, q) = split_path(path, redaction);
            (Some(clip(&p)), q.map(|q| clip(&q)))
        }
        None => (None, None),
    };
    let (server_address, server_port) = input
        .authority
        .map(split_host_port)
        .map_or((None, None), |(h, p)| (Some(clip(h)), p));
    let (client_address, client_port) = input
        .source_address
        .map(split_host_port)
        .map_or((None, None), |(h, p)| (Some(clip(h)), p));
    let token_digest = if redaction.token_digest {
        input
            .request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| token_digest(v))
    } else {
        None
    };
    let text = |v: &Option<String>| v.as_deref().map(clip);
    let attributes = Attributes {
        method: input.method.map(clip),
        server_address,
        server_port,
        url_path,
        url_query,
        status_code: input.status,
        client_address,
        client_port,
        user_id: h
            .jwt_subject
            .as_deref()
            .filter(|_| h.jwt_verified())
            .map(clip),
        decision: input.verdict.decision.as_str(),
        denied_by: input.verdict.denied_by.map(|d| d.as_str()),
        duration_ms: input.duration_nanos.map(|ns| (ns / 1_000) as f64 / 1_000.0),
        trace_source: input.trace.map(|(_, s)| s.as_str()),
        peer_principal: input.peer_principal.filter(|p| !p.is_empty()).map(clip),
        authn_outcome: text(&h.jwt_outcome),
        authn_reason: text(&h.jwt_reason),
        authn_issuer: text(&h.jwt_issuer),
        authn_provider: text(&h.jwt_provider),
        authz_decision: text(&h.authz_decision),
        authz_policy: text(&h.authz_policy),
        authz_rule: text(&h.authz_rule),
        ratelimit_decision: text(&h.ratelimit_decision),
        ratelimit_remaining: h
            .ratelimit_remaining
            .as_deref()
            .and_then(|r| r.trim().parse().ok()),
        ratelimit_rule: text(&h.ratelimit_rule),
        token_digest,
        headers: included_headers(input.request_headers, redaction),
    };
    AuditRecord {
        timestamp: rfc3339(input.time_unix_nanos),
        time_unix_nano: input.time_unix_nanos.to_string(),
        severity_text,
        severity_number,
        event_name: "meshguard.audit",
        body,
        request_id: clip(input.request_id),
        trace_id: input.trace.map(|(c, _)| c.trace_id_hex()),
        span_id: input.trace.map(|(c, _)| c.span_id_hex()),
        trace_flags: input.trace.map(|(c, _)| c.flags_hex()),
        attributes,
    }
}

/// RFC 3339 UTC with nanoseconds (`2023-11-14T22:13:20.123456789Z`).
pub fn rfc3339(unix_nanos: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nanos))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// `text` cut to at most [`MAX_FIELD_LEN`] bytes on a character boundary.
fn clip(text: &str) -> String {
    if text.len() <= MAX_FIELD_LEN {
        return text.to_string();
    }
    let mut end = MAX_FIELD_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_string()
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
