//! B3 propagation (Zipkin, <https://github.com/openzipkin/b3-propagation>), read for compatibility.
//!
//! Single header `b3: {trace_id}-{span_id}[-{sampling}[-{parent_span_id}]]` (a lone `0`/`1`/`d`
//! carries no ids), or the multi-header form `x-b3-traceid` / `x-b3-spanid` / `x-b3-sampled` /
//! `x-b3-flags`. The single header wins when both are present and valid. Ids are lowercase hex:
//! a 64- or 128-bit trace id (a 64-bit one is left-padded with zeros, as W3C and OpenTelemetry do),
//! a 64-bit span id, neither all zeros. Sampling `1` or `d` (debug) sets the W3C `sampled` flag;
//! `0` or no decision leaves it clear.

use super::traceparent::{hex_field, TraceContext};

/// The B3 header values of a request (the first value of each; B3 headers are not repeated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct B3Headers<'a> {
    /// `b3`
    pub single: Option<&'a [u8]>,
    /// `x-b3-traceid`
    pub trace_id: Option<&'a [u8]>,
    /// `x-b3-spanid`
    pub span_id: Option<&'a [u8]>,
    /// `x-b3-sampled`
    pub sampled: Option<&'a [u8]>,
    /// `x-b3-flags` (`1` = debug, which implies sampled)
    pub flags: Option<&'a [u8]>,
}

/// The trace context carried by the B3 headers, if they carry a valid trace and span id.
pub fn context(headers: &B3Headers<'_>) -> Option<TraceContext> {
    if let Some(ctx) = headers.single.and_then(parse_single) {
        return Some(ctx);
    }
    let trace_id = parse_trace_id(headers.trace_id?)?;
    let span_id = parse_span_id(headers.span_id?)?;
    let debug = headers.flags == Some(b"1");
    let sampled = debug || matches!(headers.sampled, Some(b"1" | b"true" | b"d"));
    Some(TraceContext {
        trace_id,
        span_id,
        flags: u8::from(sampled),
    })
}

fn parse_single(value: &[u8]) -> Option<TraceContext> {
    let mut parts = value.split(|&b| b == b'-');
    let trace_id = parse_trace_id(parts.next()?)?;
    let span_id = parse_span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => false,
        Some(b"1" | b"d") => true,
        Some(b"0") => false,
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        parse_span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(TraceContext {
        trace_id,
        span_id,
        flags: u8::from(sampled),
    })
}

fn parse_trace_id(text: &[u8]) -> Option<[u8; 16]> {
    let id = match text.len() {
        32 => hex_field::<16>(text, 0)?,
        16 => {
            let low = hex_field::<8>(text, 0)?;
            let mut id = [0u8; 16];
            for (dst, src) in id.iter_mut().skip(8).zip(low) {
                *dst = src;
            }
            id
        }
        _ => return None,
    };
    (id != [0; 16]).then_some(id)
}

fn parse_span_id(text: &[u8]) -> Option<[u8; 8]> {
    if text.len() != 16 {
        return None;
    }
    hex_field::<8>(text, 0).filter(|id| *id != [0; 8])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const TRACE: &[u8] = b"80f198ee56343ba864fe8b2a57d3eff7";
    const SPAN: &[u8] = b"e457b5a2e4d86bd1";

    #[wasm_bindgen_test(unsupported = test)]
    fn single_header() {
        let value = b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
        let ctx = context(&B3Headers {
            single: Some(value),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ctx.trace_id_hex(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(ctx.span_id_hex(), "e457b5a2e4d86bd1");
        assert!(ctx.sampled());

        let short = context(&B3Headers {
            single: Some(b"a3ce929d0e0e4736-00f067aa0ba902b7-0"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(short.trace_id_hex(), "0000000000000000a3ce929d0e0e4736");
        assert!(!short.sampled());
        let debug = context(&B3Headers {
            single: Some(b"a3ce929d0e0e4736-00f067aa0ba902b7-d"),
            ..Default::default()
        });
        assert!(debug.is_some_and(|c| c.sampled()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn single_header_rejects() {
        for bad in [
            &b"1"[..],
            b"0",
            b"80f198ee56343ba864fe8b2a57d3eff7",
            b"80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1",
            b"80f198ee56343ba8-e457b5a2e4d86bd1-x",
            b"80f198ee56343ba8-e457b5a2e4d86bd1-1-zz",
            b"80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-extra",
            b"0000000000000000-e457b5a2e4d86bd1",
            b"80f198ee56343ba8-0000000000000000",
            b"80f198ee56343ba-e457b5a2e4d86bd1",
        ] {
            let headers = B3Headers {
                single: Some(bad),
                ..Default::default()
            };
            assert_eq!(
                context(&headers),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn multi_headers() {
        let mut headers = B3Headers {
            trace_id: Some(TRACE),
            span_id: Some(SPAN),
            ..Default::default()
        };
        let ctx = context(&headers).unwrap();
        assert_eq!(ctx.trace_id_hex(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert!(!ctx.sampled());
        headers.sampled = Some(b"1");
        assert!(context(&headers).unwrap().sampled());
        headers.sampled = Some(b"0");
        headers.flags = Some(b"1");
        assert!(
            context(&headers).unwrap().sampled(),
            "debug implies sampled"
        );
        headers.span_id = None;
        assert_eq!(context(&headers), None, "a trace id alone is not enough");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn single_wins_and_invalid_single_falls_back_to_multi() {
        let single = b"a3ce929d0e0e4736-00f067aa0ba902b7-1";
        let headers = B3Headers {
            single: Some(single),
            trace_id: Some(TRACE),
            span_id: Some(SPAN),
            ..Default::default()
        };
        assert_eq!(context(&headers).unwrap().span_id_hex(), "00f067aa0ba902b7");
        let headers = B3Headers {
            single: Some(b"1"),
            ..headers
        };
        assert_eq!(context(&headers).unwrap().span_id_hex(), "e457b5a2e4d86bd1");
    }
}
