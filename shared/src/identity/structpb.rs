//! `google.protobuf.Struct` bytes ↔ JSON.
//!
//! Envoy serves dynamic metadata through proxy-wasm `get_property` as a serialized
//! `google.protobuf.Struct` (protobuf bytes, not JSON). jwt_authn's `payload_in_metadata` is such
//! a Struct: the verified JWT payload converted from JSON, so every number is a double. Decoding
//! uses `prost-types`; this module only maps the decoded tree onto `serde_json::Value`.

use prost::Message;
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

/// Why Struct bytes could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructError {
    /// The bytes are not a valid protobuf `google.protobuf.Struct` (truncated, wrong wire
    /// types, nested deeper than prost's recursion limit).
    #[error("not a serialized google.protobuf.Struct: {0}")]
    Decode(String),
}

/// The largest integer a double represents exactly (2^53).
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Decodes serialized `google.protobuf.Struct` bytes into a JSON object.
///
/// Integral numbers within ±2^53 become JSON integers (`exp`, `iat`, numeric claims), other
/// finite numbers stay floats; NaN and infinities (which JSON cannot carry) become `null`; a
/// value without a kind is `null`.
pub fn decode_struct(bytes: &[u8]) -> Result<Map<String, Value>, StructError> {
    let decoded =
        prost_types::Struct::decode(bytes).map_err(|e| StructError::Decode(e.to_string()))?;
    Ok(object(decoded))
}

fn object(s: prost_types::Struct) -> Map<String, Value> {
    s.fields.into_iter().map(|(k, v)| (k, value(v))).collect()
}

fn value(v: prost_types::Value) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StructValue(s)) => Value::Object(object(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(value).collect()),
    }
}

#[allow(clippy::cast_possible_truncation)]
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_INTEGER {
        // Exact: integral and within ±2^53, so the cast loses nothing.
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// Encodes a JSON object as serialized `google.protobuf.Struct` bytes, the way Envoy stores a
/// JSON payload (numbers as doubles). For tests and test hosts that play Envoy's part.
pub fn encode_struct(object: &Map<String, Value>) -> Vec<u8> {
    to_struct(object).encode_to_vec()
}

fn to_struct(object: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: object
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect(),
    }
}

fn to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn round_trips_a_jwt_payload() {
        let payload = obj(json!({
            "iss": "https://idp.example.com", "sub": "alice", "aud": ["api", "web"],
            "exp": 1_700_000_000, "iat": 1_699_990_000, "email_verified": true,
            "org": {"level": 3, "name": "acme", "ratio": 0.5}, "nothing": null,
            "scope": "items:read items:write", "neg": -42
        }));
        let bytes = encode_struct(&payload);
        assert_eq!(decode_struct(&bytes).unwrap(), payload);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bytes_made_by_prost_directly() {
        // Built with prost's own types (what Envoy's C++ protobuf writes is wire-identical).
        let mut fields = std::collections::BTreeMap::new();
        let s = |x: &str| prost_types::Value {
            kind: Some(Kind::StringValue(x.into())),
        };
        fields.insert("sub".to_owned(), s("bob"));
        fields.insert(
            "n".to_owned(),
            prost_types::Value {
                kind: Some(Kind::NumberValue(1e300)),
            },
        );
        fields.insert(
            "nan".to_owned(),
            prost_types::Value {
                kind: Some(Kind::NumberValue(f64::NAN)),
            },
        );
        fields.insert("empty".to_owned(), prost_types::Value { kind: None });
        let bytes = prost_types::Struct { fields }.encode_to_vec();
        let decoded = decode_struct(&bytes).unwrap();
        assert_eq!(decoded["sub"], json!("bob"));
        assert_eq!(decoded["n"], json!(1e300), "beyond 2^53 stays a float");
        assert_eq!(decoded["nan"], Value::Null);
        assert_eq!(decoded["empty"], Value::Null);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn empty_bytes_are_an_empty_object() {
        assert_eq!(decode_struct(&[]).unwrap(), Map::new());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn garbage_and_json_text_are_refused() {
        assert!(matches!(
            decode_struct(&[0x0a, 0xff]),
            Err(StructError::Decode(_))
        ));
        // JSON text is not what Envoy serves; it must not be half-decoded into claims.
        assert!(decode_struct(br#"{"sub":"alice"}"#).is_err());
    }
}
