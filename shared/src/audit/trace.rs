//! Which trace a request belongs to, and what the filter changes in the trace headers.
//!
//! The filter is not a span: it records no timing of its own, so a valid incoming `traceparent`
//! is propagated **unchanged** (W3C Trace Context lets a component that does not participate in
//! the trace pass the header through; rewriting `parent-id` would point the upstream at a span no
//! tracer ever reports). The audit record then carries the caller's span id as `span_id`.
//!
//! In order:
//! 1. exactly one valid `traceparent` → kept (a higher version is rewritten as version 00);
//!    `tracestate` kept if valid, removed if not;
//! 2. otherwise, valid B3 headers → a `traceparent` derived from them (same trace and span id,
//!    sampled flag from B3) is set, `tracestate` removed (it belongs to the missing or bad
//!    `traceparent`); the B3 headers themselves are left alone;
//! 3. otherwise a new trace: random trace id and span id, the `sampled` flag from config,
//!    `tracestate` removed.

use super::b3::{self, B3Headers};
use super::traceparent::{self, TraceContext};

/// Where the trace context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSource {
    /// A valid incoming `traceparent`.
    W3c,
    /// Valid B3 headers (no valid `traceparent`).
    B3,
    /// Started by this filter.
    New,
}

impl TraceSource {
    /// A stable lowercase name, for the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceSource::W3c => "w3c",
            TraceSource::B3 => "b3",
            TraceSource::New => "new",
        }
    }
}

/// The trace headers of a request, as read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders<'a> {
    /// Every `traceparent` value, in order (more than one is invalid).
    pub traceparent: Vec<&'a [u8]>,
    /// Every `tracestate` value, in order.
    pub tracestate: Vec<&'a [u8]>,
    /// The B3 headers.
    pub b3: B3Headers<'a>,
}

/// The trace of a request and the header edits that carry it upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDecision {
    /// The trace context (for a kept `traceparent`, the caller's span id).
    pub context: TraceContext,
    /// Where it came from.
    pub source: TraceSource,
    /// `Some(value)` when `traceparent` must be set (replacing every incoming value).
    pub set_traceparent: Option<String>,
    /// True when every `tracestate` header must be removed.
    pub remove_tracestate: bool,
}

/// Decides the trace context of a request; `random` is only called to start a new trace.
pub fn resolve(
    headers: &TraceHeaders<'_>,
    new_trace_sampled: bool,
    random: &mut dyn FnMut(&mut [u8]),
) -> TraceDecision {
    let has_tracestate = !headers.tracestate.is_empty();
    if let [only] = headers.traceparent.as_slice() {
        if let Ok(parsed) = traceparent::parse(only) {
            let context = parsed.context;
            return TraceDecision {
                context,
                source: TraceSource::W3c,
                set_traceparent: (!parsed.is_version_00).then(|| context.traceparent()),
                remove_tracestate: has_tracestate
                    && !super::tracestate::is_valid(&headers.tracestate),
            };
        }
    }
    if let Some(context) = b3::context(&headers.b3) {
        return TraceDecision {
            context,
            source: TraceSource::B3,
            set_traceparent: Some(context.traceparent()),
            remove_tracestate: has_tracestate,
        };
    }
    let context = new_context(new_trace_sampled, random);
    TraceDecision {
        context,
        source: TraceSource::New,
        set_traceparent: Some(context.traceparent()),
        remove_tracestate: has_tracestate,
    }
}

/// The trace context as it reads from the headers, without starting a trace: what `on_log` uses
/// for a request this filter never saw (denied by an earlier filter). `None` when neither a valid
/// `traceparent` nor valid B3 headers are present.
pub fn observe(headers: &TraceHeaders<'_>) -> Option<(TraceContext, TraceSource)> {
    if let [only] = headers.traceparent.as_slice() {
        if let Ok(parsed) = traceparent::parse(only) {
            return Some((parsed.context, TraceSource::W3c));
        }
    }
    b3::context(&headers.b3).map(|c| (c, TraceSource::B3))
}

fn new_context(sampled: bool, random: &mut dyn FnMut(&mut [u8])) -> TraceContext {
    let mut bytes = [0u8; 24];
    random(&mut bytes);
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let (t, s) = bytes.split_at(16);
    trace_id.copy_from_slice(t);
    span_id.copy_from_slice(s);
    // All-zero ids are invalid; a broken random source must still yield a valid header.
    if trace_id == [0; 16] {
        trace_id[15] = 1;
    }
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    TraceContext {
        trace_id,
        span_id,
        flags: u8::from(sampled),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const TP: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn fixed(byte: u8) -> impl FnMut(&mut [u8]) {
        move |buf: &mut [u8]| buf.fill(byte)
    }

    fn no_random() -> impl FnMut(&mut [u8]) {
        |_: &mut [u8]| unreachable!("no randomness needed")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn valid_traceparent_is_propagated_unchanged() {
        let headers = TraceHeaders {
            traceparent: vec![TP],
            tracestate: vec![b"rojo=00f067aa0ba902b7"],
            ..Default::default()
        };
        let d = resolve(&headers, false, &mut no_random());
        assert_eq!(d.source, TraceSource::W3c);
        assert_eq!(d.set_traceparent, None);
        assert!(!d.remove_tracestate);
        assert_eq!(d.context.traceparent().as_bytes(), TP);
        assert_eq!(observe(&headers).map(|o| o.1), Some(TraceSource::W3c));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_tracestate_is_dropped_but_the_trace_kept() {
        let headers = TraceHeaders {
            traceparent: vec![TP],
            tracestate: vec![b"Bad Key=1"],
            ..Default::default()
        };
        let d = resolve(&headers, false, &mut no_random());
        assert_eq!(d.source, TraceSource::W3c);
        assert!(d.remove_tracestate);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn future_version_is_rewritten_as_00() {
        let future = b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let headers = TraceHeaders {
            traceparent: vec![future],
            ..Default::default()
        };
        let d = resolve(&headers, false, &mut no_random());
        assert_eq!(d.set_traceparent.as_deref().map(str::as_bytes), Some(TP));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_or_repeated_traceparent_starts_a_new_trace() {
        for traceparent in [vec![&b"00-zz"[..]], vec![TP, TP]] {
            let headers = TraceHeaders {
                traceparent,
                tracestate: vec![b"rojo=1"],
                ..Default::default()
            };
            let d = resolve(&headers, true, &mut fixed(0xab));
            assert_eq!(d.source, TraceSource::New);
            assert!(
                d.remove_tracestate,
                "tracestate of a bad traceparent is dropped"
            );
            assert_eq!(
                d.set_traceparent.as_deref(),
                Some("00-abababababababababababababababab-abababababababab-01")
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn absent_headers_start_an_unsampled_trace_by_default() {
        let d = resolve(&TraceHeaders::default(), false, &mut fixed(0x11));
        assert_eq!(d.source, TraceSource::New);
        assert!(!d.context.sampled());
        assert!(!d.remove_tracestate);
        let zero = resolve(&TraceHeaders::default(), false, &mut fixed(0));
        let written = zero.set_traceparent.unwrap_or_default();
        assert!(traceparent::parse(written.as_bytes()).is_ok(), "{written}");
        assert_eq!(observe(&TraceHeaders::default()), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn b3_is_used_when_traceparent_is_missing_or_bad() {
        let b3 = B3Headers {
            single: Some(b"a3ce929d0e0e4736-00f067aa0ba902b7-1"),
            ..Default::default()
        };
        for traceparent in [vec![], vec![&b"garbage"[..]]] {
            let headers = TraceHeaders {
                traceparent,
                tracestate: vec![b"rojo=1"],
                b3,
            };
            let d = resolve(&headers, false, &mut no_random());
            assert_eq!(d.source, TraceSource::B3);
            assert_eq!(
                d.set_traceparent.as_deref(),
                Some("00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01")
            );
            assert!(d.remove_tracestate);
            assert_eq!(observe(&headers).map(|o| o.1), Some(TraceSource::B3));
        }
        let headers = TraceHeaders {
            traceparent: vec![TP],
            b3,
            ..Default::default()
        };
        assert_eq!(
            resolve(&headers, false, &mut no_random()).source,
            TraceSource::W3c,
            "traceparent wins over B3"
        );
    }
}
