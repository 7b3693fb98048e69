//! The two decisions the filter glue calls: what to change in an admitted request
//! ([`request_plan`]) and what to record at stream end ([`log_plan`]).

use super::b3::B3Headers;
use super::config::AuditConfig;
use super::record::{build, AuditRecord, RecordInput};
use super::request_id::{self, RequestId};
use super::sampling::{select, Selection};
use super::stages::{verdict, Handoff, Verdict};
use super::trace::{self, TraceDecision, TraceHeaders, TraceSource};
use super::traceparent::TraceContext;
use super::upstream::{self, HeaderEdits};

/// Every value of header `name` (names compared case-insensitively).
pub fn values<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// The first value of header `name`.
pub fn first<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The trace headers of a request.
pub fn trace_headers(headers: &[(String, Vec<u8>)]) -> TraceHeaders<'_> {
    TraceHeaders {
        traceparent: values(headers, "traceparent"),
        tracestate: values(headers, "tracestate"),
        b3: B3Headers {
            single: first(headers, "b3"),
            trace_id: first(headers, "x-b3-traceid"),
            span_id: first(headers, "x-b3-spanid"),
            sampled: first(headers, "x-b3-sampled"),
            flags: first(headers, "x-b3-flags"),
        },
    }
}

/// What the filter does to an admitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlan {
    /// The request id (kept or generated).
    pub request_id: RequestId,
    /// The trace decision.
    pub trace: TraceDecision,
    /// Every header edit, in order: removals first, then sets. Covers the audit headers, the
    /// request id and the trace headers.
    pub edits: HeaderEdits,
}

/// Plans the request-headers phase of an admitted request. `peer` is
/// `connection.uri_san_peer_certificate`; `random` fills buffers with host randomness.
pub fn request_plan(
    config: &AuditConfig,
    headers: &[(String, Vec<u8>)],
    handoff: &Handoff,
    peer: Option<&[u8]>,
    random: &mut dyn FnMut(&mut [u8]),
) -> RequestPlan {
    let request_id = request_id::resolve(&values(headers, &config.request_id_header), random);
    let trace = trace::resolve(&trace_headers(headers), config.new_trace_sampled, random);
    let mut edits = upstream::plan(&config.upstream, handoff, peer);
    if trace.remove_tracestate {
        edits.remove.push("tracestate".into());
    }
    if let Some(traceparent) = &trace.set_traceparent {
        edits.set.push(("traceparent".into(), traceparent.clone()));
    }
    if request_id.is_generated() {
        edits.set.push((
            config.request_id_header.clone(),
            request_id.as_str().to_string(),
        ));
    }
    RequestPlan {
        request_id,
        trace,
        edits,
    }
}

/// What the request phase left for `on_log` (nothing when the filter never saw the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The request id used upstream.
    pub request_id: String,
    /// The trace context used upstream.
    pub trace: (TraceContext, TraceSource),
}

/// Everything `on_log` reads from the host.
#[derive(Debug, Clone)]
pub struct LogInput<'a> {
    /// What the request phase decided, if it ran (the request was admitted).
    pub seen: Option<&'a Seen>,
    /// Request headers at stream end.
    pub request_headers: &'a [(String, Vec<u8>)],
    /// The earlier filters' hand-off.
    pub handoff: &'a Handoff,
    /// Wall clock, nanoseconds since the epoch.
    pub time_unix_nanos: u64,
    /// Response status.
    pub status: Option<u16>,
    /// Request duration in nanoseconds.
    pub duration_nanos: Option<u64>,
    /// `source.address`.
    pub source_address: Option<&'a str>,
    /// `connection.uri_san_peer_certificate`.
    pub peer_principal: Option<&'a str>,
}

/// The outcome of `on_log`.
#[derive(Debug, Clone)]
pub struct LogPlan {
    /// The verdict (for the metrics).
    pub verdict: Verdict,
    /// Whether a record is written.
    pub selection: Selection,
    /// The record, when selected.
    pub record: Option<AuditRecord>,
}

/// Plans `on_log`: verdict, selection and record. For a request the filter never saw (denied by
/// an earlier filter), the request id comes from the request headers (Envoy sets it before any
/// filter) or is generated, and the trace context is observed without starting a trace.
pub fn log_plan(
    config: &AuditConfig,
    input: &LogInput<'_>,
    random: &mut dyn FnMut(&mut [u8]),
) -> LogPlan {
    let headers = input.request_headers;
    let verdict = verdict(input.seen.is_some(), input.handoff);
    let (request_id, trace) = match input.seen {
        Some(seen) => (seen.request_id.clone(), Some(seen.trace)),
        None => {
            let id = request_id::resolve(&values(headers, &config.request_id_header), random);
            (
                id.as_str().to_string(),
                trace::observe(&trace_headers(headers)),
            )
        }
    };
    let selection = select(
        config.record,
        &config.sampler,
        verdict.decision,
        &request_id,
    );
    let text = |name: &str| first(headers, name).and_then(|v| std::str::from_utf8(v).ok());
    let record = (selection == Selection::Record).then(|| {
        build(
            &RecordInput {
                time_unix_nanos: input.time_unix_nanos,
                request_id: &request_id,
                trace,
                method: text(":method"),
                authority: text(":authority"),
                path: text(":path"),
                status: input.status,
                duration_nanos: input.duration_nanos,
                source_address: input.source_address,
                peer_principal: input.peer_principal,
                handoff: input.handoff,
                verdict,
                request_headers: headers,
            },
            &config.redaction,
        )
    });
    LogPlan {
        verdict,
        selection,
        record,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
