//! Repeated header lines as Envoy 1.40 hands them to a filter. Envoy keeps a fixed set of
//! "inline" (O(1)) headers in one slot each: its built-in lists (`envoy/http/header_map.h`:
//! `INLINE_REQ_HEADERS`, `INLINE_RESP_HEADERS`, `INLINE_REQ_RESP_HEADERS`) plus the names its
//! extensions register (`RegisterCustomInlineHeader`). A second line of such a header is appended
//! to the first with `,` (`HeaderMapImpl::insertByKey` → `appendToHeader`); every other header
//! keeps one entry per line. Both codecs fill the map that way; HTTP/2 also joins the `cookie`
//! crumbs with `; ` (RFC 9113 §8.2.3), which HTTP/1 does not (`cookie` is not inline). A filter's
//! `proxy_add_header_map_value` is `addCopy`, which follows the same inline rule.
//!
//! The custom-inline names are the ones a stock Envoy 1.40 build was measured to join (every
//! candidate sent twice through a router-only listener over HTTP/1.1 and HTTP/2, requests and
//! responses; see harness/README.md "Repeated headers"); `tests/e2e_proxy.rs`
//! `repeated_headers_reach_filters_as_the_harness_merges_them` re-checks them in a real Envoy.

use serde::{Deserialize, Serialize};

use crate::types::HeaderMap;

/// How repeated header lines reach the filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderCodec {
    /// Envoy with an HTTP/1.1 downstream (the default): inline headers joined with `,`; repeated
    /// `cookie` lines stay separate.
    #[default]
    Http1,
    /// Envoy with an HTTP/2 downstream: as HTTP/1.1, and `cookie` crumbs joined with `; `.
    Http2,
    /// No merging: every line stays an entry, as given (a host other than Envoy, or a test that
    /// needs raw duplicates in front of a filter).
    Raw,
}

/// Which header map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

/// Request headers Envoy keeps inline: `INLINE_REQ_HEADERS` + `INLINE_REQ_RESP_HEADERS`, and the
/// custom inline request headers a stock 1.40 build registers (measured).
const REQUEST_INLINE: &[&str] = &[
    // INLINE_REQ_STRING_HEADERS / INLINE_REQ_NUMERIC_HEADERS
    "x-client-trace-id",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-external-address",
    "x-envoy-force-trace",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-is-timeout-retry",
    "x-envoy-original-path",
    "x-envoy-original-url",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-alt-response",
    "expect",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "grpc-timeout",
    ":authority",
    ":method",
    ":path",
    ":protocol",
    ":scheme",
    "te",
    "user-agent",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-stream-duration-ms",
    "x-forwarded-port",
    // Custom inline request headers (registered by extensions of the stock build; measured).
    "accept",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "authentication",
    "authorization",
    "cache-control",
    "cdn-loop",
    "content-encoding",
    "grpc-accept-encoding",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "origin",
    "pragma",
    "referer",
];

/// Response headers Envoy keeps inline: `INLINE_RESP_HEADERS`, `INLINE_RESP_HEADERS_TRAILERS`,
/// `INLINE_REQ_RESP_HEADERS`, and the custom inline response headers of a stock 1.40 build
/// (measured).
const RESPONSE_INLINE: &[&str] = &[
    "date",
    "x-envoy-degraded",
    "x-envoy-immediate-health-check-fail",
    "x-envoy-ratelimited",
    "x-envoy-upstream-canary",
    "x-envoy-upstream-healthchecked-cluster",
    "location",
    "server",
    "x-envoy-upstream-service-time",
    ":status",
    "grpc-message",
    "grpc-status",
    // Custom inline response headers (measured).
    "access-control-allow-credentials",
    "access-control-allow-origin",
    "access-control-expose-headers",
    "age",
    "cache-control",
    "content-encoding",
    "etag",
    "expires",
    "last-modified",
    "vary",
];

/// `INLINE_REQ_RESP_HEADERS`: inline in both directions.
const BOTH_INLINE: &[&str] = &[
    "connection",
    "content-type",
    "x-envoy-decorator-operation",
    "keep-alive",
    "proxy-connection",
    "proxy-status",
    "x-request-id",
    "transfer-encoding",
    "upgrade",
    "via",
    "content-length",
    "x-envoy-attempt-count",
];

/// Whether Envoy keeps `name` (lower case) in an inline slot of `side`'s map.
pub(crate) fn is_inline(side: Side, name: &str) -> bool {
    let list = match side {
        Side::Request => REQUEST_INLINE,
        Side::Response => RESPONSE_INLINE,
    };
    list.contains(&name) || BOTH_INLINE.contains(&name)
}

/// The header map a codec builds from the lines `pairs` (names lower-cased).
pub(crate) fn incoming<I, K, V>(codec: HeaderCodec, side: Side, pairs: I) -> HeaderMap
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = name.as_ref().to_ascii_lowercase();
        let value = value.as_ref();
        match codec {
            HeaderCodec::Raw => map.add(&name, value),
            HeaderCodec::Http2 if side == Side::Request && name == "cookie" => {
                map.append_joined(&name, value, b"; ")
            }
            _ if is_inline(side, &name) => map.append_joined(&name, value, b","),
            _ => map.add(&name, value),
        }
    }
    map
}

/// A filter's `proxy_add_header_map_value` (`addCopy`): joins an inline header's value.
pub(crate) fn add(codec: HeaderCodec, side: Side, map: &mut HeaderMap, name: &str, value: &[u8]) {
    let name = name.to_ascii_lowercase();
    if codec != HeaderCodec::Raw && is_inline(side, &name) {
        map.append_joined(&name, value, b",");
    } else {
        map.add(&name, value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(codec: HeaderCodec, side: Side, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        incoming(codec, side, pairs.iter().copied()).to_pairs()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inline_request_headers_join_with_a_comma_others_stay_separate() {
        let got = lines(
            HeaderCodec::Http1,
            Side::Request,
            &[
                ("Authorization", "Bearer a"),
                ("x-custom", "1"),
                ("authorization", "Bearer b"),
                ("x-custom", "2"),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
            ],
        );
        assert_eq!(
            got,
            pairs(&[
                ("authorization", "Bearer a,Bearer b"),
                ("x-custom", "1"),
                ("x-custom", "2"),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
            ])
        );
    }

    #[test]
    fn http2_joins_cookie_crumbs() {
        let got = lines(
            HeaderCodec::Http2,
            Side::Request,
            &[
                ("cookie", "a=1"),
                ("cookie", "b=2"),
                ("origin", "x"),
                ("origin", "y"),
            ],
        );
        assert_eq!(got, pairs(&[("cookie", "a=1; b=2"), ("origin", "x,y")]));
    }

    #[test]
    fn raw_keeps_every_line_and_empty_values_append_nothing() {
        let raw = lines(
            HeaderCodec::Raw,
            Side::Request,
            &[("authorization", "a"), ("authorization", "b")],
        );
        assert_eq!(raw.len(), 2);
        let empty = lines(
            HeaderCodec::Http1,
            Side::Request,
            &[
                ("authorization", "a"),
                ("authorization", ""),
                ("referer", ""),
                ("referer", "r"),
            ],
        );
        assert_eq!(empty, pairs(&[("authorization", "a"), ("referer", "r")]));
    }

    #[test]
    fn sides_have_their_own_inline_sets() {
        let req = lines(
            HeaderCodec::Http1,
            Side::Request,
            &[("etag", "1"), ("etag", "2")],
        );
        assert_eq!(req.len(), 2);
        let resp = lines(
            HeaderCodec::Http1,
            Side::Response,
            &[("etag", "1"), ("etag", "2")],
        );
        assert_eq!(resp, pairs(&[("etag", "1,2")]));
        let resp = lines(
            HeaderCodec::Http1,
            Side::Response,
            &[("set-cookie", "a"), ("set-cookie", "b")],
        );
        assert_eq!(resp.len(), 2, "set-cookie is never joined");
    }

    #[test]
    fn filter_add_joins_inline_headers() {
        let mut map = HeaderMap::new();
        add(
            HeaderCodec::Http1,
            Side::Request,
            &mut map,
            "x-forwarded-for",
            b"1.1.1.1",
        );
        add(
            HeaderCodec::Http1,
            Side::Request,
            &mut map,
            "X-Forwarded-For",
            b"2.2.2.2",
        );
        add(HeaderCodec::Http1, Side::Request, &mut map, "x-tag", b"a");
        add(HeaderCodec::Http1, Side::Request, &mut map, "x-tag", b"b");
        assert_eq!(
            map.to_pairs(),
            pairs(&[
                ("x-forwarded-for", "1.1.1.1,2.2.2.2"),
                ("x-tag", "a"),
                ("x-tag", "b")
            ])
        );
    }
}
