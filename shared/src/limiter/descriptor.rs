//! Descriptors: which values of a request identify the key a rule counts against.
//!
//! Sources (alone or combined, all must be present):
//! - `jwt_claim`: a claim of the *verified* token, from the jwt-authn hand-off
//!   ([`crate::handoff::JWT_PAYLOAD`]); `sub` falls back to [`crate::handoff::JWT_SUBJECT`]. A
//!   claim path is dot-separated (`org.plan`); a top-level claim whose name contains dots
//!   (`https://example.com/plan`) is matched whole first. Strings are used as they are, numbers
//!   and booleans as their JSON text; arrays, objects and `null` count as missing.
//! - `mtls_principal`: the peer certificate's URI SAN (`connection.uri_san_peer_certificate`).
//! - `remote_address`: the client IP. With `xff_num_trusted_hops: 0` it is the IP of
//!   `source.address`; with N > 0 it is the Nth address from the right of `x-forwarded-for` (all
//!   its lines joined), as Envoy does for `use_remote_address: true`; fewer than N addresses, or
//!   a chosen entry that is not an IP address, falls back to `source.address`.
//! - `request_header`: all values of a request header, joined with `,`.
//! - `path`: the request path without its query; `method`: the request method.
//!
//! The key itself is never stored: a SHA-256 of a per-proxy random salt, the rule, the tier and
//! the values gives the slot (first 8 bytes) and the fingerprint kept in the slot (next 8), so a
//! client cannot aim its keys at another client's slot.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a descriptor value comes from (compiled form of the config's `descriptors` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorSource {
    /// A claim of the verified JWT.
    JwtClaim(ClaimPath),
    /// The mTLS peer principal (URI SAN).
    MtlsPrincipal,
    /// The client IP.
    RemoteAddress,
    /// A request header (lower-case name).
    RequestHeader(String),
    /// The path without query.
    Path,
    /// The method.
    Method,
}

/// A claim path: dot-separated segments, or one top-level claim whose name contains dots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    /// The path as written in the config.
    pub full: String,
    segments: Vec<String>,
}

impl ClaimPath {
    /// Parses `org.plan`; `None` when empty or with an empty segment.
    pub fn parse(text: &str) -> Option<ClaimPath> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if text.is_empty() || segments.iter().any(String::is_empty) {
            return None;
        }
        Some(ClaimPath {
            full: text.to_owned(),
            segments,
        })
    }

    /// The claim's value as key text; `None` when absent or not a scalar.
    pub fn lookup(&self, payload: &Value) -> Option<String> {
        let value = match payload.get(&self.full) {
            Some(v) => v,
            None => self
                .segments
                .iter()
                .try_fold(payload, |v, segment| v.get(segment))?,
        };
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// What the limiter reads from one request. The filter fills it from the host; tests build it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestView<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` (query included; the limiter strips it where needed).
    pub path: &'a str,
    /// All request headers, lower-case names, duplicates kept, values as bytes.
    pub headers: &'a [(String, Vec<u8>)],
    /// `source.address` (`ip:port`, `[v6]:port` or a bare IP).
    pub source_address: Option<&'a str>,
    /// `connection.uri_san_peer_certificate`.
    pub mtls_principal: Option<&'a str>,
    /// The verified JWT payload from the jwt-authn hand-off.
    pub jwt_payload: Option<&'a Value>,
    /// The verified JWT subject from the jwt-authn hand-off.
    pub jwt_subject: Option<&'a str>,
}

impl RequestView<'_> {
    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split(['?', '#']).next().unwrap_or(self.path)
    }

    /// Every value of header `name` joined with `,`; `None` when absent.
    pub fn header_joined(&self, name: &str) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for (n, v) in self.headers {
            if n.eq_ignore_ascii_case(name) {
                match out.as_mut() {
                    Some(o) => {
                        o.push(b',');
                        o.extend_from_slice(v);
                    }
                    None => out = Some(v.clone()),
                }
            }
        }
        out
    }

    /// A JWT claim's value.
    pub fn claim(&self, path: &ClaimPath) -> Option<String> {
        if let Some(value) = self.jwt_payload.and_then(|p| path.lookup(p)) {
            return Some(value);
        }
        (path.full == "sub")
            .then_some(self.jwt_subject)
            .flatten()
            .map(str::to_owned)
    }

    /// The client IP (see the module doc for the `x-forwarded-for` rule).
    pub fn client_ip(&self, xff_num_trusted_hops: u32) -> Option<IpAddr> {
        let source = self.source_address.and_then(parse_address);
        if xff_num_trusted_hops == 0 {
            return source;
        }
        let xff = self.header_joined("x-forwarded-for").unwrap_or_default();
        let xff = String::from_utf8_lossy(&xff);
        let entries: Vec<&str> = xff
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let n = usize::try_from(xff_num_trusted_hops).unwrap_or(usize::MAX);
        match entries.len().checked_sub(n).and_then(|i| entries.get(i)) {
            Some(entry) => parse_address(entry).or(source),
            None => source,
        }
    }

    /// The value of one source, as bytes; `None` when the request does not have it.
    pub fn value(&self, source: &DescriptorSource, xff_num_trusted_hops: u32) -> Option<Vec<u8>> {
        match source {
            DescriptorSource::JwtClaim(path) => self.claim(path).map(String::into_bytes),
            DescriptorSource::MtlsPrincipal => self
                .mtls_principal
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec()),
            DescriptorSource::RemoteAddress => self
                .client_ip(xff_num_trusted_hops)
                .map(|ip| ip.to_string().into_bytes()),
            DescriptorSource::RequestHeader(name) => self.header_joined(name),
            DescriptorSource::Path => Some(self.path_only().as_bytes().to_vec()),
            DescriptorSource::Method => Some(self.method.as_bytes().to_vec()),
        }
    }
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Where a key lives: its home slot and its fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash {
    /// Home slot, in `0..max_keys`.
    pub home: u32,
    /// Bits kept in the slot to recognise the key.
    pub fingerprint: u64,
}

/// Hashes a key: salt, rule name, tier and each descriptor value (length-prefixed, so
/// `("ab","c")` and `("a","bc")` differ).
pub fn hash_key(salt: &[u8], rule: &str, tier: u8, values: &[Vec<u8>], max_keys: u32) -> KeyHash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update((rule.len() as u64).to_le_bytes());
    h.update(rule.as_bytes());
    h.update([tier]);
    for v in values {
        h.update((v.len() as u64).to_le_bytes());
        h.update(v);
    }
    let digest = h.finalize();
    let mut home = [0u8; 8];
    let mut fingerprint = [0u8; 8];
    home.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    fingerprint.copy_from_slice(digest.get(8..16).unwrap_or(&[0; 8]));
    KeyHash {
        home: u32::try_from(u64::from_le_bytes(home) % u64::from(max_keys.max(1))).unwrap_or(0),
        fingerprint: u64::from_le_bytes(fingerprint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn claim_paths() {
        let payload = json!({"sub": "alice", "org": {"plan": "gold", "seats": 5},
            "https://x.io/tier": "t1", "admin": true, "groups": ["a"], "n": null});
        let get = |p: &str| ClaimPath::parse(p).and_then(|c| c.lookup(&payload));
        assert_eq!(get("sub").as_deref(), Some("alice"));
        assert_eq!(get("org.plan").as_deref(), Some("gold"));
        assert_eq!(get("org.seats").as_deref(), Some("5"));
        assert_eq!(get("https://x.io/tier").as_deref(), Some("t1"));
        assert_eq!(get("admin").as_deref(), Some("true"));
        assert_eq!(get("groups"), None);
        assert_eq!(get("org"), None);
        assert_eq!(get("n"), None);
        assert_eq!(get("org.missing"), None);
        assert!(ClaimPath::parse("").is_none());
        assert!(ClaimPath::parse("a..b").is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn subject_falls_back_to_the_handoff_key() {
        let sub = ClaimPath::parse("sub").unwrap_or_else(|| unreachable!());
        let view = RequestView {
            jwt_subject: Some("bob"),
            ..RequestView::default()
        };
        assert_eq!(view.claim(&sub).as_deref(), Some("bob"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn client_ip_follows_xff_trusted_hops() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        let view = RequestView {
            headers: &h,
            source_address: Some("10.0.0.1:4567"),
            ..RequestView::default()
        };
        let ip = |n| view.client_ip(n).map(|ip| ip.to_string());
        assert_eq!(
            ip(0).as_deref(),
            Some("10.0.0.1"),
            "XFF ignored without trusted hops"
        );
        assert_eq!(ip(1).as_deref(), Some("2.2.2.2"));
        assert_eq!(ip(2).as_deref(), Some("1.1.1.1"));
        assert_eq!(ip(3).as_deref(), Some("6.6.6.6"));
        assert_eq!(
            ip(4).as_deref(),
            Some("10.0.0.1"),
            "too few entries: source address"
        );
        let bad = headers(&[("x-forwarded-for", "not-an-ip")]);
        let view = RequestView {
            headers: &bad,
            ..view
        };
        assert_eq!(
            view.client_ip(1).map(|i| i.to_string()).as_deref(),
            Some("10.0.0.1")
        );
        let v6 = RequestView {
            source_address: Some("[2001:db8::1]:443"),
            ..RequestView::default()
        };
        assert_eq!(
            v6.client_ip(0).map(|i| i.to_string()).as_deref(),
            Some("2001:db8::1")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn values_of_each_source() {
        let h = headers(&[("x-api-key", "k1"), ("X-Api-Key", "k2")]);
        let payload = json!({"client_id": "c"});
        let view = RequestView {
            method: "POST",
            path: "/login?next=/",
            headers: &h,
            source_address: Some("192.0.2.1"),
            mtls_principal: Some("spiffe://td/ns/a/sa/b"),
            jwt_payload: Some(&payload),
            jwt_subject: None,
        };
        let v = |s: DescriptorSource| {
            view.value(&s, 0)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        assert_eq!(v(DescriptorSource::Method).as_deref(), Some("POST"));
        assert_eq!(v(DescriptorSource::Path).as_deref(), Some("/login"));
        assert_eq!(
            v(DescriptorSource::RequestHeader("x-api-key".into())).as_deref(),
            Some("k1,k2")
        );
        assert_eq!(v(DescriptorSource::RequestHeader("x-other".into())), None);
        assert_eq!(
            v(DescriptorSource::RemoteAddress).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            v(DescriptorSource::MtlsPrincipal).as_deref(),
            Some("spiffe://td/ns/a/sa/b")
        );
        let claim = ClaimPath::parse("client_id").unwrap_or_else(|| unreachable!());
        assert_eq!(v(DescriptorSource::JwtClaim(claim)).as_deref(), Some("c"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hashing_separates_values_salts_rules_and_tiers() {
        let a = hash_key(b"s", "r", 0, &[b"ab".to_vec(), b"c".to_vec()], 1000);
        let b = hash_key(b"s", "r", 0, &[b"a".to_vec(), b"bc".to_vec()], 1000);
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(
            a,
            hash_key(b"t", "r", 0, &[b"ab".to_vec(), b"c".to_vec()], 1000)
        );
        assert_ne!(
            a,
            hash_key(b"s", "q", 0, &[b"ab".to_vec(), b"c".to_vec()], 1000)
        );
        assert_ne!(
            a,
            hash_key(b"s", "r", 1, &[b"ab".to_vec(), b"c".to_vec()], 1000)
        );
        assert_eq!(
            a,
            hash_key(b"s", "r", 0, &[b"ab".to_vec(), b"c".to_vec()], 1000)
        );
        assert!(a.home < 1000);
        assert_eq!(hash_key(b"s", "r", 0, &[], 1).home, 0);
    }
}
