//! Who is calling: the mTLS peer (SPIFFE id), its namespace, and the JWT request principal.
//!
//! - The peer identity is the first URI SAN of the client certificate, Envoy's property
//!   `connection.uri_san_peer_certificate` (`spiffe://cluster.local/ns/default/sa/web`).
//!   `principals` may be written with or without `spiffe://` (Istio's form has none); as in
//!   Istio, every pattern except `*` is matched with `spiffe://` in front.
//! - The namespace is read from a SPIFFE id shaped `spiffe://<trust domain>/ns/<ns>/…`; any other
//!   identity has no namespace (Istio uses the looser regex `.*/ns/<ns>/.*`).
//! - The request principal is `<iss>/<sub>` of the token jwt-authn verified, split at the last
//!   `/` of the pattern exactly as Istio does (`iss/sub*`, `*/sub`, `https://issuer/*`, `*`).

use super::error::PolicyError;
use super::string_match::StringPattern;

const SPIFFE: &str = "spiffe://";

/// Compiles a `principals` / `source.principal` value.
pub fn principal_pattern(value: &str) -> Result<StringPattern, PolicyError> {
    let value = value.strip_prefix(SPIFFE).unwrap_or(value);
    StringPattern::with_prefix(value, SPIFFE)
}

/// The namespace of a SPIFFE id `spiffe://<td>/ns/<ns>/…`, if it has that shape.
pub fn spiffe_namespace(uri_san: &str) -> Option<&str> {
    let rest = uri_san.strip_prefix(SPIFFE)?;
    let mut parts = rest.split('/');
    let trust_domain = parts.next()?;
    if trust_domain.is_empty() || parts.next()? != "ns" {
        return None;
    }
    parts.next().filter(|ns| !ns.is_empty())
}

/// A compiled `request_principals` / `request.auth.principal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPrincipalPattern {
    issuer: StringPattern,
    subject: StringPattern,
}

impl RequestPrincipalPattern {
    /// Compiles `iss/sub` with Istio's rules for `*`.
    pub fn parse(value: &str) -> Result<Self, PolicyError> {
        if value.is_empty() {
            return Err(PolicyError::EmptyValue);
        }
        let split = value.rfind('/').map(|at| {
            let (iss, sub) = value.split_at(at);
            (iss, sub.get(1..).unwrap_or_default())
        });
        let exact = |s: &str| StringPattern::Exact(s.to_owned());
        let any_or = |s: &str, f: fn(String) -> StringPattern, star_side: &str| {
            if s == "*" {
                StringPattern::Present
            } else {
                f(star_side.to_owned())
            }
        };
        let (issuer, subject) = if value == "*" {
            (StringPattern::Present, StringPattern::Present)
        } else if let Some(tail) = value.strip_prefix('*') {
            match split {
                Some((iss, sub)) => (
                    any_or(
                        iss,
                        StringPattern::Suffix,
                        iss.strip_prefix('*').unwrap_or(iss),
                    ),
                    exact(sub),
                ),
                None => (
                    StringPattern::Present,
                    StringPattern::Suffix(tail.to_owned()),
                ),
            }
        } else if let Some(head) = value.strip_suffix('*') {
            match split {
                Some((iss, sub)) => (
                    exact(iss),
                    any_or(
                        sub,
                        StringPattern::Prefix,
                        sub.strip_suffix('*').unwrap_or(sub),
                    ),
                ),
                None => (
                    StringPattern::Prefix(head.to_owned()),
                    StringPattern::Present,
                ),
            }
        } else {
            match split {
                Some((iss, sub)) => (exact(iss), exact(sub)),
                None => (exact(value), exact("")),
            }
        };
        Ok(RequestPrincipalPattern { issuer, subject })
    }

    /// Matches the verified token's issuer and subject.
    pub fn matches(&self, issuer: &str, subject: &str) -> bool {
        self.issuer.matches(issuer.as_bytes()) && self.subject.matches(subject.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn principals_with_or_without_spiffe_scheme() {
        let san = b"spiffe://cluster.local/ns/default/sa/web";
        for written in [
            "cluster.local/ns/default/sa/web",
            "spiffe://cluster.local/ns/default/sa/web",
            "cluster.local/ns/default/*",
            "spiffe://cluster.local/*",
            "*/sa/web",
            "*",
        ] {
            assert!(
                principal_pattern(written).unwrap().matches(san),
                "{written}"
            );
        }
        assert!(!principal_pattern("cluster.local/ns/default/sa/api")
            .unwrap()
            .matches(san));
        // Only `*` matches an identity that is not a SPIFFE id.
        assert!(!principal_pattern("*/sa/web")
            .unwrap()
            .matches(b"https://x/sa/web"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn namespace_from_spiffe_ids() {
        assert_eq!(
            spiffe_namespace("spiffe://cluster.local/ns/prod/sa/web"),
            Some("prod")
        );
        assert_eq!(spiffe_namespace("spiffe://td/ns/prod"), Some("prod"));
        assert_eq!(spiffe_namespace("spiffe://td/sa/x/ns/prod"), None);
        assert_eq!(spiffe_namespace("spiffe:///ns/prod/sa/x"), None);
        assert_eq!(spiffe_namespace("spiffe://td/ns//sa/x"), None);
        assert_eq!(spiffe_namespace("https://td/ns/prod/sa/x"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn request_principals_follow_istio_splitting() {
        let iss = "https://idp.example.com";
        let check = |pattern: &str, iss: &str, sub: &str| {
            RequestPrincipalPattern::parse(pattern)
                .unwrap()
                .matches(iss, sub)
        };
        assert!(check("https://idp.example.com/alice", iss, "alice"));
        assert!(!check("https://idp.example.com/alice", iss, "bob"));
        assert!(check("https://idp.example.com/*", iss, "bob"));
        assert!(!check("https://idp.example.com/*", iss, ""));
        assert!(check("https://idp.example.com/al*", iss, "alice"));
        assert!(!check(
            "https://idp.example.com/al*",
            "https://other",
            "alice"
        ));
        assert!(check("*/alice", "anything", "alice"));
        assert!(!check("*/alice", "", "alice"));
        assert!(check("*.example.com/alice", iss, "alice"));
        assert!(check("*", "a", "b"));
        assert!(!check("*", "a", ""));
        // Without '/', a trailing star is an issuer prefix, a leading star a subject suffix.
        assert!(check("https*", iss, "x"));
        assert!(check("*ice", "x", "alice"));
        assert_eq!(
            RequestPrincipalPattern::parse(""),
            Err(PolicyError::EmptyValue)
        );
    }
}
