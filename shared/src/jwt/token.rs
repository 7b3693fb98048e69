//! Strict JWS compact parsing: size cap, character set, segment count, base64url and the JOSE
//! header. Nothing here trusts the token: the payload is only decoded by [`decode_payload`] after
//! the signature has been checked.
//!
//! Checks, in order (each failure is final):
//! 1. length ≤ `max_token_bytes`, before anything is decoded or allocated ([`JwtError::TooLarge`]);
//! 2. only base64url characters and dots, so JSON serialisations and polyglots never parse;
//! 3. exactly three non-empty segments (five = JWE, refused with its own detail);
//! 4. header: strict base64url without padding, strict UTF-8, one JSON object, no duplicate members;
//! 5. refused header parameters: `crit`, `b64`, `jwk`, `jku`, `x5u`, `x5c`, `cty`, `enc`, `zip`
//!    ([`JwtError::ForbiddenHeader`]): keys never come from the token, unencoded or nested payloads
//!    and JWE are not JWTs this validator accepts;
//! 6. `alg` a JSON string naming a supported algorithm exactly ([`JwtError::UnsupportedAlgorithm`]);
//! 7. `kid` and `typ` strings when present.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::json::{parse_object, JsonError};
use super::validate::JwtError;
use super::Algorithm;

/// Header parameters that make a token unacceptable, in the order they are checked.
const FORBIDDEN_HEADER_PARAMS: [&str; 9] = [
    "crit", "b64", "jwk", "jku", "x5u", "x5c", "cty", "enc", "zip",
];

/// The validated JOSE header of a token (its signature not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`, an exact match of a supported name.
    pub alg: Algorithm,
    /// `kid`, if present (an opaque string; only ever compared exactly).
    pub kid: Option<String>,
    /// `typ`, if present.
    pub typ: Option<String>,
}

/// A token split and its header checked; the signature is not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    /// The validated header.
    pub header: Header,
    /// `base64url(header) "." base64url(payload)` exactly as received: what the signature covers.
    pub signing_input: &'a str,
    /// The payload segment, still base64url-encoded.
    pub payload_b64: &'a str,
    /// The decoded signature bytes (non-empty).
    pub signature: Vec<u8>,
}

/// Splits and checks `token` (steps 1–7 of the module doc).
pub fn parse(token: &str, max_token_bytes: usize) -> Result<ParsedToken<'_>, JwtError> {
    let (header_b64, payload_b64, signature_b64) = split(token, max_token_bytes)?;
    let header = parse_header(header_b64)?;
    let signature = decode_segment(signature_b64, "signature: invalid base64url")?;
    // `split` guarantees the three segments are consecutive slices of `token`.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(JwtError::Malformed("segment bounds"))?;
    Ok(ParsedToken {
        header,
        signing_input,
        payload_b64,
        signature,
    })
}

/// Decodes the (verified) payload: base64url, strict UTF-8, one JSON object without duplicate
/// members. Returns the members and the decoded JSON text.
pub fn decode_payload(payload_b64: &str) -> Result<(Map<String, Value>, String), JwtError> {
    let bytes = decode_segment(payload_b64, "payload: invalid base64url")?;
    let (map, _) = parse_object(&bytes).map_err(|e| json_error("payload", e))?;
    // `parse_object` proved the bytes are UTF-8; converting the owned buffer cannot fail then.
    let text = String::from_utf8(bytes).map_err(|_| JwtError::Malformed("payload: not UTF-8"))?;
    Ok((map, text))
}

/// Size cap, character set and exactly three non-empty segments, without allocating.
fn split(token: &str, max_token_bytes: usize) -> Result<(&str, &str, &str), JwtError> {
    if token.len() > max_token_bytes {
        return Err(JwtError::TooLarge {
            limit: max_token_bytes,
        });
    }
    if token.is_empty() {
        return Err(JwtError::Malformed("empty token"));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(JwtError::Malformed(
            "character outside the base64url alphabet and '.'",
        ));
    }
    let dots = token.bytes().filter(|&b| b == b'.').count();
    match dots {
        2 => {}
        4 => return Err(JwtError::Malformed("JWE (5 segments) is not accepted")),
        _ => return Err(JwtError::Malformed("a JWS must have exactly 3 segments")),
    }
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("a JWS must have exactly 3 segments"));
    };
    if header.is_empty() {
        return Err(JwtError::Malformed("empty header segment"));
    }
    if payload.is_empty() {
        return Err(JwtError::Malformed("empty payload segment"));
    }
    if signature.is_empty() {
        return Err(JwtError::Malformed("empty signature segment"));
    }
    Ok((header, payload, signature))
}

/// Strict base64url without padding; non-canonical trailing bits are refused too.
fn decode_segment(segment: &str, error: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed(error))
}

fn json_error(what: &'static str, e: JsonError) -> JwtError {
    JwtError::Malformed(match (what, e) {
        ("header", JsonError::NotUtf8) => "header: not UTF-8",
        ("header", JsonError::Syntax) => "header: not valid JSON",
        ("header", JsonError::DuplicateMember) => "header: duplicate JSON member",
        ("header", JsonError::NotObject) => "header: not a JSON object",
        (_, JsonError::NotUtf8) => "payload: not UTF-8",
        (_, JsonError::Syntax) => "payload: not valid JSON",
        (_, JsonError::DuplicateMember) => "payload: duplicate JSON member",
        (_, JsonError::NotObject) => "payload: not a JSON object",
    })
}

fn parse_header(header_b64: &str) -> Result<Header, JwtError> {
    let bytes = decode_segment(header_b64, "header: invalid base64url")?;
    let (map, _) = parse_object(&bytes).map_err(|e| json_error("header", e))?;
    if let Some(param) = FORBIDDEN_HEADER_PARAMS
        .into_iter()
        .find(|p| map.contains_key(*p))
    {
        return Err(JwtError::ForbiddenHeader(param));
    }
    let alg = match map.get("alg") {
        Some(Value::String(name)) => name
            .parse::<Algorithm>()
            .map_err(|_| JwtError::UnsupportedAlgorithm)?,
        _ => return Err(JwtError::UnsupportedAlgorithm),
    };
    let kid = optional_string(&map, "kid", "header: kid is not a string")?;
    let typ = optional_string(&map, "typ", "header: typ is not a string")?;
    Ok(Header { alg, kid, typ })
}

fn optional_string(
    map: &Map<String, Value>,
    name: &str,
    detail: &'static str,
) -> Result<Option<String>, JwtError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Malformed(detail)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(r#"{"sub":"a"}"#))
    }

    fn parse_err(token: &str) -> JwtError {
        parse(token, 8192).unwrap_err()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn parses_a_plain_header() {
        let t = tok(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let p = parse(&t, 8192).unwrap();
        assert_eq!(p.header.alg, Algorithm::RS256);
        assert_eq!(p.header.kid.as_deref(), Some("k1"));
        assert_eq!(p.header.typ.as_deref(), Some("JWT"));
        assert_eq!(p.signature, b"sig");
        assert_eq!(
            format!(
                "{}.{}.c2ln",
                p.signing_input.split('.').next().unwrap(),
                p.payload_b64
            ),
            t
        );
        let (claims, text) = decode_payload(p.payload_b64).unwrap();
        assert_eq!(claims.get("sub"), Some(&Value::String("a".into())));
        assert_eq!(text, r#"{"sub":"a"}"#);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn size_is_checked_first() {
        let t = tok(r#"{"alg":"RS256"}"#);
        assert_eq!(parse(&t, t.len()).map(|_| ()), Ok(()));
        assert_eq!(
            parse_err_limit(&t, t.len() - 1),
            JwtError::TooLarge { limit: t.len() - 1 }
        );
        // Over the cap, even garbage is "too large", not "malformed".
        let junk = "{".repeat(9000);
        assert_eq!(parse_err(&junk), JwtError::TooLarge { limit: 8192 });
    }

    fn parse_err_limit(t: &str, limit: usize) -> JwtError {
        parse(t, limit).unwrap_err()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn structure() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty token"),
            ("abc".into(), "a JWS must have exactly 3 segments"),
            (format!("{h}.e30"), "a JWS must have exactly 3 segments"),
            (
                format!("{h}.e30.c2ln.c2ln"),
                "a JWS must have exactly 3 segments",
            ),
            (format!("{h}.a.b.c.d"), "JWE (5 segments) is not accepted"),
            (format!("{h}.e30."), "empty signature segment"),
            (format!("{h}..c2ln"), "empty payload segment"),
            (".e30.c2ln".into(), "empty header segment"),
            (".".repeat(8000), "a JWS must have exactly 3 segments"),
            (
                format!("{h}.e30.c2ln="),
                "character outside the base64url alphabet and '.'",
            ),
            (
                format!("{h}.e30.c2l+"),
                "character outside the base64url alphabet and '.'",
            ),
            (
                format!(" {h}.e30.c2ln"),
                "character outside the base64url alphabet and '.'",
            ),
            (
                r#"{"payload":"e30"}"#.into(),
                "character outside the base64url alphabet and '.'",
            ),
            (format!("{h}.e30.c2l"), "signature: invalid base64url"),
            (format!("{h}.e30.c"), "signature: invalid base64url"),
            ("e3.e30.c2ln".into(), "header: invalid base64url"),
        ];
        for (t, detail) in cases {
            assert_eq!(parse_err(&t), JwtError::Malformed(detail), "{t:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn header_json_must_be_a_strict_object() {
        assert_eq!(
            parse_err(&tok(r#"["RS256"]"#)),
            JwtError::Malformed("header: not a JSON object")
        );
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","alg":"HS256"}"#)),
            JwtError::Malformed("header: duplicate JSON member")
        );
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256"}x"#)),
            JwtError::Malformed("header: not valid JSON")
        );
        let bad_utf8 = format!(
            "{}.e30.c2ln",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"x\":\"\xff\"}")
        );
        assert_eq!(
            parse_err(&bad_utf8),
            JwtError::Malformed("header: not UTF-8")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn alg_must_be_an_exact_supported_name() {
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"NONE"}"#,
            r#"{"alg":"rs256"}"#,
            r#"{"alg":"RS256 "}"#,
            "{\"alg\":\"RS256\\u0000\"}",
            r#"{"alg":""}"#,
            r#"{"alg":null}"#,
            r#"{"alg":256}"#,
            r#"{"alg":["RS256"]}"#,
            r#"{"alg":"ES512"}"#,
            r#"{"alg":"Ed25519"}"#,
            r#"{"kid":"k"}"#,
        ] {
            assert_eq!(
                parse_err(&tok(header)),
                JwtError::UnsupportedAlgorithm,
                "{header}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn forbidden_header_parameters() {
        for p in FORBIDDEN_HEADER_PARAMS {
            let header = format!(r#"{{"alg":"RS256","{p}":"x"}}"#);
            assert_eq!(
                parse_err(&tok(&header)),
                JwtError::ForbiddenHeader(p),
                "{p}"
            );
        }
        // Even an empty crit list and the jwk object form are refused.
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","crit":[]}"#)),
            JwtError::ForbiddenHeader("crit")
        );
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","jwk":{"kty":"oct","k":"AA"}}"#)),
            JwtError::ForbiddenHeader("jwk")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn kid_and_typ_must_be_strings() {
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","kid":1}"#)),
            JwtError::Malformed("header: kid is not a string")
        );
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","kid":null}"#)),
            JwtError::Malformed("header: kid is not a string")
        );
        assert_eq!(
            parse_err(&tok(r#"{"alg":"RS256","typ":{}}"#)),
            JwtError::Malformed("header: typ is not a string")
        );
        // Unknown members and x5t thumbprints are fine.
        assert!(parse(&tok(r#"{"alg":"RS256","x5t":"abc","foo":[1]}"#), 8192).is_ok());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn payload_must_be_a_strict_object() {
        assert!(decode_payload(&b64(r#"{"a":1}"#)).is_ok());
        assert_eq!(
            decode_payload(&b64("[1]")).unwrap_err(),
            JwtError::Malformed("payload: not a JSON object")
        );
        assert_eq!(
            decode_payload(&b64(r#"{"sub":"a","sub":"b"}"#)).unwrap_err(),
            JwtError::Malformed("payload: duplicate JSON member")
        );
        assert_eq!(
            decode_payload("e30=").unwrap_err(),
            JwtError::Malformed("payload: invalid base64url")
        );
        // Non-canonical trailing bits ("e31" decodes to "{" plus stray bits).
        assert_eq!(
            decode_payload("e31").unwrap_err(),
            JwtError::Malformed("payload: invalid base64url")
        );
    }
}
