//! Header names and values a filter writes: validation, and making untrusted values safe.
//!
//! Values that reach a header a filter sets often come from a client (a JWT claim, a request
//! header). Copied raw, a CR or LF could split the header (response splitting / header
//! injection), a NUL or another control character could truncate it in a later hop, and non-ASCII
//! bytes are interpreted differently by different HTTP stacks. [`sanitize_value`] turns any byte
//! string into a value that is safe to set, or refuses it, per [`UnsafeValuePolicy`].
//!
//! The escaping is percent-encoding (as in RFC 3986): every byte outside visible ASCII and the
//! space, plus `%` itself, becomes `%XX` (uppercase hex). It is reversible by any URL decoder, and
//! a value without such bytes is left unchanged.

use serde::{Deserialize, Serialize};

/// What to do with a header value that is not safe to copy as is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnsafeValuePolicy {
    /// Percent-encode the unsafe bytes (see the module documentation). The default.
    #[default]
    Escape,
    /// Do not set the header at all.
    Drop,
}

/// True when `value` can be set as a header value unchanged: only visible ASCII (0x21–0x7E) and
/// inner spaces, no `%`, not empty-padded (no leading or trailing space).
pub fn is_safe_value(value: &[u8]) -> bool {
    let plain = value
        .iter()
        .all(|&b| b == b' ' || (is_visible(b) && b != b'%'));
    plain && value.first() != Some(&b' ') && value.last() != Some(&b' ')
}

/// Percent-encodes every byte of `value` that is not visible ASCII, every `%`, and a leading or
/// trailing space (proxies trim those, which would change the value).
pub fn escape_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (i, &b) in value.iter().enumerate() {
        let edge_space = b == b' ' && (i == 0 || i == last);
        if (is_visible(b) && b != b'%') || (b == b' ' && !edge_space) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        }
    }
    out
}

/// A value that is safe to set: `value` itself when [`is_safe_value`], otherwise its escaped form
/// or `None`, per `policy`.
pub fn sanitize_value(value: &[u8], policy: UnsafeValuePolicy) -> Option<String> {
    if is_safe_value(value) {
        // Safe bytes are visible ASCII, so this conversion cannot lose anything.
        return Some(value.iter().map(|&b| char::from(b)).collect());
    }
    match policy {
        UnsafeValuePolicy::Escape => Some(escape_value(value)),
        UnsafeValuePolicy::Drop => None,
    }
}

/// True when `name` is a header name a filter may set: a non-empty lowercase HTTP token
/// (RFC 9110 `tchar`s, no uppercase, since HTTP/2 forbids it) and not a pseudo-header.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn is_visible(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn hex_digit(nibble: u8) -> char {
    let digits = b"0123456789ABCDEF";
    char::from(
        digits
            .get(usize::from(nibble & 0x0f))
            .copied()
            .unwrap_or(b'0'),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn plain_values_are_safe_and_unchanged() {
        for v in [
            "alice",
            "spiffe://cluster.local/ns/a/sa/b",
            "a b",
            "x=1;y=\"2\"",
        ] {
            assert!(is_safe_value(v.as_bytes()), "{v}");
            assert_eq!(
                sanitize_value(v.as_bytes(), UnsafeValuePolicy::Drop).as_deref(),
                Some(v)
            );
        }
        assert!(is_safe_value(b""));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn crlf_nul_controls_and_non_ascii_are_escaped() {
        assert_eq!(escape_value(b"a\r\nx-admin: 1"), "a%0D%0Ax-admin: 1");
        assert_eq!(escape_value(b"a\0b\tc\x7f"), "a%00b%09c%7F");
        assert_eq!(escape_value("zoë".as_bytes()), "zo%C3%AB");
        assert_eq!(escape_value(b"100%"), "100%25");
        assert_eq!(escape_value(b" padded "), "%20padded%20");
        for v in [
            &b"a\rb"[..],
            b"a\nb",
            b"\0",
            b"\x1b[31m",
            "é".as_bytes(),
            b"%",
            b" a",
        ] {
            assert!(!is_safe_value(v), "{v:?}");
            let escaped = sanitize_value(v, UnsafeValuePolicy::Escape).unwrap_or_default();
            assert!(
                is_safe_value(escaped.replace('%', "").as_bytes()),
                "{escaped}"
            );
            assert!(!escaped.is_empty());
            assert_eq!(sanitize_value(v, UnsafeValuePolicy::Drop), None);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn header_names() {
        assert!(is_valid_name("x-meshguard-subject"));
        assert!(is_valid_name("x_b3.id"));
        for bad in ["", "X-Upper", ":path", "a b", "a\r\n", "é", "a:b", "a\"b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert!(!is_valid_name(&"a".repeat(257)));
    }
}
