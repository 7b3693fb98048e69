//! What a verified token produces for upstream: claim headers (sanitised), the payload header,
//! and the hand-off values published as filter state.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// Why a claim was not copied to its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// The claim is absent.
    Absent,
    /// An object, a nested array or `null`: no unambiguous header form.
    NotScalar,
    /// CR, LF, another control character or a non-ASCII character: never copied raw.
    UnsafeCharacters,
    /// An array element contains `,`, which would make the joined value ambiguous.
    CommaInArrayElement,
}

/// The claim at a dot-separated path (`realm_access.roles` → `["realm_access", "roles"]`).
pub fn claim_at<'a>(
    claims: &'a serde_json::Map<String, Value>,
    path: &[String],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first)?;
    for key in rest {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

/// A claim as a header value: strings as they are, numbers and booleans as JSON text, arrays of
/// those joined with `,`. Only visible ASCII and space are allowed; anything else is refused.
pub fn claim_header_value(value: &Value) -> Result<String, ClaimRefused> {
    match value {
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                let s = scalar(item)?;
                if s.contains(',') {
                    return Err(ClaimRefused::CommaInArrayElement);
                }
                parts.push(s);
            }
            Ok(parts.join(","))
        }
        other => scalar(other),
    }
}

fn scalar(v: &Value) -> Result<String, ClaimRefused> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return Err(ClaimRefused::NotScalar),
    };
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(s)
    } else {
        Err(ClaimRefused::UnsafeCharacters)
    }
}

/// The verified payload for `forward_payload_header`: base64url without padding (as Envoy).
pub fn payload_header_value(payload_json: &str) -> String {
    URL_SAFE_NO_PAD.encode(payload_json.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nested_paths() {
        let c = claims(json!({"sub": "alice", "realm_access": {"roles": ["a", "b"]}}));
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(claim_at(&c, &path("sub")), Some(&json!("alice")));
        assert_eq!(
            claim_at(&c, &path("realm_access.roles")),
            Some(&json!(["a", "b"]))
        );
        assert_eq!(claim_at(&c, &path("realm_access.x")), None);
        assert_eq!(claim_at(&c, &path("sub.x")), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn header_values_are_sanitised() {
        assert_eq!(claim_header_value(&json!("alice")), Ok("alice".into()));
        assert_eq!(claim_header_value(&json!(42)), Ok("42".into()));
        assert_eq!(claim_header_value(&json!(true)), Ok("true".into()));
        assert_eq!(
            claim_header_value(&json!(["a", 1, false])),
            Ok("a,1,false".into())
        );
        assert_eq!(
            claim_header_value(&json!("alice\r\nx-admin: true")),
            Err(ClaimRefused::UnsafeCharacters)
        );
        assert_eq!(
            claim_header_value(&json!("café")),
            Err(ClaimRefused::UnsafeCharacters)
        );
        assert_eq!(
            claim_header_value(&json!("a\u{0}b")),
            Err(ClaimRefused::UnsafeCharacters)
        );
        assert_eq!(
            claim_header_value(&json!({"a": 1})),
            Err(ClaimRefused::NotScalar)
        );
        assert_eq!(
            claim_header_value(&json!([["a"]])),
            Err(ClaimRefused::NotScalar)
        );
        assert_eq!(
            claim_header_value(&json!(["a,b", "c"])),
            Err(ClaimRefused::CommaInArrayElement)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn payload_header() {
        assert_eq!(payload_header_value(r#"{"a":1}"#), "eyJhIjoxfQ");
    }
}
