//! The request id (`x-request-id`): which incoming values are kept, and how a new one is made.
//!
//! Envoy's connection manager normally sets `x-request-id` (a UUID) before any filter runs, and
//! Istio preserves a caller's id across hops. A client can send anything in it, though, and the id
//! ends up in logs, upstream headers and the audit record, so only a conservative shape is kept:
//! 1 to 128 characters of `[A-Za-z0-9-_.:]` (UUIDs, ULIDs, AWS/GCP trace ids and most vendor ids fit).
//! Anything else, or more than one `x-request-id` header, is replaced by a new UUID v4.

/// Longest request id kept, in bytes.
pub const MAX_LEN: usize = 128;

/// True when `value` is a well-formed request id: 1–[`MAX_LEN`] characters of `[A-Za-z0-9-_.:]`.
pub fn is_valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A UUID v4 (`8-4-4-4-12` lowercase hex) from 16 random bytes; the version and variant bits are
/// set as RFC 9562 requires.
pub fn uuid_v4(random: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Where the request id of a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    /// The incoming header was present once and well-formed: it is kept unchanged.
    Kept(String),
    /// The header was absent, repeated or malformed: this new id replaces it.
    Generated(String),
}

impl RequestId {
    /// The id itself.
    pub fn as_str(&self) -> &str {
        match self {
            RequestId::Kept(id) | RequestId::Generated(id) => id,
        }
    }

    /// True when the filter must (re)write the request header.
    pub fn is_generated(&self) -> bool {
        matches!(self, RequestId::Generated(_))
    }
}

/// Picks the request id from every value of the request-id header in the request (`values`, in
/// order); `random` fills 16 bytes when a new id is needed.
pub fn resolve(values: &[&[u8]], random: &mut dyn FnMut(&mut [u8])) -> RequestId {
    if let [only] = values {
        if is_valid(only) {
            // Valid ids are ASCII, so this is lossless.
            return RequestId::Kept(String::from_utf8_lossy(only).into_owned());
        }
    }
    let mut bytes = [0u8; 16];
    random(&mut bytes);
    RequestId::Generated(uuid_v4(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn counter_random() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                n = n.wrapping_add(1);
                *b = n;
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn valid_ids() {
        for ok in [
            "1",
            "3f2b8c1e-5d6a-4b7c-9e8f-0a1b2c3d4e5f",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "1-5759e988-bd862e3fe1be46a994272793",
            "a.b_c:d",
        ] {
            assert!(is_valid(ok.as_bytes()), "{ok}");
        }
        assert!(is_valid("a".repeat(128).as_bytes()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_ids() {
        for bad in [
            &b""[..],
            b"a b",
            b"a\r\nx: y",
            b"id\0",
            "é".as_bytes(),
            b"a/b",
            b"a=b",
            b"<script>",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid("a".repeat(129).as_bytes()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn uuid_v4_sets_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
        assert!(is_valid(id.as_bytes()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn resolve_keeps_a_single_valid_id() {
        let mut random = counter_random();
        let id = resolve(&[b"abc-123"], &mut random);
        assert_eq!(id, RequestId::Kept("abc-123".into()));
        assert!(!id.is_generated());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn resolve_generates_when_absent_malformed_or_repeated() {
        let mut random = counter_random();
        let absent = resolve(&[], &mut random);
        let malformed = resolve(&[b"a\nb"], &mut random);
        let repeated = resolve(&[b"a", b"b"], &mut random);
        for id in [&absent, &malformed, &repeated] {
            assert!(id.is_generated());
            assert_eq!(id.as_str().len(), 36);
            assert_eq!(id.as_str().as_bytes().get(14), Some(&b'4'));
        }
        assert_ne!(
            absent.as_str(),
            malformed.as_str(),
            "fresh randomness per id"
        );
    }
}
