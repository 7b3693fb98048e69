//! Dynamic metadata bytes ↔ JSON.
//!
//! Envoy 1.40 serves the property `["metadata"]` as the serialized
//! `envoy.config.core.v3.Metadata` message (protobuf bytes): `filter_metadata` maps a filter
//! namespace to a `google.protobuf.Struct`. jwt_authn's `payload_in_metadata` is a field of its
//! namespace's Struct: the verified JWT payload converted from JSON, so every number is a double.
//! (A deeper path such as `["metadata", "filter_metadata", "envoy.filters.http.jwt_authn",
//! "payload"]` comes back in proxy-wasm's lossy key/value-pairs encoding — numbers as raw
//! doubles, lists as pairs — so it is not used.) Decoding uses `prost`/`prost-types`; this module
//! only maps the decoded tree onto `serde_json::Value`.

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

/// `envoy.config.core.v3.Metadata`, reduced to the field read here; the others
/// (`typed_filter_metadata = 2`) are skipped as unknown fields.
#[derive(Clone, PartialEq, prost::Message)]
struct Metadata {
    /// Filter namespace → its Struct.
    #[prost(map = "string, message", tag = "1")]
    filter_metadata: std::collections::HashMap<String, prost_types::Struct>,
}

/// Decodes serialized `envoy.config.core.v3.Metadata` bytes and returns the Struct of filter
/// namespace `namespace` as a JSON object (`None` when the namespace is absent).
pub fn decode_filter_metadata(
    bytes: &[u8],
    namespace: &str,
) -> Result<Option<Map<String, Value>>, StructError> {
    let mut metadata = Metadata::decode(bytes).map_err(|e| StructError::Decode(e.to_string()))?;
    Ok(metadata.filter_metadata.remove(namespace).map(object))
}

/// Encodes serialized `envoy.config.core.v3.Metadata` bytes holding `namespaces` (namespace →
/// Struct as a JSON object), the way Envoy serves the `["metadata"]` property. For tests and test
/// hosts that play Envoy's part.
pub fn encode_filter_metadata(namespaces: &[(&str, &Map<String, Value>)]) -> Vec<u8> {
    Metadata {
        filter_metadata: namespaces
            .iter()
            .map(|(ns, object)| ((*ns).to_owned(), to_struct(object)))
            .collect(),
    }
    .encode_to_vec()
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
    fn filter_metadata_namespaces() {
        let payload = obj(json!({"iss": "https://idp", "sub": "alice", "n": 3}));
        let ns = obj(json!({"payload": payload}));
        let other = obj(json!({"x": "y"}));
        let bytes =
            encode_filter_metadata(&[("envoy.filters.http.jwt_authn", &ns), ("lua", &other)]);
        let got = decode_filter_metadata(&bytes, "envoy.filters.http.jwt_authn").unwrap();
        assert_eq!(got, Some(ns));
        assert_eq!(decode_filter_metadata(&bytes, "absent").unwrap(), None);
        assert_eq!(decode_filter_metadata(&[], "lua").unwrap(), None);
        assert!(decode_filter_metadata(&[0x0a, 0x05, 0x0a], "lua").is_err());
    }

    /// Bytes Envoy 1.40 served for `["metadata"]` after jwt_authn verified a token
    /// (`payload_in_metadata: payload`), captured in the e2e run.
    #[wasm_bindgen_test(unsupported = test)]
    fn bytes_captured_from_envoy() {
        let hex = include_str!("envoy_metadata.hex").trim();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let ns = decode_filter_metadata(&bytes, "envoy.filters.http.jwt_authn")
            .unwrap()
            .unwrap();
        let payload = &ns["payload"];
        assert_eq!(payload["iss"], "https://issuer.e2e.test");
        assert_eq!(payload["sub"], "alice");
        assert_eq!(payload["roles"], json!(["reader"]));
        assert!(payload["exp"].is_i64(), "{payload}");
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
