//! What the audit record leaves out or masks: the query string, request headers, the token.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::hex_lower;
use crate::headers::escape_value;

/// Replacement for a redacted value.
pub const REDACTED: &str = "REDACTED";

/// Headers whose values never appear in a record, whatever the config says.
pub const ALWAYS_REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// How the query string is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// Left out of the record. The default.
    #[default]
    Strip,
    /// Parameter names kept, every value replaced by `REDACTED`.
    Redact,
    /// Kept, except the values of `redact_query_params`.
    Keep,
}

/// The compiled `redaction` config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// Query handling.
    pub query: QueryMode,
    /// Parameters always redacted in `keep` mode.
    pub redact_query_params: Vec<String>,
    /// Request headers copied into the record.
    pub include_headers: Vec<String>,
    /// Included headers whose values are masked (includes [`ALWAYS_REDACTED_HEADERS`]).
    pub redact_headers: Vec<String>,
    /// Record a token digest.
    pub token_digest: bool,
}

impl Redaction {
    /// Query stripped, no header included, no digest.
    pub fn strict() -> Redaction {
        Redaction {
            query: QueryMode::Strip,
            redact_query_params: Vec::new(),
            include_headers: Vec::new(),
            redact_headers: ALWAYS_REDACTED_HEADERS.map(String::from).to_vec(),
            token_digest: false,
        }
    }
}

/// Splits a request `:path` into `url.path` and the `url.query` to record (per the query mode).
/// A fragment (not sent by clients, but possible) is dropped.
pub fn split_path(path: &str, redaction: &Redaction) -> (String, Option<String>) {
    let path = path.split('#').next().unwrap_or_default();
    let Some((path_only, query)) = path.split_once('?') else {
        return (path.to_string(), None);
    };
    let query = match redaction.query {
        QueryMode::Strip => None,
        QueryMode::Redact => Some(redact_query(query, |_| true)),
        QueryMode::Keep => Some(redact_query(query, |name| {
            redaction.redact_query_params.iter().any(|p| p == name)
        })),
    };
    (path_only.to_string(), query.filter(|q| !q.is_empty()))
}

fn redact_query(query: &str, redact: impl Fn(&str) -> bool) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if redact(name) => format!("{name}={REDACTED}"),
            None if redact(pair) && !pair.is_empty() => format!("{pair}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The configured request headers, as OTel `http.request.header.<name>` attributes: every value
/// (percent-escaped if unsafe), or `["REDACTED"]` for a redacted header.
pub fn included_headers(
    headers: &[(String, Vec<u8>)],
    redaction: &Redaction,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in &redaction.include_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| escape_value(v))
            .collect();
        if values.is_empty() {
            continue;
        }
        let values = if redaction.redact_headers.iter().any(|r| r == name) {
            vec![REDACTED.to_string()]
        } else {
            values
        };
        out.insert(format!("http.request.header.{name}"), values);
    }
    out
}

/// The first 16 hex digits (64 bits) of the SHA-256 of the bearer token in an `authorization`
/// value (`Bearer <token>`, scheme case-insensitive). Correlates records of one token without
/// revealing it.
pub fn token_digest(authorization: &[u8]) -> Option<String> {
    let scheme = authorization.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = authorization.get(7..)?.trim_ascii();
    if token.is_empty() {
        return None;
    }
    let digest = Sha256::digest(token);
    Some(hex_lower(digest.get(..8)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn with(query: QueryMode) -> Redaction {
        Redaction {
            query,
            redact_query_params: vec!["access_token".into(), "sig".into()],
            ..Redaction::strict()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn query_is_stripped_by_default() {
        let (path, query) = split_path("/orders/7?access_token=abc&x=1", &with(QueryMode::Strip));
        assert_eq!(path, "/orders/7");
        assert_eq!(query, None);
        let (path, query) = split_path("/plain", &with(QueryMode::Keep));
        assert_eq!((path.as_str(), query), ("/plain", None));
        let (path, _) = split_path("/a#frag?x", &with(QueryMode::Keep));
        assert_eq!(path, "/a");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn redact_mode_masks_every_value() {
        let (_, query) = split_path("/o?a=1&b=&c&access_token=x", &with(QueryMode::Redact));
        assert_eq!(
            query.as_deref(),
            Some("a=REDACTED&b=REDACTED&c=REDACTED&access_token=REDACTED")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keep_mode_masks_listed_params_only() {
        let (_, query) = split_path(
            "/o?page=2&access_token=eyJ.secret&sig=zz&access_token_hint=1",
            &with(QueryMode::Keep),
        );
        assert_eq!(
            query.as_deref(),
            Some("page=2&access_token=REDACTED&sig=REDACTED&access_token_hint=1")
        );
        assert!(!query.unwrap_or_default().contains("secret"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn headers_are_included_escaped_or_redacted() {
        let redaction = Redaction {
            include_headers: vec![
                "user-agent".into(),
                "authorization".into(),
                "x-absent".into(),
            ],
            ..Redaction::strict()
        };
        let headers = vec![
            ("user-agent".to_string(), b"curl/8\r\nx: y".to_vec()),
            ("user-agent".to_string(), b"second".to_vec()),
            ("authorization".to_string(), b"Bearer eyJsecret".to_vec()),
        ];
        let got = included_headers(&headers, &redaction);
        assert_eq!(
            got.get("http.request.header.user-agent"),
            Some(&vec!["curl/8%0D%0Ax: y".to_string(), "second".to_string()])
        );
        assert_eq!(
            got.get("http.request.header.authorization"),
            Some(&vec!["REDACTED".to_string()])
        );
        assert!(!got.contains_key("http.request.header.x-absent"));
        assert_eq!(got.len(), 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn token_digest_is_a_prefix_of_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(
            token_digest(b"Bearer abc").as_deref(),
            Some("ba7816bf8f01cfea")
        );
        assert_eq!(
            token_digest(b"bearer  abc ").as_deref(),
            Some("ba7816bf8f01cfea")
        );
        assert_eq!(token_digest(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(token_digest(b"Bearer "), None);
        assert_eq!(token_digest(b""), None);
    }
}
