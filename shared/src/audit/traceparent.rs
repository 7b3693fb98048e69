//! W3C Trace Context `traceparent` (<https://www.w3.org/TR/trace-context/>): parsing and writing.
//!
//! `traceparent: 00-<trace-id 32 hex>-<parent-id 16 hex>-<flags 2 hex>`, lowercase only, neither id
//! all zeros, version `ff` forbidden. A higher version than `00` is parsed as the spec asks (the
//! first 55 characters as version 00, followed by the end or a `-`) and re-sent as version 00.

use super::hex_lower;

/// A trace context: the trace, the span of the caller (the parent), and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16-byte trace id, never all zeros.
    pub trace_id: [u8; 16],
    /// 8-byte id of the calling span (`parent-id`), never all zeros.
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceContext {
    /// The trace id as 32 lowercase hex digits (the OTel `trace_id` field).
    pub fn trace_id_hex(&self) -> String {
        hex_lower(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits (the OTel `span_id` field).
    pub fn span_id_hex(&self) -> String {
        hex_lower(&self.span_id)
    }

    /// The flags as 2 lowercase hex digits (the OTel `trace_flags` field).
    pub fn flags_hex(&self) -> String {
        hex_lower(&[self.flags])
    }

    /// True when the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The version-00 `traceparent` header value for this context.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags_hex()
        )
    }
}

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    /// Shorter than 55 characters, or version 00 with anything after the flags.
    #[error("traceparent has the wrong length")]
    Length,
    /// The version is not 2 lowercase hex digits, or is the forbidden `ff`.
    #[error("traceparent has an invalid version")]
    Version,
    /// A field is not lowercase hex of the right width, or a separator is not `-`.
    #[error("traceparent is malformed")]
    Format,
    /// The trace id is all zeros.
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    /// The parent id is all zeros.
    #[error("traceparent parent id is all zeros")]
    ZeroParentId,
}

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The context it carries.
    pub context: TraceContext,
    /// True for a version-00 header (sent on unchanged); false for a higher version, which is
    /// rewritten as version 00.
    pub is_version_00: bool,
}

/// Parses one `traceparent` header value.
pub fn parse(value: &[u8]) -> Result<Traceparent, TraceparentError> {
    if value.len() < 55 {
        return Err(TraceparentError::Length);
    }
    let version = hex_field::<1>(value, 0).ok_or(TraceparentError::Version)?;
    let version = version.first().copied().unwrap_or(0xff);
    if version == 0xff {
        return Err(TraceparentError::Version);
    }
    let is_version_00 = version == 0;
    if is_version_00 && value.len() != 55 {
        return Err(TraceparentError::Length);
    }
    if !is_version_00 && value.len() > 55 && value.get(55) != Some(&b'-') {
        return Err(TraceparentError::Format);
    }
    for at in [2, 35, 52] {
        if value.get(at) != Some(&b'-') {
            return Err(TraceparentError::Format);
        }
    }
    let trace_id = hex_field::<16>(value, 3).ok_or(TraceparentError::Format)?;
    let span_id = hex_field::<8>(value, 36).ok_or(TraceparentError::Format)?;
    let flags = hex_field::<1>(value, 53).ok_or(TraceparentError::Format)?;
    if trace_id == [0; 16] {
        return Err(TraceparentError::ZeroTraceId);
    }
    if span_id == [0; 8] {
        return Err(TraceparentError::ZeroParentId);
    }
    Ok(Traceparent {
        context: TraceContext {
            trace_id,
            span_id,
            flags: flags.first().copied().unwrap_or(0),
        },
        is_version_00,
    })
}

/// Decodes `N` bytes of lowercase hex starting at `at`; `None` if out of range or not lowercase hex.
pub(crate) fn hex_field<const N: usize>(text: &[u8], at: usize) -> Option<[u8; N]> {
    let digits = text.get(at..at.checked_add(N * 2)?)?;
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (lower_hex_value(*hi)?, lower_hex_value(*lo)?),
            _ => return None,
        };
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn lower_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[wasm_bindgen_test(unsupported = test)]
    fn parses_the_spec_example_and_writes_it_back() {
        let tp = parse(VALID.as_bytes()).unwrap();
        assert!(tp.is_version_00);
        assert_eq!(
            tp.context.trace_id_hex(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(tp.context.span_id_hex(), "00f067aa0ba902b7");
        assert!(tp.context.sampled());
        assert_eq!(tp.context.flags_hex(), "01");
        assert_eq!(tp.context.traceparent(), VALID);
        let unsampled = parse(VALID.replace("-01", "-00").as_bytes()).unwrap();
        assert!(!unsampled.context.sampled());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_malformed_values() {
        let cases: &[(&str, TraceparentError)] = &[
            ("", TraceparentError::Length),
            (&VALID[..54], TraceparentError::Length),
            (&format!("{VALID}-x"), TraceparentError::Length),
            (&VALID.replacen("00-", "ff-", 1), TraceparentError::Version),
            (&VALID.replacen("00-", "0g-", 1), TraceparentError::Version),
            (&VALID.to_uppercase(), TraceparentError::Format),
            (&VALID.replace("4bf92f", "4BF92F"), TraceparentError::Format),
            (&VALID.replacen('-', "_", 2), TraceparentError::Format),
            (&VALID.replace("-01", "-0x"), TraceparentError::Format),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                TraceparentError::ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                TraceparentError::ZeroParentId,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value.as_bytes()), Err(*expected), "{value:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_higher_versions_for_rewriting() {
        let future = VALID.replacen("00-", "01-", 1);
        let tp = parse(future.as_bytes()).unwrap();
        assert!(!tp.is_version_00);
        assert_eq!(tp.context.traceparent(), VALID);
        let extended = format!("{future}-what-the-future-holds");
        assert!(parse(extended.as_bytes()).is_ok());
        let glued = format!("{future}x");
        assert_eq!(parse(glued.as_bytes()), Err(TraceparentError::Format));
    }
}
