//! Deny responses: the default one and per-rule overrides, compiled at configure time.
//!
//! The default is `403` with `content-type: application/json` and the body
//! `{"error":"forbidden"}`, or `{"error":"insufficient_scope"}` plus
//! `www-authenticate: Bearer error="insufficient_scope", scope="…"` (RFC 6750 §3.1) when the
//! request lacked OAuth scopes. The body never names the policy, the rule or any claim: those
//! are in filter state and metrics, for operators, not for clients.

use serde_json::Value;

use super::error::PolicyError;
use super::raw::DenyResponseRaw;
use crate::config::ConfigErrors;

const DEFAULT_STATUS: u16 = 403;
const FORBIDDEN_BODY: &[u8] = br#"{"error":"forbidden"}"#;
const INSUFFICIENT_SCOPE_BODY: &[u8] = br#"{"error":"insufficient_scope"}"#;
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A compiled deny response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names lower-case, `content-type` included.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Body when the deny is for missing scopes (differs only for the default body).
    pub insufficient_scope_body: Vec<u8>,
    /// The headers already set `www-authenticate` (then the scope one is not added).
    pub sets_www_authenticate: bool,
}

impl Default for DenyResponse {
    fn default() -> Self {
        DenyResponse {
            status: DEFAULT_STATUS,
            headers: vec![("content-type".to_owned(), JSON.to_owned())],
            body: FORBIDDEN_BODY.to_vec(),
            insufficient_scope_body: INSUFFICIENT_SCOPE_BODY.to_vec(),
            sets_www_authenticate: false,
        }
    }
}

impl DenyResponse {
    /// Compiles `raw`, reporting problems under `path` (e.g. `policies[0].rules[1].deny_response`).
    pub fn compile(raw: &DenyResponseRaw, path: &str, errors: &mut ConfigErrors) -> Self {
        let mut out = DenyResponse::default();
        if let Some(status) = raw.status {
            if (200..=599).contains(&status) {
                out.status = status;
            } else {
                errors.push(
                    format!("{path}.status"),
                    PolicyError::InvalidStatus { status }.to_string(),
                );
            }
        }
        let content_type = match &raw.body {
            None => JSON,
            Some(Value::String(text)) => {
                out.body = text.as_bytes().to_vec();
                out.insufficient_scope_body = out.body.clone();
                TEXT
            }
            Some(json) => {
                out.body = json.to_string().into_bytes();
                out.insufficient_scope_body = out.body.clone();
                JSON
            }
        };
        out.headers.clear();
        for (name, value) in &raw.headers {
            let at = format!("{path}.headers.{name}");
            if !is_header_name(name) {
                let e = PolicyError::InvalidHeaderName { name: name.clone() };
                errors.push(at, e.to_string());
                continue;
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                let e = PolicyError::InvalidHeaderValue { name: name.clone() };
                errors.push(at, e.to_string());
                continue;
            }
            out.headers.push((name.to_ascii_lowercase(), value.clone()));
        }
        if !out.headers.iter().any(|(n, _)| n == "content-type") {
            out.headers
                .insert(0, ("content-type".to_owned(), content_type.to_owned()));
        }
        out.sets_www_authenticate = out.headers.iter().any(|(n, _)| n == "www-authenticate");
        out
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::parse_json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn compile(json: &str) -> (DenyResponse, ConfigErrors) {
        let raw: DenyResponseRaw = parse_json(json.as_bytes()).unwrap();
        let mut errors = ConfigErrors::default();
        (
            DenyResponse::compile(&raw, "deny_response", &mut errors),
            errors,
        )
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn default_is_a_json_403_without_detail() {
        let d = DenyResponse::default();
        assert_eq!(d.status, 403);
        assert_eq!(d.body, br#"{"error":"forbidden"}"#);
        assert_eq!(d.headers, vec![("content-type".into(), JSON.into())]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn overrides() {
        let (d, e) = compile(
            r#"{"status":404,"body":{"error":"not_found"},"headers":{"X-Reason":"policy"}}"#,
        );
        assert!(e.is_empty());
        assert_eq!(d.status, 404);
        assert_eq!(d.body, br#"{"error":"not_found"}"#);
        assert_eq!(d.insufficient_scope_body, d.body);
        assert_eq!(
            d.headers,
            vec![
                ("content-type".into(), JSON.into()),
                ("x-reason".into(), "policy".into())
            ]
        );
        let (d, _) = compile(r#"{"body":"go away","headers":{"content-type":"text/x"}}"#);
        assert_eq!(d.body, b"go away");
        assert_eq!(d.headers, vec![("content-type".into(), "text/x".into())]);
        let (d, _) = compile(r#"{"headers":{"WWW-Authenticate":"Bearer realm=\"x\""}}"#);
        assert!(d.sets_www_authenticate);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn errors_name_the_field() {
        let (_, e) = compile(r#"{"status":700,"headers":{":status":"200","x":"a\r\nb: c"}}"#);
        let text = e.to_string();
        assert!(
            text.contains("deny_response.status: invalid status 700"),
            "{text}"
        );
        assert!(
            text.contains("deny_response.headers.:status: invalid header name"),
            "{text}"
        );
        assert!(
            text.contains("deny_response.headers.x: invalid header value"),
            "{text}"
        );
    }
}
