//! The HTTP side of remote keys: where to send the fetch (cluster, `:authority`, `:path`), how
//! to read an OpenID discovery document, and when a response counts as a success.

use std::time::Duration;

/// One HTTP GET through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Envoy cluster name.
    pub cluster: String,
    /// `:authority` (host and optional port from the URL).
    pub authority: String,
    /// `:path` (path and query from the URL; `/` when empty).
    pub path: String,
    /// Call timeout.
    pub timeout: Duration,
}

impl HttpTarget {
    /// Parses an `http://` or `https://` URL. Userinfo, fragments, whitespace and control
    /// characters are refused.
    pub fn parse(uri: &str, cluster: &str, timeout: Duration) -> Result<HttpTarget, String> {
        let rest = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .ok_or_else(|| format!("uri {uri:?} must start with https:// or http://"))?;
        if uri.bytes().any(|b| !(0x21..0x7f).contains(&b)) || uri.contains('#') {
            return Err(format!(
                "uri {uri:?} must be ASCII without spaces, control characters or a fragment"
            ));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (rest.get(..at).unwrap_or(""), rest.get(at..).unwrap_or("")),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("uri {uri:?} needs a host (and no user info)"));
        }
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if cluster.is_empty() {
            return Err("cluster must not be empty".to_string());
        }
        Ok(HttpTarget {
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            path,
            timeout,
        })
    }

    /// The request headers of the GET.
    pub fn request_headers(&self) -> Vec<(&str, &str)> {
        vec![
            (":method", "GET"),
            (":path", self.path.as_str()),
            (":authority", self.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "meshguard-jwt-authn"),
        ]
    }
}

/// Where a provider's remote keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFetch {
    /// The JWKS URL directly.
    Jwks(HttpTarget),
    /// First the discovery document, then its `jwks_uri`.
    Discovery {
        /// `<issuer>/.well-known/openid-configuration`.
        discovery: HttpTarget,
        /// The issuer the document must name.
        issuer: String,
        /// Cluster for `jwks_uri`.
        jwks_cluster: String,
        /// Timeout of the JWKS fetch.
        timeout: Duration,
    },
}

impl KeyFetch {
    /// The first request of a key load.
    pub fn first(&self) -> &HttpTarget {
        match self {
            KeyFetch::Jwks(t) => t,
            KeyFetch::Discovery { discovery, .. } => discovery,
        }
    }

    /// HTTP fetches per key load.
    pub fn steps(&self) -> u64 {
        match self {
            KeyFetch::Jwks(_) => 1,
            KeyFetch::Discovery { .. } => 2,
        }
    }
}

/// The discovery URL of `issuer`.
pub fn discovery_uri(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads `jwks_uri` from a discovery document whose `issuer` must equal `issuer` (OpenID
/// Connect Discovery §4.3).
pub fn parse_discovery(body: &[u8], issuer: &str) -> Result<String, &'static str> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "discovery document is not JSON")?;
    let doc = doc
        .as_object()
        .ok_or("discovery document is not an object")?;
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err("discovery document names another issuer");
    }
    doc.get("jwks_uri")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or("discovery document has no jwks_uri")
}

/// True when an HTTP-call response is a success: `:status` 200 and a non-empty body.
pub fn response_ok(headers: &[(String, Vec<u8>)], body: Option<&[u8]>) -> bool {
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .map(|(_, v)| v.as_slice());
    status == Some(b"200") && body.is_some_and(|b| !b.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const S5: Duration = Duration::from_secs(5);

    #[wasm_bindgen_test(unsupported = test)]
    fn parse_urls() {
        let t = HttpTarget::parse("https://idp.example.com:8443/keys?x=1", "idp", S5).unwrap();
        assert_eq!(t.authority, "idp.example.com:8443");
        assert_eq!(t.path, "/keys?x=1");
        let t = HttpTarget::parse("http://idp", "idp", S5).unwrap();
        assert_eq!(t.path, "/");
        let t = HttpTarget::parse("http://idp?x", "idp", S5).unwrap();
        assert_eq!(t.path, "/?x");
        assert!(HttpTarget::parse("ftp://idp/x", "idp", S5).is_err());
        assert!(HttpTarget::parse("https://user@idp/x", "idp", S5).is_err());
        assert!(HttpTarget::parse("https:///x", "idp", S5).is_err());
        assert!(HttpTarget::parse("https://idp/a b", "idp", S5).is_err());
        assert!(HttpTarget::parse("https://idp/a#f", "idp", S5).is_err());
        assert!(HttpTarget::parse("https://idp/a", "", S5).is_err());
        let h = t.request_headers();
        assert!(h.contains(&(":method", "GET")));
        assert!(h.contains(&(":authority", "idp")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn discovery() {
        assert_eq!(
            discovery_uri("https://idp/realms/a/"),
            "https://idp/realms/a/.well-known/openid-configuration"
        );
        let doc = br#"{"issuer":"https://idp","jwks_uri":"https://idp/certs"}"#;
        assert_eq!(
            parse_discovery(doc, "https://idp"),
            Ok("https://idp/certs".into())
        );
        assert!(parse_discovery(doc, "https://other").is_err());
        assert!(parse_discovery(br#"{"issuer":"https://idp"}"#, "https://idp").is_err());
        assert!(parse_discovery(b"[]", "https://idp").is_err());
        assert!(parse_discovery(b"<html>", "https://idp").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn response_status() {
        let ok = vec![(":status".to_string(), b"200".to_vec())];
        let err = vec![(":status".to_string(), b"503".to_vec())];
        assert!(response_ok(&ok, Some(b"{}")));
        assert!(!response_ok(&ok, Some(b"")));
        assert!(!response_ok(&ok, None));
        assert!(!response_ok(&err, Some(b"{}")));
        assert!(!response_ok(&[], Some(b"{}")));
    }
}
