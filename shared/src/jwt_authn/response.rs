//! The local reply for a refused request (RFC 6750 §3).
//!
//! - No token: `401`, `WWW-Authenticate: Bearer realm="…"` with no `error` (RFC 6750 §3.1: a
//!   request without authentication information gets no error code).
//! - Invalid token: `401`, `Bearer realm="…", error="invalid_token", error_description="<reason>"`.
//! - Ambiguous request (duplicate token header, two different tokens): `400`,
//!   `error="invalid_request"` (RFC 6750 §3.1: "uses more than one method for including an access
//!   token").
//! - Keys unavailable (cold-start timeout, keys too stale): `keys_unavailable_status` (default
//!   401 as Envoy answers a failed JWKS fetch), `error="invalid_token"`,
//!   `error_description="keys_unavailable"`.
//!
//! The body never contains the token or any value taken from the request: only the status and a
//! fixed reason code.

use super::reason;

/// How refusals are answered (compiled from `failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureSettings {
    /// Status for a missing or invalid token.
    pub status: u32,
    /// Status when keys are unavailable.
    pub keys_unavailable_status: u32,
    /// Body template (`{reason}`, `{status}`), or `None` for the default JSON body.
    pub body: Option<String>,
    /// Content type of the body.
    pub content_type: String,
    /// Challenge realm (checked at configure time: no `"`, `\` or control characters).
    pub realm: String,
}

impl Default for FailureSettings {
    fn default() -> Self {
        FailureSettings {
            status: 401,
            keys_unavailable_status: 401,
            body: None,
            content_type: "application/json".to_string(),
            realm: "meshguard".to_string(),
        }
    }
}

/// Why the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token where one is required.
    Missing,
    /// A token was refused (reason code).
    Invalid(&'static str),
    /// The request is ambiguous (reason code): 400.
    BadRequest(&'static str),
    /// Keys are not available.
    KeysUnavailable,
}

impl Refusal {
    /// The reason code.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => reason::MISSING,
            Refusal::Invalid(r) | Refusal::BadRequest(r) => r,
            Refusal::KeysUnavailable => reason::KEYS_UNAVAILABLE,
        }
    }
}

/// A local reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The reply for `refusal`.
pub fn local_reply(settings: &FailureSettings, refusal: Refusal) -> LocalReply {
    let (status, error) = match refusal {
        Refusal::Missing => (settings.status, None),
        Refusal::Invalid(_) => (settings.status, Some("invalid_token")),
        Refusal::BadRequest(_) => (400, Some("invalid_request")),
        Refusal::KeysUnavailable => (settings.keys_unavailable_status, Some("invalid_token")),
    };
    let reason = refusal.reason();
    let challenge = match error {
        None => format!("Bearer realm=\"{}\"", settings.realm),
        Some(e) => format!(
            "Bearer realm=\"{}\", error=\"{e}\", error_description=\"{reason}\"",
            settings.realm
        ),
    };
    let body = match &settings.body {
        Some(template) => template
            .replace("{reason}", reason)
            .replace("{status}", &status.to_string()),
        // Reason and error codes are fixed snake_case strings: no JSON escaping needed.
        None => match error {
            Some(e) => format!(r#"{{"status":{status},"error":"{e}","reason":"{reason}"}}"#),
            None => format!(r#"{{"status":{status},"reason":"{reason}"}}"#),
        },
    };
    LocalReply {
        status,
        headers: vec![
            ("www-authenticate".to_string(), challenge),
            ("content-type".to_string(), settings.content_type.clone()),
        ],
        body: body.into_bytes(),
    }
}

/// Checks a realm for use inside a quoted string.
pub fn check_realm(realm: &str) -> Result<(), String> {
    if realm
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        Ok(())
    } else {
        Err(format!(
            "realm {realm:?} may only contain visible ASCII without '\"' or '\\'"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn header<'a>(r: &'a LocalReply, name: &str) -> &'a str {
        &r.headers.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn missing_has_no_error_code() {
        let r = local_reply(&FailureSettings::default(), Refusal::Missing);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            r#"Bearer realm="meshguard""#
        );
        assert_eq!(r.body, br#"{"status":401,"reason":"missing"}"#);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_token_challenge() {
        let r = local_reply(&FailureSettings::default(), Refusal::Invalid("expired"));
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            r#"Bearer realm="meshguard", error="invalid_token", error_description="expired""#
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["reason"], "expired");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_request_and_keys_unavailable() {
        let s = FailureSettings {
            keys_unavailable_status: 503,
            ..Default::default()
        };
        let r = local_reply(&s, Refusal::BadRequest("duplicate_token_header"));
        assert_eq!(r.status, 400);
        assert!(header(&r, "www-authenticate").contains(r#"error="invalid_request""#));
        let r = local_reply(&s, Refusal::KeysUnavailable);
        assert_eq!(r.status, 503);
        assert!(header(&r, "www-authenticate").contains("keys_unavailable"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn custom_status_and_body() {
        let s = FailureSettings {
            status: 403,
            body: Some("denied: {reason} ({status})".into()),
            content_type: "text/plain".into(),
            realm: "api".into(),
            ..Default::default()
        };
        let r = local_reply(&s, Refusal::Invalid("bad_signature"));
        assert_eq!(r.status, 403);
        assert_eq!(r.body, b"denied: bad_signature (403)");
        assert_eq!(header(&r, "content-type"), "text/plain");
        assert!(header(&r, "www-authenticate").starts_with(r#"Bearer realm="api""#));
        assert!(check_realm("a\"b").is_err());
        assert!(check_realm("a\r\n").is_err());
        assert!(check_realm("api.example.com").is_ok());
    }
}
