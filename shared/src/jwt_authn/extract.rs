//! Finding tokens in a request: headers (bytes, every duplicate line visible), query parameters
//! (URL-decoded) and cookies; and removing them before the request goes upstream.
//!
//! Ambiguity is refused rather than guessed (RFC 6750 §3.1 `invalid_request`, answered 400):
//! - a header used as a token location appearing on more than one line (two `Authorization`
//!   headers) → [`ExtractError::DuplicateHeader`], even if the values are equal; also a token
//!   value containing `,`, which is how Envoy hands repeated inline headers such as
//!   `authorization` to a filter (merged into one value, checked against Envoy 1.40);
//! - two *different* tokens for one provider (header + query parameter, the same parameter
//!   twice, …) → [`ExtractError::MultipleTokens`]. The same token in several places is one token.
//!
//! Different providers may each receive their own token (that is what `requires_all` over
//! providers with different locations means).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::reason;

/// A header carrying a token (Envoy `JwtHeader`), compiled: lower-case name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    /// Lower-case header name.
    pub name: String,
    /// Prefix before the token, matched ASCII case-insensitively.
    pub value_prefix: String,
}

/// Where one provider's tokens are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Locations {
    /// Headers.
    pub headers: Vec<HeaderLocation>,
    /// Query parameter names.
    pub params: Vec<String>,
    /// Cookie names.
    pub cookies: Vec<String>,
}

/// Why no single token could be taken from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// A token header appears more than once.
    DuplicateHeader,
    /// Two different tokens for one provider.
    MultipleTokens,
}

impl ExtractError {
    /// The reason code.
    pub fn reason(self) -> &'static str {
        match self {
            ExtractError::DuplicateHeader => reason::DUPLICATE_HEADER,
            ExtractError::MultipleTokens => reason::MULTIPLE_TOKENS,
        }
    }
}

/// A token and the places it was found (for stripping it before the request goes upstream).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// The token text.
    pub token: String,
    /// Header names it was in.
    pub headers: Vec<String>,
    /// Query parameter names it was in.
    pub params: Vec<String>,
    /// Cookie names it was in.
    pub cookies: Vec<String>,
}

/// The parts of a request extraction reads, parsed once per request.
#[derive(Debug)]
pub struct RequestParts<'a> {
    headers: &'a [(String, Vec<u8>)],
    query: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    cookies: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestParts<'a> {
    /// Parses the query of `:path` and every `cookie` header line.
    pub fn new(headers: &'a [(String, Vec<u8>)]) -> Self {
        let path = header_str(headers, ":path").unwrap_or("");
        let query = match path.split_once('?') {
            Some((_, q)) => parse_query(q.split('#').next().unwrap_or("")),
            None => Vec::new(),
        };
        let cookies = headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(parse_cookies)
            .collect();
        RequestParts {
            headers,
            query,
            cookies,
        }
    }

    /// The token at `locations`, if any; `Err` on ambiguity.
    pub fn token(&self, locations: &Locations) -> Result<Option<String>, ExtractError> {
        Ok(self.find(locations)?.map(|f| f.token))
    }

    /// The token at `locations` and every place it was found; `Err` on ambiguity.
    pub fn find(&self, locations: &Locations) -> Result<Option<Found>, ExtractError> {
        let mut found: Option<String> = None;
        let mut at = Found::default();
        let mut add = |token: Cow<'_, str>| -> Result<(), ExtractError> {
            match &found {
                Some(f) if f.as_str() != token.as_ref() => Err(ExtractError::MultipleTokens),
                Some(_) => Ok(()),
                None => {
                    found = Some(token.into_owned());
                    Ok(())
                }
            }
        };
        for loc in &locations.headers {
            let mut lines = self.headers.iter().filter(|(n, _)| *n == loc.name);
            let Some((_, value)) = lines.next() else {
                continue;
            };
            if lines.next().is_some() {
                return Err(ExtractError::DuplicateHeader);
            }
            if let Some(token) = strip_prefix_ci(value, loc.value_prefix.as_bytes()) {
                // Envoy merges repeated inline headers (`authorization`) into one value joined
                // with ','; a JWT never contains ','. Either shape is a duplicate header.
                if token.contains(&b',') {
                    return Err(ExtractError::DuplicateHeader);
                }
                add(String::from_utf8_lossy(trim_ows(token)))?;
                at.headers.push(loc.name.clone());
            }
        }
        for name in &locations.params {
            for (k, v) in &self.query {
                if k == name {
                    add(Cow::Borrowed(v.as_ref()))?;
                    at.params.push(name.clone());
                }
            }
        }
        for name in &locations.cookies {
            for (k, v) in &self.cookies {
                if k == name {
                    add(Cow::Borrowed(v))?;
                    at.cookies.push(name.clone());
                }
            }
        }
        Ok(found.map(|token| Found { token, ..at }))
    }
}

/// The first value of header `name` as UTF-8.
pub fn header_str<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn strip_prefix_ci<'v>(value: &'v [u8], prefix: &[u8]) -> Option<&'v [u8]> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != b' ' && *b != b'\t');
    let end = v.iter().rposition(|b| *b != b' ' && *b != b'\t');
    match (start, end) {
        (Some(s), Some(e)) => v.get(s..=e).unwrap_or(&[]),
        _ => &[],
    }
}

fn parse_query(q: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(k).decode_utf8_lossy(),
                percent_decode_str(v).decode_utf8_lossy(),
            )
        })
        .collect()
}

fn parse_cookies(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some((k.trim(), v))
    })
}

/// `path` without the query parameters named in `names`; `None` when nothing was removed.
/// Other parameters keep their original (encoded) form and order.
pub fn strip_params(path: &str, names: &[&str]) -> Option<String> {
    let (base, rest) = path.split_once('?')?;
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let mut removed = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            let key = percent_decode_str(key).decode_utf8_lossy();
            let drop = names.contains(&key.as_ref());
            removed |= drop;
            !drop
        })
        .collect();
    if !removed {
        return None;
    }
    let mut out = base.to_string();
    let kept: Vec<&str> = kept.into_iter().filter(|p| !p.is_empty()).collect();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// The `cookie` header lines without the cookies named in `names`, merged into one value;
/// `None` when nothing was removed, `Some("")` when no cookie is left.
pub fn strip_cookies(headers: &[(String, Vec<u8>)], names: &[&str]) -> Option<String> {
    let mut removed = false;
    let mut kept = Vec::new();
    for (_, v) in headers.iter().filter(|(n, _)| n == "cookie") {
        let line = String::from_utf8_lossy(v);
        for c in line.split(';') {
            let c = c.trim();
            if c.is_empty() {
                continue;
            }
            let name = c.split_once('=').map(|(k, _)| k.trim()).unwrap_or(c);
            if names.contains(&name) {
                removed = true;
            } else {
                kept.push(c.to_string());
            }
        }
    }
    removed.then(|| kept.join("; "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn bearer() -> Locations {
        Locations {
            headers: vec![HeaderLocation {
                name: "authorization".into(),
                value_prefix: "Bearer ".into(),
            }],
            ..Default::default()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn authorization_bearer() {
        let req = h(&[(":path", "/"), ("authorization", "bearer  abc.def.ghi ")]);
        let parts = RequestParts::new(&req);
        assert_eq!(parts.token(&bearer()), Ok(Some("abc.def.ghi".into())));
        let req = h(&[(":path", "/"), ("authorization", "Basic Zm9v")]);
        assert_eq!(RequestParts::new(&req).token(&bearer()), Ok(None));
        let req = h(&[(":path", "/")]);
        assert_eq!(RequestParts::new(&req).token(&bearer()), Ok(None));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn duplicate_authorization_refused_even_if_equal() {
        let req = h(&[("authorization", "Bearer a"), ("authorization", "Bearer a")]);
        assert_eq!(
            RequestParts::new(&req).token(&bearer()),
            Err(ExtractError::DuplicateHeader)
        );
        // Envoy's shape: the two lines merged into one value with ','.
        let req = h(&[("authorization", "Bearer a.b.c,Bearer a.b.c")]);
        assert_eq!(
            RequestParts::new(&req).token(&bearer()),
            Err(ExtractError::DuplicateHeader)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn non_utf8_header_becomes_an_invalid_token_not_a_panic() {
        let req = vec![("authorization".to_string(), b"Bearer \xff\xfe".to_vec())];
        let t = RequestParts::new(&req).token(&bearer()).unwrap().unwrap();
        assert!(t.contains('\u{fffd}'));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn params_and_cookies() {
        let locs = Locations {
            params: vec!["access_token".into()],
            cookies: vec!["session".into()],
            ..bearer()
        };
        let req = h(&[(":path", "/a?x=1&access_token=t%2Eu&y")]);
        assert_eq!(RequestParts::new(&req).token(&locs), Ok(Some("t.u".into())));
        let req = h(&[
            (":path", "/"),
            ("cookie", "a=b; session=\"tok\""),
            ("cookie", "c=d"),
        ]);
        assert_eq!(RequestParts::new(&req).token(&locs), Ok(Some("tok".into())));
        // Same token twice is one token; two different ones are refused.
        let req = h(&[
            (":path", "/?access_token=tok"),
            ("authorization", "Bearer tok"),
        ]);
        assert_eq!(RequestParts::new(&req).token(&locs), Ok(Some("tok".into())));
        let req = h(&[(":path", "/?access_token=a"), ("authorization", "Bearer b")]);
        assert_eq!(
            RequestParts::new(&req).token(&locs),
            Err(ExtractError::MultipleTokens)
        );
        let req = h(&[(":path", "/?access_token=a&access_token=b")]);
        assert_eq!(
            RequestParts::new(&req).token(&locs),
            Err(ExtractError::MultipleTokens)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stripping() {
        assert_eq!(
            strip_params("/a?x=1&access_token=t&y=2#f", &["access_token"]),
            Some("/a?x=1&y=2#f".into())
        );
        assert_eq!(
            strip_params("/a?access_%74oken=t", &["access_token"]),
            Some("/a".into())
        );
        assert_eq!(strip_params("/a?x=1", &["access_token"]), None);
        assert_eq!(strip_params("/a", &["access_token"]), None);
        let req = h(&[("cookie", "a=b; session=t"), ("cookie", "c=d")]);
        assert_eq!(strip_cookies(&req, &["session"]), Some("a=b; c=d".into()));
        assert_eq!(strip_cookies(&req, &["zzz"]), None);
        let req = h(&[("cookie", "session=t")]);
        assert_eq!(strip_cookies(&req, &["session"]), Some(String::new()));
    }
}
